//! A requester's short answer made ready to judge, shared by [`super::validation`] (the answer to
//! "your ticket was resolved, please confirm") and [`super::survey`] (the answer to a
//! satisfaction survey): bounded, with stray history, the signature and contact lines removed,
//! cut into tokens; plus the courtesy words (greetings, thanks, sign-offs) both judges look
//! through, and a small phrase matcher over tokens.
//!
//! Why tokens and not regular expressions: both judges need whole words on folded text, the
//! punctuation around them (a `?` makes a question, a `/` makes "4/5"), and the byte span of
//! what they matched in the writer's own text (the survey's comment is what is left). One linear
//! tokeniser gives all three; phrase lists then stay readable data.
//!
//! Cost is bounded whatever the mail: only the first [`MAX_CHARS`] characters and
//! [`MAX_LINES`] non-blank lines are looked at, and every later step is linear in that.

use std::ops::Range;
use std::sync::LazyLock;

use crate::fold::fold;

/// Characters of the new text looked at. A confirmation or a rating is a line or two; 2,000
/// characters hold a short answer with a long signature, and keep a hostile megabyte cheap.
pub(crate) const MAX_CHARS: usize = 2_000;

/// Non-blank lines looked at, for the same reason (HTML-derived text has many blank lines,
/// which are not counted).
pub(crate) const MAX_LINES: usize = 40;

/// Lines longer than this are never signature machinery (attributions, sign-offs, contact
/// lines are short); it also bounds the work spent on each such check.
const MAX_MACHINERY_LINE: usize = 400;

/// A name after a sign-off ("Saludos, Lic. Juan Pérez López") has at most this many words.
const MAX_NAME_WORDS: usize = 4;

/// A line of a signature ("Dirección General de Innovación Gubernamental") has at most this many
/// words.
const MAX_NAME_LINE_WORDS: usize = 8;

/// What kind of text a [`Token`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Letters, with inner apostrophes or hyphens ("doesn't", "opt-out").
    Word,
    /// ASCII digits.
    Number,
    /// Any other visible character, one per token (punctuation, emoji).
    Mark,
}

/// One piece of the answer: a word, a number or a mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: Kind,
    /// Folded ([`crate::fold`]) text; for a mark, the character itself.
    pub folded: String,
    /// Byte span in [`Answer::text`].
    pub start: usize,
    pub end: usize,
    /// Line number in [`Answer::text`], from 0.
    pub line: usize,
    /// Whether the writer began it with a capital letter (names in greetings and sign-offs).
    pub capital: bool,
}

impl Token {
    /// A word or a number: what phrases are made of and what is counted.
    pub(crate) fn is_wordlike(&self) -> bool {
        self.kind != Kind::Mark
    }

    /// Whether this is the mark `c`.
    pub(crate) fn is_mark(&self, c: char) -> bool {
        self.kind == Kind::Mark && self.folded.starts_with(c)
    }

    /// Whether this is the word (or number) `w` (folded).
    pub(crate) fn is(&self, w: &str) -> bool {
        self.is_wordlike() && self.folded == w
    }
}

/// The answer as the judges see it.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    /// The meaningful lines, trimmed, one per line, in the writer's own spelling.
    pub text: String,
    pub tokens: Vec<Token>,
    /// Meaningful text went on past [`MAX_CHARS`] or [`MAX_LINES`]: the judges saw only part
    /// of it. A signature, a disclaimer or history past the limit does not count.
    pub truncated: bool,
}

impl Answer {
    /// Whether the answer has any word or number at all (not only emoji or punctuation).
    pub(crate) fn has_words(&self) -> bool {
        self.tokens.iter().any(Token::is_wordlike)
    }
}

