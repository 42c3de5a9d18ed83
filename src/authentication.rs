//! Sender authentication from `Authentication-Results` (RFC 8601), one of the two proofs a
//! technician's command needs (the other is the tokenised reply address, see `tokens`).
//!
//! Only a header added by a server the site trusts counts (`security.trusted_authserv_ids`),
//! and only the topmost one with that id: the trusted server adds its result on top, and it
//! must remove headers carrying its id that came from outside (RFC 8601 §5; Exchange Online,
//! OpenDKIM/OpenDMARC and rspamd do). A pass counts only when aligned with the From domain
//! (the same domain or a subdomain of it), as DMARC would judge it: DKIM's `header.d`/`header.i`
//! or SPF's `smtp.mailfrom` (not `smtp.helo`, which DMARC does not align).
//!
//! Limit: this proves the sender's *domain*. Anyone who can send authenticated mail from the
//! staff's domain can pass as a technician by this proof; the tokenised reply address binds the
//! person and the ticket and is the stronger proof.

use std::sync::LazyLock;

use regex::Regex;

/// The first `dkim=pass` or `spf=pass` aligned with `from_domain` in the topmost
/// `Authentication-Results` header of a trusted server, described for the log; else `None`.
pub fn aligned_pass(headers: &[String], trusted: &[String], from_domain: &str) -> Option<String> {
    static RESULT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)\b(dkim|spf)\s*=\s*([a-z]+)\b([^;]*)")
            .unwrap_or_else(|e| unreachable!("static regex: {e}"))
    });
    static DOMAIN: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)\b(?:header\.d|header\.i|smtp\.mailfrom)\s*=\s*([^\s;]+)")
            .unwrap_or_else(|e| unreachable!("static regex: {e}"))
    });
    let from_domain = from_domain.to_lowercase();
    let header = headers.iter().find(|h| {
        let id = h.split(';').next().unwrap_or_default().trim();
        // "authserv-id [version]"
        let id = id.split_whitespace().next().unwrap_or_default();
        trusted.iter().any(|t| t.eq_ignore_ascii_case(id))
    })?;
    // Drop RFC 5322 comments so "(good signature)" cannot smuggle text in.
    let clean = strip_comments(header);
    for c in RESULT.captures_iter(&clean) {
        if !c[2].eq_ignore_ascii_case("pass") {
            continue;
        }
        let Some(d) = DOMAIN.captures(&c[3]) else {
            continue;
        };
        let domain = d[1]
            .rsplit('@')
            .next()
            .unwrap_or_default()
            .trim_matches(['"', '.'])
            .to_lowercase();
        if !domain.is_empty()
            && (domain == from_domain || from_domain.ends_with(&format!(".{domain}")))
        {
            return Some(format!("{}=pass ({domain})", c[1].to_lowercase()));
        }
    }
    None
}

fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0u32;
    for ch in s.chars() {
        match ch {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(ch),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted() -> Vec<String> {
        vec!["mx.edomex.gob.mx".into()]
    }

    #[test]
    fn dkim_or_spf_pass_aligned() {
        let h = vec![
            "mx.edomex.gob.mx; dkim=pass (2048-bit key) header.d=edomex.gob.mx header.i=@edomex.gob.mx; spf=fail smtp.mailfrom=x@evil.test".to_string(),
        ];
        assert_eq!(
            aligned_pass(&h, &trusted(), "edomex.gob.mx").as_deref(),
            Some("dkim=pass (edomex.gob.mx)")
        );
        assert_eq!(
            aligned_pass(&h, &trusted(), "finanzas.edomex.gob.mx").as_deref(),
            Some("dkim=pass (edomex.gob.mx)"),
            "relaxed alignment: a subdomain of the signing domain"
        );
        let spf =
            vec!["mx.edomex.gob.mx 1; spf=pass smtp.mailfrom=tech1@edomex.gob.mx".to_string()];
        assert!(aligned_pass(&spf, &trusted(), "edomex.gob.mx").is_some());
    }

    #[test]
    fn untrusted_unaligned_failed_or_commented_do_not_count() {
        let other_server = vec!["mx.evil.test; dkim=pass header.d=edomex.gob.mx".to_string()];
        assert_eq!(
            aligned_pass(&other_server, &trusted(), "edomex.gob.mx"),
            None
        );
        let unaligned = vec!["mx.edomex.gob.mx; dkim=pass header.d=evil.test".to_string()];
        assert_eq!(aligned_pass(&unaligned, &trusted(), "edomex.gob.mx"), None);
        let failed = vec!["mx.edomex.gob.mx; dkim=fail header.d=edomex.gob.mx".to_string()];
        assert_eq!(aligned_pass(&failed, &trusted(), "edomex.gob.mx"), None);
        let comment =
            vec!["mx.edomex.gob.mx; dkim=none (dkim=pass header.d=edomex.gob.mx)".to_string()];
        assert_eq!(aligned_pass(&comment, &trusted(), "edomex.gob.mx"), None);
        // Only the topmost trusted header counts: one below it (forged) is ignored.
        let forged_below = vec![
            "mx.edomex.gob.mx; dkim=none".to_string(),
            "mx.edomex.gob.mx; dkim=pass header.d=edomex.gob.mx".to_string(),
        ];
        assert_eq!(
            aligned_pass(&forged_below, &trusted(), "edomex.gob.mx"),
            None
        );
        assert_eq!(aligned_pass(&[], &trusted(), "edomex.gob.mx"), None);
    }
}
