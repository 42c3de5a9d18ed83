//! HTML → readable plain text in time linear in the input, for every input.
//!
//! html2text renders mail HTML well (lists, quotes, tables, entities), but what it builds on is
//! not linear: html5ever's tree builder walks the stack of open elements for most tags (scope
//! checks), checks every new attribute of a tag against all earlier ones, foster-parents content
//! misplaced in a table by searching its parent's children, and reopens formatting elements after
//! every block; html2text then indents every line once per nesting level and lays out nested
//! tables by rendering their cells repeatedly. 160 KB of nested `<ul><li>` took 5 s.
//!
//! So the HTML first goes through [`simplify`]: one forward scan with constant work per input
//! byte (every loop over the open elements is bounded by [`MAX_DEPTH`]) that rebuilds the
//! document as a **well-formed** tree of only the elements html2text renders differently from
//! plain text, each explicitly closed in order, at most [`MAX_DEPTH`] deep and at most
//! [`MAX_TABLE_DEPTH`] tables deep, with only the attributes html2text reads. It applies the
//! HTML parsing rules itself for what matters to the shape of the text (an unclosed `<p>` or
//! `<li>` ends at the next one, a block ends a paragraph, table content goes into a cell), so
//! html5ever, given a well-formed tree, has nothing left to repair: its stack is exactly the one
//! built here. Deeper elements are flattened into their ancestor at the limit (their text is
//! kept); formatting elements (`<b>`, `<font>`, …) are dropped because html2text's plain output
//! ignores them and they are what html5ever reconstructs; comments, scripts, styles and the
//! document title are removed.

/// Deepest element nesting passed to html2text. Real mail nests far less (an Outlook or Apple
/// Mail thread of 15 replies nests about 45 elements); deeper content is kept, one level up.
pub const MAX_DEPTH: usize = 64;
/// Deepest table nesting passed to html2text (it lays out a nested table once per pass of its
/// parent's column sizing, so cost multiplies per level). Layout mail nests 4–6 tables; deeper
/// tables are rendered as their text.
pub const MAX_TABLE_DEPTH: usize = 8;

/// HTML → readable plain text: links and emphasis without markup, `<blockquote>` as `> ` lines,
/// lists with `* `, tables without borders. Paragraphs are not wrapped (the text is stored and
/// quoted back; the reader's client wraps it).
pub fn to_text(html: &str) -> String {
    let simple = simplify(html);
    render(&simple.html)
}

