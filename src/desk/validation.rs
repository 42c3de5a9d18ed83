//! The requester's answer to "your request was resolved, please confirm": does it close the
//! ticket, reopen it, or go to the technician as a follow-up? Pure text in, a [`Judgement`]
//! out.
//!
//! The judge is conservative: only a clear confirmation closes. In order:
//!
//! 1. Nothing meaningful (empty, only a signature, an emoji) → unclear.
//! 2. A negation or continued failure ("no", "sigue igual", "todavía no", "still broken",
//!    "it doesn't work"), or a failure described ("marca error", "no me deja", "otro
//!    problema") → rejected, even beside a confirmation ("sí, pero sigue fallando": the
//!    requester still has a problem, so the ticket reopens).
//! 3. "No, gracias" alone, a question (`¿ya quedó?`), a hedge or a deferral ("creo que",
//!    "mañana lo pruebo", "lo reviso y le aviso") → unclear.
//! 4. No confirmation phrase ("ok", "gracias", "recibido") → unclear; a long text naming
//!    errors or problems without confirming is a complaint → rejected.
//! 5. A confirmation with a reservation ("sí, pero…", "ya quedó; necesito otra cosa") →
//!    unclear.
//! 6. A confirmation with more than [`MAX_OTHER_WORDS`] other words, or text past the part
//!    looked at → unclear. Otherwise → confirmed.
//!
//! Words are whole and folded ([`crate::fold`]): "si" in "sistema" and "no" in "nómina" are
//! not words of their own. Some phrases are read before the single words inside them, because
//! they mean the opposite: "ya no marca error" and "no ha vuelto a fallar" confirm, "no hay
//! problema" and "sin problemas" are neutral, "si vuelve a fallar les aviso" is a courtesy, not
//! a failure, "no sé si" is a hedge, "no" in "¿no?" is part of a question and "No. de
//! empleado" is an abbreviation. Greetings, thanks, sign-offs, signatures and stray history
//! are looked through (`desk/answer_text.rs`).

use std::sync::LazyLock;

use serde::Serialize;

use super::answer_text::{self, clause_ends_at, courtesy_at, Kind, Phrases, Token};

/// Words a confirmation may carry besides the confirmation, courtesy and signature: enough for
/// a name with a title and two surnames ("Lic. Juan Pérez López") or for what was fixed ("lo
/// del correo", "la impresora del piso"), too few for a second request or a description of a
/// problem, which need a sentence of their own.
pub const MAX_OTHER_WORDS: usize = 6;

/// Words from which a text naming errors or problems (without a confirmation) describes one:
/// "Tengo un error" is too short to tell, "Al entrar al sistema me aparece el error de
/// siempre" is a complaint.
const SUBSTANTIVE_WORDS: usize = 8;

/// How far after "ya no" / "no ha" a failure word may come for the phrase to mean it stopped
/// failing ("ya no me sale el mensaje de error").
const NEGATED_FAILURE_REACH: usize = 6;

/// Tokens a conditional ("si vuelve a fallar…, les aviso") may span.
const MAX_CONDITION_TOKENS: usize = 24;

/// What the requester's answer means for the resolved ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A clear confirmation: the ticket may close.
    Confirmed,
    /// A clear rejection or a complaint: the ticket reopens.
    Rejected,
    /// Neither: kept as a follow-up for the technician; never closes the ticket.
    Unclear,
}

/// Which rule decided, stored for audit. Each reason belongs to one verdict
/// ([`Reason::verdict`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Confirmed: a confirmation phrase, with only courtesy and a few other words around it.
    Confirmation,
    /// Rejected: a negation or continued failure ("no", "sigue igual", "still broken").
    Negation,
    /// Rejected: a failure described ("marca error", "otro problema", a long complaint).
    Complaint,
    /// Rejected: a confirmation contradicted by a negation or a failure ("sí, pero sigue
    /// fallando").
    Contradicted,
    /// Unclear: "No, gracias" (no thanks, or no, thank you?).
    NoThanks,
    /// Unclear: a question ("¿ya quedó?", "¿qué hicieron?").
    Question,
    /// Unclear: a hedge or a deferral ("creo que", "mañana lo pruebo", "lo reviso y le aviso").
    Hedged,
    /// Unclear: a confirmation with a reservation or a new request ("sí, pero…",
    /// "necesito otra cosa").
    Reservation,
    /// Unclear: no confirmation and no rejection ("ok", "gracias", "recibido").
    NoSignal,
    /// Unclear: a confirmation inside too much other text to be sure of it.
    TooLong,
    /// Unclear: nothing meaningful (empty, a signature, an emoji).
    Empty,
}

impl Reason {
    /// The verdict this reason gives.
    pub fn verdict(self) -> Verdict {
        match self {
            Reason::Confirmation => Verdict::Confirmed,
            Reason::Negation | Reason::Complaint | Reason::Contradicted => Verdict::Rejected,
            Reason::NoThanks
            | Reason::Question
            | Reason::Hedged
            | Reason::Reservation
            | Reason::NoSignal
            | Reason::TooLong
            | Reason::Empty => Verdict::Unclear,
        }
    }

    /// The stable name stored with the decision (the serialised form).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Confirmation => "confirmation",
            Reason::Negation => "negation",
            Reason::Complaint => "complaint",
            Reason::Contradicted => "contradicted",
            Reason::NoThanks => "no_thanks",
            Reason::Question => "question",
            Reason::Hedged => "hedged",
            Reason::Reservation => "reservation",
            Reason::NoSignal => "no_signal",
            Reason::TooLong => "too_long",
            Reason::Empty => "empty",
        }
    }
}

/// The verdict on an answer and the rule that gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Judgement {
    pub verdict: Verdict,
    pub reason: Reason,
}

