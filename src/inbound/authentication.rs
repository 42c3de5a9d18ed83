//! Sender authentication from `Authentication-Results` (RFC 8601), one of the two proofs a
//! technician's command needs (the other is the tokenised reply address, see `tokens`).
//!
//! Only a header added by a server the site trusts counts (`security.trusted_authserv_ids`,
//! compared exactly, ignoring ASCII case), and only the topmost one with that id: the trusted
//! server adds its result on top, and it must remove headers carrying its id that came from
//! outside (RFC 8601 §5; Exchange Online, OpenDKIM/OpenDMARC and rspamd do). Headers of other
//! servers above it are skipped; headers below it are never read, even when the topmost one is
//! malformed (a malformed trusted header proves nothing).
//!
//! A pass counts only when aligned with the From domain (the same domain or a subdomain of
//! it), as DMARC's relaxed alignment would judge it for the usual case (without the public
//! suffix list: a pass for `gob.mx` would cover `edomex.gob.mx`, but only the suffix's registry
//! controls the DNS such a pass needs): DKIM's `header.d` (or,
//! without it, the domain of `header.i`) or SPF's `smtp.mailfrom` (not `smtp.helo`, which DMARC
//! does not align). Every other property (`header.b`, `header.s`, `header.from`, `policy.*`, …)
//! and every other method (`dmarc`, `arc`, `iprev`, …) is ignored.
//!
//! The header is read with a real tokenizer of RFC 8601 §2.2 and RFC 5322's CFWS ([`parse`]):
//! a quoted string or a comment is one token, so text inside them (`"x;dkim=pass …"`,
//! `(dkim=pass …)`) can never be mistaken for a result. No maintained Rust crate parses this
//! header (`mail-auth` only writes it), hence the parser here.
//!
//! Limit: this proves the sender's *domain*. Anyone who can send authenticated mail from the
//! staff's domain can pass as a technician by this proof; the tokenised reply address binds the
//! person and the ticket and is the stronger proof.

/// The first `dkim=pass` or `spf=pass` aligned with `from_domain` in the topmost
/// `Authentication-Results` header of a trusted server, described for the log; else `None`.
///
/// `headers` are the header values (without the field name), top first.
pub fn aligned_pass(headers: &[String], trusted: &[String], from_domain: &str) -> Option<String> {
    let from_domain = from_domain.trim_end_matches('.').to_ascii_lowercase();
    if from_domain.is_empty() {
        return None;
    }
    let header = headers.iter().find(|h| {
        authserv_id(h).is_some_and(|id| trusted.iter().any(|t| t.eq_ignore_ascii_case(&id)))
    })?;
    let parsed = parse(header).ok()?;
    parsed.results.iter().find_map(|r| {
        let domain = r.aligned_identity()?;
        let aligned = domain == from_domain || from_domain.ends_with(&format!(".{domain}"));
        aligned.then(|| format!("{}=pass ({domain})", r.method))
    })
}

/// One `Authentication-Results` header value, as [`parse`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticationResults {
    /// The server that added the header, unquoted (case kept).
    pub authserv_id: String,
    /// `authres-version`, when given (`mx.example.test 1; …`).
    pub version: Option<String>,
    /// The results in header order; empty for `none`.
    pub results: Vec<ResultInfo>,
    /// Results that broke the grammar and were dropped (the parser resumes at the next `;`
    /// outside quotes and comments).
    pub malformed: Vec<ParseError>,
}

/// One `resinfo`: `method[/version]=result [reason=…] ptype.property=value …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultInfo {
    /// `dkim`, `spf`, … (lowercased).
    pub method: String,
    /// `dkim/1=pass` gives `Some("1")`.
    pub method_version: Option<String>,
    /// `pass`, `fail`, … (lowercased).
    pub result: String,
    /// The `reason=` value, unquoted.
    pub reason: Option<String>,
    /// The properties in header order.
    pub properties: Vec<Property>,
}

/// One `propspec`: `ptype.property=pvalue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// `smtp`, `header`, `body`, `policy`, … (lowercased).
    pub ptype: String,
    /// `mailfrom`, `d`, `i`, … (lowercased).
    pub property: String,
    /// The value.
    pub value: PropertyValue,
}

