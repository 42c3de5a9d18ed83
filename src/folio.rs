//! Folio numbers (`MDA-2026-000123`): the format, rendering a number, and finding folios in text.
//!
//! Invariant: no I/O here. The sequence itself is allocated by the store, inside the ticket's
//! transaction, so numbers are gap-free per year.

use regex::Regex;

/// The default format: `MDA-{year}-{seq:06}`.
pub const DEFAULT_FORMAT: &str = "MDA-{year}-{seq:06}";

/// A parsed folio format: literal text with `{year}` and `{seq}`/`{seq:0N}` placeholders.
#[derive(Debug, Clone)]
pub struct FolioFormat {
    parts: Vec<Part>,
    pattern: Regex,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    Year,
    Seq { width: usize },
}

impl Default for FolioFormat {
    /// [`DEFAULT_FORMAT`].
    fn default() -> FolioFormat {
        FolioFormat::parse(DEFAULT_FORMAT)
            .unwrap_or_else(|e| unreachable!("the default folio format is valid: {e}"))
    }
}

impl FolioFormat {
    /// Parses a format string; the error says what is wrong with it.
    pub fn parse(format: &str) -> Result<FolioFormat, String> {
        let mut parts = Vec::new();
        let mut rest = format;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| format!("unclosed '{{' in {format:?}"))?
                + open;
            let name = &rest[open + 1..close];
            parts.push(match name {
                "year" => Part::Year,
                "seq" => Part::Seq { width: 1 },
                _ if name.starts_with("seq:0") => Part::Seq {
                    width: name[5..]
                        .parse()
                        .map_err(|_| format!("bad width in {{{name}}} in {format:?}"))?,
                },
                _ => {
                    return Err(format!(
                        "unknown placeholder {{{name}}} in {format:?} (use {{year}} and {{seq}} or {{seq:06}})"
                    ))
                }
            });
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        if parts
            .iter()
            .filter(|p| matches!(p, Part::Seq { .. }))
            .count()
            != 1
        {
            return Err(format!("{format:?} must contain {{seq}} exactly once"));
        }
        // The sequence restarts every year: without the year in it, January's numbers would
        // repeat last year's.
        if parts.iter().filter(|p| matches!(p, Part::Year)).count() != 1 {
            return Err(format!("{format:?} must contain {{year}} exactly once"));
        }
        if !parts
            .iter()
            .any(|p| matches!(p, Part::Literal(l) if l.chars().any(char::is_alphabetic)))
        {
            return Err(format!(
                "{format:?} needs a letter prefix (like \"MDA-\") so folios can be found in subjects"
            ));
        }
        let mut pattern = String::from(r"(?i)\b");
        for p in &parts {
            match p {
                Part::Literal(l) => pattern.push_str(&regex::escape(l).replace(r"\-", r"\s*-\s*")),
                Part::Year => pattern.push_str(r"\d{4}"),
                Part::Seq { .. } => pattern.push_str(r"\d{1,12}"),
            }
        }
        pattern.push_str(r"\b");
        let pattern = Regex::new(&pattern).map_err(|e| e.to_string())?;
        Ok(FolioFormat { parts, pattern })
    }

    /// Renders the folio for a year and sequence number.
    pub fn render(&self, year: i32, seq: i64) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                // Upper case: `find` normalises what it finds the same way.
                Part::Literal(l) => out.push_str(&l.to_uppercase()),
                Part::Year => out.push_str(&year.to_string()),
                Part::Seq { width } => out.push_str(&format!("{seq:0width$}")),
            }
        }
        out
    }

    /// The first folio mentioned in `text`, normalised (upper case, spaces removed, zero-padded as
    /// the format says), or `None`.
    pub fn find(&self, text: &str) -> Option<String> {
        self.pattern.find(text).map(|m| self.normalise(m.as_str()))
    }

    /// The first folio in `text` (normalised) and the text with it cut out.
    pub fn extract(&self, text: &str) -> Option<(String, String)> {
        let m = self.pattern.find(text)?;
        Some((
            self.normalise(m.as_str()),
            format!("{}{}", &text[..m.start()], &text[m.end()..]),
        ))
    }

    fn normalise(&self, found: &str) -> String {
        let compact: String = found
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_uppercase();
        // Re-pad the sequence number: "MDA-2026-42" typed by hand means MDA-2026-000042.
        let digits_at_end: String = compact
            .chars()
            .rev()
            .take_while(char::is_ascii_digit)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        match (self.parts.last(), digits_at_end.parse::<i64>()) {
            (Some(Part::Seq { width }), Ok(n)) => {
                let head = &compact[..compact.len() - digits_at_end.len()];
                format!("{head}{n:0width$}")
            }
            _ => compact,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f() -> FolioFormat {
        FolioFormat::parse(DEFAULT_FORMAT).unwrap()
    }

    #[test]
    fn renders_default_format() {
        assert_eq!(f().render(2026, 123), "MDA-2026-000123");
        assert_eq!(f().render(2026, 1_234_567), "MDA-2026-1234567");
    }

    #[test]
    fn finds_folios_however_written() {
        for s in [
            "[Folio MDA-2026-000042] Re: No puedo entrar",
            "RE: RV: folio: mda-2026-000042",
            "Sobre el MDA - 2026 - 000042 que abrí",
            "consulta MDA-2026-42",
        ] {
            assert_eq!(f().find(s).as_deref(), Some("MDA-2026-000042"), "{s}");
        }
        assert_eq!(f().find("Sin folio aquí, XMDA-2026-000042"), None);
        assert_eq!(f().find("MDA-26-000042"), None);
    }

    #[test]
    fn rejects_bad_formats() {
        assert!(FolioFormat::parse("{year}-{seq}").is_err());
        assert!(FolioFormat::parse("MDA-{year}").is_err());
        assert!(FolioFormat::parse("MDA-{yr}-{seq}").is_err());
        assert!(FolioFormat::parse("MDA-{seq:06}").is_err());
        assert!(FolioFormat::parse("MDA-{seq:06").is_err());
    }
}