/// Judges `new_content`, the text the requester typed in answer to the resolution notice
/// (quoted history already removed: `inbound::quote::reply_content`). Looks at most at the
/// first 2,000 characters and 40 lines; linear in those.
pub fn judge(new_content: &str) -> Judgement {
    let reason = reason(new_content);
    Judgement {
        verdict: reason.verdict(),
        reason,
    }
}

fn reason(new_content: &str) -> Reason {
    let answer = answer_text::prepare(new_content);
    if !answer.has_words() {
        return Reason::Empty;
    }
    let mut scan = Scan::new(&answer.tokens);
    let s = scan.signals();
    if s.negation || s.failure {
        return if s.confirmation {
            Reason::Contradicted
        } else if s.negation {
            Reason::Negation
        } else {
            Reason::Complaint
        };
    }
    if s.no_thanks {
        return Reason::NoThanks;
    }
    if s.question {
        return Reason::Question;
    }
    if s.hedge {
        return Reason::Hedged;
    }
    if !s.confirmation {
        return if s.weak_failure && scan.words() >= SUBSTANTIVE_WORDS {
            Reason::Complaint
        } else {
            Reason::NoSignal
        };
    }
    if s.reservation {
        return Reason::Reservation;
    }
    if answer.truncated || scan.other_words() > MAX_OTHER_WORDS {
        return Reason::TooLong;
    }
    Reason::Confirmation
}

/// What was found in an answer.
#[derive(Debug, Default)]
struct Signals {
    confirmation: bool,
    negation: bool,
    /// A failure word that says by itself that something is wrong ("marca error").
    failure: bool,
    /// A failure noun that may name what was fixed ("se resolvió el problema").
    weak_failure: bool,
    no_thanks: bool,
    question: bool,
    hedge: bool,
    reservation: bool,
}

/// One answer's tokens and which of them a phrase has already taken.
struct Scan<'a> {
    tokens: &'a [Token],
    used: Vec<bool>,
    in_question: Vec<bool>,
}

