//! The requester's answer to a satisfaction survey ("Responda a este correo con un número del
//! 1 al 5"): a rating from 1 to 5 with an optional comment, a request to receive no more
//! surveys, or nothing readable. Pure text in, an [`Answer`] out.
//!
//! A rating is a number from 1 to 5 written as a number ("5", "4/5", "4 de 5", "5 estrellas"),
//! a word ("cinco", "four") or stars ("⭐⭐⭐⭐"), and it counts only where a rating is written:
//!
//! * after a label anywhere in the answer ("Calificación: 4", "le doy un 3", "mi calificación
//!   es 5", "Rating: 2", "I'd give it a 4");
//! * or in the first line with words that are not courtesy, at its start ("5 - excelente"),
//!   at its end ("Excelente servicio, 5"), or with a scale ("4/5", "5 estrellas"); a number
//!   word only at the start;
//! * or alone on the second such line ("Excelente servicio" / "5").
//!
//! Numbers that are something else never count: parts of dates, times, folios, phones and
//! decimals ("3/12/2026", "10:30", "MDA-2026-000123", "4.5"), numbers of three digits or more
//! ("2026", "ext. 60100"), numbers after a word that names what they count ("ext. 5", "piso 3",
//! "oficina 2", "a las 5", "dic 5") or before a unit ("3 días", "5 minutos"), the survey's own
//! scale ("del 1 al 5", "1-5"), and contact lines and signatures, which are dropped before
//! reading (`desk/answer_text.rs`). Two different ratings ("entre 3 y 4", "3 o 4"), a number
//! out of range ("10", "0", "7", "8/10"), or more than [`MAX_RATINGS`] ratings make the answer
//! unreadable rather than guessed.
//!
//! An explicit request to stop surveys ("no más encuestas", "unsubscribe") wins over a rating.

use std::ops::Range;
use std::sync::LazyLock;

use serde::Serialize;

use super::answer_text::{self, courtesy_at, only_courtesy, tokenize, Kind, Phrases, Token};

/// Characters of the comment kept: a survey comment is a sentence or two, and it is shown to
/// people and stored.
pub const MAX_COMMENT_CHARS: usize = 1_000;

/// More ratings than this, even all equal, is a list of numbers, not an answer.
pub const MAX_RATINGS: usize = 3;

/// Tokens a label ("Calificación del servicio:") may be apart from its number.
const MAX_LABEL_GAP: usize = 5;

/// What a requester answered to a satisfaction survey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Answer {
    /// A rating from 1 to 5, with the rest of what they wrote (courtesy and signature removed,
    /// at most [`MAX_COMMENT_CHARS`] characters), if anything.
    Rating { rating: u8, comment: Option<String> },
    /// They asked to receive no more surveys.
    OptOut,
    /// No rating could be read with certainty: none, out of range, or more than one.
    Unreadable,
}

/// Reads `new_content`, the text the requester typed in answer to the survey (quoted history
/// already removed: `inbound::quote::reply_content`). Looks at most at the first 2,000
/// characters and 40 lines; linear in those.
pub fn read_answer(new_content: &str) -> Answer {
    let answer = answer_text::prepare(new_content);
    let tokens = &answer.tokens;
    if (0..tokens.len()).any(|i| OPT_OUT.longest_at(tokens, i, &[]).is_some()) {
        return Answer::OptOut;
    }
    match rating(tokens) {
        Some(found) => Answer::Rating {
            rating: found.value,
            comment: comment(&answer.text, tokens, found.first, found.end),
        },
        None => Answer::Unreadable,
    }
}

/// A number read as a rating, and the tokens it spans (label and scale included).
#[derive(Debug, Clone, Copy)]
struct Candidate {
    /// The number's own token.
    at: usize,
    /// Span, from its label if labelled, to past its scale ("/5", "estrellas").
    first: usize,
    end: usize,
    /// As written; may be out of range.
    value: u32,
    /// "8/10": a rating on another scale.
    other_scale: bool,
    labelled: bool,
    /// Written where a rating is written (see the module doc).
    placed: bool,
}

/// The rating found, if exactly one value from 1 to 5 was written where ratings are written.
struct Found {
    value: u8,
    first: usize,
    end: usize,
}