/// The part of `new_content` a judge should read: the first [`MAX_CHARS`] characters and
/// [`MAX_LINES`] non-blank lines; without stray history (quoted lines, "El …, X escribió:" and
/// what follows, reply headers: [`crate::inbound::quote::reply_content`] run again, since a
/// stray one must not flip a verdict), mobile signatures, the signature after a `--` line, a
/// sign-off ("Saludos", "Atentamente", "Regards", … on its own line, with a name) or a legal
/// disclaimer, and without contact lines (phones, extensions, addresses). A postscript ("PD:")
/// after a signature is meaningful again. The first meaningful line is never taken for a
/// sign-off or a disclaimer: "Saludos" first is a greeting.
pub(crate) fn prepare(new_content: &str) -> Answer {
    let end = new_content
        .char_indices()
        .nth(MAX_CHARS)
        .map_or(new_content.len(), |(i, _)| i);
    let (head, rest) = new_content.split_at(end);
    let mut cut_short = !rest.trim().is_empty();
    // `lines()` splits on "\n" and "\r\n" only; old Mac mail ends lines with a lone "\r".
    let head = head.replace("\r\n", "\n").replace('\r', "\n");
    let typed = crate::inbound::quote::reply_content(&head);
    let lines: Vec<&str> = typed
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.len() > MAX_LINES {
        cut_short = true;
    }
    let mut kept: Vec<&str> = Vec::new();
    let mut in_signature = false;
    let mut history = false;
    for line in lines.iter().take(MAX_LINES) {
        if is_separator(line) {
            in_signature = true;
            continue;
        }
        if is_attribution(line) {
            // A wrapped Gmail attribution starts a line or two higher ("El jue, 3 dic 2026 a
            // las 10:00, Mesa de Ayuda <" / "mesa@… escribió:").
            for _ in 0..2 {
                if kept.last().is_some_and(|l| starts_attribution(l)) {
                    kept.pop();
                }
            }
            history = true;
            break;
        }
        if in_signature {
            if is_postscript(line) {
                in_signature = false;
            } else {
                continue;
            }
        }
        if !kept.is_empty() && (is_sign_off(line) || is_disclaimer(line)) {
            in_signature = true;
            continue;
        }
        if is_contact(line) {
            continue;
        }
        kept.push(line);
    }
    let text = kept.join("\n");
    let tokens = tokenize(&text);
    Answer {
        text,
        tokens,
        truncated: cut_short && !in_signature && !history,
    }
}

/// Cuts `text` into tokens, in one pass.
pub(crate) fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    let mut line = 0;
    while let Some((start, c)) = chars.next() {
        if c == '\n' {
            line += 1;
            continue;
        }
        if c.is_whitespace() {
            continue;
        }
        let kind = if c.is_alphabetic() {
            Kind::Word
        } else if c.is_ascii_digit() {
            Kind::Number
        } else {
            Kind::Mark
        };
        let mut end = start + c.len_utf8();
        match kind {
            Kind::Word => {
                // Letters, and an apostrophe or hyphen between letters ("it's", "e-mail").
                while let Some(&(i, next)) = chars.peek() {
                    let joins = matches!(next, '\'' | '’' | '-')
                        && text[i + next.len_utf8()..]
                            .chars()
                            .next()
                            .is_some_and(char::is_alphabetic);
                    if !next.is_alphabetic() && !joins {
                        break;
                    }
                    end = i + next.len_utf8();
                    chars.next();
                }
            }
            Kind::Number => {
                while let Some(&(i, next)) = chars.peek() {
                    if !next.is_ascii_digit() {
                        break;
                    }
                    end = i + 1;
                    chars.next();
                }
            }
            Kind::Mark => {}
        }
        let raw = &text[start..end];
        let folded = match kind {
            Kind::Word => fold(raw).replace('’', "'"),
            _ => raw.to_string(),
        };
        tokens.push(Token {
            kind,
            folded,
            start,
            end,
            line,
            capital: c.is_uppercase(),
        });
    }
    tokens
}

/// The index ranges of `tokens` on each line that has any.
pub(crate) fn lines(tokens: &[Token]) -> Vec<Range<usize>> {
    let mut lines: Vec<Range<usize>> = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        match lines.last_mut() {
            Some(last) if tokens[last.start].line == t.line => last.end = i + 1,
            _ => lines.push(i..i + 1),
        }
    }
    lines
}