impl<'a> Scan<'a> {
    fn new(tokens: &'a [Token]) -> Scan<'a> {
        Scan {
            tokens,
            used: vec![false; tokens.len()],
            in_question: questions(tokens),
        }
    }

    /// Reads the phrases, the ones that change the meaning of the words inside them first.
    fn signals(&mut self) -> Signals {
        let mut s = Signals {
            confirmation: self.negated_failures(),
            ..Signals::default()
        };
        s.hedge = self.take(&HEDGE_WITH_NO);
        self.take(&NEUTRAL);
        self.conditional_offers();
        (s.negation, s.no_thanks) = self.negations();
        s.failure = self.take(&FAILURE);
        s.weak_failure = self.find(&WEAK_FAILURE);
        s.confirmation |= self.take(&CONFIRMATION);
        s.confirmation |= self.bare_si();
        self.courtesy();
        s.hedge |= self.find(&HEDGE);
        s.reservation = self.find(&RESERVATION);
        s.question = self.tokens.iter().any(|t| t.is_mark('?') || t.is_mark('¿'));
        s
    }

    fn is_free(&self, i: usize) -> bool {
        !self.used[i]
    }

    fn mark(&mut self, from: usize, to: usize) {
        self.used[from..to].fill(true);
    }

    /// Takes every free occurrence of `phrases`, left to right; whether there was one.
    fn take(&mut self, phrases: &Phrases) -> bool {
        let mut found = false;
        let mut i = 0;
        while i < self.tokens.len() {
            match phrases.longest_at(self.tokens, i, &self.used) {
                Some(end) => {
                    self.mark(i, end);
                    found = true;
                    i = end;
                }
                None => i += 1,
            }
        }
        found
    }

    /// Whether `phrases` occur in the free tokens, taking nothing (the words still count as
    /// other words).
    fn find(&self, phrases: &Phrases) -> bool {
        (0..self.tokens.len()).any(|i| phrases.longest_at(self.tokens, i, &self.used).is_some())
    }

    fn courtesy(&mut self) {
        let mut i = 0;
        while i < self.tokens.len() {
            match courtesy_at(self.tokens, i, &self.used) {
                Some(end) => {
                    self.mark(i, end);
                    i = end;
                }
                None => i += 1,
            }
        }
    }

    /// "Ya no marca error", "no ha vuelto a fallar", "no more errors": a negated failure is a
    /// confirmation, and its "no" and failure word must not count on their own. A verb that
    /// says something works breaks it: "ya no me deja entrar, marca error" is no confirmation.
    fn negated_failures(&mut self) -> bool {
        let mut found = false;
        let mut i = 0;
        while i < self.tokens.len() {
            let Some(after) = NO_LONGER.longest_at(self.tokens, i, &self.used) else {
                i += 1;
                continue;
            };
            let line = self.tokens[i].line;
            let failure = (after..self.tokens.len())
                .take(NEGATED_FAILURE_REACH)
                .take_while(|&j| !clause_ends_at(self.tokens, j, line))
                .take_while(|&j| !WORKS.contains(&self.tokens[j].folded.as_str()))
                .find(|&j| FAILURE_WORDS.contains(&self.tokens[j].folded.as_str()));
            match failure {
                Some(j) => {
                    self.mark(i, j + 1);
                    found = true;
                    i = j + 1;
                }
                None => i += 1,
            }
        }
        found
    }

    /// "Si vuelve a fallar les aviso", "cualquier cosa les escribo", "if anything comes up
    /// I'll let you know": an offer to write again, whose failure words are hypothetical.
    fn conditional_offers(&mut self) {
        let mut i = 0;
        while i < self.tokens.len() {
            let Some(opened) = CONDITION.longest_at(self.tokens, i, &self.used) else {
                i += 1;
                continue;
            };
            let line = self.tokens[i].line;
            // "Sí, les aviso" answers; "si vuelve…" opens a condition.
            let conditional_if = self.tokens[i].is("si") || self.tokens[i].is("if");
            if conditional_if && clause_ends_at(self.tokens, opened, line) {
                i += 1;
                continue;
            }
            let end = (opened..self.tokens.len())
                .take(MAX_CONDITION_TOKENS)
                .find(|&j| self.tokens[j].line != line || ends_sentence(&self.tokens[j]))
                .unwrap_or_else(|| (i + MAX_CONDITION_TOKENS).min(self.tokens.len()));
            let offer =
                (opened..end).any(|j| OFFER.longest_at(self.tokens, j, &self.used).is_some());
            if offer {
                self.mark(i, end);
                i = end;
            } else {
                i += 1;
            }
        }
    }

    /// Negations and continued failure. A "no" inside a question ("ya quedó, ¿no?") or
    /// abbreviating "número" ("No. de empleado") is none; "No, gracias" is told apart because
    /// it may decline or thank. Returns (negation, no-thanks).
    fn negations(&mut self) -> (bool, bool) {
        let (mut negation, mut no_thanks) = (false, false);
        let mut i = 0;
        while i < self.tokens.len() {
            let Some(end) = NEGATION.longest_at(self.tokens, i, &self.used) else {
                i += 1;
                continue;
            };
            let bare_no = self.tokens[i].is("no") && end == i + 1;
            if self.tokens[i].is("no") && self.in_question[i] {
                i = end;
                continue;
            }
            if bare_no && self.abbreviates_numero(i) {
                i = end;
                continue;
            }
            self.mark(i, end);
            if bare_no && self.thanks_after(end) {
                no_thanks = true;
            } else {
                negation = true;
            }
            i = end;
        }
        (negation, no_thanks)
    }

    /// "No. de empleado", "No. 123": `no` glued to a period and followed by a number or "de".
    fn abbreviates_numero(&self, i: usize) -> bool {
        let t = self.tokens;
        t.get(i + 1)
            .is_some_and(|dot| dot.is_mark('.') && dot.start == t[i].end)
            && t.get(i + 2)
                .is_some_and(|next| next.kind == Kind::Number || next.is("de"))
    }

    /// Whether thanks follow at token `i`, past punctuation: "No, gracias".
    fn thanks_after(&self, i: usize) -> bool {
        let next = (i..self.tokens.len()).find(|&j| self.tokens[j].is_wordlike());
        next.is_some_and(|j| THANKS.longest_at(self.tokens, j, &self.used).is_some())
    }

    /// A free "sí" folded to "si" is a confirmation when it stands alone ("Sí.", "si,") or
    /// leads one ("sí ya quedó", "sí gracias", "Sí Lic."); otherwise it may be "if".
    fn bare_si(&mut self) -> bool {
        let mut found = false;
        for i in 0..self.tokens.len() {
            if !self.is_free(i) || !self.tokens[i].is("si") {
                continue;
            }
            let line = self.tokens[i].line;
            let yes = clause_ends_at(self.tokens, i + 1, line) || {
                let next = &self.tokens[i + 1];
                next.capital || SI_LEADS.contains(&next.folded.as_str())
            };
            if yes {
                self.mark(i, i + 1);
                found = true;
            }
        }
        found
    }

    /// Words and numbers in the answer.
    fn words(&self) -> usize {
        self.tokens.iter().filter(|t| t.is_wordlike()).count()
    }

    /// Words and numbers no phrase took, before a trailing signature of names and titles.
    fn other_words(&self) -> usize {
        let signature = answer_text::name_block_start(self.tokens);
        self.tokens[..signature]
            .iter()
            .zip(&self.used)
            .filter(|(t, used)| t.is_wordlike() && !**used)
            .count()
    }
}

fn ends_sentence(t: &Token) -> bool {
    ['.', '!', '?', ';', '¿', '¡'].iter().any(|&c| t.is_mark(c))
}

/// Which tokens are part of a question: from the start of the sentence (or its `¿`) to its
/// `?`; an unclosed `¿` runs to the end of its sentence.
fn questions(tokens: &[Token]) -> Vec<bool> {
    let mut in_question = vec![false; tokens.len()];
    let mut start = 0;
    let mut opened: Option<usize> = None;
    for (i, t) in tokens.iter().enumerate() {
        if i > 0 && t.line != tokens[i - 1].line {
            if let Some(o) = opened.take() {
                in_question[o..i].fill(true);
            }
            start = i;
        }
        if t.is_mark('¿') {
            opened = Some(i);
        } else if t.is_mark('?') {
            in_question[opened.take().unwrap_or(start)..=i].fill(true);
            start = i + 1;
        } else if t.is_mark('.') || t.is_mark('!') {
            if let Some(o) = opened.take() {
                in_question[o..i].fill(true);
            }
            start = i + 1;
        }
    }
    if let Some(o) = opened {
        in_question[o..].fill(true);
    }
    in_question
}

/// Words that may follow a "sí" that means yes.
const SI_LEADS: &[&str] = &[
    "ya",
    "gracias",
    "muchas",
    "mil",
    "todo",
    "quedo",
    "funciona",
    "funcionan",
    "funciono",
    "esta",
    "correcto",
    "confirmo",
    "listo",
    "claro",
    "efectivamente",
    "senor",
    "senora",
    "lic",
    "ing",
    "perfecto",
    "ok",
    "de",
    "jala",
    "sirve",
    "sirvio",
    "ahora",
    "excelente",
    "muy",
];

/// The start of a negated failure: "ya no", "no ha", "no me ha", "no longer", "no more".
static NO_LONGER: LazyLock<Phrases> = LazyLock::new(|| {
    Phrases::new(&[
        "ya no",
        "no me|nos|le|se|lo? ha|han|he|hemos|volvio|volvieron|vuelto|volvi",
        "no longer|more",
        "never again",
    ])
});

/// Failure words a negation turns into a confirmation.
const FAILURE_WORDS: &[&str] = &[
    "error",
    "errores",
    "falla",
    "fallas",
    "fallar",
    "fallado",
    "fallando",
    "fallo",
    "problema",
    "problemas",
    "inconveniente",
    "inconvenientes",
    "lento",
    "lenta",
    "lentitud",
    "traba",
    "trabo",
    "trabado",
    "trabada",
    "trabarse",
    "cae",
    "cayo",
    "caido",
    "caer",
    "caerse",
    "bloquea",
    "bloqueo",
    "bloqueado",
    "bloqueada",
    "congela",
    "congelo",
    "congelado",
    "errors",
    "issue",
    "issues",
    "problem",
    "problems",
    "fails",
    "failing",
    "crash",
    "crashes",
    "crashing",
    "crashed",
    "freezes",
    "freezing",
    "bug",
    "bugs",
];

/// Verbs that say something works: after "ya no" they make a rejection ("ya no funciona").
const WORKS: &[&str] = &[
    "funciona",
    "funcionan",
    "funciono",
    "sirve",
    "sirven",
    "jala",
    "jalan",
    "puedo",
    "puede",
    "pueden",
    "podemos",
    "pude",
    "podido",
    "deja",
    "dejan",
    "abre",
    "abren",
    "carga",
    "cargan",
    "entra",
    "entran",
    "imprime",
    "conecta",
    "responde",
    "llega",
    "llegan",
    "works",
    "work",
    "working",
    "can",
    "load",
    "loads",
    "open",
    "opens",
    "print",
    "prints",
];

/// Hedges written with a "no" that is not a rejection: "no sé si", "aún no lo he probado".
static HEDGE_WITH_NO: LazyLock<Phrases> = LazyLock::new(|| {
    Phrases::new(&[
        "no se $|si|que|como|cuando|porque|por",
        "no estoy seguro|segura|seguros",
        "not sure",
        "i'm|im not sure",
        "i am not sure",
        "i don't|dont know",
        "i do not know",
        "todavia|aun? no lo|la? he|hemos probado|revisado|checado|verificado|intentado|validado",
        "todavia|aun no lo|la? pruebo|reviso|checo|verifico|valido",
        "todavia|aun? no lo|la? he|hemos podido probar|probarlo|revisar|revisarlo|checar|checarlo|verificar|verificarlo|validar",
        "haven't|havent|didn't|didnt tested|tried|checked|test|try|check it? yet?",
        "have|did not tested|tried|checked|test|try|check it? yet?",
        "not tested|tried|checked yet?",
    ])
});

/// Phrases with a negation or a failure word that reject nothing.
static NEUTRAL: LazyLock<Phrases> = LazyLock::new(|| {
    Phrases::new(&[
        "no hay problema|cuidado|bronca|pendiente",
        "no hay de que",
        "no hubo|habra|habia problema|problemas|bronca|inconveniente",
        "de|por nada",
        "ningun|ninguna problema|error|falla|inconveniente",
        "sin problema|problemas|error|errores|falla|fallas|inconveniente|inconvenientes|novedad|novedades|falta",
        "no te|se preocupe|preocupes|preocupen",
        "no problem|worries|issues|problems",
        "don't|dont worry",
        "gracias de nuevo",
        "gracias otra vez",
        "gracias|thanks nuevamente|again",
        "sigue|siguen|continua|continuan funcionando|jalando|sirviendo|bien|correctamente|perfecto",
        "still works|working",
    ])
});

/// What opens a condition or an offer to write again.
static CONDITION: LazyLock<Phrases> = LazyLock::new(|| {
    Phrases::new(&[
        "si|if",
        "en caso de que?",
        "cualquier cosa|duda|detalle|situacion|problema|falla|error|comentario",
        "any problems|issues|questions|problem|issue",
    ])
});

/// An offer to write again.
static OFFER: LazyLock<Phrases> = LazyLock::new(|| {
    Phrases::new(&[
        "aviso|avisare|avisamos|escribo|escribire|comento|comentare|reporto|reportare|contacto|contactare|llamo|llamare|marco|marcare|busco|buscare|informo|informare|notifico|dire|digo|comunico|reabro",
        "vuelvo|volvere a escribir|escribirles|escribirle|reportar|reportarlo|llamar|marcar",
        "i'll|ill|we'll let|contact|write|reach|get|email|call",
        "i|we will let|contact|write|reach|get|email|call",
        "let you know",
        "get back to you",
        "reach out",
    ])
});

/// Negations and continued failure; the verbs a "no" negates are taken with it, so that "no
/// funciona" is not also read as "funciona".
static NEGATION: LazyLock<Phrases> = LazyLock::new(|| {
    Phrases::new(&[
        "todavia|aun? no|nunca|jamas|tampoco|nop|nope|nel|nah|negativo|incorrecto|never|nor|neither me|se|le|lo|la|nos|les|te? funciona|funcionan|funciono|sirve|sirven|sirvio|jala|jalan|abre|abren|abrio|carga|cargan|cargo|deja|dejan|dejo|entra|entran|entro|imprime|imprimen|conecta|responde|llega|llegan|llego|aparece|puedo|pude|podemos|puede|pueden|ha|han|he|hemos|quedo|quedaron|queda|esta|estan|resolvio|soluciono|arreglo|hay|tengo|tenemos? resuelto|resuelta|solucionado|solucionada|arreglado|arreglada|quedado|funcionado|listo|lista|bien?",
        "not|isn't|isnt|doesn't|doesnt|didn't|didnt|don't|dont|won't|wont|can't|cant|cannot|aren't|arent|wasn't|wasnt|hasn't|hasnt|haven't|havent it|really|yet? fixed|working|work|works|resolved|solved|sorted|ok|okay|good|right|load|open|print|connect|fine|yet?",
        "is|does|did|do|can|will|are|was|has|have|still not it|really|yet? fixed|working|work|works|resolved|solved|sorted|ok|okay|good|right|load|open|print|connect|fine|yet?",
        "sigue|siguen|sigo|seguimos|continua|continuan|persiste|persisten",
        "todavia|aun falla|fallando|marca|sale|aparece|tengo|hay|esta|igual|sin",
        "volvio|vuelve|volvieron|vuelven|regreso|regresa a fallar|marcar|salir|aparecer|caer|caerse|trabarse|bloquearse|pasar",
        "lo mismo",
        "sin resolver|resolverse|solucionar|solucionarse|arreglar|arreglarse|respuesta|cambios|cambio",
        "igual que antes",
        "esta|estan|quedo|sigue igual",
        "mismo|misma error|problema|falla|mensaje",
        "still",
        "keeps|kept failing|crashing|freezing|happening|showing",
        "same problem|issue|error|thing",
    ])
});

/// Failures described: a present error, slowness, a new problem, something missing.
static FAILURE: LazyLock<Phrases> = LazyLock::new(|| {
    Phrases::new(&[
        "fallando|fallaron|fallan|fallaba|fallo",
        "falla|fallo|fallan|fallaron otra|de vez|nuevo",
        "falla|fallo nuevamente|todavia|aun",
        "marca|marcan|marcando|sale|salen|saliendo|aparece|aparecen|apareciendo|manda|arroja|da|dando|muestra|presenta|tengo|tenemos|hay un|una|el|la|otro|otra|ese|este|mismo|nuevo? mensaje? de? error|errores|falla|fallas|problema|problemas|inconveniente|inconvenientes",
        "mal",
        "lento|lenta|lentisimo|lentisima",
        "trabado|trabada|trabando|congelado|congelada|bloqueado|bloqueada|caido|caida|cayendo",
        "se traba|congela|bloquea|cae",
        "sin servicio|acceso|internet|red|conexion|sistema|poder|funcionar|respuesta|senal|luz|correo",
        "otro|otra|nuevo|nueva problema|falla|error|detalle|inconveniente",
        "falta|faltan|faltaria",
        "broken|fails|failing|fail|crash|crashes|crashing|freezes|freezing|frozen|stuck|wrong|slow",
        "another problem|issue|error",
        "error message|messages",
        "getting|get|shows|showing|see|seeing an|the|a? error|errors",
    ])
});

/// Failure nouns, which may name what was fixed ("se resolvió el problema") or a complaint.
static WEAK_FAILURE: LazyLock<Phrases> = LazyLock::new(|| {
    Phrases::new(&[
        "error|errores|falla|fallas|problema|problemas|inconveniente|inconvenientes|issue|issues|problem|problems|bug|bugs",
    ])
});

/// Confirmations, Spanish (es-MX) and English. A bare "sí" is read apart ([`Scan::bare_si`]).
static CONFIRMATION: LazyLock<Phrases> = LazyLock::new(|| {
    Phrases::new(&[
        "yes|yep|yeah|yup|sip|simon|afirmativo|efectivamente|exacto|exactamente|correcto|confirmo|confirmamos|confirmado|confirmada|confirmed|listo|lista|resuelto|resuelta|solucionado|solucionada|arreglado|arreglada|fixed|solved|resolved|sorted|correct|done|claro",
        "ya quedo|quedaron|queda|esta|estan|funciona|funcionan|funciono|sirve|sirven|sirvio|jala|jalan|puedo|pude|podemos|pudimos|entra|entro|entre|abre|abrio|carga|cargo|imprime|conecta|conecto|llego|llegan|llegaron|resolvieron|solucionaron|arreglaron|corrigieron",
        "ya se resolvio|soluciono|arreglo|corrigio|compuso|pudo",
        "ya me llego|llegaron|funciona|deja|abre|carga|conecta",
        "ya tengo|tenemos acceso|internet|red|correo|senal|conexion|servicio",
        "ya esta|estan listo|lista|resuelto|resuelta|bien|arreglado|funcionando|solucionado",
        "quedo|queda|quedaron|quedan bien|resuelto|resuelta|solucionado|arreglado|listo|lista|perfecto|correcto",
        "si quedo|funciona|funciono|jala|sirve|sirvio",
        "quedo $",
        "se pudo",
        "se resolvio|soluciono|arreglo|corrigio|compuso",
        "resolvieron|solucionaron|arreglaron|corrigieron",
        "esta|estan|queda resuelto|resuelta|solucionado|solucionada|arreglado|arreglada|listo|lista|funcionando",
        "funciona|funcionan|funciono|jala|sirve|sirvio bien|correctamente|perfecto|perfectamente|excelente?",
        "todo bien|correcto|ok|perfecto|listo|funciona|funcionando|quedo|resuelto|excelente|arreglado",
        "todo en orden",
        "de acuerdo",
        "asi es",
        "por supuesto",
        "claro que si",
        "se confirma",
        "ahora si",
        "ya? pueden|puede|podrian|podria cerrar|cerrarlo|cerrarla|cerrarse",
        "favor de cerrar|cerrarlo|cerrarla",
        "cierren|cierre|cerrar el|la? ticket|reporte|folio|caso|solicitud|incidente",
        "se puede cerrar",
        "dar|den|de|darlo|darla por cerrado|cerrada|concluido|concluida|terminado|terminada",
        "it|that works|worked",
        "that did it",
        "that fixed it",
        "works|worked",
        "working now?",
        "it's|its working|fixed|resolved|solved|ok|okay|fine|good|done|sorted",
        "it is working|fixed|resolved|solved|ok|okay|fine|good|done|sorted",
        "all good|set|fixed|working|sorted",
        "looks good|fine|great",
        "problem|issue solved|resolved|fixed",
        "i confirm",
        "confirm",
        "you|u can|may close it|the? ticket?",
        "please close it|the? ticket?",
        "close the ticket",
        "good to go",
    ])
});

/// Thanks, for "No, gracias".
static THANKS: LazyLock<Phrases> = LazyLock::new(|| {
    Phrases::new(&[
        "gracias",
        "muchas|mil gracias",
        "thanks|thank",
        "le|te agradezco",
    ])
});

/// Hedges and deferrals: the requester has not made up their mind yet.
static HEDGE: LazyLock<Phrases> = LazyLock::new(|| {
    Phrases::new(&[
        "creo|creemos|parece|parecia|supongo|aparentemente|posiblemente|probablemente|quizas|quiza",
        "al parecer",
        "tal vez",
        "a lo mejor",
        "igual y",
        "en teoria",
        "think|guess|seems|seem|maybe|perhaps|probably|apparently|hopefully",
        "manana|despues|luego|later|tomorrow|soon",
        "al|en un? rato",
        "mas tarde",
        "en cuanto",
        "cuando pueda|podamos",
        "lo|la|los|las reviso|revisare|revisamos|pruebo|probare|probamos|checo|checare|verifico|verificare|valido|validare|intento",
        "voy|vamos a revisar|revisarlo|probar|probarlo|checar|checarlo|verificar|verificarlo|validar|intentar",
        "le|les|te aviso|avisare|avisamos $",
        "will|i'll|ill|we'll check|test|try|verify|confirm|look",
        "let me check|test|try|verify|see",
        "let you know",
        "get back to you",
    ])
});

/// Reservations and new requests beside a confirmation.
static RESERVATION: LazyLock<Phrases> = LazyLock::new(|| {
    Phrases::new(&[
        "pero|aunque|excepto|salvo|but|however|although|though|except",
        "sin embargo",
        "solo|nada|nomas que",
        "necesito|necesitamos|requiero|requerimos|quisiera|quisieramos|solicito|solicitamos|podrian|podria|pudieran|pudiera|ocupo|ocupamos",
        "me|nos ayudan|ayudas|ayudarian|apoyan|apoyas|apoyarian",
        "ayuda|apoyo con|para",
        "pueden|puede revisar|checar|ver|instalar|ayudar|ayudarme|apoyar|apoyarme|enviar|mandar|configurar|cambiar|agregar|dar|habilitar",
        "otra cosa|pregunta|duda|solicitud",
        "otro tema|detalle|favor",
        "aprovecho|aprovechando",
        "de paso",
        "tambien|ademas",
        "need|needs|another|also|additionally",
        "could|can you",
        "one more",
    ])
});

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fold::fold;

