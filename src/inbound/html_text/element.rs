//! The elements the rebuilt tree keeps, and what HTML's parsing rules say about each.

/// The elements kept. Everything else loses its tags (its text stays) or, for [`Skip`] elements,
/// its content too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum El {
    A,
    P,
    Div,
    Span,
    Ul,
    Ol,
    Li,
    Dl,
    Dt,
    Dd,
    Blockquote,
    Pre,
    H(u8),
    Table,
    Tbody,
    Thead,
    Tr,
    Td,
    Th,
    Sup,
    Sub,
    Del,
    Ins,
    // void elements
    Br,
    Hr,
    Img,
    Wbr,
}

impl El {
    pub(super) fn from_name(name: &str) -> Option<El> {
        Some(match name {
            "a" => El::A,
            "p" => El::P,
            "div" => El::Div,
            "span" => El::Span,
            "ul" => El::Ul,
            "ol" => El::Ol,
            "li" => El::Li,
            "dl" => El::Dl,
            "dt" => El::Dt,
            "dd" => El::Dd,
            "blockquote" => El::Blockquote,
            "pre" | "listing" => El::Pre,
            "h1" => El::H(1),
            "h2" => El::H(2),
            "h3" => El::H(3),
            "h4" => El::H(4),
            "h5" => El::H(5),
            "h6" => El::H(6),
            "table" => El::Table,
            "tbody" => El::Tbody,
            "thead" => El::Thead,
            "tr" => El::Tr,
            "td" => El::Td,
            "th" => El::Th,
            "sup" => El::Sup,
            "sub" => El::Sub,
            "del" => El::Del,
            "ins" => El::Ins,
            "br" => El::Br,
            "hr" => El::Hr,
            "img" | "image" => El::Img,
            "wbr" => El::Wbr,
            _ => return None,
        })
    }

    pub(super) fn tag(self) -> &'static str {
        match self {
            El::A => "a",
            El::P => "p",
            El::Div => "div",
            El::Span => "span",
            El::Ul => "ul",
            El::Ol => "ol",
            El::Li => "li",
            El::Dl => "dl",
            El::Dt => "dt",
            El::Dd => "dd",
            El::Blockquote => "blockquote",
            El::Pre => "pre",
            El::H(1) => "h1",
            El::H(2) => "h2",
            El::H(3) => "h3",
            El::H(4) => "h4",
            El::H(5) => "h5",
            El::H(_) => "h6",
            El::Table => "table",
            El::Tbody => "tbody",
            El::Thead => "thead",
            El::Tr => "tr",
            El::Td => "td",
            El::Th => "th",
            El::Sup => "sup",
            El::Sub => "sub",
            El::Del => "del",
            El::Ins => "ins",
            El::Br => "br",
            El::Hr => "hr",
            El::Img => "img",
            El::Wbr => "wbr",
        }
    }

    pub(super) fn is_void(self) -> bool {
        matches!(self, El::Br | El::Hr | El::Img | El::Wbr)
    }

    /// Start tags that end an open paragraph (HTML's "close a p element").
    pub(super) fn closes_p(self) -> bool {
        matches!(
            self,
            El::P
                | El::Div
                | El::Ul
                | El::Ol
                | El::Li
                | El::Dl
                | El::Dt
                | El::Dd
                | El::Blockquote
                | El::Pre
                | El::H(_)
                | El::Table
                | El::Hr
        )
    }

    pub(super) fn is_cell(self) -> bool {
        matches!(self, El::Td | El::Th)
    }

    pub(super) fn is_table_part(self) -> bool {
        matches!(self, El::Table | El::Tbody | El::Thead | El::Tr)
    }

    /// Inline elements, which an `<li>`/`<dd>` start or an end tag of another element may close.
    pub(super) fn is_phrasing(self) -> bool {
        matches!(
            self,
            El::A | El::Span | El::Sup | El::Sub | El::Del | El::Ins
        )
    }

    /// The attributes html2text reads on this element.
    pub(super) fn keeps(self, attr: &str) -> bool {
        match self {
            El::A => attr == "href",
            El::Img => attr == "alt" || attr == "src",
            El::Ol => attr == "start",
            El::Td | El::Th => attr == "colspan" || attr == "rowspan",
            _ => false,
        }
    }

    pub(super) fn index(self) -> usize {
        match self {
            El::A => 0,
            El::P => 1,
            El::Div => 2,
            El::Span => 3,
            El::Ul => 4,
            El::Ol => 5,
            El::Li => 6,
            El::Dl => 7,
            El::Dt => 8,
            El::Dd => 9,
            El::Blockquote => 10,
            El::Pre => 11,
            El::H(n) => 11 + n.clamp(1, 6) as usize,
            El::Table => 18,
            El::Tbody => 19,
            El::Thead => 20,
            El::Tr => 21,
            El::Td => 22,
            El::Th => 23,
            El::Sup => 24,
            El::Sub => 25,
            El::Del => 26,
            El::Ins => 27,
            El::Br | El::Hr | El::Img | El::Wbr => 28,
        }
    }
}

pub(super) const EL_COUNT: usize = 29;

/// Every attribute name [`El::keeps`] may keep.
pub(super) const KEPT_ATTRS: &[&str] = &["href", "alt", "src", "start", "colspan", "rowspan"];