/// Where a trailing block of name and title lines starts, as a token index (`tokens.len()`
/// when there is none): "Lic. Juan Pérez López" / "Jefe de la Unidad de Informática" /
/// "Secretaría del Trabajo", a signature without a sign-off. The first line is never part of
/// it. Judges may leave these words out of a count, never out of what they look for: a
/// complaint in capitals is still a complaint.
pub(crate) fn name_block_start(tokens: &[Token]) -> usize {
    let mut start = tokens.len();
    for line in lines(tokens).into_iter().skip(1).rev() {
        if !is_name_line(&tokens[line.clone()]) {
            break;
        }
        start = line.start;
    }
    start
}

/// Words that join the capitalised words of a name or a title ("Jefe de la Unidad").
const NAME_JOINERS: &[&str] = &[
    "de", "del", "la", "las", "los", "el", "y", "e", "en", "para", "a", "al", "of", "the", "and",
    "for", "at",
];

/// A line of capitalised words (and the small words between them), without numbers or
/// questions: a name, a position, a department.
fn is_name_line(tokens: &[Token]) -> bool {
    let words = tokens.iter().filter(|t| t.kind == Kind::Word).count();
    (1..=MAX_NAME_LINE_WORDS).contains(&words)
        && tokens.iter().all(|t| match t.kind {
            Kind::Word => {
                t.capital
                    || NAME_JOINERS.contains(&t.folded.as_str())
                    || TITLES.contains(&t.folded.as_str())
            }
            Kind::Number => false,
            Kind::Mark => !['?', '¿', '!', '¡'].iter().any(|&c| t.is_mark(c)),
        })
}

/// One place of a phrase: one of some words, or the end of a clause; maybe optional.
#[derive(Debug)]
struct Slot {
    alternatives: Vec<String>,
    /// `$` among the alternatives: the clause may end here (zero-width: the next token is a
    /// mark, on another line, or there is none).
    or_end: bool,
    optional: bool,
}

/// A list of phrases to find in tokens, written as readable data.
///
/// Each phrase is slots separated by spaces; a slot is folded words separated by `|`, `?` after
/// it makes it optional, and `$` is the end of a clause: `"ya quedo|quedaron"`,
/// `"gracias por su|tu? ayuda|apoyo"`, `"no se $|si|que"`. A phrase matches consecutive word
/// tokens on one line: punctuation between words breaks it, so "sí, gracias" is two phrases.
#[derive(Debug)]
pub(crate) struct Phrases {
    phrases: Vec<Vec<Slot>>,
}

impl Phrases {
    pub(crate) fn new(patterns: &[&str]) -> Phrases {
        let phrases = patterns
            .iter()
            .map(|p| {
                p.split_whitespace()
                    .map(|slot| {
                        let optional = slot.ends_with('?');
                        let words = slot.trim_end_matches('?').split('|');
                        Slot {
                            alternatives: words
                                .clone()
                                .filter(|w| *w != "$")
                                .map(String::from)
                                .collect(),
                            or_end: words.clone().any(|w| w == "$"),
                            optional,
                        }
                    })
                    .collect()
            })
            .collect();
        Phrases { phrases }
    }

    /// The end (exclusive) of the longest phrase starting at token `i` whose tokens are all
    /// free (not marked in `used`; positions past `used`'s end are free).
    pub(crate) fn longest_at(&self, tokens: &[Token], i: usize, used: &[bool]) -> Option<usize> {
        let first = tokens.get(i).filter(|t| t.is_wordlike())?;
        self.phrases
            .iter()
            .filter_map(|slots| match_slots(slots, tokens, i, first.line, used))
            .filter(|&end| end > i)
            .max()
    }

    /// Every word of every phrase, for the test that they are written folded.
    #[cfg(test)]
    pub(crate) fn words(&self) -> Vec<&str> {
        self.phrases
            .iter()
            .flatten()
            .flat_map(|slot| slot.alternatives.iter().map(String::as_str))
            .collect()
    }
}