fn rating(tokens: &[Token]) -> Option<Found> {
    let ranges = scale_ranges(tokens);
    let mut candidates: Vec<Candidate> = labelled(tokens, &ranges);
    let mut content = content_lines(tokens);
    if let Some(line) = content.next() {
        candidates.extend(in_first_line(tokens, line, &ranges));
    }
    if let Some(line) = content.next() {
        candidates.extend(alone_on_line(tokens, line, &ranges));
    }
    candidates.sort_by_key(|c| (c.at, !c.labelled));
    candidates.dedup_by_key(|c| c.at);
    if candidates.is_empty() || candidates.len() > MAX_RATINGS {
        return None;
    }
    let value = candidates[0].value;
    let readable = candidates
        .iter()
        .all(|c| c.value == value && (1..=5).contains(&c.value) && !c.other_scale);
    if !readable {
        return None;
    }
    let chosen = candidates
        .iter()
        .find(|c| c.labelled)
        .or_else(|| candidates.iter().find(|c| c.placed))?;
    Some(Found {
        value: u8::try_from(value).ok()?,
        first: chosen.first,
        end: chosen.end,
    })
}

/// Index ranges of the tokens on each line that has words (or stars) that are not only
/// courtesy.
fn content_lines(tokens: &[Token]) -> impl Iterator<Item = Range<usize>> + '_ {
    answer_text::lines(tokens).into_iter().filter(|r| {
        let line = &tokens[r.clone()];
        (line.iter().any(Token::is_wordlike) || has_stars(line)) && !only_courtesy(line)
    })
}

fn has_stars(tokens: &[Token]) -> bool {
    tokens.iter().any(|t| is_star(t) || is_empty_star(t))
}

/// The survey's own scale copied back ("del 1 al 5", "1-5", "1 to 5"): neither end is a rating.
fn scale_ranges(tokens: &[Token]) -> Vec<bool> {
    let mut in_range = vec![false; tokens.len()];
    for i in 0..tokens.len().saturating_sub(2) {
        let joins = ["al", "a", "to", "hasta"]
            .iter()
            .any(|w| tokens[i + 1].is(w))
            || tokens[i + 1].is_mark('-')
            || tokens[i + 1].is_mark('–');
        if joins && number_value(&tokens[i]).is_some() && number_value(&tokens[i + 2]).is_some() {
            in_range[i] = true;
            in_range[i + 2] = true;
        }
    }
    in_range
}

/// Ratings after a label, anywhere.
fn labelled(tokens: &[Token], ranges: &[bool]) -> Vec<Candidate> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let Some(label_end) = LABEL.longest_at(tokens, i, &[]) else {
            i += 1;
            continue;
        };
        let number = (label_end..tokens.len())
            .take(MAX_LABEL_GAP + 1)
            .take_while(|&j| j == label_end || is_filler(&tokens[j - 1]))
            .find(|&j| !is_filler(&tokens[j]));
        if let Some(mut c) = number.and_then(|j| candidate_at(tokens, j, ranges)) {
            c.first = i;
            c.labelled = true;
            c.placed = true;
            found.push(c);
        }
        i = label_end;
    }
    found
}

/// Words and marks between a label and its number.
fn is_filler(t: &Token) -> bool {
    match t.kind {
        Kind::Mark => [':', '-', '=', ',', '(', '–'].iter().any(|&c| t.is_mark(c)),
        Kind::Word => FILLERS.contains(&t.folded.as_str()),
        Kind::Number => false,
    }
}

/// Every rating written in the first content line; placed where a rating is written.
fn in_first_line(tokens: &[Token], line: Range<usize>, ranges: &[bool]) -> Vec<Candidate> {
    let lead = skip_courtesy(tokens, line.start, line.end);
    let mut found = Vec::new();
    let mut i = line.start;
    while i < line.end {
        let Some(mut c) = candidate_at(tokens, i, ranges) else {
            i += 1;
            continue;
        };
        let word = tokens[i].kind == Kind::Word;
        let at_start = c.first == lead;
        let at_end = skip_courtesy(tokens, c.end, line.end) == line.end;
        let after_mark = i > line.start && tokens[i - 1].kind == Kind::Mark;
        let scaled = c.end > c.at + 1 || is_star(&tokens[i]);
        // A number word is a rating when it stands alone in its clause ("Cinco!", "cuatro,
        // gracias"), not when it starts a sentence ("Uno de los técnicos…").
        let alone = !word || answer_text::clause_ends_at(tokens, c.end, tokens[i].line);
        c.placed = scaled || (alone && (at_start || (at_end && (!word || after_mark))));
        // "uno de los técnicos", "the new one": a pronoun, unless placed as a rating.
        let pronoun = tokens[i].is("uno") || tokens[i].is("one");
        if !(word && pronoun && !c.placed) {
            found.push(c);
        }
        i = c.end.max(i + 1);
    }
    found
}