/// A `pvalue`: a plain value or an address-like `[local-part]@domain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropertyValue {
    /// A token or a quoted string (unquoted, quoted-pairs resolved), e.g. `example.test`.
    Text(String),
    /// `local@domain` or `@domain`; a quoted local part is kept unquoted.
    Address {
        /// The part before `@`, if any.
        local_part: Option<String>,
        /// The part after `@`.
        domain: String,
    },
}

/// Where and why a header value breaks RFC 8601's grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Authentication-Results: at byte {offset}: expected {expected}")]
pub struct ParseError {
    /// Byte offset in the header value.
    pub offset: usize,
    /// What the grammar wanted there.
    pub expected: &'static str,
}

impl ResultInfo {
    /// The lowercased domain this result authenticates *if* it is a DKIM or SPF pass with an
    /// identity DMARC aligns: `header.d` (else `header.i`'s domain) for DKIM, `smtp.mailfrom`'s
    /// domain for SPF. A property given twice makes the identity ambiguous: none.
    fn aligned_identity(&self) -> Option<String> {
        if self.result != "pass" {
            return None;
        }
        let only = |ptype: &str, property: &str| -> Option<Option<&PropertyValue>> {
            let mut found = self
                .properties
                .iter()
                .filter(|p| p.ptype == ptype && p.property == property);
            let first = found.next();
            if found.next().is_some() {
                return None;
            }
            Some(first.map(|p| &p.value))
        };
        let domain = match self.method.as_str() {
            "dkim" => match only("header", "d")? {
                // `d=` is a domain, never an address.
                Some(PropertyValue::Text(d)) if !d.contains('@') => d.clone(),
                Some(_) => return None,
                None => address_domain(only("header", "i")??)?,
            },
            "spf" => match only("smtp", "mailfrom")?? {
                PropertyValue::Text(t) if !t.contains('@') => t.clone(),
                v => address_domain(v)?,
            },
            _ => return None,
        };
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let valid = !domain.is_empty()
            && !domain.starts_with('.')
            && !domain.contains("..")
            && domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        valid.then_some(domain)
    }
}

/// The domain of an address-like value: `@d`, `l@d`, or a quoted `"l@d"` (the part after the
/// last `@`, since a domain never holds one).
fn address_domain(v: &PropertyValue) -> Option<String> {
    match v {
        PropertyValue::Address { domain, .. } => Some(domain.clone()),
        PropertyValue::Text(t) => t.rsplit_once('@').map(|(_, d)| d.to_string()),
    }
}

/// The authserv-id of a header value (the first token or quoted string), without parsing
/// the rest: used to find the topmost trusted header even when it is malformed.
fn authserv_id(value: &str) -> Option<String> {
    let mut p = Parser::new(value);
    p.skip_cfws().ok()?;
    p.value().ok()
}

/// Parses one `Authentication-Results` header value (without the field name; folded or
/// unfolded) following RFC 8601 §2.2 with RFC 5322 comments and quoted strings.
///
/// Total and linear on any input, without recursion: safe to fuzz. An unterminated quoted
/// string or comment, a missing or invalid authserv-id, or text other than `;` after it is an
/// error; a result that breaks the grammar is dropped into
/// [`AuthenticationResults::malformed`] and parsing resumes at the next `;` outside quotes and
/// comments. Method, result, ptype and property are lowercased; values keep their case.
pub fn parse(value: &str) -> Result<AuthenticationResults, ParseError> {
    let mut p = Parser::new(value);
    p.skip_cfws()?;
    let authserv_id = p.value()?;
    if authserv_id.is_empty() {
        return Err(p.error("an authserv-id"));
    }
    p.skip_cfws()?;
    let version = if p.peek().is_some_and(|b| b.is_ascii_digit()) {
        let v = p.take_while(|b| b.is_ascii_digit()).to_string();
        p.skip_cfws()?;
        Some(v)
    } else {
        None
    };
    let mut out = AuthenticationResults {
        authserv_id,
        version,
        results: Vec::new(),
        malformed: Vec::new(),
    };
    if p.at_end() {
        return Err(p.error("\";\" and a result or \"none\""));
    }
    while !p.at_end() {
        if !p.eat(b';') {
            return Err(p.error("\";\""));
        }
        p.skip_cfws()?;
        if p.at_end() {
            break; // a trailing ";" is harmless
        }
        match p.resinfo() {
            Ok(Some(r)) => out.results.push(r),
            Ok(None) => {} // "none"
            Err(e) if p.fatal => return Err(e),
            Err(e) => {
                out.malformed.push(e);
                p.skip_to_semicolon()?;
            }
        }
    }
    Ok(out)
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
    /// Set by an error the parser cannot resume after (an unterminated quote or comment:
    /// where it would end is unknown, so no later `;` can be trusted as a separator).
    fatal: bool,
}