/// Longest match of `slots` from token `i` (all on `line`), by trying each optional slot with
/// and without its word. Phrases have a handful of slots, so this stays small.
fn match_slots(
    slots: &[Slot],
    tokens: &[Token],
    i: usize,
    line: usize,
    used: &[bool],
) -> Option<usize> {
    let Some((slot, rest)) = slots.split_first() else {
        return Some(i);
    };
    let word = tokens
        .get(i)
        .filter(|t| {
            t.is_wordlike()
                && t.line == line
                && !used.get(i).copied().unwrap_or(false)
                && slot.alternatives.contains(&t.folded)
        })
        .and_then(|_| match_slots(rest, tokens, i + 1, line, used));
    let end = (slot.or_end && clause_ends_at(tokens, i, line))
        .then(|| match_slots(rest, tokens, i, line, used))
        .flatten();
    let skipped = slot
        .optional
        .then(|| match_slots(rest, tokens, i, line, used))
        .flatten();
    word.max(end).max(skipped)
}

/// Whether a clause ends before token `i` (a mark, another line, or the end).
pub(crate) fn clause_ends_at(tokens: &[Token], i: usize, line: usize) -> bool {
    tokens
        .get(i)
        .is_none_or(|t| t.kind == Kind::Mark || t.line != line)
}

/// Greetings, thanks, good wishes and sign-offs: what a courteous answer wraps around its
/// content, in Spanish (es-MX) and English.
pub(crate) static COURTESY: LazyLock<Phrases> = LazyLock::new(|| {
    Phrases::new(&[
        // Greetings.
        "hola a? todos|todas?",
        "buen|buenos dia|dias",
        "buenas tardes|noches?",
        "que tal",
        "estimado|estimada|estimados|estimadas|apreciable|apreciables",
        "hi|hello|hey|dear",
        "good morning|afternoon|evening",
        // Thanks.
        "muchas|mil|muchisimas|infinitas gracias",
        "gracias por su|tu|la|el? ayuda|apoyo|atencion|respuesta|seguimiento|solucion|tiempo|paciencia",
        "gracias por todo",
        "gracias por la pronta respuesta|atencion",
        "gracias",
        "le|les|te agradezco|agradecemos mucho?",
        "agradezco|agradecemos su|tu|el|la? apoyo|ayuda|atencion?",
        "se agradece|agradecen",
        "muy agradecido|agradecida",
        "thanks|thank|thx|ty",
        "thank you very? much?",
        "thanks a lot",
        "many thanks",
        "thanks for your|the help|support|assistance",
        "much appreciated",
        "appreciate it",
        "por favor",
        "please",
        // Good wishes.
        "que tenga|tengan|tengas un|una? buen|excelente|bonito|lindo|feliz|gran dia|tarde|fin|noche",
        "excelente|bonito|lindo|feliz|buen dia|tarde|fin",
        "buen fin de semana",
        "have a nice|good|great day|weekend",
        // Sign-offs.
        "saludos cordiales?",
        "un|muchos saludos",
        "atentamente|atte|att|cordialmente|sinceramente",
        "quedo atento|atenta|atentos|pendiente",
        "quedo|quedamos a|al sus|tus|la? ordenes|orden",
        "a sus|tus ordenes",
        "best|kind|warm regards",
        "regards|cheers|sincerely|best",
    ])
});

/// Sign-offs that start a signature block when they begin a line.
static SIGN_OFF: LazyLock<Phrases> = LazyLock::new(|| {
    Phrases::new(&[
        "saludos cordiales?",
        "un|muchos saludos",
        "atentamente|atte|att|cordialmente|sinceramente",
        "muchas? gracias y saludos",
        "quedo atento|atenta|atentos",
        "quedo a sus|tus ordenes",
        "best|kind|warm regards",
        "regards|cheers|sincerely|best",
        "thanks and regards",
    ])
});

/// The courtesy phrase starting at token `i`, if one does: its end (exclusive).
pub(crate) fn courtesy_at(tokens: &[Token], i: usize, used: &[bool]) -> Option<usize> {
    COURTESY.longest_at(tokens, i, used)
}