    use Reason::*;

    /// (answer, expected reason): the verdict follows from the reason.
    const CASES: &[(&str, Reason)] = &[
        // Confirmations, with the courtesy around them.
        ("Sí", Confirmation),
        ("si", Confirmation),
        ("SI", Confirmation),
        ("Sí.", Confirmation),
        ("Sí, gracias", Confirmation),
        ("si gracias", Confirmation),
        ("confirmo", Confirmation),
        ("Confirmo, muchas gracias", Confirmation),
        ("ya quedó", Confirmation),
        ("ya quedo, gracias!", Confirmation),
        ("Ya quedó. Muchas gracias por su apoyo.", Confirmation),
        ("Ya funciona", Confirmation),
        ("ya funciona correctamente", Confirmation),
        ("queda resuelto", Confirmation),
        ("está resuelto", Confirmation),
        ("Está resuelto, gracias.", Confirmation),
        ("todo bien", Confirmation),
        ("Todo bien, gracias", Confirmation),
        ("listo, gracias", Confirmation),
        ("de acuerdo", Confirmation),
        ("Correcto", Confirmation),
        ("perfecto, ya quedó", Confirmation),
        ("Hola, sí ya quedó. Gracias", Confirmation),
        ("Buenos días\n\nYa quedó, mil gracias.\n\nSaludos", Confirmation),
        ("Buen día Tomás,\nsí, ya funciona. Gracias!", Confirmation),
        ("Buenas tardes Lic. Tomás Hernández, ya quedó, gracias", Confirmation),
        ("Ya puedo entrar al sistema, gracias", Confirmation),
        ("ya quedó lo del correo, gracias", Confirmation),
        ("Se resolvió el problema, gracias", Confirmation),
        ("Ya se solucionó, muchas gracias por la ayuda", Confirmation),
        ("Ya no marca error, gracias", Confirmation),
        ("Ya no me sale el mensaje de error. Gracias", Confirmation),
        ("No me ha vuelto a fallar, gracias", Confirmation),
        ("Funciona sin problemas", Confirmation),
        ("Sí, ya quedó. Si vuelve a fallar les aviso.", Confirmation),
        ("Ya quedó, cualquier cosa les escribo", Confirmation),
        ("Ya quedó, pueden cerrar el ticket", Confirmation),
        ("Sí, gracias de nuevo", Confirmation),
        ("Ahora sí funciona, gracias", Confirmation),
        ("Sí, ya quedó. Que tenga buen día.", Confirmation),
        ("Sí quedó", Confirmation),
        ("Ya quedó, no hay problema", Confirmation),
        ("Ya quedó, no hubo problema", Confirmation),
        ("Quedó.", Confirmation),
        ("Quedo atento", NoSignal),
        ("Le confirmo que ya quedó, gracias", Confirmation),
        ("Le aviso que ya quedó", Confirmation),
        ("Ya lo revisé y funciona bien", Confirmation),
        ("Ya tengo acceso, gracias", Confirmation),
        ("Everything works fine now, thank you", Confirmation),
        ("Hola buenas tardes, si ya quedo gracias saludos", Confirmation),
        ("Ya quedó, gracias. El problema era el cable.", Confirmation),
        ("Correcto, ya funciona. No. de empleado 4455", Confirmation),
        ("Sí!!! 😀", Confirmation),
        (
            "Hola Tomás, gracias por el apoyo. Ya funciona.\n\nSaludos cordiales\nAna López\nRecursos Humanos\nExt. 1234",
            Confirmation,
        ),
        ("yes", Confirmation),
        ("Yes, thank you", Confirmation),
        ("confirmed", Confirmation),
        ("it works now", Confirmation),
        ("It works now, thanks!", Confirmation),
        ("all good, thanks", Confirmation),
        ("fixed, thank you", Confirmation),
        ("Hi, yes it's fixed. Kind regards, Ann", Confirmation),
        ("No more errors, thanks", Confirmation),
        // Signatures, mobile footers, disclaimers and stray history do not spoil it.
        (
            "Sí, gracias\n\nSaludos\nJuan Pérez\nDirección de Informática\nTel. 722 276 9600 ext. 5",
            Confirmation,
        ),
        (
            "Ya quedó.\nAtentamente\nLic. María López\nSubdirección de Recursos Humanos\nSecretaría de Finanzas\nTel. (722) 276-0000 ext. 60100\nmaria.lopez@edomex.gob.mx",
            Confirmation,
        ),
        ("Confirmo\n-- \nJuan Pérez\nJefe de Departamento\nNo. de empleado 12345", Confirmation),
        ("Sí\n\nEnviado desde mi iPhone", Confirmation),
        ("Ya quedó\n\nObtener Outlook para Android", Confirmation),
        ("yes\n\nSent from my iPhone", Confirmation),
        ("Sí, gracias\nJuan Pérez\nTel. 722 276 9600 ext. 5", Confirmation),
        (
            "Ya quedó, muchas gracias.\n\nLic. Juan Pérez López\nJefe de la Unidad de Informática\nSecretaría del Trabajo\nTel. 722 276 9600 ext. 5",
            Confirmation,
        ),
        ("No. de empleado 12345\nYa quedó", Confirmation),
        ("Gracias y saludos\n\nSí ya quedó", Confirmation),
        (
            "Sí, gracias\nEl jue, 3 dic 2026 a las 10:00, Mesa de Ayuda <mesadeayuda@edomex.gob.mx> escribió:\nSu solicitud fue resuelta. Si el problema continúa, responda.",
            Confirmation,
        ),
        (
            "Ya quedó\n\n> Su solicitud MDA-2026-000123 fue marcada como resuelta.\n> Si el problema continúa, responda a este correo.",
            Confirmation,
        ),
        (
            "Sí, gracias\n\nAVISO DE CONFIDENCIALIDAD: Este correo electrónico es confidencial. Si usted no es el destinatario, no lo lea ni lo reenvíe; el error de envío no autoriza su uso.",
            Confirmation,
        ),
        ("\r\n\r\n  Sí, ya quedó  \r\n\r\n\r\n", Confirmation),
        ("<p>\n\n\nSí, gracias\n\n\n\n</p>", Confirmation),
        ("*Ya quedó*, gracias", Confirmation),
        // Rejections.
        ("no", Negation),
        ("No.", Negation),
        ("NO", Negation),
        ("No, sigue sin funcionar", Negation),
        ("sigue igual", Negation),
        ("sigue fallando", Negation),
        ("todavía no", Negation),
        ("aún no funciona", Negation),
        ("no ha quedado", Negation),
        ("no se ha resuelto", Negation),
        ("persiste el problema", Negation),
        ("el error continúa", Negation),
        ("no funciona", Negation),
        ("No funciona correctamente", Negation),
        ("Ya no funciona", Negation),
        ("No puedo entrar", Negation),
        ("no me deja entrar al sistema", Negation),
        ("Está igual", Negation),
        ("Sigue marcando el mismo error", Negation),
        ("still broken", Negation),
        ("not fixed", Negation),
        ("no, it still fails", Negation),
        ("it doesn't work", Negation),
        ("It does not work", Negation),
        ("Nope", Negation),
        ("¿Por qué sigue fallando?", Negation),
        ("Hola, no quedó. Saludos", Negation),
        // A confirmation contradicted reopens.
        ("sí, pero sigue fallando el correo", Contradicted),
        (
            "ya quedó lo del correo pero la impresora no imprime",
            Contradicted,
        ),
        ("Ya quedó, pero ahora me marca error el SIIA", Contradicted),
        ("Ya funciona el correo. Tengo otro problema con la VPN", Contradicted),
        ("Sí, gracias.\nSaludos\nJuan\n\nPD: la impresora sigue fallando", Contradicted),
        ("Ya no sale el error, pero ahora no imprime", Contradicted),
        ("Confirmo. Aunque todavía está lento", Contradicted),
        // Complaints.
        ("Me marca error al entrar", Complaint),
        ("Está muy lento el sistema", Complaint),
        (
            "Al abrir el sistema de nómina aparece una ventana con un error de certificado y se cierra",
            Complaint,
        ),
        (
            "Buen día. El error es el mismo de la semana pasada, al momento de timbrar aparece un problema",
            Complaint,
        ),
        ("the printer is broken", Complaint),
        // Unclear.
        ("ok", NoSignal),
        ("Ok, gracias", NoSignal),
        ("gracias", NoSignal),
        ("Muchas gracias", NoSignal),
        ("recibido", NoSignal),
        ("Enterado, gracias", NoSignal),
        ("Perfecto", NoSignal),
        ("Tengo un error", Complaint),
        ("Sin resolver", Negation),
        ("Ya no puedo entrar", Negation),
        ("It works but it is slow", Contradicted),
        ("Confirmo que no funciona", Contradicted),
        ("Sí, ya quedó, pero ahora no puedo imprimir", Contradicted),
        ("Un error", NoSignal),
        ("Está bien", NoSignal),
        (
            "Buenas tardes, les escribo porque el día de ayer vino el técnico a mi oficina y estuvo revisando mi equipo",
            NoSignal,
        ),
        ("Saludos\nJuan Pérez\nTel. 722 276 9600", NoSignal),
        ("Si no funciona mañana les aviso", NoSignal),
        ("Sí sigue fallando, le aviso", NoSignal),
        ("Sale, gracias", NoSignal),
        (
            "Si, gracias\n\nJuan Pérez | Dirección General de Innovación | Tel. 722 276 9600 ext. 5",
            TooLong,
        ),
        ("No, gracias", NoThanks),
        ("no gracias", NoThanks),
        ("No, thanks", NoThanks),
        ("lo reviso y le aviso", Hedged),
        ("mañana lo pruebo", Hedged),
        ("Creo que ya quedó", Hedged),
        ("Aún no lo he probado", Hedged),
        ("No sé si ya quedó", Hedged),
        ("I'll check and let you know", Hedged),
        ("Todavía no lo pruebo", Hedged),
        ("No sé, no he probado", Hedged),
        ("¿qué hicieron?", Question),
        ("¿ya quedó?", Question),
        ("ya quedó?", Question),
        ("Ya quedó, ¿no?", Question),
        ("¿Correcto?", Question),
        ("Sí, gracias. ¿Me pueden ayudar con otra cosa?", Question),
        ("Sí, pero tardaron mucho", Reservation),
        ("Ya quedó, necesito también que instalen Office", Reservation),
        (
            "Ya quedó el correo. Por otra parte les comento que mi compañera de la oficina de al lado quiere saber cómo se configura la firma",
            TooLong,
        ),
        ("", Empty),
        ("   \n\n  ", Empty),
        ("👍", Empty),
        ("--\nJuan Pérez\nDirección de Informática", Empty),
        ("Enviado desde mi iPhone", Empty),
        // Whole words only.
        ("Sistema", NoSignal),
        ("Nómina", NoSignal),
        ("Sinaloa", NoSignal),
        ("nomina de noviembre recibida", NoSignal),
    ];