/// html2text over HTML that [`simplify`] already made safe.
fn render(html: &str) -> String {
    html2text::config::plain_no_decorate()
        .no_table_borders()
        .string_from_read(html.as_bytes(), 10_000)
        .unwrap_or_else(|_| html.to_string())
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The outcome of [`simplify`], with the figures tests check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Simplified {
    /// Well-formed HTML of the kept elements.
    pub html: String,
    /// The deepest element nesting in `html` (never above [`MAX_DEPTH`]).
    pub max_depth: usize,
    /// Start tags flattened because of a depth limit.
    pub flattened: usize,
    /// Steps taken over the stack of open elements (each bounded by [`MAX_DEPTH`]): the work
    /// besides the scan itself, so tests can check it grows linearly.
    pub stack_steps: usize,
}

/// The elements kept. Everything else loses its tags (its text stays) or, for [`Skip`] elements,
/// its content too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum El {
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
    fn from_name(name: &str) -> Option<El> {
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

    fn tag(self) -> &'static str {
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

    fn is_void(self) -> bool {
        matches!(self, El::Br | El::Hr | El::Img | El::Wbr)
    }

    /// Start tags that end an open paragraph (HTML's "close a p element").
    fn closes_p(self) -> bool {
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

    fn is_cell(self) -> bool {
        matches!(self, El::Td | El::Th)
    }

    fn is_table_part(self) -> bool {
        matches!(self, El::Table | El::Tbody | El::Thead | El::Tr)
    }

    /// Inline elements, which an `<li>`/`<dd>` start or an end tag of another element may close.
    fn is_phrasing(self) -> bool {
        matches!(
            self,
            El::A | El::Span | El::Sup | El::Sub | El::Del | El::Ins
        )
    }

    /// The attributes html2text reads on this element.
    fn keeps(self, attr: &str) -> bool {
        match self {
            El::A => attr == "href",
            El::Img => attr == "alt" || attr == "src",
            El::Ol => attr == "start",
            El::Td | El::Th => attr == "colspan" || attr == "rowspan",
            _ => false,
        }
    }

    fn index(self) -> usize {
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

const EL_COUNT: usize = 29;

/// Elements removed with everything inside them: never readable text.
/// (Like html5ever, an unclosed one runs to the end of the input.)
const SKIP: &[&str] = &["script", "style", "title", "iframe", "noembed", "noframes"];

/// Elements whose content the tokenizer reads as plain text up to their end tag.
const RAW_TEXT: &[&str] = &["textarea", "xmp"];

struct Builder {
    out: String,
    stack: Vec<El>,
    table_depth: usize,
    /// Per element kind: start tags flattened and not yet matched by an end tag.
    overflow: [usize; EL_COUNT],
    max_depth: usize,
    flattened: usize,
    steps: usize,
}

impl Builder {
    fn push(&mut self, el: El, attrs: &[(&str, &str)]) {
        self.out.push('<');
        self.out.push_str(el.tag());
        for (name, value) in attrs {
            self.out.push(' ');
            self.out.push_str(name);
            self.out.push_str("=\"");
            for c in value.chars() {
                match c {
                    '"' => self.out.push_str("&quot;"),
                    '\0' => {}
                    c => self.out.push(c),
                }
            }
            self.out.push('"');
        }
        self.out.push('>');
        if !el.is_void() {
            self.stack.push(el);
            if el == El::Table {
                self.table_depth += 1;
            }
            self.max_depth = self.max_depth.max(self.stack.len());
        }
    }

    fn pop(&mut self) {
        if let Some(el) = self.stack.pop() {
            self.steps += 1;
            if el == El::Table {
                self.table_depth -= 1;
            }
            self.out.push_str("</");
            self.out.push_str(el.tag());
            self.out.push('>');
        }
    }

    /// Closes everything down to and including the element at `index`.
    fn pop_to(&mut self, index: usize) {
        while self.stack.len() > index {
            self.pop();
        }
    }

    /// The index of the innermost open element satisfying `hit`, searching from the top and
    /// giving up at the first element satisfying `stop`.
    fn find(&mut self, hit: impl Fn(El) -> bool, stop: impl Fn(El) -> bool) -> Option<usize> {
        for i in (0..self.stack.len()).rev() {
            self.steps += 1;
            let el = self.stack[i];
            if hit(el) {
                return Some(i);
            }
            if stop(el) {
                return None;
            }
        }
        None
    }

    /// Content is about to go where the top of the stack is: a table outside any cell gets the
    /// row and cell HTML would otherwise create elsewhere (foster parenting).
    fn ensure_cell(&mut self) {
        match self.stack.last() {
            Some(El::Table) => {
                self.push(El::Tbody, &[]);
                self.push(El::Tr, &[]);
                self.push(El::Td, &[]);
            }
            Some(El::Tbody | El::Thead) => {
                self.push(El::Tr, &[]);
                self.push(El::Td, &[]);
            }
            Some(El::Tr) => self.push(El::Td, &[]),
            _ => {}
        }
    }

    fn text(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        let in_table = self.stack.last().is_some_and(|e| e.is_table_part());
        if in_table {
            if text.chars().all(|c| c.is_ascii_whitespace()) {
                return;
            }
            self.ensure_cell();
        }
        for c in text.chars() {
            match c {
                '<' => self.out.push_str("&lt;"),
                '\0' => {}
                c => self.out.push(c),
            }
        }
    }

    /// Text taken literally (raw-text elements): `&` is not a character reference there.
    fn literal_text(&mut self, text: &str) {
        let escaped = text.replace('&', "&amp;");
        self.text(&escaped);
    }

    fn start(&mut self, el: El, attrs: &[(&str, &str)]) {
        // What the start tag implicitly ends, as HTML's tree construction does.
        let table_stop = |e: El| e == El::Table;
        if el.closes_p() {
            if let Some(i) = self.find(|e| e == El::P, |e| e.is_cell() || e == El::Table) {
                self.pop_to(i);
            }
        }
        match el {
            El::Li => {
                if let Some(i) = self.find(
                    |e| e == El::Li,
                    |e| !(e.is_phrasing() || matches!(e, El::Div | El::P)),
                ) {
                    self.pop_to(i);
                }
            }
            El::Dt | El::Dd => {
                if let Some(i) = self.find(
                    |e| matches!(e, El::Dt | El::Dd),
                    |e| !(e.is_phrasing() || matches!(e, El::Div | El::P)),
                ) {
                    self.pop_to(i);
                }
            }
            El::H(_) => {
                if matches!(self.stack.last(), Some(El::H(_))) {
                    self.pop();
                }
            }
            El::A => {
                if let Some(i) = self.find(|e| e == El::A, table_stop) {
                    self.pop_to(i);
                }
            }
            El::Td | El::Th => {
                if let Some(i) = self.find(|e| e.is_cell(), table_stop) {
                    self.pop_to(i);
                }
            }
            El::Tr => {
                if let Some(i) = self.find(|e| e == El::Tr, table_stop) {
                    self.pop_to(i);
                }
            }
            El::Tbody | El::Thead => {
                if let Some(i) = self.find(|e| matches!(e, El::Tbody | El::Thead), table_stop) {
                    self.pop_to(i);
                }
            }
            _ => {}
        }
        // Where the element may go: table parts only in a table (else they are just text),
        // anything else not directly in a table.
        let top = self.stack.last().copied();
        let in_table = self.table_depth > 0;
        if (el.is_cell() || el.is_table_part()) && self.overflow[El::Table.index()] > 0 {
            // Inside a table flattened for depth: its rows and cells are its text.
            return self.flatten(el);
        }
        match el {
            El::Tbody | El::Thead | El::Tr | El::Td | El::Th if !in_table => {
                return self.flatten(el);
            }
            El::Tbody | El::Thead if top != Some(El::Table) => return self.flatten(el),
            El::Tr => match top {
                Some(El::Table) => self.push(El::Tbody, &[]),
                Some(El::Tbody | El::Thead) => {}
                _ => return self.flatten(el),
            },
            El::Td | El::Th => match top {
                Some(El::Table) => {
                    self.push(El::Tbody, &[]);
                    self.push(El::Tr, &[]);
                }
                Some(El::Tbody | El::Thead) => self.push(El::Tr, &[]),
                Some(El::Tr) => {}
                _ => return self.flatten(el),
            },
            _ if top.is_some_and(|t| t.is_table_part()) => self.ensure_cell(),
            _ => {}
        }
        // Room for the element and the wrappers a table inside it needs.
        let need = if el == El::Table { 4 } else { 1 };
        if !el.is_void()
            && (self.stack.len() + need > MAX_DEPTH
                || el == El::Table && self.table_depth >= MAX_TABLE_DEPTH)
        {
            return self.flatten(el);
        }
        let kept: Vec<(&str, &str)> = attrs.iter().filter(|(n, _)| el.keeps(n)).copied().collect();
        self.push(el, &kept);
    }

    /// A start tag that does not fit: its content joins the parent. A block still breaks the
    /// line so words of neighbouring blocks do not run together.
    fn flatten(&mut self, el: El) {
        if el.is_void() {
            return;
        }
        self.flattened += 1;
        self.overflow[el.index()] += 1;
        if el.is_cell() {
            self.text(" ");
        } else if el.closes_p() || el.is_table_part() {
            self.ensure_cell();
            self.out.push_str("<br>");
        }
    }

    fn end(&mut self, el: El) {
        if el == El::Br {
            // `</br>` is a line break in every browser.
            return self.start(El::Br, &[]);
        }
        if el.is_void() {
            return;
        }
        if self.overflow[el.index()] > 0 {
            self.overflow[el.index()] -= 1;
            if el.closes_p() || el.is_table_part() {
                self.ensure_cell();
                self.out.push_str("<br>");
            }
            return;
        }
        let found = match el {
            El::Table => self.find(|e| e == El::Table, |_| false),
            El::Tbody | El::Thead | El::Tr | El::Td | El::Th => {
                self.find(|e| e == el, |e| e == El::Table)
            }
            El::Li => self.find(
                |e| e == El::Li,
                |e| matches!(e, El::Ul | El::Ol | El::Table) || e.is_cell(),
            ),
            El::A => self.find(|e| e == El::A, |e| e.is_cell() || e == El::Table),
            El::H(_) => self.find(|e| matches!(e, El::H(_)), |e| e.is_cell() || e == El::Table),
            _ if el.is_phrasing() => self.find(
                |e| e == el,
                |e| !e.is_phrasing() || e.is_cell() || e == El::Table,
            ),
            _ => self.find(|e| e == el, |e| e.is_cell() || e == El::Table),
        };
        if let Some(i) = found {
            self.pop_to(i);
        }
    }
}

/// Every attribute name [`El::keeps`] may keep.
const KEPT_ATTRS: &[&str] = &["href", "alt", "src", "start", "colspan", "rowspan"];

/// The tag lexer's view of one tag.
struct Tag<'a> {
    end: bool,
    name: String,
    attrs: Vec<(&'a str, &'a str)>,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
}

/// Lexes the tag starting at `html[pos] == '<'`. Returns the tag (or `None` for a comment,
/// doctype or processing instruction, which are dropped) and the position after it, or `None`
/// when this `<` starts no tag and is text.
#[allow(clippy::type_complexity)]
fn lex_tag(html: &str, pos: usize) -> Option<(Option<Tag<'_>>, usize)> {
    let b = html.as_bytes();
    let at = |i: usize| b.get(i).copied();
    let mut i = pos + 1;
    match at(i) {
        Some(b'!') => {
            if html[i + 1..].starts_with("--") {
                // Comment: `<!-->`, `<!--->` are empty ones; else up to `-->` or `--!>`.
                let body = i + 3;
                if html[body..].starts_with('>') {
                    return Some((None, body + 1));
                }
                if html[body..].starts_with("->") {
                    return Some((None, body + 2));
                }
                let mut j = body;
                while let Some(k) = html[j..].find("--") {
                    let k = j + k + 2;
                    if html[k..].starts_with('>') {
                        return Some((None, k + 1));
                    }
                    if html[k..].starts_with("!>") {
                        return Some((None, k + 2));
                    }
                    j = k - 1;
                }
                return Some((None, b.len()));
            }
            let end = html[i..].find('>').map_or(b.len(), |k| i + k + 1);
            return Some((None, end));
        }
        Some(b'?') => {
            let end = html[i..].find('>').map_or(b.len(), |k| i + k + 1);
            return Some((None, end));
        }
        _ => {}
    }
    let end = at(i) == Some(b'/');
    if end {
        i += 1;
        match at(i) {
            Some(c) if c.is_ascii_alphabetic() => {}
            Some(b'>') => return Some((None, i + 1)),
            None => return None,
            _ => {
                let e = html[i..].find('>').map_or(b.len(), |k| i + k + 1);
                return Some((None, e));
            }
        }
    } else if !at(i).is_some_and(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    let name_start = i;
    while let Some(c) = at(i) {
        if is_space(c) || c == b'/' || c == b'>' {
            break;
        }
        i += 1;
    }
    let name = html[name_start..i].to_ascii_lowercase();
    let mut attrs = Vec::new();
    loop {
        while at(i).is_some_and(|c| is_space(c) || c == b'/') {
            i += 1;
        }
        match at(i) {
            None => return Some((None, b.len())), // EOF in a tag: the tag is dropped
            Some(b'>') => {
                i += 1;
                break;
            }
            _ => {}
        }
        let n0 = i;
        i += 1; // the first character may be anything, even `=`
        while let Some(c) = at(i) {
            if is_space(c) || c == b'/' || c == b'>' || c == b'=' {
                break;
            }
            i += 1;
        }
        let attr_name = &html[n0..i];
        while at(i).is_some_and(is_space) {
            i += 1;
        }
        let mut value = "";
        if at(i) == Some(b'=') {
            i += 1;
            while at(i).is_some_and(is_space) {
                i += 1;
            }
            match at(i) {
                Some(q @ (b'"' | b'\'')) => {
                    let v0 = i + 1;
                    match html[v0..].find(q as char) {
                        Some(k) => {
                            value = &html[v0..v0 + k];
                            i = v0 + k + 1;
                        }
                        None => return Some((None, b.len())),
                    }
                }
                _ => {
                    let v0 = i;
                    while at(i).is_some_and(|c| !is_space(c) && c != b'>') {
                        i += 1;
                    }
                    value = &html[v0..i];
                }
            }
        }
        // Only the few names html2text reads are kept, the first of duplicates as in HTML: the
        // list stays tiny however many attributes the tag holds.
        if let Some(known) = KEPT_ATTRS
            .iter()
            .find(|k| k.eq_ignore_ascii_case(attr_name))
        {
            if !attrs.iter().any(|(n, _): &(&str, &str)| n == known) {
                attrs.push((known, value));
            }
        }
    }
    Some((Some(Tag { end, name, attrs }), i))
}

/// Finds the end tag `</name` (any case) from `from`; returns (start of it, position after its
/// `>`), or the end of input.
fn find_end_tag(html: &str, from: usize, name: &str) -> (usize, usize) {
    let b = html.as_bytes();
    let mut j = from;
    while let Some(k) = html[j..].find("</") {
        let s = j + k;
        let n = s + 2;
        let after = n + name.len();
        if b.len() >= after
            && b[n..after].eq_ignore_ascii_case(name.as_bytes())
            && b.get(after)
                .is_none_or(|&c| is_space(c) || c == b'/' || c == b'>')
        {
            let e = html[after..].find('>').map_or(b.len(), |k| after + k + 1);
            return (s, e);
        }
        j = s + 2;
    }
    (b.len(), b.len())
}

/// Rebuilds `html` as the well-formed, depth-bounded HTML described in the module comment.
pub fn simplify(html: &str) -> Simplified {
    let mut b = Builder {
        out: String::with_capacity(html.len() / 2 + 16),
        stack: Vec::with_capacity(MAX_DEPTH),
        table_depth: 0,
        overflow: [0; EL_COUNT],
        max_depth: 0,
        flattened: 0,
        steps: 0,
    };
    let bytes = html.as_bytes();
    let mut pos = 0;
    let mut text_start = 0;
    while pos < bytes.len() {
        let Some(k) = html[pos..].find('<') else {
            break;
        };
        let lt = pos + k;
        let Some((tag, next)) = lex_tag(html, lt) else {
            pos = lt + 1;
            continue;
        };
        b.text(&html[text_start..lt]);
        pos = next;
        text_start = next;
        let Some(tag) = tag else { continue };
        let name = tag.name.as_str();
        if !tag.end && SKIP.contains(&name) {
            let (_, after) = find_end_tag(html, pos, name);
            pos = after;
            text_start = after;
            continue;
        }
        if !tag.end && RAW_TEXT.contains(&name) {
            let (s, after) = find_end_tag(html, pos, name);
            b.start(El::Div, &[]);
            b.literal_text(&html[pos..s]);
            b.end(El::Div);
            pos = after;
            text_start = after;
            continue;
        }
        if !tag.end && name == "plaintext" {
            b.literal_text(&html[pos..]);
            pos = bytes.len();
            text_start = pos;
            break;
        }
        let Some(el) = El::from_name(name) else {
            continue;
        };
        if tag.end {
            b.end(el);
        } else {
            b.start(el, &tag.attrs);
        }
    }
    b.text(&html[text_start..]);
    b.pop_to(0);
    Simplified {
        html: b.out,
        max_depth: b.max_depth,
        flattened: b.flattened,
        stack_steps: b.steps,
    }
}