impl<'a> Parser<'a> {
    fn new(s: &'a str) -> Self {
        Parser {
            s,
            pos: 0,
            fatal: false,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn error(&self, expected: &'static str) -> ParseError {
        ParseError {
            offset: self.pos,
            expected,
        }
    }

    /// Consumes bytes while `f` holds. Stops only at ASCII bytes (every predicate used
    /// here accepts non-ASCII bytes or rejects all of them), so the slice is valid UTF-8.
    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        // Both ends are at ASCII bytes or the ends of the string.
        self.s.get(start..self.pos).unwrap_or_default()
    }

    /// RFC 5322 CFWS: white space (CR and LF too, for folded input) and comments, which
    /// nest and may hold quoted-pairs.
    fn skip_cfws(&mut self) -> Result<(), ParseError> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r' | b'\n') => self.pos += 1,
                Some(b'(') => self.skip_comment()?,
                _ => return Ok(()),
            }
        }
    }

    fn skip_comment(&mut self) -> Result<(), ParseError> {
        let start = self.pos;
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'\\' => self.pos = (self.pos + 1).min(self.s.len()),
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                _ => {}
            }
        }
        self.pos = start;
        Err(self.lexical("\")\" closing the comment"))
    }

    /// A quoted string, unquoted; the opening `"` is next.
    fn quoted_string(&mut self) -> Result<String, ParseError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'"' => return Ok(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => {
                    if let Some(q) = self.peek() {
                        out.push(q);
                        self.pos += 1;
                    }
                }
                _ => out.push(b),
            }
        }
        self.pos = start;
        Err(self.lexical("'\"' closing the quoted string"))
    }

    /// An error the parser cannot resume after, at the current position.
    fn lexical(&mut self, expected: &'static str) -> ParseError {
        self.fatal = true;
        self.error(expected)
    }

    /// RFC 2045 `value`: a token or a quoted string.
    fn value(&mut self) -> Result<String, ParseError> {
        if self.peek() == Some(b'"') {
            return self.quoted_string();
        }
        let t = self.take_while(is_token);
        if t.is_empty() {
            Err(self.error("a token or quoted string"))
        } else {
            Ok(t.to_string())
        }
    }

    /// RFC 5321 `Keyword` (letters, digits, hyphens), lowercased.
    fn keyword(&mut self, what: &'static str) -> Result<String, ParseError> {
        let k = self.take_while(|b| b.is_ascii_alphanumeric() || b == b'-');
        if k.is_empty() {
            Err(self.error(what))
        } else {
            Ok(k.to_ascii_lowercase())
        }
    }

    /// One `resinfo` after its `;` and CFWS; `None` for `none`. Stops before the next `;`.
    fn resinfo(&mut self) -> Result<Option<ResultInfo>, ParseError> {
        let method = self.keyword("a method")?;
        self.skip_cfws()?;
        if method == "none" && (self.at_end() || self.peek() == Some(b';')) {
            return Ok(None);
        }
        let method_version = if self.eat(b'/') {
            self.skip_cfws()?;
            let v = self.take_while(|b| b.is_ascii_digit());
            if v.is_empty() {
                return Err(self.error("a method version"));
            }
            let v = v.to_string();
            self.skip_cfws()?;
            Some(v)
        } else {
            None
        };
        if !self.eat(b'=') {
            return Err(self.error("\"=\" after the method"));
        }
        self.skip_cfws()?;
        let result = self.keyword("a result")?;
        let mut info = ResultInfo {
            method,
            method_version,
            result,
            reason: None,
            properties: Vec::new(),
        };
        loop {
            let before = self.pos;
            self.skip_cfws()?;
            if self.at_end() || self.peek() == Some(b';') {
                return Ok(Some(info));
            }
            if self.pos == before {
                return Err(self.error("white space or a comment before a property"));
            }
            let key = self.keyword("a property (ptype.property=value) or reason")?;
            self.skip_cfws()?;
            if key == "reason" && self.peek() == Some(b'=') {
                if info.reason.is_some() || !info.properties.is_empty() {
                    return Err(self.error("one reason, before the properties"));
                }
                self.pos += 1;
                self.skip_cfws()?;
                info.reason = Some(self.value()?);
                continue;
            }
            if !self.eat(b'.') {
                return Err(self.error("\".\" between ptype and property"));
            }
            self.skip_cfws()?;
            let property = self.keyword("a property name")?;
            self.skip_cfws()?;
            if !self.eat(b'=') {
                return Err(self.error("\"=\" after the property"));
            }
            let value = self.pvalue()?;
            info.properties.push(Property {
                ptype: key,
                property,
                value,
            });
        }
    }

    /// RFC 8601 `pvalue`: `[CFWS] ( value / [ [ local-part ] "@" ] domain-name ) [CFWS]`
    /// (the trailing CFWS is left to the caller).
    fn pvalue(&mut self) -> Result<PropertyValue, ParseError> {
        self.skip_cfws()?;
        let first = match self.peek() {
            Some(b'"') => Some(self.quoted_string()?),
            Some(b'@') => None,
            _ => {
                let t = self.take_while(is_pvalue_char);
                if t.is_empty() {
                    return Err(self.error("a property value"));
                }
                Some(t.to_string())
            }
        };
        if !self.eat(b'@') {
            return first
                .map(PropertyValue::Text)
                .ok_or_else(|| self.error("a property value"));
        }
        let domain = self.take_while(is_pvalue_char);
        if domain.is_empty() {
            return Err(self.error("a domain after \"@\""));
        }
        Ok(PropertyValue::Address {
            local_part: first,
            domain: domain.to_string(),
        })
    }

    /// After a malformed result: move to the next `;` outside quoted strings and comments.
    fn skip_to_semicolon(&mut self) -> Result<(), ParseError> {
        loop {
            match self.peek() {
                None | Some(b';') => return Ok(()),
                Some(b'"') => {
                    self.quoted_string()?;
                }
                Some(b'(') => self.skip_comment()?,
                Some(_) => self.pos += 1,
            }
        }
    }
}

