//! Header fields in the one form folio stores and compares: addresses lower case with their
//! display names, Message-IDs without `<>`, and the trace headers the delivering server added.

use mail_parser::{Address, HeaderValue, Message, MessagePart};

/// Where address and subject headers are read: the block [`super::charset::redecode_headers`]
/// made where it made one (it holds only the headers mail-parser misread), else the message.
pub(super) struct HeaderSource<'m> {
    pub(super) redecoded: Option<&'m Message<'m>>,
    pub(super) original: &'m Message<'m>,
}

impl<'m> HeaderSource<'m> {
    /// The header `field` reads, from the re-decoded block first.
    pub(super) fn get<T: ?Sized>(
        &self,
        field: impl Fn(&'m Message<'m>) -> Option<&'m T>,
    ) -> Option<&'m T> {
        self.redecoded
            .and_then(&field)
            .or_else(|| field(self.original))
    }
}

/// The first usable address (one with an `@`) in `a`: lower case, with its display name.
pub(super) fn first_address(a: Option<&Address>) -> Option<(String, Option<String>)> {
    a.and_then(|a| {
        a.iter()
            .find(|x| x.address.as_deref().is_some_and(|s| s.contains('@')))
    })
    .map(|x| {
        (
            x.address
                .as_deref()
                .unwrap_or_default()
                .trim()
                .to_lowercase(),
            x.name
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_string),
        )
    })
}

/// The sender's address and name: From, else Sender.
pub(super) fn sender(
    from: Option<&Address>,
    sender: Option<&Address>,
) -> (Option<String>, Option<String>) {
    match first_address(from).or_else(|| first_address(sender)) {
        Some((email, name)) => (Some(email), name),
        None => (None, None),
    }
}

/// Every address in `a`, lower case.
pub(super) fn address_list(a: Option<&Address>) -> Vec<String> {
    a.map(|a| {
        a.iter()
            .filter_map(|x| x.address.as_deref())
            .map(|s| s.trim().to_lowercase())
            .collect()
    })
    .unwrap_or_default()
}

/// Text with the link decorations mail clients add to a typed address removed: Outlook's plain
/// text `juan@x.mx<mailto:juan@x.mx>` and html2text's `[juan@x.mx]` both become `juan@x.mx`.
pub fn without_mailto(text: &str) -> String {
    static MAILTO: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?i)\s*<mailto:[^>\s]*>?|\[(\S+@\S+?)\]")
            .unwrap_or_else(|e| unreachable!("static regex: {e}"))
    });
    MAILTO
        .replace_all(text, |c: &regex::Captures| {
            c.get(1).map_or(String::new(), |m| m.as_str().to_string())
        })
        .trim()
        .to_string()
}

/// Message-IDs without `<>` and whitespace, the one form folio stores and compares.
pub fn clean_id(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_string()
}

/// The message's own Message-ID, cleaned; `None` when missing or empty.
pub(super) fn message_id(msg: &Message) -> Option<String> {
    msg.message_id().map(clean_id).filter(|s| !s.is_empty())
}

/// The Message-IDs of an `In-Reply-To` or `References` value, cleaned.
pub(super) fn ids(v: &HeaderValue) -> Vec<String> {
    let items: Vec<String> = match v {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
        _ => vec![],
    };
    items
        .iter()
        .flat_map(|s| s.split_whitespace())
        .map(clean_id)
        .filter(|s| !s.is_empty())
        .collect()
}

/// The raw value of a part's header `name` (first of that name), as it stands in `raw`.
pub(super) fn raw_header<'r>(part: &MessagePart, raw: &'r [u8], name: &str) -> Option<&'r [u8]> {
    part.headers()
        .iter()
        .find(|h| h.name().eq_ignore_ascii_case(name))
        .and_then(|h| raw.get(h.offset_start as usize..h.offset_end as usize))
}

/// What the delivering servers recorded in the message's trace headers.
pub(super) struct Trace {
    /// `Delivered-To`, `X-Original-To`, `Envelope-To`, lower case.
    pub(super) envelope_to: Vec<String>,
    /// Every `Authentication-Results` header, unfolded, top first.
    pub(super) authentication_results: Vec<String>,
}

impl Trace {
    pub(super) fn read(msg: &Message) -> Trace {
        let unfold = |v: &str| v.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut trace = Trace {
            envelope_to: Vec::new(),
            authentication_results: Vec::new(),
        };
        for (name, value) in msg.headers_raw() {
            if name.eq_ignore_ascii_case("Authentication-Results") {
                trace.authentication_results.push(unfold(value));
            } else if ["Delivered-To", "X-Original-To", "Envelope-To"]
                .iter()
                .any(|n| name.eq_ignore_ascii_case(n))
            {
                trace
                    .envelope_to
                    .push(clean_id(&unfold(value)).to_lowercase());
            }
        }
        trace
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_decorations_of_addresses_are_removed() {
        assert_eq!(without_mailto("a@x.mx<mailto:a@x.mx>"), "a@x.mx");
        assert_eq!(without_mailto("a@x.mx <mailto:a@x.mx"), "a@x.mx");
        assert_eq!(without_mailto("[a@x.mx]"), "a@x.mx");
        assert_eq!(without_mailto("tech2"), "tech2");
        assert_eq!(without_mailto("[nota] texto"), "[nota] texto");
    }

    #[test]
    fn trace_headers_are_collected_unfolded_and_cleaned() {
        let raw = b"Delivered-To: <Soporte+T5@X.test>\r\nAuthentication-Results: mx.x.test;\r\n\tspf=pass\r\n\
X-Original-To: b@x.test\r\nAuthentication-Results: relay.x.test; dkim=none\r\nFrom: a@x.test\r\n\r\nx\r\n";
        let m = super::super::parse(raw, 0);
        assert_eq!(m.envelope_to, ["soporte+t5@x.test", "b@x.test"]);
        assert_eq!(
            m.authentication_results,
            ["mx.x.test; spf=pass", "relay.x.test; dkim=none"]
        );
    }
}