/// Whether `tokens` are only courtesy: courtesy phrases and punctuation, with at most a short
/// capitalised name after them ("Buen día Tomás,", "Gracias, Juan Pérez"). Never true with a
/// number in it, nor without a courtesy phrase.
pub(crate) fn only_courtesy(tokens: &[Token]) -> bool {
    let mut courtesy = false;
    let mut names = 0;
    let mut i = 0;
    while i < tokens.len() {
        if let Some(end) = courtesy_at(tokens, i, &[]) {
            courtesy = true;
            i = end;
            continue;
        }
        let t = &tokens[i];
        match t.kind {
            Kind::Mark => {}
            Kind::Number => return false,
            Kind::Word if courtesy && (t.capital || TITLES.contains(&t.folded.as_str())) => {
                names += 1;
            }
            Kind::Word => return false,
        }
        i += 1;
    }
    courtesy && names <= MAX_NAME_WORDS
}

/// Titles written before a name ("Lic. Tomás"), lower case or not.
const TITLES: &[&str] = &[
    "lic", "ing", "mtro", "mtra", "dr", "dra", "sr", "sra", "srta", "c", "p", "arq", "prof",
    "profa",
];

/// A signature separator on its own line: `-- ` (trimmed), a dash rule, underscores.
fn is_separator(line: &str) -> bool {
    matches!(line, "--" | "---" | "—" | "–" | "__" | "___")
}

/// A reply attribution ("El jue, 3 dic 2026 a las 10:00, Mesa de Ayuda <…> escribió:",
/// "On Thu, … wrote:"): everything from it on is history.
fn is_attribution(line: &str) -> bool {
    if line.len() > MAX_MACHINERY_LINE {
        return false;
    }
    let folded = fold(line);
    let folded = folded.trim_end_matches(['*', ' ']);
    ["escribio:", "wrote:", "schrieb:"]
        .iter()
        .any(|tail| folded.ends_with(tail))
}

/// The first line of an attribution wrapped over several lines: "El …"/"On …" with a date.
fn starts_attribution(line: &str) -> bool {
    let folded = fold(line);
    (folded.starts_with("el ") || folded.starts_with("on "))
        && folded.contains(|c: char| c.is_ascii_digit())
        && !folded.ends_with(['.', '!', '?'])
}

/// "PD:", "P.D.", "PS:", "P.S.", "Posdata": the writer speaks again after the signature.
fn is_postscript(line: &str) -> bool {
    let folded: String = fold(line)
        .chars()
        .take(12)
        .filter(|c| !c.is_whitespace() && *c != '.')
        .collect();
    ["pd:", "ps:", "posdata"]
        .iter()
        .any(|p| folded.starts_with(p))
        || ["pd", "ps"].contains(&folded.as_str())
}

/// A sign-off line: a sign-off phrase first, then only punctuation, courtesy and at most a
/// short capitalised name ("Saludos cordiales,", "Atte. Lic. Juan Pérez", "Regards, Ann").
/// "Saludos, ya quedó" is not one: "ya quedó" is no name.
fn is_sign_off(line: &str) -> bool {
    if line.len() > MAX_MACHINERY_LINE {
        return false;
    }
    let tokens = tokenize(line);
    let Some(end) = SIGN_OFF.longest_at(&tokens, 0, &[]) else {
        return false;
    };
    let rest = &tokens[end..];
    rest.iter().all(|t| t.kind == Kind::Mark) || only_courtesy_after_sign_off(rest)
}

/// The rest of a sign-off line: courtesy, "y"/"and", and a short capitalised name.
fn only_courtesy_after_sign_off(rest: &[Token]) -> bool {
    let mut names = 0;
    let mut i = 0;
    while i < rest.len() {
        if let Some(end) = courtesy_at(rest, i, &[]) {
            i = end;
            continue;
        }
        let t = &rest[i];
        match t.kind {
            Kind::Mark => {}
            Kind::Word if t.is("y") || t.is("and") => {}
            Kind::Word if t.capital || TITLES.contains(&t.folded.as_str()) => names += 1,
            _ => return false,
        }
        i += 1;
    }
    names <= MAX_NAME_WORDS
}