/// The rating on a line that holds only it (and courtesy): "Excelente servicio" / "5".
fn alone_on_line(tokens: &[Token], line: Range<usize>, ranges: &[bool]) -> Option<Candidate> {
    let start = skip_courtesy(tokens, line.start, line.end);
    let mut c = candidate_at(tokens, start, ranges)?;
    (skip_courtesy(tokens, c.end, line.end) == line.end).then(|| {
        c.placed = true;
        c
    })
}

/// The first token from `i` (before `end`) that is not courtesy or punctuation.
fn skip_courtesy(tokens: &[Token], mut i: usize, end: usize) -> usize {
    while i < end {
        if let Some(next) = courtesy_at(tokens, i, &[]).filter(|&e| e <= end) {
            i = next;
        } else if tokens[i].kind == Kind::Mark && !is_star(&tokens[i]) {
            i += 1;
        } else {
            break;
        }
    }
    i
}

/// A rating written at token `i` (a number, a number word, or stars) that is not part of
/// something else, with its scale ("/5", "de 5", "estrellas").
fn candidate_at(tokens: &[Token], i: usize, ranges: &[bool]) -> Option<Candidate> {
    let t = tokens.get(i)?;
    if is_star(t) || is_empty_star(t) {
        return stars_at(tokens, i);
    }
    let value = number_value(t)?;
    if ranges[i] || !standalone(tokens, i) || names_something(tokens, i) {
        return None;
    }
    let mut c = Candidate {
        at: i,
        first: i,
        end: i + 1,
        value,
        other_scale: false,
        labelled: false,
        placed: false,
    };
    if let Some((end, scale)) = scale_after(tokens, i) {
        c.end = end;
        c.other_scale = scale != 5;
    }
    // "5 estrellas", "4/5 ⭐", "5 stars".
    if let Some(next) = tokens.get(c.end).filter(|n| n.line == t.line) {
        if STAR_WORDS.contains(&next.folded.as_str()) || is_star(next) {
            c.end += 1;
        }
    }
    // "5 de calificación", "5 (cinco)": the rating said again belongs to it.
    if let Some(end) = RATING_TAIL.longest_at(tokens, c.end, &[]) {
        c.end = end;
    }
    let restated = tokens.get(c.end).is_some_and(|o| o.is_mark('('))
        && tokens.get(c.end + 1).and_then(number_value) == Some(value)
        && tokens.get(c.end + 2).is_some_and(|o| o.is_mark(')'));
    if restated {
        c.end += 3;
    }
    Some(c)
}

/// A run of star emoji: "⭐⭐⭐⭐", "★★★☆☆" (filled stars count).
fn stars_at(tokens: &[Token], i: usize) -> Option<Candidate> {
    let line = tokens[i].line;
    let mut end = i;
    let mut filled = 0;
    while let Some(t) = tokens.get(end).filter(|t| t.line == line) {
        if is_star(t) {
            filled += 1;
        } else if !is_empty_star(t) && !t.is_mark('\u{fe0f}') {
            break;
        }
        end += 1;
    }
    // Stars are counted from the run's first star only.
    if i > 0
        && tokens[i - 1].line == line
        && (is_star(&tokens[i - 1]) || is_empty_star(&tokens[i - 1]))
    {
        return None;
    }
    (filled > 0).then_some(Candidate {
        at: i,
        first: i,
        end,
        value: filled,
        other_scale: false,
        labelled: false,
        placed: true,
    })
}

fn is_star(t: &Token) -> bool {
    ['⭐', '★', '🌟'].iter().any(|&c| t.is_mark(c))
}

fn is_empty_star(t: &Token) -> bool {
    t.is_mark('☆')
}

/// The value of a number (of one or two digits: "2026" and extensions are no rating) or of a
/// number word.
fn number_value(t: &Token) -> Option<u32> {
    match t.kind {
        Kind::Number if t.folded.len() <= 2 => t.folded.parse().ok(),
        Kind::Word => NUMBER_WORDS
            .iter()
            .find(|(w, _)| *w == t.folded)
            .map(|&(_, v)| v),
        _ => None,
    }
}

