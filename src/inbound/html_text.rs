//! HTML → readable plain text in time linear in the input, for every input.
//!
//! html2text renders mail HTML well (lists, quotes, tables, entities), but what it builds on is
//! not linear: html5ever's tree builder walks the stack of open elements for most tags (scope
//! checks), checks every new attribute of a tag against all earlier ones, foster-parents content
//! misplaced in a table by searching its parent's children, and reopens formatting elements after
//! every block; html2text then indents every line once per nesting level and lays out nested
//! tables by rendering their cells repeatedly. 160 KB of nested `<ul><li>` took 5 s.
//!
//! So [`to_text`] makes one forward scan with constant work per input byte (every loop over the
//! open elements is bounded by [`MAX_DEPTH`]) that rebuilds the document as a **well-formed**
//! tree of only the elements that change how text reads, each explicitly closed in order, at
//! most [`MAX_DEPTH`] deep and [`MAX_TABLE_DEPTH`] tables deep, with only the attributes that
//! matter. It applies the HTML parsing rules itself where they shape the text (an unclosed `<p>`
//! or `<li>` ends at the next one, a block ends a paragraph, table content goes into a cell).
//! Deeper elements are flattened into their ancestor at the limit (their text is kept);
//! formatting elements (`<b>`, `<font>`, …) are dropped; comments, scripts, styles and the
//! title are removed. The tree is written straight to text with html2text's plain conventions
//! (the quote and fixture tests rely on them): a blank line between paragraphs, `> ` per quote
//! level, `* `/`N. ` list items, table columns padded, `[text]` links, `[alt]` images; entities
//! come from html5ever's table. Rendering html2text itself, even over the rebuilt tree
//! ([`to_text_html2text`]), costs about ten times the budget of 50 ms per MB on ordinary mail
//! (docs/benchmarks.md, "HTML to text").
//!
//! The lexing is this module's own too, on purpose: html5ever's tokenizer (measured as a drop-in)
//! compares every attribute of a tag with all earlier ones, so one tag of many attributes is
//! quadratic (1 MB of them took 2.6 s), and it costs 2–5 times this lexer per MB on tag-dense
//! mail (docs/benchmarks.md, "HTML to text", item 5).

/// Deepest element nesting kept. Real mail nests far less (an Outlook or Apple
/// Mail thread of 15 replies nests about 45 elements); deeper content is kept, one level up.
pub const MAX_DEPTH: usize = 64;
/// Deepest table nesting laid out as columns (each level copies its cells' lines once more;
/// html2text even re-renders them per level). Layout mail nests 4–6 tables; deeper tables are
/// written as their text.
pub const MAX_TABLE_DEPTH: usize = 8;

/// HTML → readable plain text: links and emphasis without markup, `<blockquote>` as `> ` lines,
/// lists with `* `, tables without borders. Paragraphs are not wrapped (the text is stored and
/// quoted back; the reader's client wraps it).
pub fn to_text(html: &str) -> String {
    let sink = TextSink {
        flows: vec![Flow::default()],
        tables: Vec::new(),
        lists: Vec::new(),
    };
    let mut b = build(html, sink);
    // Cells left open by a flattened table end with it.
    while b.sink.flows.len() > 1 {
        b.sink.close(El::Td);
    }
    let lines = b.sink.flows.pop().map(Flow::finish).unwrap_or_default();
    lines.join("\n")
}