/// Legal and environmental disclaimers at the foot of institutional mail, by how they start.
static DISCLAIMER: LazyLock<Phrases> = LazyLock::new(|| {
    Phrases::new(&[
        "aviso de confidencialidad|privacidad",
        "aviso legal",
        "confidencialidad $",
        "la informacion contenida en este|esta",
        "este correo|mensaje electronico? y? sus? anexos|adjuntos? es|son|esta|estan confidencial|confidenciales|dirigido|privado",
        "este correo|mensaje electronico? y? sus? anexos|adjuntos? contiene|contienen|puede|pueden|podria informacion|contener",
        "antes de imprimir",
        "confidentiality notice",
        "this e-mail|email|message and? any? attachments? is|are|contains|may",
        "disclaimer",
    ])
});

/// A line starting a disclaimer; everything after it is signature.
fn is_disclaimer(line: &str) -> bool {
    // Recognised by its start, so a long disclaimer is not tokenised whole.
    let start = line
        .char_indices()
        .nth(MAX_MACHINERY_LINE)
        .map_or(line, |(i, _)| &line[..i]);
    DISCLAIMER.longest_at(&tokenize(start), 0, &[]).is_some()
}

/// Words that say a line is contact data ("Tel.", "ext.", "Correo:", …), folded.
const CONTACT_LABELS: &[&str] = &[
    "tel",
    "tels",
    "telefono",
    "telefonos",
    "cel",
    "celular",
    "movil",
    "fax",
    "ext",
    "exts",
    "extension",
    "extensiones",
    "conmutador",
    "conm",
    "red",
    "directo",
    "oficina",
    "of",
    "phone",
    "ph",
    "mobile",
    "cell",
    "office",
    "direct",
    "email",
    "e-mail",
    "correo",
    "mail",
    "web",
    "whatsapp",
    "wa",
];

/// Words that may join contact data without saying it is contact data ("722 1234 o 722 5678").
const CONTACT_JOINERS: &[&str] = &["y", "and", "o", "or"];