/// Whether the number at `i` stands alone: not glued to a word ("5to", "v2"), not part of a
/// date, time, phone, folio or decimal ("3/12", "10:30", "4.5", "MDA-2026-5"), not a price or a
/// percentage ("$5", "5%").
fn standalone(tokens: &[Token], i: usize) -> bool {
    let t = &tokens[i];
    if t.kind != Kind::Number {
        return true;
    }
    let glued = |a: &Token, b: &Token| a.end == b.start;
    if let Some(prev) = i.checked_sub(1).map(|p| &tokens[p]).filter(|p| glued(p, t)) {
        if prev.is_wordlike() || ['#', '$', '€', 'º', '°'].iter().any(|&c| prev.is_mark(c)) {
            return false;
        }
        let joined_to_more = ['/', '-', '.', ':', ',', '–']
            .iter()
            .any(|&c| prev.is_mark(c))
            && i >= 2
            && glued(&tokens[i - 2], prev)
            && tokens[i - 2].is_wordlike();
        if joined_to_more {
            return false;
        }
    }
    if let Some(next) = tokens.get(i + 1).filter(|n| glued(t, n)) {
        if next.is_wordlike() || ['%', '°', 'º'].iter().any(|&c| next.is_mark(c)) {
            return false;
        }
        let joined_to_more = ['/', '-', '.', ':', ',', '–']
            .iter()
            .any(|&c| next.is_mark(c))
            && tokens
                .get(i + 2)
                .is_some_and(|n2| glued(next, n2) && n2.kind == Kind::Number);
        if joined_to_more && scale_after(tokens, i).is_none() {
            return false;
        }
    }
    true
}

/// Whether the number at `i` counts something named around it: "ext. 5", "piso 3", "a las 5",
/// "dic 5", "3 días", "5 de diciembre".
fn names_something(tokens: &[Token], i: usize) -> bool {
    let line = tokens[i].line;
    let prev = tokens[..i]
        .iter()
        .rev()
        .take(3)
        .take_while(|p| p.line == line)
        .find(|p| p.is_wordlike());
    if prev.is_some_and(|p| {
        PREFIXES.contains(&p.folded.as_str()) || MONTHS.contains(&p.folded.as_str())
    }) {
        return true;
    }
    let next = tokens.get(i + 1).filter(|n| n.line == line);
    if next.is_some_and(|n| UNITS.contains(&n.folded.as_str())) {
        return true;
    }
    // "5 de diciembre".
    next.is_some_and(|n| n.is("de"))
        && tokens
            .get(i + 2)
            .is_some_and(|m| MONTHS.contains(&m.folded.as_str()))
}

/// The scale written after the number at `i`, and where it ends: "/5", "de 5", "sobre 10",
/// "out of 5", "de cinco".
fn scale_after(tokens: &[Token], i: usize) -> Option<(usize, u32)> {
    let t = &tokens[i];
    let next = tokens.get(i + 1).filter(|n| n.line == t.line)?;
    let (scale_at, glued_slash) = if next.is_mark('/') {
        (i + 2, next.start == t.end)
    } else if next.is("de") || next.is("sobre") || next.is("of") {
        (i + 2, false)
    } else if next.is("out") && tokens.get(i + 2).is_some_and(|o| o.is("of")) {
        (i + 3, false)
    } else {
        return None;
    };
    let scale_token = tokens.get(scale_at).filter(|s| s.line == t.line)?;
    let scale = number_value(scale_token).filter(|v| *v == 5 || *v == 10)?;
    // "3/5/2026" is a date, not "3 out of 5".
    let more = tokens.get(scale_at + 1).is_some_and(|after| {
        after.start == scale_token.end
            && ['/', '-', '.'].iter().any(|&c| after.is_mark(c))
            && tokens
                .get(scale_at + 2)
                .is_some_and(|n| n.kind == Kind::Number)
    });
    if more || (glued_slash && scale_token.start != next.end) {
        return None;
    }
    Some((scale_at + 1, scale))
}

