//! The well-formed, depth-bounded rebuild: one forward scan that feeds the kept elements, each
//! explicitly closed in order, to a [`Sink`].

use super::element::{El, EL_COUNT};
use super::lex::{find_end_tag, lex_tag, Lexed};
use super::{MAX_DEPTH, MAX_TABLE_DEPTH};

/// Elements removed with everything inside them: never readable text.
/// (Like html5ever, an unclosed one runs to the end of the input.)
const SKIP: &[&str] = &["script", "style", "title", "iframe", "noembed", "noframes"];

/// Elements whose content the tokenizer reads as plain text up to their end tag.
const RAW_TEXT: &[&str] = &["textarea", "xmp"];

/// What the rebuilt tree goes to: HTML text ([`simplify`]) or the text renderer ([`to_text`]).
pub(super) trait Sink {
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
pub(super) struct HtmlSink(pub(super) String);

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

/// The rebuild in progress: the open elements and the figures [`super::Simplified`] reports.
pub(super) struct Builder<S: Sink> {
    pub(super) sink: S,
    stack: Vec<El>,
    table_depth: usize,
    /// Per element kind: start tags flattened and not yet matched by an end tag.
    overflow: [usize; EL_COUNT],
    pub(super) max_depth: usize,
    pub(super) flattened: usize,
    pub(super) steps: usize,
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

    /// Closes everything down to and including the innermost open element [`Self::find`]
    /// finds, if any.
    fn close_found(&mut self, kinds: &[El], hit: impl Fn(El) -> bool, stop: impl Fn(El) -> bool) {
        if let Some(i) = self.find(kinds, hit, stop) {
            self.pop_to(i);
        }
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
        self.close_implied_by(el);
        if !self.place(el) {
            return self.flatten(el);
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

    /// Closes what the start tag of `el` implicitly ends, as HTML's tree construction does.
    fn close_implied_by(&mut self, el: El) {
        let table_stop = |e: El| e == El::Table;
        if el.closes_p() {
            self.close_found(&[El::P], |e| e == El::P, |e| e.is_cell() || e == El::Table);
        }
        match el {
            El::Li => self.close_found(
                &[El::Li],
                |e| e == El::Li,
                |e| !(e.is_phrasing() || matches!(e, El::Div | El::P)),
            ),
            El::Dt | El::Dd => self.close_found(
                &[El::Dt, El::Dd],
                |e| matches!(e, El::Dt | El::Dd),
                |e| !(e.is_phrasing() || matches!(e, El::Div | El::P)),
            ),
            El::H(_) => {
                if matches!(self.stack.last(), Some(El::H(_))) {
                    self.pop();
                }
            }
            El::A => self.close_found(&[El::A], |e| e == El::A, table_stop),
            El::Td | El::Th => self.close_found(&[El::Td, El::Th], |e| e.is_cell(), table_stop),
            El::Tr => self.close_found(&[El::Tr], |e| e == El::Tr, table_stop),
            El::Tbody | El::Thead => self.close_found(
                &[El::Tbody, El::Thead],
                |e| matches!(e, El::Tbody | El::Thead),
                table_stop,
            ),
            _ => {}
        }
    }

    /// Where the element may go: table parts only in a table (else they are just text),
    /// anything else not directly in a table. Opens the table wrappers it needs there; `false`
    /// when it must be flattened.
    fn place(&mut self, el: El) -> bool {
        let top = self.stack.last().copied();
        let in_table = self.table_depth > 0;
        if (el.is_cell() || el.is_table_part()) && self.overflow[El::Table.index()] > 0 {
            // Inside a table flattened for depth: its rows and cells are its text.
            return false;
        }
        match el {
            El::Tbody | El::Thead | El::Tr | El::Td | El::Th if !in_table => return false,
            El::Tbody | El::Thead if top != Some(El::Table) => return false,
            El::Tr => match top {
                Some(El::Table) => self.push(El::Tbody, &[]),
                Some(El::Tbody | El::Thead) => {}
                _ => return false,
            },
            El::Td | El::Th => match top {
                Some(El::Table) => {
                    self.push(El::Tbody, &[]);
                    self.push(El::Tr, &[]);
                }
                Some(El::Tbody | El::Thead) => self.push(El::Tr, &[]),
                Some(El::Tr) => {}
                _ => return false,
            },
            _ if top.is_some_and(|t| t.is_table_part()) => self.ensure_cell(),
            _ => {}
        }
        true
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
        match el {
            El::Table => self.close_found(&[El::Table], |e| e == El::Table, |_| false),
            El::Tbody | El::Thead | El::Tr | El::Td | El::Th => {
                self.close_found(&[el], |e| e == el, |e| e == El::Table)
            }
            El::Li => self.close_found(
                &[El::Li],
                |e| e == El::Li,
                |e| matches!(e, El::Ul | El::Ol | El::Table) || e.is_cell(),
            ),
            El::A => self.close_found(&[El::A], |e| e == El::A, |e| e.is_cell() || e == El::Table),
            El::H(_) => self.close_found(
                &[El::H(1), El::H(2), El::H(3), El::H(4), El::H(5), El::H(6)],
                |e| matches!(e, El::H(_)),
                |e| e.is_cell() || e == El::Table,
            ),
            _ if el.is_phrasing() => self.close_found(
                &[el],
                |e| e == el,
                |e| !e.is_phrasing() || e.is_cell() || e == El::Table,
            ),
            _ => self.close_found(&[el], |e| e == el, |e| e.is_cell() || e == El::Table),
        }
    }
}

/// The scan: lexes `html` and feeds the rebuilt tree to `sink`.
pub(super) fn build<S: Sink>(html: &str, sink: S) -> Builder<S> {
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
        let (tag, next) = match lex_tag(html, lt) {
            Lexed::Text => {
                pos = lt + 1;
                continue;
            }
            Lexed::Dropped(next) => (None, next),
            Lexed::Tag(tag, next) => (Some(tag), next),
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
