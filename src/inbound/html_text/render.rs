//! The rebuilt tree written as plain text in html2text's conventions: a blank line between
//! paragraphs, `> ` per quote level, `* `/`N. ` list items, table columns padded, `[text]`
//! links, `[alt]` images.

use std::borrow::Cow;

use super::element::El;
use super::entities::decode_entities;
use super::tree::Sink;

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

    /// Requests break `brk` and starts a block whose lines get a prefix: `first` on its first
    /// line, `rest` on the following ones.
    fn indented(&mut self, brk: u8, first: Cow<'static, str>, rest: Cow<'static, str>) {
        self.request(brk);
        self.indents.push(Indent {
            first,
            rest,
            used: false,
        });
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
pub(super) struct TextSink {
    flows: Vec<Flow>,
    tables: Vec<TableLayout>,
    /// Per open list: the next item number (`None` for bullets).
    lists: Vec<Option<i64>>,
}

impl TextSink {
    pub(super) fn new() -> TextSink {
        TextSink {
            flows: vec![Flow::default()],
            tables: Vec::new(),
            lists: Vec::new(),
        }
    }

    /// The text written, once the scan has closed every element it opened.
    pub(super) fn finish(mut self) -> String {
        // Cells left open by a flattened table end with it.
        while self.flows.len() > 1 {
            self.close(El::Td);
        }
        let lines = self.flows.pop().map(Flow::finish).unwrap_or_default();
        lines.join("\n")
    }

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
            El::Blockquote => self.flow().indented(2, "> ".into(), "> ".into()),
            El::H(n) => {
                let marks = format!("{} ", "#".repeat(n as usize));
                self.flow().indented(2, marks.into(), "".into());
            }
            El::Div | El::Dt | El::Tr => self.flow().request(1),
            El::Dd => self.flow().indented(1, "  ".into(), "  ".into()),
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
                self.flow().indented(1, first, rest);
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