/// The comment: the answer without the rating (and its label and scale), the separators
/// around it (" - ", ":", ",", "."), leading greetings, or `None` if nothing else is left.
fn comment(text: &str, tokens: &[Token], first: usize, end: usize) -> Option<String> {
    let (start, stop) = (tokens[first].start, tokens[end - 1].end);
    let separators = |c: char| c == ' ' || c == '\t' || "-–—:,.;=|/!¡".contains(c);
    let before = text[..start].trim_end_matches(separators);
    let after = text[stop..].trim_start_matches(separators);
    let before = if only_courtesy(&tokenize(before)) {
        ""
    } else {
        before
    };
    let joint = if before.ends_with('\n') || after.starts_with('\n') {
        "\n"
    } else {
        " "
    };
    let joined = format!("{}{joint}{}", before.trim(), after.trim());
    let lines: Vec<&str> = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .skip_while(|l| only_courtesy(&tokenize(l)))
        .collect();
    let rest = lines.join("\n");
    let rest_tokens = tokenize(&rest);
    if !rest_tokens.iter().any(Token::is_wordlike) || only_courtesy(&rest_tokens) {
        return None;
    }
    let bounded: String = rest.chars().take(MAX_COMMENT_CHARS).collect();
    Some(bounded.trim_end().to_string())
}

/// Number words, Spanish and English; out-of-range ones make an answer unreadable ("le doy un
/// diez").
const NUMBER_WORDS: &[(&str, u32)] = &[
    ("cero", 0),
    ("uno", 1),
    ("dos", 2),
    ("tres", 3),
    ("cuatro", 4),
    ("cinco", 5),
    ("seis", 6),
    ("siete", 7),
    ("ocho", 8),
    ("nueve", 9),
    ("diez", 10),
    ("zero", 0),
    ("one", 1),
    ("two", 2),
    ("three", 3),
    ("four", 4),
    ("five", 5),
    ("six", 6),
    ("seven", 7),
    ("eight", 8),
    ("nine", 9),
    ("ten", 10),
];

/// Words after a rating that say it is one: "5 estrellas".
const STAR_WORDS: &[&str] = &[
    "estrellas",
    "estrella",
    "stars",
    "star",
    "puntos",
    "points",
    "pts",
];

/// Words that announce a rating.
static LABEL: LazyLock<Phrases> = LazyLock::new(|| {
    Phrases::new(&[
        "mi|nuestra|la? calificacion|puntuacion|evaluacion|nota",
        "calificacion|calificaciones|califico|calificamos|calificaria|calificar|califica|puntuacion|puntaje|evaluacion|evaluo",
        "le|les|te doy|daria|damos|pongo|pondria",
        "doy|pongo",
        "rating|rate|score|grade",
        "i|we|i'd|we'd|id give|rate",
        "i|we would give|rate",
        "my rating|score",
        "give it|them|you",
    ])
});

/// Words after a rating that repeat that it is one: "5 de calificación".
static RATING_TAIL: LazyLock<Phrases> =
    LazyLock::new(|| Phrases::new(&["de calificacion|puntuacion|puntaje", "de rating"]));

/// Words that may stand between a label and its number.
const FILLERS: &[&str] = &[
    "es",
    "seria",
    "sera",
    "fue",
    "de",
    "del",
    "un",
    "una",
    "a",
    "an",
    "con",
    "el",
    "la",
    "al",
    "servicio",
    "atencion",
    "soporte",
    "ticket",
    "solicitud",
    "final",
    "general",
    "total",
    "como",
    "it",
    "them",
    "you",
    "the",
    "this",
    "service",
    "support",
    "of",
    "is",
    "would",
    "be",
    "my",
    "mi",
    "su",
    "me",
    "le",
    "les",
    "i",
];

/// Words before a number that say what it counts, so it is no rating.
const PREFIXES: &[&str] = &[
    "ext",
    "exts",
    "extension",
    "tel",
    "telefono",
    "cel",
    "piso",
    "planta",
    "nivel",
    "oficina",
    "edificio",
    "edif",
    "torre",
    "sala",
    "cubiculo",
    "modulo",
    "ventanilla",
    "area",
    "departamento",
    "depto",
    "direccion",
    "seccion",
    "zona",
    "region",
    "sector",
    "grupo",
    "turno",
    "folio",
    "ticket",
    "reporte",
    "caso",
    "no",
    "num",
    "numero",
    "nro",
    "paso",
    "pasos",
    "opcion",
    "inciso",
    "punto",
    "version",
    "ver",
    "v",
    "windows",
    "win",
    "office",
    "pagina",
    "pag",
    "hoja",
    "linea",
    "renglon",
    "capitulo",
    "lote",
    "calle",
    "av",
    "avenida",
    "col",
    "cp",
    "puerta",
    "caja",
    "equipo",
    "pc",
    "impresora",
    "monitor",
    "usuario",
    "clave",
    "codigo",
    "id",
    "las",
    "los",
    "dia",
    "hace",
    "room",
    "floor",
    "suite",
    "step",
    "option",
    "page",
    "line",
    "number",
    "case",
    "at",
    "x",
];