/// A contact line: only phone numbers, extensions, addresses and their labels ("Tel. 722 276
/// 9600 ext. 5", "(722) 276-9600", "juan@edomex.gob.mx", "www.edomex.gob.mx"), with a label, an
/// address or at least seven digits. Dropped so that their digits are never read as a rating; a
/// line with any other word is kept, so "no puedo marcar a la ext. 5" stays.
fn is_contact(line: &str) -> bool {
    if line.len() > MAX_MACHINERY_LINE {
        return false;
    }
    let mut digits = 0;
    let mut labelled = false;
    for word in line.split_whitespace() {
        let folded = fold(word);
        if folded.contains('@') || folded.starts_with("http") || folded.starts_with("www.") {
            labelled = true;
            digits += 1;
            continue;
        }
        if CONTACT_JOINERS.contains(&folded.as_str()) {
            continue;
        }
        // A label, maybe glued to its value: "Tel.", "ext.5", "tel:7222769600".
        let letters = folded
            .find(|c: char| !c.is_alphabetic() && c != '-')
            .unwrap_or(folded.len());
        let (head, value) = folded.split_at(letters);
        if !head.is_empty() {
            if !CONTACT_LABELS.contains(&head) {
                return false;
            }
            labelled = true;
        }
        // The value: digits and punctuation ("(722)", "276-9600", "|").
        if value.chars().any(char::is_alphabetic) {
            return false;
        }
        digits += value.chars().filter(char::is_ascii_digit).count();
    }
    digits > 0 && (labelled || digits >= 7)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(answer: &Answer) -> Vec<&str> {
        answer.tokens.iter().map(|t| t.folded.as_str()).collect()
    }

    #[test]
    fn tokens_are_folded_whole_words_with_spans() {
        let text = "Sí, ya quedó!\nIt doesn't work: 4/5 ⭐";
        let tokens = tokenize(text);
        let folded: Vec<&str> = tokens.iter().map(|t| t.folded.as_str()).collect();
        assert_eq!(
            folded,
            ["si", ",", "ya", "quedo", "!", "it", "doesn't", "work", ":", "4", "/", "5", "⭐"]
        );
        assert_eq!(&text[tokens[3].start..tokens[3].end], "quedó");
        assert_eq!(tokens[5].line, 1);
        assert!(tokens[0].capital && !tokens[2].capital);
    }

    #[test]
    fn phrases_match_whole_words_on_one_line_without_punctuation_between() {
        let p = Phrases::new(&["ya quedo|quedaron", "gracias por su? ayuda", "no se $|si"]);
        let t = tokenize("ya quedó");
        assert_eq!(p.longest_at(&t, 0, &[]), Some(2));
        let t = tokenize("ya, quedó");
        assert_eq!(p.longest_at(&t, 0, &[]), None);
        let t = tokenize("ya\nquedó");
        assert_eq!(p.longest_at(&t, 0, &[]), None);
        let t = tokenize("gracias por ayuda y gracias por su ayuda");
        assert_eq!(p.longest_at(&t, 0, &[]), Some(3));
        assert_eq!(p.longest_at(&t, 4, &[]), Some(8));
        assert_eq!(p.longest_at(&tokenize("no sé."), 0, &[]), Some(2));
        assert_eq!(p.longest_at(&tokenize("no sé si"), 0, &[]), Some(3));
        assert_eq!(p.longest_at(&tokenize("no se abre"), 0, &[]), None);
        // A used token is not free.
        let t = tokenize("ya quedó");
        assert_eq!(p.longest_at(&t, 0, &[false, true]), None);
    }

    #[test]
    fn courtesy_lists_are_written_folded() {
        for phrases in [&*COURTESY, &*SIGN_OFF, &*DISCLAIMER] {
            for w in phrases.words() {
                assert!(!w.is_empty(), "empty alternative");
                assert_eq!(fold(w), w, "{w} is not folded");
            }
        }
    }

    #[test]
    fn signature_after_a_sign_off_or_dashes_is_dropped() {
        let cases = [
            (
                "Sí, ya quedó.\n\nSaludos\nJuan Pérez\nDirección de Informática\nTel. 722 276 9600 ext. 5",
                "Sí, ya quedó.",
            ),
            ("Confirmo\n-- \nJuan Pérez\nJefe de Oficina", "Confirmo"),
            ("5\nAtte. Lic. Juan Pérez López\nNómina", "5"),
            ("Ya quedó\nSaludos cordiales,\nAna", "Ya quedó"),
            ("Listo\nRegards, Ann Smith", "Listo"),
            (
                "Ya quedó\nEste correo electrónico contiene información confidencial…",
                "Ya quedó",
            ),
            (
                "Ya quedó\nEste mensaje es para avisar que ya funciona",
                "Ya quedó\nEste mensaje es para avisar que ya funciona",
            ),
            // "Saludos" first is a greeting, not a signature.
            ("Saludos\nYa quedó", "Saludos\nYa quedó"),
            // Not a sign-off: what follows is no name.
            ("Buen día\nSaludos, ya quedó", "Buen día\nSaludos, ya quedó"),
            // A postscript is meaningful again.
            (
                "Ya quedó\nSaludos\nJuan\nPD: la impresora sigue fallando",
                "Ya quedó\nPD: la impresora sigue fallando",
            ),
            (
                "Sí gracias\n\nAVISO DE CONFIDENCIALIDAD: este correo es confidencial, si no es usted el destinatario…",
                "Sí gracias",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(prepare(input).text, want, "{input:?}");
        }
    }

    #[test]
    fn mobile_signatures_quotes_and_stray_attributions_are_dropped() {
        let cases = [
            ("Sí\n\nEnviado desde mi iPhone", "Sí"),
            ("Ya quedó\r\n\r\nObtener Outlook para Android", "Ya quedó"),
            ("yes\n\nSent from my iPhone", "yes"),
            (
                "Sí, gracias\nEl jue, 3 dic 2026 a las 10:00, Mesa de Ayuda <mesadeayuda@edomex.gob.mx> escribió:\nSu solicitud fue marcada como resuelta",
                "Sí, gracias",
            ),
            (
                "Sí, gracias\nEl jue, 3 dic 2026 a las 10:00, Mesa de Ayuda <\nmesadeayuda@edomex.gob.mx> escribió:\nSu solicitud",
                "Sí, gracias",
            ),
            ("5 excelente\n> Responda con un número del 1 al 5", "5 excelente"),
            ("Confirmo\rGracias", "Confirmo\nGracias"),
        ];
        for (input, want) in cases {
            assert_eq!(prepare(input).text, want, "{input:?}");
        }
    }

    #[test]
    fn contact_lines_are_dropped_other_lines_with_numbers_kept() {
        for line in [
            "Tel. 722 276 9600 ext. 5",
            "Tel: (722) 276-9600 Ext: 60100",
            "722 276 9600",
            "ext.5",
            "Correo: juan.perez@edomex.gob.mx",
            "www.edomex.gob.mx",
            "Cel. 722 123 4567 | Oficina 722 276 0000",
        ] {
            assert!(is_contact(line), "{line}");
        }
        for line in [
            "5",
            "4/5",
            "2026",
            "no puedo marcar a la ext. 5",
            "MDA-2026-000123",
            "Calificación: 4",
            "Tel.",
        ] {
            assert!(!is_contact(line), "{line}");
        }
        assert_eq!(
            prepare("5\nJuan Pérez\nTel. 722 276 9600 ext. 3").text,
            "5\nJuan Pérez"
        );
    }

    #[test]
    fn html_blank_lines_and_whitespace_do_not_count() {
        let a = prepare("\n\n   Sí   \n\n\n\n\n\n   gracias  \n\n");
        assert_eq!(a.text, "Sí\ngracias");
        assert!(!a.truncated);
        assert_eq!(words(&a), ["si", "gracias"]);
    }

    #[test]
    fn long_input_is_bounded_and_marked_truncated() {
        let huge = "palabra ".repeat(200_000);
        let a = prepare(&huge);
        assert!(a.truncated);
        assert!(a.text.chars().count() <= MAX_CHARS);
        let many_lines = "línea\n".repeat(1_000);
        let a = prepare(&many_lines);
        assert!(a.truncated);
        assert_eq!(a.text.lines().count(), MAX_LINES);
        // Whitespace past the limit is nothing.
        let a = prepare(&format!("Sí{}", " ".repeat(1_000_000)));
        assert!(!a.truncated);
        // A long signature past the limit is not meaningful text.
        let a = prepare(&format!(
            "Sí\nSaludos\nJuan\n{}",
            "Aviso legal. ".repeat(1_000)
        ));
        assert!(!a.truncated);
        assert_eq!(a.text, "Sí");
    }

    #[test]
    fn a_trailing_block_of_names_and_titles_is_found() {
        let text = "Ya quedó, gracias.\nLic. Juan Pérez López\nJefe de la Unidad de Informática\nSecretaría del Trabajo";
        let tokens = tokenize(text);
        assert_eq!(
            &text[tokens[name_block_start(&tokens)].start..],
            "Lic. Juan Pérez López\nJefe de la Unidad de Informática\nSecretaría del Trabajo"
        );
        for text in [
            "Juan Pérez",
            "Ya quedó\nLa impresora no imprime",
            "Sí\nOficina 5",
            "Sí\n¿Y La Impresora?",
        ] {
            let tokens = tokenize(text);
            assert_eq!(name_block_start(&tokens), tokens.len(), "{text}");
        }
    }

    #[test]
    fn only_courtesy_allows_a_short_name_after_it() {
        for text in [
            "Hola",
            "Buen día Tomás,",
            "Muchas gracias, Lic. Juan Pérez",
            "Saludos",
        ] {
            assert!(only_courtesy(&tokenize(text)), "{text}");
        }
        for text in [
            "Excelente",
            "Hola, 5",
            "gracias, ya quedó",
            "Juan Pérez",
            "",
        ] {
            assert!(!only_courtesy(&tokenize(text)), "{text}");
        }
    }
}
