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