/// Words after a number that say what it counts: "3 días", "5 minutos".
const UNITS: &[&str] = &[
    "dia",
    "dias",
    "hora",
    "horas",
    "hr",
    "hrs",
    "h",
    "minuto",
    "minutos",
    "min",
    "mins",
    "segundo",
    "segundos",
    "seg",
    "semana",
    "semanas",
    "mes",
    "meses",
    "ano",
    "anos",
    "vez",
    "veces",
    "persona",
    "personas",
    "pm",
    "am",
    "equipos",
    "computadoras",
    "usuarios",
    "intentos",
    "llamadas",
    "correos",
    "archivos",
    "gb",
    "mb",
    "kb",
    "day",
    "days",
    "hour",
    "hours",
    "minute",
    "minutes",
    "week",
    "weeks",
    "month",
    "months",
    "year",
    "years",
    "time",
    "times",
    "people",
    "tecnicos",
    "veces",
];

const MONTHS: &[&str] = &[
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "setiembre",
    "octubre",
    "noviembre",
    "diciembre",
    "ene",
    "feb",
    "mar",
    "abr",
    "may",
    "jun",
    "jul",
    "ago",
    "sep",
    "sept",
    "oct",
    "nov",
    "dic",
    "january",
    "february",
    "march",
    "april",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "jan",
    "aug",
    "dec",
];