/// The candidate measured before: html2text over HTML that [`simplify`] made safe. Correct but
/// about ten times slower than [`to_text`] on ordinary mail (docs/benchmarks.md).
pub fn to_text_html2text(html: &str) -> String {
    let html = simplify(html).html;
    html2text::config::plain_no_decorate()
        .no_table_borders()
        .string_from_read(html.as_bytes(), 10_000)
        .unwrap_or_else(|_| html.clone())
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

/// What the rebuilt tree goes to: HTML text ([`simplify`]) or the text renderer ([`to_text`]).
trait Sink {
    fn open(&mut self, el: El, attrs: &[(&str, &str)]);
    fn close(&mut self, el: El);
    /// Text as written in the HTML (character references not yet decoded, `<` not a tag).
    fn text(&mut self, text: &str);
    /// Text to be taken literally (raw-text elements).
    fn literal(&mut self, text: &str);
    /// The line break a flattened block leaves: none if no text follows.
    fn soft_break(&mut self);
}

/// Serializes the tree back to HTML.
struct HtmlSink(String);

impl Sink for HtmlSink {
    fn open(&mut self, el: El, attrs: &[(&str, &str)]) {
        let out = &mut self.0;
        out.push('<');
        out.push_str(el.tag());
        for (name, value) in attrs {
            out.push(' ');
            out.push_str(name);
            out.push_str("=\"");
            for c in value.chars() {
                match c {
                    '"' => out.push_str("&quot;"),
                    '\0' => {}
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        out.push('>');
    }

    fn close(&mut self, el: El) {
        self.0.push_str("</");
        self.0.push_str(el.tag());
        self.0.push('>');
    }

    fn text(&mut self, text: &str) {
        for c in text.chars() {
            match c {
                '<' => self.0.push_str("&lt;"),
                '\0' => {}
                c => self.0.push(c),
            }
        }
    }

    fn literal(&mut self, text: &str) {
        self.text(&text.replace('&', "&amp;"));
    }

    fn soft_break(&mut self) {
        self.0.push_str("<br>");
    }
}

struct Builder<S: Sink> {
    sink: S,
    stack: Vec<El>,
    table_depth: usize,
    /// Per element kind: start tags flattened and not yet matched by an end tag.
    overflow: [usize; EL_COUNT],
    max_depth: usize,
    flattened: usize,
    steps: usize,
    /// Nothing but a flattening line break since the last break: another one adds nothing.
    just_broke: bool,
    /// Per element kind: how many are on the stack.
    open: [usize; EL_COUNT],
}

impl<S: Sink> Builder<S> {
    fn push(&mut self, el: El, attrs: &[(&str, &str)]) {
        self.just_broke = false;
        self.sink.open(el, attrs);
        if !el.is_void() {
            self.stack.push(el);
            self.open[el.index()] += 1;
            if el == El::Table {
                self.table_depth += 1;
            }
            self.max_depth = self.max_depth.max(self.stack.len());
        }
    }

    fn pop(&mut self) {
        if let Some(el) = self.stack.pop() {
            self.open[el.index()] -= 1;
            self.steps += 1;
            if el == El::Table {
                self.table_depth -= 1;
            }
            self.sink.close(el);
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
    /// `kinds` lists every element `hit` can match: when none is open the answer is known at
    /// once (pathological input repeats tags whose search would otherwise walk the whole stack).
    fn find(
        &mut self,
        kinds: &[El],
        hit: impl Fn(El) -> bool,
        stop: impl Fn(El) -> bool,
    ) -> Option<usize> {
        if kinds.iter().all(|k| self.open[k.index()] == 0) {
            return None;
        }
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
        self.just_broke = false;
        self.sink.text(text);
    }

    /// Text taken literally (raw-text elements): `&` is not a character reference there.
    fn literal_text(&mut self, text: &str) {
        if self.stack.last().is_some_and(|e| e.is_table_part()) {
            self.ensure_cell();
        }
        self.sink.literal(text);
    }

    fn start(&mut self, el: El, attrs: &[(&str, &str)]) {
        // What the start tag implicitly ends, as HTML's tree construction does.
        let table_stop = |e: El| e == El::Table;
        if el.closes_p() {
            if let Some(i) = self.find(&[El::P], |e| e == El::P, |e| e.is_cell() || e == El::Table)
            {
                self.pop_to(i);
            }
        }
        match el {
            El::Li => {
                if let Some(i) = self.find(
                    &[El::Li],
                    |e| e == El::Li,
                    |e| !(e.is_phrasing() || matches!(e, El::Div | El::P)),
                ) {
                    self.pop_to(i);
                }
            }
            El::Dt | El::Dd => {
                if let Some(i) = self.find(
                    &[El::Dt, El::Dd],
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
                if let Some(i) = self.find(&[El::A], |e| e == El::A, table_stop) {
                    self.pop_to(i);
                }
            }
            El::Td | El::Th => {
                if let Some(i) = self.find(&[El::Td, El::Th], |e| e.is_cell(), table_stop) {
                    self.pop_to(i);
                }
            }
            El::Tr => {
                if let Some(i) = self.find(&[El::Tr], |e| e == El::Tr, table_stop) {
                    self.pop_to(i);
                }
            }
            El::Tbody | El::Thead => {
                if let Some(i) = self.find(
                    &[El::Tbody, El::Thead],
                    |e| matches!(e, El::Tbody | El::Thead),
                    table_stop,
                ) {
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
            self.break_line();
        }
    }

    /// A line break in place of a flattened block; repeated ones collapse into one.
    fn break_line(&mut self) {
        if !self.just_broke {
            self.ensure_cell();
            self.sink.soft_break();
            self.just_broke = true;
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
                self.break_line();
            }
            return;
        }
        let found = match el {
            El::Table => self.find(&[El::Table], |e| e == El::Table, |_| false),
            El::Tbody | El::Thead | El::Tr | El::Td | El::Th => {
                self.find(&[el], |e| e == el, |e| e == El::Table)
            }
            El::Li => self.find(
                &[El::Li],
                |e| e == El::Li,
                |e| matches!(e, El::Ul | El::Ol | El::Table) || e.is_cell(),
            ),
            El::A => self.find(&[El::A], |e| e == El::A, |e| e.is_cell() || e == El::Table),
            El::H(_) => self.find(
                &[El::H(1), El::H(2), El::H(3), El::H(4), El::H(5), El::H(6)],
                |e| matches!(e, El::H(_)),
                |e| e.is_cell() || e == El::Table,
            ),
            _ if el.is_phrasing() => self.find(
                &[el],
                |e| e == el,
                |e| !e.is_phrasing() || e.is_cell() || e == El::Table,
            ),
            _ => self.find(&[el], |e| e == el, |e| e.is_cell() || e == El::Table),
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
                // Two fast scans rather than a step per `--` (a run of dashes has one at
                // every position).
                let end = [("-->", 3), ("--!>", 4)]
                    .iter()
                    .filter_map(|(pat, n)| html[body..].find(pat).map(|k| body + k + n))
                    .min();
                if let Some(end) = end {
                    return Some((None, end));
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
    let b = build(html, HtmlSink(String::with_capacity(html.len() / 2 + 16)));
    Simplified {
        html: b.sink.0,
        max_depth: b.max_depth,
        flattened: b.flattened,
        stack_steps: b.steps,
    }
}

/// The scan: lexes `html` and feeds the rebuilt tree to `sink`.
fn build<S: Sink>(html: &str, sink: S) -> Builder<S> {
    let mut b = Builder {
        sink,
        stack: Vec::with_capacity(MAX_DEPTH),
        table_depth: 0,
        overflow: [0; EL_COUNT],
        max_depth: 0,
        flattened: 0,
        steps: 0,
        just_broke: false,
        open: [0; EL_COUNT],
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
    b
}

use std::borrow::Cow;

/// Deepest quote/list indentation written out; deeper levels share the last prefix, so a line
/// costs at most this many prefixes however deep the tree.
const MAX_INDENT: usize = 16;

/// How far a table may be padded into columns: at most this many times its text (else its
/// cells are written one under another), so a huge cell beside a tall one cannot blow up.
const TABLE_PAD_FACTOR: usize = 4;

/// A line prefix of a block: the first line's and the following lines'.
#[derive(Debug, Clone)]
struct Indent {
    first: Cow<'static, str>,
    rest: Cow<'static, str>,
    used: bool,
}

/// The text of one flow (the document or one table cell) being written.
#[derive(Default)]
struct Flow {
    lines: Vec<String>,
    /// The current line: its prefix is fixed when its first character comes.
    cur: String,
    /// `cur` holds a line (possibly still empty after a `<br>`).
    open: bool,
    /// A space is due before the next word.
    space: bool,
    /// Break due before the next content: 0 none, 1 new line, 2 blank line.
    brk: u8,
    indents: Vec<Indent>,
    pre: usize,
    /// Links opened whose `[` waits for their first word.
    link_pending: bool,
    link_open: Vec<bool>,
}

impl Flow {
    fn prefix(&mut self, blank: bool) -> String {
        let mut p = String::new();
        let n = self.indents.len().min(MAX_INDENT);
        for ind in self.indents.iter_mut().take(n) {
            if blank {
                // A blank line belongs to the blocks already begun, not to one starting after it.
                if ind.used {
                    p.push_str(&ind.rest);
                }
            } else if ind.used {
                p.push_str(&ind.rest);
            } else {
                p.push_str(&ind.first);
                ind.used = true;
            }
        }
        p
    }

    fn end_line(&mut self) {
        if self.open {
            let line = std::mem::take(&mut self.cur);
            let line = line.trim_end();
            // Runs of empty lines (`<p>&nbsp;</p>` between paragraphs) read as one, as in
            // html2text; not inside `<pre>`.
            let blank = line.chars().all(|c| c == '>' || c.is_whitespace());
            let repeat = self.lines.last().is_none_or(|l| l == line);
            if !(blank && repeat && self.pre == 0) {
                self.lines.push(line.to_string());
            }
            self.open = false;
        }
        self.space = false;
    }

    fn request(&mut self, brk: u8) {
        self.brk = self.brk.max(brk);
    }

    /// Applies a due break and opens a line for content.
    fn begin(&mut self) {
        if self.brk > 0 {
            let had = self.open && !self.cur.trim().is_empty() || !self.lines.is_empty();
            self.end_line();
            if had && self.brk == 2 && self.lines.last().is_some_and(|l| !l.trim().is_empty()) {
                let p = self.prefix(true);
                self.lines.push(p.trim_end().to_string());
            }
            self.brk = 0;
        }
        if !self.open {
            self.cur = self.prefix(false);
            self.open = true;
            self.space = false;
        }
    }

    fn word(&mut self, w: &str) {
        self.begin();
        if self.space && !self.cur.is_empty() && !self.cur.ends_with(' ') {
            self.cur.push(' ');
        }
        self.space = false;
        if self.link_pending {
            self.cur.push('[');
            self.link_pending = false;
            if let Some(l) = self.link_open.last_mut() {
                *l = true;
            }
        }
        self.cur.push_str(w);
    }

    /// Decoded inline text: whitespace collapses outside `<pre>`.
    fn inline(&mut self, text: &str) {
        if self.pre > 0 {
            let mut first = true;
            for piece in text.split('\n') {
                if !first {
                    self.begin();
                    self.end_line();
                }
                first = false;
                if !piece.is_empty() {
                    self.word(piece.trim_end_matches('\r'));
                }
            }
            return;
        }
        let mut start = None;
        for (i, c) in text.char_indices() {
            if c.is_whitespace() && c != '\u{a0}' {
                if let Some(s) = start.take() {
                    self.word(&text[s..i]);
                }
                self.space = true;
            } else if start.is_none() {
                start = Some(i);
            }
        }
        if let Some(s) = start {
            self.word(&text[s..]);
        }
    }

    fn line_break(&mut self) {
        self.begin();
        self.end_line();
        self.open = false;
        // the next content starts a new (possibly empty) line
        self.cur = String::new();
        self.pending_empty_line();
    }

    /// After a `<br>`, a second `<br>` must give an empty line: keep an open empty line.
    fn pending_empty_line(&mut self) {
        self.cur = self.prefix(false);
        self.open = true;
    }

    /// Lines rendered elsewhere (a table) written as they are, under the current prefix.
    fn lines_block(&mut self, lines: Vec<String>) {
        for l in lines {
            self.begin();
            self.cur.push_str(&l);
            self.end_line();
        }
    }

    fn finish(mut self) -> Vec<String> {
        self.end_line();
        while self.lines.last().is_some_and(|l| l.trim().is_empty()) {
            self.lines.pop();
        }
        self.lines
    }
}

/// A table being laid out: rows of cells, each cell its lines.
#[derive(Default)]
struct TableLayout {
    rows: Vec<Vec<Vec<String>>>,
}

impl TableLayout {
    /// Cells side by side, columns padded to their widest line, as html2text lays them out;
    /// one under another when padding would multiply the text.
    fn render(self) -> Vec<String> {
        let rows: Vec<Vec<Vec<String>>> = self
            .rows
            .into_iter()
            .filter(|r| r.iter().any(|c| !c.is_empty()))
            .collect();
        let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0usize; cols];
        let mut text = 0usize;
        let mut height = 0usize;
        for r in &rows {
            height += r.iter().map(Vec::len).max().unwrap_or(0);
            for (i, c) in r.iter().enumerate() {
                for l in c {
                    let w = l.chars().count();
                    text += w + 1;
                    widths[i] = widths[i].max(w);
                }
            }
        }
        let padded = height.saturating_mul(widths.iter().sum::<usize>() + cols);
        let mut out = Vec::new();
        if padded > TABLE_PAD_FACTOR * text + 4_096 {
            for r in rows {
                for c in r {
                    out.extend(c);
                }
            }
            return out;
        }
        for r in rows {
            let h = r.iter().map(Vec::len).max().unwrap_or(0);
            for k in 0..h {
                let mut line = String::new();
                for (i, c) in r.iter().enumerate() {
                    let cell = c.get(k).map_or("", String::as_str);
                    line.push_str(cell);
                    if i + 1 < r.len() {
                        let pad = widths[i] - cell.chars().count() + 1;
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                }
                out.push(line.trim_end().to_string());
            }
        }
        out
    }
}

/// Writes the rebuilt tree as plain text.
struct TextSink {
    flows: Vec<Flow>,
    tables: Vec<TableLayout>,
    /// Per open list: the next item number (`None` for bullets).
    lists: Vec<Option<i64>>,
}

impl TextSink {
    fn flow(&mut self) -> &mut Flow {
        if self.flows.is_empty() {
            self.flows.push(Flow::default());
        }
        let last = self.flows.len() - 1;
        &mut self.flows[last]
    }
}

impl Sink for TextSink {
    fn open(&mut self, el: El, attrs: &[(&str, &str)]) {
        let attr = |n: &str| attrs.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
        match el {
            El::P | El::Pre | El::Dl => self.flow().request(2),
            El::Blockquote => {
                let f = self.flow();
                f.request(2);
                f.indents.push(Indent {
                    first: Cow::Borrowed("> "),
                    rest: Cow::Borrowed("> "),
                    used: false,
                });
            }
            El::H(n) => {
                let f = self.flow();
                f.request(2);
                f.indents.push(Indent {
                    first: Cow::Owned(format!("{} ", "#".repeat(n as usize))),
                    rest: Cow::Borrowed(""),
                    used: false,
                });
            }
            El::Div | El::Dt | El::Tr => self.flow().request(1),
            El::Dd => {
                let f = self.flow();
                f.request(1);
                f.indents.push(Indent {
                    first: Cow::Borrowed("  "),
                    rest: Cow::Borrowed("  "),
                    used: false,
                });
            }
            El::Ul | El::Ol => {
                let start = attr("start")
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(1);
                self.lists.push((el == El::Ol).then_some(start));
                self.flow().request(1);
            }
            El::Li => {
                let (first, rest): (Cow<'static, str>, Cow<'static, str>) =
                    match self.lists.last_mut() {
                        Some(Some(n)) => {
                            *n += 1;
                            let m = format!("{}. ", *n - 1);
                            let rest = " ".repeat(m.len());
                            (m.into(), rest.into())
                        }
                        Some(None) => ("* ".into(), "  ".into()),
                        None => ("".into(), "".into()),
                    };
                let f = self.flow();
                f.request(1);
                f.indents.push(Indent {
                    first,
                    rest,
                    used: false,
                });
            }
            El::Table => {
                self.flow().request(2);
                self.tables.push(TableLayout::default());
            }
            El::Td | El::Th => self.flows.push(Flow::default()),
            El::A => {
                // html2text brackets links, not anchors without a target.
                let is_link = attr("href").is_some();
                let f = self.flow();
                f.link_pending = is_link;
                f.link_open.push(false);
            }
            El::Br => self.flow().line_break(),
            El::Hr => self.flow().request(2),
            El::Img => {
                if let Some(alt) = attr("alt")
                    .map(decode_entities)
                    .filter(|a| !a.trim().is_empty())
                {
                    let f = self.flow();
                    let alt = alt.split_whitespace().collect::<Vec<_>>().join(" ");
                    f.word(&format!("[{alt}]"));
                }
            }
            El::Span | El::Sup | El::Sub | El::Del | El::Ins | El::Wbr | El::Tbody | El::Thead => {}
        }
        if el == El::Pre {
            self.flow().pre += 1;
        }
        if el == El::Tr {
            if let Some(t) = self.tables.last_mut() {
                t.rows.push(Vec::new());
            }
        }
    }

    fn close(&mut self, el: El) {
        match el {
            El::P | El::Dl | El::Hr => self.flow().request(2),
            El::Pre => {
                let f = self.flow();
                f.pre = f.pre.saturating_sub(1);
                f.request(2);
            }
            El::Blockquote | El::H(_) => {
                let f = self.flow();
                f.request(2);
                f.indents.pop();
            }
            El::Dd | El::Li => {
                let f = self.flow();
                f.request(1);
                f.indents.pop();
            }
            El::Div | El::Dt | El::Tr => self.flow().request(1),
            El::Ul | El::Ol => {
                self.lists.pop();
                let nested = !self.lists.is_empty();
                self.flow().request(if nested { 1 } else { 2 });
            }
            El::Td | El::Th if self.flows.len() > 1 => {
                let lines = self.flows.pop().map(Flow::finish).unwrap_or_default();
                if let Some(row) = self.tables.last_mut().and_then(|t| t.rows.last_mut()) {
                    row.push(lines);
                }
            }
            El::Table => {
                if let Some(t) = self.tables.pop() {
                    let lines = t.render();
                    let f = self.flow();
                    f.lines_block(lines);
                    f.request(2);
                }
            }
            El::A => {
                let f = self.flow();
                if f.link_open.pop() == Some(true) {
                    f.cur.push(']');
                }
                f.link_pending = false;
            }
            _ => {}
        }
    }

    fn text(&mut self, text: &str) {
        let decoded = decode_entities(text);
        self.flow().inline(&decoded);
    }

    fn literal(&mut self, text: &str) {
        let f = self.flow();
        f.pre += 1;
        f.inline(text);
        f.pre -= 1;
    }

    fn soft_break(&mut self) {
        self.flow().request(1);
    }
}

/// Decodes HTML character references as the HTML tokenizer does in text: named ones from
/// html5ever's table (longest match, the legacy ones also without `;`), decimal and hex ones
/// (NUL, surrogates and out-of-range become U+FFFD; windows-1252 numbers 128–159 map as
/// browsers do). Bounded work per `&`: names are at most 32 characters.
pub fn decode_entities(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('&') {
        return std::borrow::Cow::Borrowed(text);
    }
    let map = &markup5ever::data::NAMED_ENTITIES;
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let after = &rest[1..];
        if let Some(num) = after.strip_prefix('#') {
            let (hex, digits) = match num.strip_prefix(['x', 'X']) {
                Some(h) => (true, h),
                None => (false, num),
            };
            let len = digits
                .bytes()
                .take_while(|b| {
                    if hex {
                        b.is_ascii_hexdigit()
                    } else {
                        b.is_ascii_digit()
                    }
                })
                .count();
            if len > 0 {
                let value = u32::from_str_radix(&digits[..len.min(8)], if hex { 16 } else { 10 })
                    .unwrap_or(u32::MAX);
                let c = match value {
                    0x80..=0x9f => markup5ever::data::C1_REPLACEMENTS[(value - 0x80) as usize]
                        .unwrap_or('\u{fffd}'),
                    0 => '\u{fffd}',
                    v => char::from_u32(v).unwrap_or('\u{fffd}'),
                };
                out.push(c);
                let consumed = 1 + (num.len() - digits.len()) + len;
                let tail = &after[consumed..];
                rest = tail.strip_prefix(';').unwrap_or(tail);
                continue;
            }
        } else {
            // Longest name in the table: every prefix of a name is in it, so stop at the first
            // prefix that is not.
            let mut best: Option<(usize, (u32, u32))> = None;
            for (k, c) in after.char_indices().take(34) {
                let end = k + c.len_utf8();
                match map.get(&after[..end]) {
                    Some(&v) => {
                        if v.0 != 0 {
                            best = Some((end, v));
                        }
                    }
                    None => break,
                }
            }
            if let Some((end, (a, b))) = best {
                out.extend(char::from_u32(a));
                if b != 0 {
                    out.extend(char::from_u32(b));
                }
                rest = &after[end..];
                continue;
            }
        }
        out.push('&');
        rest = after;
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `open` × n, text, `close` × n.
    fn nested(open: &str, close: &str, n: usize) -> String {
        format!("{}x{}", open.repeat(n), close.repeat(n))
    }

    /// The element nesting html5ever builds from `html` (html and body included), as html2text
    /// would see it.
    fn dom_depth(html: &str) -> usize {
        let dom = html2text::config::plain()
            .parse_html(html.as_bytes())
            .unwrap_or_else(|e| panic!("parse: {e}"));
        let mut max = 0;
        let mut todo = vec![(dom.document.clone(), 0usize)];
        while let Some((node, depth)) = todo.pop() {
            let depth = match node.data {
                html2text::Element { .. } => depth + 1,
                _ => depth,
            };
            max = max.max(depth);
            for c in node.children.borrow().iter() {
                todo.push((c.clone(), depth));
            }
        }
        max
    }

    /// Formatting elements html5ever reopens in every paragraph (distinct attributes defeat its
    /// limit of three identical ones).
    fn reopened(n: usize) -> String {
        (0..n)
            .map(|i| format!("<b><font color=c{i}>x<p>"))
            .collect()
    }

    /// Pathological inputs of about `n` repetitions each.
    fn pathological(n: usize) -> Vec<(&'static str, String)> {
        vec![
            ("ul/li", nested("<ul><li>", "</li></ul>", n)),
            ("unclosed ul/li", "<ul><li>x".repeat(n)),
            ("div", nested("<div>", "</div>", n)),
            ("blockquote", nested("<blockquote>", "</blockquote>", n)),
            ("table", nested("<table><tr><td>", "</td></tr></table>", n)),
            ("unclosed table", "<table><tr><td>x".repeat(n)),
            ("unclosed div/span", "<div><span>x".repeat(n)),
            ("formatting reopened", reopened(n)),
            ("misnested a/div", "<a href=x><div>x</a>".repeat(n)),
            ("p in div in p", "<p>x<div>x<p>".repeat(n)),
            (
                "foster parenting",
                format!("<table>{}</table>", "<span>x</span>".repeat(n)),
            ),
            ("nested dl", "<dl><dt>x<dd>".repeat(n)),
            ("headings", "<h1>x<h2>".repeat(n)),
        ]
    }

    #[test]
    fn nesting_html5ever_sees_is_bounded_for_pathological_input() {
        for (name, html) in pathological(2_000) {
            let s = simplify(&html);
            assert!(s.max_depth <= MAX_DEPTH, "{name}: depth {}", s.max_depth);
            // html5ever gets a well-formed tree and builds exactly it (plus html, body and a
            // void leaf such as <br>): no reopened formatting, no foster parenting, no implied
            // elements beyond the bound.
            let depth = dom_depth(&s.html);
            assert!(
                depth <= MAX_DEPTH + 3,
                "{name}: html5ever built depth {depth}"
            );
        }
        // Without the rebuild html5ever nests as deep as the input does.
        assert!(dom_depth(&nested("<ul><li>", "</li></ul>", 400)) > 2 * MAX_DEPTH);
        assert!(dom_depth(&reopened(400)) > 2 * MAX_DEPTH);
    }

    #[test]
    fn work_grows_linearly_with_the_input() {
        for ((name, small), (_, big)) in pathological(1_000).into_iter().zip(pathological(2_000)) {
            let (a, b) = (simplify(&small), simplify(&big));
            let tags = big.matches('<').count();
            assert!(
                b.stack_steps <= (MAX_DEPTH + 8) * tags,
                "{name}: {} steps for {tags} tags",
                b.stack_steps
            );
            assert!(
                b.stack_steps * 10 <= a.stack_steps * 21 + 1_000,
                "{name}: {} steps at n, {} at 2n",
                a.stack_steps,
                b.stack_steps
            );
        }
    }

    #[test]
    fn deep_content_is_kept_flattened() {
        let html = (0..500).map(|i| format!("<div>w{i} ")).collect::<String>();
        let s = simplify(&html);
        assert!(s.flattened > 0);
        let text = to_text(&html);
        for i in [0, 63, 64, 250, 499] {
            assert!(text.contains(&format!("w{i}")), "w{i} lost");
        }
        let quotes = to_text(&nested("<blockquote>", "</blockquote>", 300));
        assert!(quotes.trim_start().starts_with("> > > "));
        assert!(quotes.contains('x'));
    }

    #[test]
    fn many_attributes_are_dropped_but_links_kept() {
        let attrs: String = (0..5_000).map(|i| format!(" data-a{i}=\"v\"")).collect();
        let html = format!("<a{attrs} HREF=\"mailto:juan@x.mx\">juan@x.mx</a><td{attrs}>y");
        let s = simplify(&html);
        assert!(s.html.len() < 200, "{}", s.html);
        assert!(s.html.contains("href=\"mailto:juan@x.mx\""), "{}", s.html);
    }

    #[test]
    fn readable_text_of_ordinary_mail_html() {
        let text = to_text(
            "<html><head><title>T&iacute;tulo</title><style>p{color:red}</style></head>\
             <body><!-- comentario --><p>Buenos d&iacute;as<p>La impresora <b>no</b> imprime\
             <script>alert(1)</script><ul><li>uno<li>dos</ul>\
             <blockquote>cita<br>vieja</blockquote>\
             <table><tr><td>Departamento:<td>Contabilidad<tr><td>Tel:<td>55</table>\
             <table>suelto</table></body></html>",
        );
        assert_eq!(
            text,
            "Buenos días\n\nLa impresora no imprime\n\n* uno\n* dos\n\n> cita\n> vieja\n\n\
             Departamento: Contabilidad\nTel:          55\n\nsuelto"
        );
    }

    #[test]
    fn lexer_edge_cases_never_panic_and_keep_text() {
        for html in [
            "<",
            "</",
            "a < b",
            "<!--",
            "<!-->x",
            "x<div",
            "<a href='x",
            "<ñ>x</ñ>",
            "<div a=ñ>ü</div>",
            "<plaintext><b>x",
            "<textarea>a<b>c</textarea>d",
            "</br>x",
            "<td>suelto</td>",
            "<scrIPT>x</SCRIPT >y",
        ] {
            let _ = to_text(html);
        }
        assert_eq!(to_text("a < b"), "a < b");
        assert_eq!(to_text("<plaintext><b>x"), "<b>x");
        assert_eq!(to_text("<scrIPT>x</SCRIPT >y"), "y");
        assert_eq!(to_text("<textarea>a<b>c</textarea>d"), "a<b>c\nd");
    }

    #[test]
    fn random_tag_soup_never_panics_and_stays_bounded() {
        const TOKENS: &[&str] = &[
            "<p>",
            "</p>",
            "<div>",
            "</div>",
            "<ul>",
            "<ol start=7>",
            "<li>",
            "</li>",
            "</ul>",
            "<table>",
            "<tr>",
            "<td colspan=2>",
            "</td>",
            "</tr>",
            "</table>",
            "<tbody>",
            "<th>",
            "<blockquote>",
            "</blockquote>",
            "<a href='x'>",
            "</a>",
            "<b>",
            "</b>",
            "<br>",
            "</br>",
            "<hr>",
            "<pre>",
            "</pre>",
            "<h2>",
            "</h3>",
            "<dl>",
            "<dt>",
            "<dd>",
            "<img alt=\"ñ\">",
            "<!--",
            "-->",
            "<script>",
            "</script>",
            "<textarea>",
            "&amp;",
            "&#x1F600;",
            "&#0;",
            "&nota;",
            "x ",
            "ñandú ",
            "\n",
            "<",
            ">",
            "\"",
            "'",
            "<span>",
            "</span>",
            "<sup>",
            "<!DOCTYPE html>",
            "<?xml?>",
            "</",
            "=",
            "<plaintext>",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..300 {
            let mut html = String::new();
            for _ in 0..200 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                html.push_str(TOKENS[(seed % TOKENS.len() as u64) as usize]);
            }
            let s = simplify(&html);
            assert!(s.max_depth <= MAX_DEPTH);
            assert!(dom_depth(&s.html) <= MAX_DEPTH + 3, "{html}");
            let _ = to_text(&html);
        }
    }
}