    #[test]
    fn answers_are_judged_by_the_rule_that_fits() {
        let mut failures = Vec::new();
        for &(answer, want) in CASES {
            let got = judge(answer);
            if got.reason != want || got.verdict != want.verdict() {
                failures.push(format!("{answer:?}: got {got:?}, want {want:?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn a_stray_attribution_does_not_flip_the_verdict() {
        let history = "\n\nEl jue, 3 dic 2026 a las 10:00, Mesa de Ayuda <mesadeayuda@edomex.gob.mx> escribió:\n\nSu solicitud fue marcada como resuelta. Si el problema continúa, no dude en responder.";
        for (answer, want) in [
            ("Ya quedó", Verdict::Confirmed),
            ("Sigue igual", Verdict::Rejected),
            ("Ok", Verdict::Unclear),
        ] {
            assert_eq!(
                judge(&format!("{answer}{history}")).verdict,
                want,
                "{answer}"
            );
        }
    }

    #[test]
    fn huge_input_is_cheap_and_never_confirms() {
        for huge in [
            "Sí, gracias ".repeat(100_000),
            "a".repeat(1_000_000),
            "Ya quedó\n".repeat(120_000),
            format!("Ya quedó {}", "palabra ".repeat(200_000)),
            "?".repeat(1_000_000),
            "no ".repeat(400_000),
        ] {
            assert_ne!(judge(&huge).verdict, Verdict::Confirmed);
        }
        // Trailing whitespace is not more text.
        assert_eq!(
            judge(&format!("Sí{}", " \n".repeat(500_000))).verdict,
            Verdict::Confirmed
        );
    }

    #[test]
    fn reasons_are_stable_names() {
        for &(_, reason) in CASES {
            let json = serde_json::to_string(&reason).unwrap();
            assert_eq!(json, format!("\"{}\"", reason.as_str()));
        }
        let json = serde_json::to_string(&judge("ya quedó")).unwrap();
        assert_eq!(json, r#"{"verdict":"confirmed","reason":"confirmation"}"#);
    }

    #[test]
    fn phrase_lists_are_written_folded() {
        for phrases in [
            &*NO_LONGER,
            &*HEDGE_WITH_NO,
            &*NEUTRAL,
            &*CONDITION,
            &*OFFER,
            &*NEGATION,
            &*FAILURE,
            &*WEAK_FAILURE,
            &*CONFIRMATION,
            &*THANKS,
            &*HEDGE,
            &*RESERVATION,
        ] {
            for w in phrases.words() {
                assert!(!w.is_empty());
                assert_eq!(fold(w), w, "{w} is not folded");
            }
        }
        for list in [SI_LEADS, FAILURE_WORDS, WORKS] {
            for w in list {
                assert_eq!(&fold(w), w);
            }
        }
    }
}