/// Requests to stop surveys. Only explicit ones: "no me molestan las encuestas" is none.
static OPT_OUT: LazyLock<Phrases> = LazyLock::new(|| {
    Phrases::new(&[
        "ya? no mas encuesta|encuestas",
        "ya? no quiero|queremos|deseo|deseamos recibir|contestar|responder? mas? la|las|estas|sus? encuesta|encuestas",
        "ya? no quiero|queremos que me|nos? envien|manden|lleguen mas? la|las|estas|sus? encuesta|encuestas",
        "ya? no me|nos envien|manden|envie|mande mas? la|las|estas|sus? encuesta|encuestas",
        "ya? no me|nos sigan enviando|mandando mas? la|las|estas|sus? encuesta|encuestas",
        "ya? no me|nos vuelvan a enviar|mandar la|las|estas|sus? encuesta|encuestas",
        "dejen|deje|dejar de enviar|mandar|enviarme|mandarme|enviarnos|mandarnos me|nos? mas? la|las|estas|sus? encuesta|encuestas",
        "de baja de|en? la|las|estas? encuesta|encuestas",
        "unsubscribe|unsuscribe|desuscribir|desuscribirme|desuscribe|opt-out|optout",
        "opt out",
        "no more survey|surveys",
        "stop sending|emailing me|us? these|the|any? survey|surveys",
        "don't|dont send|email me|us? any? more? survey|surveys",
        "do not send|email me|us? any? more? survey|surveys",
        "remove me from the|this|your? survey|surveys|list",
    ])
});

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fold::fold;

    fn rated(rating: u8, comment: Option<&str>) -> Answer {
        Answer::Rating {
            rating,
            comment: comment.map(String::from),
        }
    }

    #[test]
    fn ratings_with_and_without_comments() {
        let cases: &[(&str, Answer)] = &[
            ("5", rated(5, None)),
            ("5.", rated(5, None)),
            ("  4  \r\n", rated(4, None)),
            ("5 - excelente servicio", rated(5, Some("excelente servicio"))),
            (
                "Calificación: 4, tardaron un poco",
                rated(4, Some("tardaron un poco")),
            ),
            ("4/5", rated(4, None)),
            ("4 / 5", rated(4, None)),
            ("4 de 5", rated(4, None)),
            ("Le doy un 3", rated(3, None)),
            ("le doy 5 estrellas", rated(5, None)),
            ("mi calificación es 5. Muy amables", rated(5, Some("Muy amables"))),
            ("MI CALIFICACIÓN ES 5", rated(5, None)),
            ("5 estrellas", rated(5, None)),
            ("⭐⭐⭐⭐", rated(4, None)),
            ("⭐⭐⭐⭐⭐ excelente atención", rated(5, Some("excelente atención"))),
            ("★★★☆☆", rated(3, None)),
            ("cinco", rated(5, None)),
            ("Cinco!", rated(5, None)),
            ("cuatro, gracias", rated(4, None)),
            ("Rating: 2 - too slow", rated(2, Some("too slow"))),
            ("Five", rated(5, None)),
            ("I'd give it a 4", rated(4, None)),
            ("Excelente servicio, 5", rated(5, Some("Excelente servicio"))),
            ("Excelente servicio\n5", rated(5, Some("Excelente servicio"))),
            ("Hola, 5", rated(5, None)),
            ("Buen día\n\n5\n\nGracias", rated(5, None)),
            (
                "Buen día Tomás,\n4 - resolvieron rápido pero tuve que llamar dos veces",
                rated(4, Some("resolvieron rápido pero tuve que llamar dos veces")),
            ),
            (
                "Muy bien, le doy un 5 porque fueron rápidos",
                rated(5, Some("Muy bien porque fueron rápidos")),
            ),
            ("Califico el servicio con 4", rated(4, None)),
            ("Calificación del servicio:\n3", rated(3, None)),
            ("5 de 5", rated(5, None)),
            ("5/5 gracias!", rated(5, None)),
            ("5, un 5!", rated(5, Some("un 5!"))),
            (
                "5 - excelente, tardaron 2 días pero quedó",
                rated(5, Some("excelente, tardaron 2 días pero quedó")),
            ),
            (
                "Cinco, los dos técnicos muy amables",
                rated(5, Some("los dos técnicos muy amables")),
            ),
            ("5️⃣", rated(5, None)),
            ("Mi calificación es: 5 (cinco). Gracias", rated(5, None)),
            ("cinco (5)", rated(5, None)),
            ("Excelente servicio!!! 5!!!", rated(5, Some("Excelente servicio"))),
            ("Les doy un 5 de calificación", rated(5, None)),
            ("Nota: 5", rated(5, None)),
            ("Muy bien\n4\nSaludos", rated(4, Some("Muy bien"))),
            ("uno, pésimo", rated(1, Some("pésimo"))),
            ("Muy mal servicio, 1", rated(1, Some("Muy mal servicio"))),
            ("Score: 4 out of 5", rated(4, None)),
            ("I rate it 3", rated(3, None)),
            ("**5**", rated(5, None)),
            (
                "Atendieron mi reporte MDA-2026-000123 muy rápido, 5",
                rated(5, Some("Atendieron mi reporte MDA-2026-000123 muy rápido")),
            ),
            (
                "El 3 de diciembre me atendieron, 5",
                rated(5, Some("El 3 de diciembre me atendieron")),
            ),
            (
                "4. El técnico fue muy amable pero tardó 2 horas",
                rated(4, Some("El técnico fue muy amable pero tardó 2 horas")),
            ),
            (
                "5 - Excelente\n\n--\nJuan Pérez\nTel. 722 276 9600 ext. 4",
                rated(5, Some("Excelente")),
            ),
            // Signatures and their numbers are not ratings.
            (
                "5\n\nSaludos\nJuan Pérez\nDirección de Informática\nTel. 722 276 9600 ext. 5",
                rated(5, None),
            ),
            (
                "4\n\nAtentamente\nLic. María López\nTel. (722) 276-0000 ext. 3",
                rated(4, None),
            ),
            ("3\nJuan Pérez\nTel. 722 276 9600 ext. 5", rated(3, Some("Juan Pérez"))),
            ("5\n-- \nJuan Pérez\nOficina 2", rated(5, None)),
            ("5\n\nEnviado desde mi iPhone", rated(5, None)),
            // The survey's scale copied back is no rating; the answer below it is.
            (
                "Responda a este correo con un número del 1 al 5\n4",
                rated(4, Some("Responda a este correo con un número del 1 al 5")),
            ),
            ("Del 1 al 5 le doy 5", rated(5, Some("Del 1 al 5"))),
            (
                "4\n\nEl jue, 3 dic 2026 a las 10:00, Mesa de Ayuda <mesadeayuda@edomex.gob.mx> escribió:\n> Responda con un número del 1 al 5",
                rated(4, None),
            ),
        ];
        let mut failures = Vec::new();
        for (input, want) in cases {
            let got = read_answer(input);
            if &got != want {
                failures.push(format!("{input:?}: got {got:?}, want {want:?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn what_is_not_one_rating_is_unreadable() {
        let cases = [
            "",
            "   ",
            "Gracias",
            "Excelente servicio",
            "👍",
            "10",
            "0",
            "7",
            "Le doy un 10",
            "10 de 10",
            "8/10",
            "le doy un diez",
            "entre 3 y 4",
            "3 o 4",
            "4 o 5, no sé",
            "4.5",
            "1 al 5",
            "del 1 al 5",
            "1-5",
            "MDA-2026-000123",
            "Folio MDA-2026-000123",
            "ext. 60100",
            "2026",
            "Tel. 722 276 9600 ext. 5",
            "Excelente servicio\nSaludos\nJuan Pérez\nTel. 722 276 9600 ext. 5",
            "Muy buen servicio\nJuan Pérez\nExt. 3",
            "Gracias\nJuan Pérez\nRH 2",
            "Muy buena atención\nJuan Pérez\nPiso 3, Edificio B",
            "Me atendieron en 5 minutos",
            "Lo resolvieron a las 5",
            "Vinieron el 5 de diciembre",
            "Me atendió 1 persona",
            "Tardaron 3 días",
            "5 5 5 5 5",
            "Uno de los técnicos fue muy amable",
            "The new one works",
            "3/12/2026",
            "10:30",
            "5%",
            "2do piso",
            "Windows 10",
            "5.0",
            "4,5",
            "5 (cuatro)",
            "Gracias. Excelente.\nJuan Pérez\nExt. 60100",
            "Excelente servicio\nJuan Pérez\nDirección 4",
        ];
        let failures: Vec<String> = cases
            .iter()
            .filter_map(|input| {
                let got = read_answer(input);
                (got != Answer::Unreadable).then(|| format!("{input:?}: got {got:?}"))
            })
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn explicit_requests_to_stop_surveys_opt_out() {
        for input in [
            "no más encuestas",
            "No mas encuestas por favor",
            "no quiero encuestas",
            "Ya no quiero recibir más encuestas",
            "no me envíen encuestas",
            "No me manden más encuestas, gracias",
            "dejen de enviar encuestas",
            "Favor de dejar de enviarme estas encuestas",
            "5. Y no me envíen más encuestas",
            "unsubscribe",
            "Unsubscribe me please",
            "no more surveys",
            "stop sending surveys",
            "Please stop sending me these surveys",
            "Don't send me any more surveys",
            "Quiero darme de baja de las encuestas",
        ] {
            assert_eq!(read_answer(input), Answer::OptOut, "{input}");
        }
        for input in [
            "5, no me molestan las encuestas",
            "5 - me gustó la encuesta",
            "Encuestas: 4",
        ] {
            assert_ne!(read_answer(input), Answer::OptOut, "{input}");
        }
    }

    #[test]
    fn the_comment_is_bounded() {
        let long = format!("5 - {}", "muy buen servicio ".repeat(100));
        let Answer::Rating {
            rating: 5,
            comment: Some(comment),
        } = read_answer(&long)
        else {
            panic!("not a rating");
        };
        assert!(comment.chars().count() <= MAX_COMMENT_CHARS);
        assert!(comment.starts_with("muy buen servicio"));
    }

    #[test]
    fn huge_input_is_cheap_and_unreadable() {
        for huge in [
            "a".repeat(1_000_000),
            "9".repeat(1_000_000),
            "5 ".repeat(500_000),
            "1 al 5 ".repeat(150_000),
            "⭐".repeat(300_000),
            format!("Excelente {}", "muy bien ".repeat(120_000)),
            "\n".repeat(1_000_000),
        ] {
            assert_eq!(read_answer(&huge), Answer::Unreadable);
        }
    }

    #[test]
    fn answers_serialise_tagged() {
        let json = serde_json::to_string(&rated(4, Some("rápido"))).unwrap();
        assert_eq!(json, r#"{"answer":"rating","rating":4,"comment":"rápido"}"#);
        assert_eq!(
            serde_json::to_string(&Answer::OptOut).unwrap(),
            r#"{"answer":"opt_out"}"#
        );
    }

    #[test]
    fn word_lists_are_written_folded() {
        for phrases in [&*LABEL, &*OPT_OUT, &*RATING_TAIL] {
            for w in phrases.words() {
                assert!(!w.is_empty());
                assert_eq!(fold(w), w, "{w} is not folded");
            }
        }
        for list in [STAR_WORDS, FILLERS, PREFIXES, UNITS, MONTHS] {
            for w in list {
                assert_eq!(&fold(w), w);
            }
        }
        for (w, _) in NUMBER_WORDS {
            assert_eq!(&fold(w), w);
        }
    }
}