/// RFC 2045 token characters (no tspecials, space or controls); non-ASCII is accepted as
/// RFC 6532 allows UTF-8 in header fields.
fn is_token(b: u8) -> bool {
    b > b' ' && b != 0x7f && !b"()<>@,;:\\\"/[]?=".contains(&b)
}

/// Characters of an unquoted pvalue: a token, a dot-atom (`=`, `/`, `?` are atext), a domain
/// literal, or a base64 `header.b`; only the structural `( ) ; " @ \` and white space end it.
fn is_pvalue_char(b: u8) -> bool {
    b > b' ' && b != 0x7f && !b"();\"@\\".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted() -> Vec<String> {
        vec!["mx.edomex.gob.mx".into()]
    }

    /// `aligned_pass` for one header from the trusted server, From domain `edomex.gob.mx`.
    fn pass(header: &str) -> Option<String> {
        aligned_pass(&[header.to_string()], &trusted(), "edomex.gob.mx")
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
        assert_eq!(
            aligned_pass(&h, &trusted(), "gob.mx"),
            None,
            "a pass for a subdomain does not cover its parent"
        );
        assert_eq!(
            pass("mx.edomex.gob.mx 1; spf=pass smtp.mailfrom=tech1@edomex.gob.mx").as_deref(),
            Some("spf=pass (edomex.gob.mx)")
        );
    }

    #[test]
    fn the_quoted_local_part_attack_is_an_spf_pass_for_the_attacker() {
        // A real trusted server's header: SPF passed for evil.test, whose MAIL FROM local part
        // is a quoted string that looks like a DKIM result.
        let h = r#"mx.edomex.gob.mx; spf=pass smtp.mailfrom="x;dkim=pass header.d=a@edomex.gob.mx "@evil.test"#;
        assert_eq!(pass(h), None);
        let parsed = parse(h).unwrap();
        assert_eq!(parsed.results.len(), 1, "{parsed:?}");
        assert_eq!(parsed.results[0].method, "spf");
        assert_eq!(
            parsed.results[0].properties[0].value,
            PropertyValue::Address {
                local_part: Some("x;dkim=pass header.d=a@edomex.gob.mx ".into()),
                domain: "evil.test".into()
            }
        );
        assert!(aligned_pass(&[h.to_string()], &trusted(), "evil.test").is_some());
    }

    #[test]
    fn comments_and_quoted_strings_hide_nothing() {
        assert_eq!(
            pass("mx.edomex.gob.mx; dkim=none (dkim=pass header.d=edomex.gob.mx)"),
            None
        );
        // Nested comments with quoted-pairs: the inner ")" does not end the outer comment.
        assert_eq!(
            pass(
                r"mx.edomex.gob.mx; dkim=fail (a (b \) ; dkim=pass header.d=edomex.gob.mx) c) header.d=edomex.gob.mx"
            ),
            None
        );
        assert_eq!(
            pass(
                r#"mx.edomex.gob.mx; dkim=pass reason="x; spf=pass smtp.mailfrom=edomex.gob.mx" header.d=evil.test"#
            ),
            None
        );
        // A quoted-pair \" does not end the quoted string.
        assert_eq!(
            pass(
                r#"mx.edomex.gob.mx; spf=pass smtp.mailfrom="a\"; dkim=pass header.d=edomex.gob.mx; b"@evil.test"#
            ),
            None
        );
    }

    #[test]
    fn a_comment_between_result_and_properties_is_fine() {
        assert!(
            pass("mx.edomex.gob.mx; dkim=pass (good signature) header.d=edomex.gob.mx").is_some()
        );
        assert!(pass("mx.edomex.gob.mx;dkim=pass(good)header.d=edomex.gob.mx(ok)").is_some());
        assert!(
            pass("mx.edomex.gob.mx; dkim = pass header . d = (the domain) edomex.gob.mx").is_some(),
            "CFWS is allowed around = and ."
        );
    }

    #[test]
    fn only_header_d_or_i_count_for_dkim() {
        for prop in [
            "header.b",
            "header.a",
            "header.s",
            "header.from",
            "policy.d",
            "smtp.mailfrom",
        ] {
            assert_eq!(
                pass(&format!("mx.edomex.gob.mx; dkim=pass {prop}=edomex.gob.mx")),
                None,
                "{prop}"
            );
        }
        assert!(pass("mx.edomex.gob.mx; dkim=pass header.i=tech1@edomex.gob.mx").is_some());
        assert!(pass(r#"mx.edomex.gob.mx; dkim=pass header.i="tech1@edomex.gob.mx""#).is_some());
        // header.d decides when present, whatever header.i says.
        assert_eq!(
            pass("mx.edomex.gob.mx; dkim=pass header.d=evil.test header.i=@edomex.gob.mx"),
            None
        );
        // d= is a domain: an address there is not one.
        assert_eq!(
            pass("mx.edomex.gob.mx; dkim=pass header.d=x@edomex.gob.mx"),
            None
        );
        // The same property twice is ambiguous.
        assert_eq!(
            pass("mx.edomex.gob.mx; dkim=pass header.d=edomex.gob.mx header.d=evil.test"),
            None
        );
    }

    #[test]
    fn only_smtp_mailfrom_counts_for_spf() {
        assert_eq!(
            pass("mx.edomex.gob.mx; spf=pass smtp.helo=edomex.gob.mx"),
            None
        );
        assert_eq!(
            pass("mx.edomex.gob.mx; spf=pass header.d=edomex.gob.mx"),
            None
        );
        assert!(pass("mx.edomex.gob.mx; spf=pass smtp.mailfrom=edomex.gob.mx").is_some());
        assert!(pass("mx.edomex.gob.mx; spf=pass smtp.mailfrom=@edomex.gob.mx").is_some());
        assert!(
            pass(r#"mx.edomex.gob.mx; spf=pass smtp.mailfrom="tech1@edomex.gob.mx""#).is_some()
        );
        assert!(pass(r#"mx.edomex.gob.mx; spf=pass smtp.mailfrom="a b"@edomex.gob.mx"#).is_some());
        assert_eq!(pass("mx.edomex.gob.mx; spf=pass smtp.mailfrom=<>"), None);
    }

    #[test]
    fn other_methods_and_results_do_not_count() {
        for h in [
            "mx.edomex.gob.mx; dmarc=pass header.from=edomex.gob.mx",
            "mx.edomex.gob.mx; arc=pass header.d=edomex.gob.mx",
            "mx.edomex.gob.mx; dkim-atps=pass header.d=edomex.gob.mx",
            "mx.edomex.gob.mx; dkim=fail header.d=edomex.gob.mx",
            "mx.edomex.gob.mx; dkim=neutral header.d=edomex.gob.mx",
            "mx.edomex.gob.mx; spf=softfail smtp.mailfrom=edomex.gob.mx",
            "mx.edomex.gob.mx; dkim=passed header.d=edomex.gob.mx",
        ] {
            assert_eq!(pass(h), None, "{h}");
        }
    }

    #[test]
    fn case_does_not_matter_for_names_and_domains() {
        assert_eq!(
            aligned_pass(
                &["MX.EDOMEX.GOB.MX; DKIM=PASS HEADER.D=EDOMEX.GOB.MX".to_string()],
                &trusted(),
                "Edomex.Gob.Mx"
            )
            .as_deref(),
            Some("dkim=pass (edomex.gob.mx)")
        );
        assert!(pass("mx.edomex.gob.mx; Spf=Pass Smtp.MailFrom=Tech1@EDOMEX.gob.mx.").is_some());
    }

    #[test]
    fn multiple_results_one_failing() {
        assert!(pass(
            "mx.edomex.gob.mx; dkim=fail header.d=edomex.gob.mx; dkim=pass header.d=edomex.gob.mx; spf=none"
        )
        .is_some());
        assert_eq!(
            pass(
                "mx.edomex.gob.mx; dkim=fail header.d=edomex.gob.mx; dkim=pass header.d=evil.test"
            ),
            None
        );
        let p = parse("mx.edomex.gob.mx; dkim=pass header.d=a.test; dkim=fail header.d=b.test; spf=pass smtp.mailfrom=c.test").unwrap();
        let methods: Vec<_> = p
            .results
            .iter()
            .map(|r| format!("{}={}", r.method, r.result))
            .collect();
        assert_eq!(methods, ["dkim=pass", "dkim=fail", "spf=pass"]);
    }

    #[test]
    fn folded_and_unfolded_whitespace() {
        let folded = "mx.edomex.gob.mx;\r\n\tdkim=pass\r\n header.d=edomex.gob.mx;\r\n\tspf=none";
        assert!(pass(folded).is_some());
        assert!(pass("  mx.edomex.gob.mx  ;  dkim=pass   header.d=edomex.gob.mx  ;  ").is_some());
    }

    #[test]
    fn versions_of_the_header_and_the_method() {
        let p = parse("mx.edomex.gob.mx 1; dkim/1=pass header.d=edomex.gob.mx").unwrap();
        assert_eq!(p.version.as_deref(), Some("1"));
        assert_eq!(p.results[0].method_version.as_deref(), Some("1"));
        assert!(pass("mx.edomex.gob.mx 1 (v1); dkim / 1 = pass header.d=edomex.gob.mx").is_some());
        assert!(parse("mx.edomex.gob.mx 1 2; none").is_err());
    }

    #[test]
    fn reason_is_read_and_kept_apart_from_properties() {
        let p = parse(
            r#"mx.edomex.gob.mx; dkim=fail reason="bad signature; header.d=x" header.d=edomex.gob.mx"#,
        )
        .unwrap();
        let r = &p.results[0];
        assert_eq!(r.reason.as_deref(), Some("bad signature; header.d=x"));
        assert_eq!(r.properties.len(), 1);
        assert!(pass("mx.edomex.gob.mx; dkim=pass reason=ok header.d=edomex.gob.mx").is_some());
    }

    #[test]
    fn none_and_empty_results() {
        let p = parse("mx.edomex.gob.mx; none").unwrap();
        assert!(p.results.is_empty() && p.malformed.is_empty());
        assert_eq!(pass("mx.edomex.gob.mx; none"), None);
        assert!(parse("mx.edomex.gob.mx").is_err(), "no result at all");
    }

    #[test]
    fn a_quoted_authserv_id_is_unquoted() {
        let p = parse(r#""mx.edomex.gob.mx" ; dkim=pass header.d=edomex.gob.mx"#).unwrap();
        assert_eq!(p.authserv_id, "mx.edomex.gob.mx");
        assert!(pass(r#""mx.edomex.gob.mx"; dkim=pass header.d=edomex.gob.mx"#).is_some());
    }

    #[test]
    fn the_authserv_id_must_match_exactly() {
        for h in [
            "mx.evil.test; dkim=pass header.d=edomex.gob.mx",
            "mx.edomex.gob.mx.evil.test; dkim=pass header.d=edomex.gob.mx",
            "evil-mx.edomex.gob.mx; dkim=pass header.d=edomex.gob.mx",
            "dkim=pass header.d=edomex.gob.mx",
            "(mx.edomex.gob.mx) mx.evil.test; dkim=pass header.d=edomex.gob.mx",
        ] {
            assert_eq!(pass(h), None, "{h}");
        }
    }

    #[test]
    fn only_the_topmost_trusted_header_counts() {
        let forged_below = vec![
            "mx.edomex.gob.mx; dkim=none".to_string(),
            "mx.edomex.gob.mx; dkim=pass header.d=edomex.gob.mx".to_string(),
        ];
        assert_eq!(
            aligned_pass(&forged_below, &trusted(), "edomex.gob.mx"),
            None
        );
        // Another server's header above the trusted one is skipped.
        let other_above = vec![
            "relay.edomex.gob.mx; dkim=pass header.d=evil.test".to_string(),
            "mx.edomex.gob.mx; dkim=pass header.d=edomex.gob.mx".to_string(),
        ];
        assert!(aligned_pass(&other_above, &trusted(), "edomex.gob.mx").is_some());
        // A malformed topmost trusted header proves nothing, and the one below stays unread.
        let malformed_on_top = vec![
            "mx.edomex.gob.mx; dkim=pass header.d=\"edomex.gob.mx".to_string(),
            "mx.edomex.gob.mx; dkim=pass header.d=edomex.gob.mx".to_string(),
        ];
        assert_eq!(
            aligned_pass(&malformed_on_top, &trusted(), "edomex.gob.mx"),
            None
        );
        assert_eq!(aligned_pass(&[], &trusted(), "edomex.gob.mx"), None);
        assert_eq!(
            aligned_pass(
                &["mx.edomex.gob.mx; dkim=pass header.d=edomex.gob.mx".to_string()],
                &[],
                "edomex.gob.mx"
            ),
            None,
            "no trusted server configured"
        );
    }

    #[test]
    fn unaligned_domains_do_not_count() {
        for d in [
            "evil.test",
            "xedomex.gob.mx",
            "edomex.gob.mx.evil.test",
            "gob.mx.evil.test",
        ] {
            assert_eq!(
                pass(&format!("mx.edomex.gob.mx; dkim=pass header.d={d}")),
                None,
                "{d}"
            );
        }
        assert_eq!(
            aligned_pass(
                &["mx.edomex.gob.mx; dkim=pass header.d=edomex.gob.mx".into()],
                &trusted(),
                ""
            ),
            None
        );
    }

    #[test]
    fn a_malformed_result_is_dropped_and_the_next_one_read() {
        let p = parse(
            r#"mx.edomex.gob.mx; dmarc=pass action=none header.from=edomex.gob.mx; x=y "q;r" z; dkim=pass header.d=edomex.gob.mx"#,
        )
        .unwrap();
        assert_eq!(p.malformed.len(), 2, "{p:?}");
        assert_eq!(p.results.len(), 1);
        assert_eq!(p.results[0].method, "dkim");
        // The dropped part's own text never counts, however it looks.
        assert_eq!(
            pass("mx.edomex.gob.mx; dkim=pass header.d=edomex.gob.mx trailing"),
            None
        );
        assert_eq!(
            pass("mx.edomex.gob.mx; dkim=pass header.d=a@b@edomex.gob.mx"),
            None
        );
    }

    #[test]
    fn garbage_is_an_error_or_proves_nothing() {
        for h in [
            "",
            "   ",
            ";",
            ";;;",
            "(",
            "(mx.edomex.gob.mx",
            "\"",
            "mx.edomex.gob.mx dkim=pass header.d=edomex.gob.mx",
            "mx.edomex.gob.mx; dkim=pass header.d=\"edomex.gob.mx",
            "mx.edomex.gob.mx; dkim=pass (header.d=edomex.gob.mx",
            "mx.edomex.gob.mx; dkim=pass header.d=edomex.gob.mx)",
            "mx.edomex.gob.mx; =pass header.d=edomex.gob.mx",
            "mx.edomex.gob.mx; dkim header.d=edomex.gob.mx",
            "mx.edomex.gob.mx; dkim= header.d=edomex.gob.mx",
            "mx.edomex.gob.mx; dkim=pass header.d=",
            "mx.edomex.gob.mx; dkim=pass header.d=@",
            "mx.edomex.gob.mx; dkim=pass header=edomex.gob.mx",
            "mx.edomex.gob.mx; dkim=pass header.d=edomex.gob.mx\u{0}",
            "mx.edomex.gob.mx; dkim=pass header.d=edomex\u{0}.gob.mx",
            "mx.edomex.gob.mx; dkim=pass header.d=ed\u{f3}mex.gob.mx",
            "mx.edomex.gob.mx; dkim=pass header.d=.edomex.gob.mx",
            "\u{feff}mx.edomex.gob.mx; dkim=pass header.d=edomex.gob.mx",
        ] {
            assert_eq!(pass(h), None, "{h:?}");
        }
        // Non-ASCII, deep nesting and stray backslashes are handled without panicking.
        for h in [
            "mx.é; dkim=pass header.d=é.test (ñ \\",
            &format!("mx.x; dkim=pass {}", "(".repeat(10_000)),
            &format!(
                "mx.x; dkim=pass {}{}",
                "(".repeat(10_000),
                ")".repeat(10_000)
            ),
            "mx.x; spf=pass smtp.mailfrom=\"\\",
            "\\",
        ] {
            let _ = parse(h);
        }
    }

    #[test]
    fn every_prefix_and_deletion_parses_without_panicking() {
        for h in [
            r#"mx.edomex.gob.mx 1; spf=pass smtp.mailfrom="x;dkim=pass header.d=a@edomex.gob.mx "@evil.test"#,
            r#"mx.é 1 (c (n) \) ; dkim/1=pass reason="r\"" header.d=é.mx header.i=@x; none"#,
        ] {
            let cuts = h.char_indices().map(|(i, _)| i).chain([h.len()]);
            for i in cuts {
                let _ = parse(&h[..i]);
                let deleted: String = h[..i].chars().chain(h[i..].chars().skip(1)).collect();
                let _ = parse(&deleted);
            }
        }
    }

    #[test]
    fn parse_reads_the_grammar() {
        let p = parse(
            r#"mx.edomex.gob.mx 1; dkim=pass (2048-bit) reason="good" header.d=edomex.gob.mx header.s=sel header.b="AbC+/9=="; spf=pass smtp.mailfrom=tech1@edomex.gob.mx smtp.helo=mail.edomex.gob.mx"#,
        )
        .unwrap();
        assert_eq!(
            p,
            AuthenticationResults {
                authserv_id: "mx.edomex.gob.mx".into(),
                version: Some("1".into()),
                results: vec![
                    ResultInfo {
                        method: "dkim".into(),
                        method_version: None,
                        result: "pass".into(),
                        reason: Some("good".into()),
                        properties: vec![
                            Property {
                                ptype: "header".into(),
                                property: "d".into(),
                                value: PropertyValue::Text("edomex.gob.mx".into()),
                            },
                            Property {
                                ptype: "header".into(),
                                property: "s".into(),
                                value: PropertyValue::Text("sel".into()),
                            },
                            Property {
                                ptype: "header".into(),
                                property: "b".into(),
                                value: PropertyValue::Text("AbC+/9==".into()),
                            },
                        ],
                    },
                    ResultInfo {
                        method: "spf".into(),
                        method_version: None,
                        result: "pass".into(),
                        reason: None,
                        properties: vec![
                            Property {
                                ptype: "smtp".into(),
                                property: "mailfrom".into(),
                                value: PropertyValue::Address {
                                    local_part: Some("tech1".into()),
                                    domain: "edomex.gob.mx".into(),
                                },
                            },
                            Property {
                                ptype: "smtp".into(),
                                property: "helo".into(),
                                value: PropertyValue::Text("mail.edomex.gob.mx".into()),
                            },
                        ],
                    },
                ],
                malformed: vec![],
            }
        );
    }

    #[test]
    fn errors_say_where() {
        let e = parse("mx.edomex.gob.mx dkim=pass").unwrap_err();
        assert_eq!(e.offset, 17);
        assert!(e.to_string().contains("at byte 17"), "{e}");
        let e = parse("mx.x; dkim=pass header.d=\"abc").unwrap_err();
        assert_eq!(e.offset, 25, "an unterminated quote points at its start");
    }
}
