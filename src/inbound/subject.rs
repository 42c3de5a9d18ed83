//! Subjects as mail clients mangle them: reply and forward prefixes in many languages
//! (`RE:`, `RV:`, `RES:`, `Fwd:`, `ENC:`, `AW:`, `WG:`, `SV:`, `VS:`, `Antw:`, `Réf.:`, …),
//! repeated, bracketed (`[Fwd: …]`) or with a counter (`Re[2]:`), and folio tags
//! (`[Folio MDA-2026-000042]`). Finding the folio itself is `folio::FolioFormat::find`, which
//! already looks anywhere in the text.

use std::sync::LazyLock;

use regex::Regex;

/// One leading reply/forward prefix, with what a client may put around it.
static PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)^\s*
        (?:
          (?:re|res|rv|fw|fwd|enc|aw|wg|sv|vs|antw|antwort|r[ée]f\.?|tr|rif|odp|vl|doorst)
          \s*(?:\[\d+\]|\(\d+\))?\s*[:：]
        )\s*",
    )
    .unwrap_or_else(|e| unreachable!("static regex: {e}"))
});

/// A folio tag folio itself puts in subjects: `[Folio MDA-2026-000042]` or `Folio: …` is kept
/// by [`strip_prefixes`] (the folio is how the mail is threaded); this strips only brackets
/// that wrap a whole forwarded subject, like `[Fwd: …]`.
static BRACKETED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*\[(?:fwd|fw|rv|enc)\s*:\s*(.*)\]\s*$")
        .unwrap_or_else(|e| unreachable!("static regex: {e}"))
});

/// The subject without any leading reply/forward prefixes (`RE: RV: Fwd: hola` → `hola`).
pub fn strip_prefixes(subject: &str) -> String {
    let mut s = subject.trim().to_string();
    loop {
        if let Some(c) = BRACKETED.captures(&s) {
            s = c[1].trim().to_string();
            continue;
        }
        match PREFIX.find(&s) {
            Some(m) if m.end() > 0 => s = s[m.end()..].to_string(),
            _ => return s,
        }
    }
}

/// Whether the subject starts with a reply prefix (`RE:`, `RES:`, `AW:`, `SV:`, `Antw:`, …) and
/// is not a forward.
pub fn is_reply(subject: &str) -> bool {
    !is_forward(subject) && PREFIX.find(subject).is_some_and(|m| m.end() > 0)
}

/// Whether the subject starts with a forward prefix (`RV:`, `ENC:`, `Fwd:`, `FW:`, `WG:`, `TR:`).
pub fn is_forward(subject: &str) -> bool {
    static FORWARD: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)^\s*\[?\s*(?:rv|fw|fwd|enc|wg|tr|vs|doorst)\s*:")
            .unwrap_or_else(|e| unreachable!("static regex: {e}"))
    });
    FORWARD.is_match(subject)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::folio::{FolioFormat, DEFAULT_FORMAT};

    #[test]
    fn prefixes_in_many_languages() {
        for (input, want) in [
            ("RE: No puedo entrar", "No puedo entrar"),
            ("Re: RE: re:  No puedo entrar", "No puedo entrar"),
            ("RV: Fwd: ENC: Falla VPN", "Falla VPN"),
            ("RES: Solicitud", "Solicitud"),
            ("AW: WG: Antw: SV: VS: Drucker", "Drucker"),
            ("Réf. : Imprimante", "Imprimante"),
            ("Re[2]: Red caída", "Red caída"),
            ("[Fwd: Alta de usuario]", "Alta de usuario"),
            (
                "RE: [Folio MDA-2026-000042] Re: No puedo entrar",
                "[Folio MDA-2026-000042] Re: No puedo entrar",
            ),
            ("Reunión: lunes", "Reunión: lunes"),
            ("Resumen: nómina", "Resumen: nómina"),
            ("", ""),
        ] {
            assert_eq!(strip_prefixes(input), want, "{input:?}");
        }
    }

    #[test]
    fn folio_found_however_the_client_mangled_the_subject() {
        let f = FolioFormat::parse(DEFAULT_FORMAT).unwrap();
        for s in [
            "RE: [Folio MDA-2026-000042] Re: No puedo entrar al correo",
            "RV: RE: [Folio MDA-2026-000042] No puedo entrar",
            "re: re: [folio mda-2026-000042] no puedo",
            "AW: Folio: MDA-2026-000042",
            "Réf. : [Folio  MDA - 2026 - 000042 ]",
            "RES: ENC: Seguimiento MDA-2026-42",
            "Antw: WG: SV: VS: FW: [Folio MDA-2026-000042]",
        ] {
            assert_eq!(f.find(s).as_deref(), Some("MDA-2026-000042"), "{s:?}");
        }
        assert_eq!(f.find("RE: MDA-2026-"), None);
        assert_eq!(f.find("RE: XMDA-2026-000042"), None);
    }

    #[test]
    fn replies() {
        assert!(is_reply("RE: x"));
        assert!(is_reply("Antw: x"));
        assert!(!is_reply("RV: x"));
        assert!(!is_reply("Reunión: x"));
    }

    #[test]
    fn forwards() {
        assert!(is_forward("RV: No puedo entrar"));
        assert!(is_forward("Fwd: x"));
        assert!(is_forward("ENC: x"));
        assert!(!is_forward("RE: x"));
        assert!(!is_forward("Rvisión"));
    }
}
