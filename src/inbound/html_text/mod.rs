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

mod element;
mod entities;
mod lex;
mod render;
mod tree;

pub use entities::decode_entities;

use render::TextSink;
use tree::{build, HtmlSink};

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
    build(html, TextSink::new()).sink.finish()
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

#[cfg(test)]
mod tests;
