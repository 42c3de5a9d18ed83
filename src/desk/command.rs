//! What people ask folio for in the text of a mail: a technician's commands (`#resuelto`,
//! `#asignar tech2`, …, one per line at the top of the reply) and a requester's queries
//! (`estado MDA-2026-000042`, `mis folios`). Spanish with English aliases, accents and case
//! optional. Pure text in, plain data out.

use std::fmt;

use serde::Serialize;

use crate::fold::fold;

/// One technician command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "command", content = "argument", rename_all = "snake_case")]
pub enum Command {
    /// `#resuelto [texto]`: resolved, with an optional resolution text for the requester.
    Resolve(Option<String>),
    /// `#cerrar`, `#cerrar spam`, `#cerrar duplicado`: how it closes decides what follows
    /// (no closure notice to spam, no survey for either).
    Close(CloseAs),
    /// `#asignar <técnico>`
    Assign(String),
    /// `#prioridad <nivel>`
    Priority(String),
    /// `#servicio <servicio>`
    Service(String),
    /// `#espera`: waiting on the requester or a third party.
    Pending,
    /// `#nota`: the rest of the mail is internal.
    Note,
    /// `#reabrir`
    Reopen,
}

impl Command {
    /// How the command is written (Spanish).
    pub fn describe(&self) -> String {
        match self {
            Command::Resolve(None) => "#resuelto".into(),
            Command::Resolve(Some(t)) => format!("#resuelto {t}"),
            Command::Close(CloseAs::Solved) => "#cerrar".into(),
            Command::Close(CloseAs::Spam) => "#cerrar spam".into(),
            Command::Close(CloseAs::Duplicate) => "#cerrar duplicado".into(),
            Command::Assign(a) => format!("#asignar {a}"),
            Command::Priority(p) => format!("#prioridad {p}"),
            Command::Service(s) => format!("#servicio {s}"),
            Command::Pending => "#espera".into(),
            Command::Note => "#nota".into(),
            Command::Reopen => "#reabrir".into(),
        }
    }
}

/// The Spanish word of the command whose code (`resolve`, `assign`, …, as [`Command`]
/// serialises) is `code`, for the English lines of the ticket's history.
fn spanish_word(code: &str) -> &str {
    match code {
        "resolve" => "#resuelto",
        "close" => "#cerrar",
        "assign" => "#asignar",
        "priority" => "#prioridad",
        "service" => "#servicio",
        "pending" => "#espera",
        "note" => "#nota",
        "reopen" => "#reabrir",
        other => other,
    }
}

/// How a ticket is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseAs {
    /// The ordinary closing.
    Solved,
    /// It was spam: nothing more is sent about it.
    Spam,
    /// It repeats another ticket: no survey.
    Duplicate,
}

/// The word after `#cerrar`: none (closed as solved), `spam`, `duplicado`; anything else is
/// not understood (`None`), so a typo never closes a ticket the wrong way.
fn close_as(arg: &str) -> Option<CloseAs> {
    let word = fold(arg.split_whitespace().next().unwrap_or_default());
    match word.as_str() {
        "" => Some(CloseAs::Solved),
        "spam" | "basura" | "correo-basura" => Some(CloseAs::Spam),
        "duplicado" | "duplicada" | "repetido" | "repetida" | "duplicate" => {
            Some(CloseAs::Duplicate)
        }
        _ => None,
    }
}

/// Every command as a technician writes it, for the guide and error replies.
pub const GUIDE: &[(&str, &str)] = &[
    ("#resuelto [texto]", "#resolve [text]"),
    ("#cerrar [spam|duplicado]", "#close [spam|duplicate]"),
    ("#asignar <técnico>", "#assign <technician>"),
    (
        "#prioridad <baja|media|alta|crítica>",
        "#priority <low|medium|high|critical>",
    ),
    ("#servicio <servicio>", "#service <service>"),
    ("#espera", "#pending"),
    ("#nota", "#note"),
    ("#reabrir", "#reopen"),
];

/// Why a technician's commands were not applied: a code (`kind`) and its values, never a
/// sentence, so the technician's mail says it in its language (the templates'
/// `refused_command` partial); `Display` is the English line of the ticket's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Refusal {
    /// `#borrar todo`: no such command.
    UnknownCommand {
        /// The line as written.
        line: String,
        /// The word after `#`, folded.
        word: String,
    },
    /// `#asignar` with nothing after it.
    MissingArgument {
        line: String,
        word: String,
        /// `assign`, `priority` or `service`.
        command: &'static str,
    },
    /// A change of status the ticket's status does not allow (`#reabrir` on an open ticket).
    WrongStatus {
        /// `resolve`, `close`, `pending` or `reopen`.
        command: &'static str,
        /// The ticket's status (`open`, …).
        status: &'static str,
        /// The statuses it is allowed from.
        allowed: Vec<&'static str>,
    },
    /// `#asignar` to the technician who has the ticket.
    AlreadyAssigned {
        technician: String,
        technician_name: String,
    },
    /// `#asignar` to nobody the catalogue knows.
    UnknownTechnician {
        typed: String,
        /// What may be typed instead: each technician's local part.
        known: Vec<String>,
    },
    /// `#prioridad` with no level.
    UnknownPriority { typed: String },
    /// `#servicio` naming no service.
    UnknownService {
        typed: String,
        /// What may be typed instead: the service ids.
        known: Vec<String>,
    },
}

impl Refusal {
    /// Why, in English, without the line (the ticket's history adds it).
    pub fn message(&self) -> String {
        match self {
            Refusal::UnknownCommand { word, .. } => format!("unknown command #{word}"),
            Refusal::MissingArgument { word, command, .. } => {
                let what = match *command {
                    "assign" => "a technician",
                    "priority" => "a level (baja, media, alta, critica)",
                    _ => "a service",
                };
                format!("#{word} needs {what}")
            }
            Refusal::WrongStatus {
                command,
                status,
                allowed,
            } => format!(
                "{}: the ticket is {status} (allowed when {})",
                spanish_word(command),
                allowed.join(" or ")
            ),
            Refusal::AlreadyAssigned { technician, .. } => {
                format!("#asignar: {technician} already has this ticket")
            }
            Refusal::UnknownTechnician { typed, known } => format!(
                "#asignar: no technician {typed:?} (known: {})",
                known.join(", ")
            ),
            Refusal::UnknownPriority { typed } => {
                format!("#prioridad: {typed:?} is not a level (baja, media, alta, critica)")
            }
            Refusal::UnknownService { typed, known } => format!(
                "#servicio: no service {typed:?} (use an id: {})",
                known.join(", ")
            ),
        }
    }
}

impl Refusal {
    /// One of every kind, for the sample notices (`desk::notice_samples`: `folio templates check`
    /// renders every template with them) and the tests that must see every field a template
    /// may use.
    pub fn every_kind() -> Vec<Refusal> {
        vec![
            Refusal::UnknownCommand {
                line: "#borrar todo".into(),
                word: "borrar".into(),
            },
            Refusal::MissingArgument {
                line: "#asignar".into(),
                word: "asignar".into(),
                command: "assign",
            },
            Refusal::WrongStatus {
                command: "reopen",
                status: "open",
                allowed: vec!["pending", "resolved", "closed"],
            },
            Refusal::AlreadyAssigned {
                technician: "tech1@example.test".into(),
                technician_name: "Técnico Uno".into(),
            },
            Refusal::UnknownTechnician {
                typed: "nadie".into(),
                known: vec!["tech1".into()],
            },
            Refusal::UnknownPriority {
                typed: "altísima".into(),
            },
            Refusal::UnknownService {
                typed: "zzz".into(),
                known: vec!["nomina".into()],
            },
        ]
    }
}

impl fmt::Display for Refusal {
    /// The line of the ticket's history: the line as written, when the refusal has one, and
    /// why.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::UnknownCommand { line, .. } | Refusal::MissingArgument { line, .. } => {
                write!(f, "{line}: {}", self.message())
            }
            _ => f.write_str(&self.message()),
        }
    }
}

/// The commands at the top of a reply, and the text after them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Commands {
    pub commands: Vec<Command>,
    /// The lines that are no command (then none applies).
    pub errors: Vec<Refusal>,
    /// The reply without its command lines (what may reach the requester).
    pub body: String,
}

impl Commands {
    pub fn is_note(&self) -> bool {
        self.commands.contains(&Command::Note)
            // Spam is closed without a word to its sender: the rest of the mail (a signature,
            // a remark) stays internal too.
            || self.commands.contains(&Command::Close(CloseAs::Spam))
    }
}

/// Reads the command lines at the top of `text` (blank lines between them allowed); the first
/// other line ends them.
pub fn parse_commands(text: &str) -> Commands {
    let mut out = Commands::default();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.peek() {
        let l = line.trim().trim_start_matches('*').trim_end_matches('*');
        if l.is_empty() {
            lines.next();
            continue;
        }
        let Some(rest) = l.strip_prefix('#') else {
            break;
        };
        // "#1 problema" or "# título" is text, not a command.
        if !rest.starts_with(|c: char| c.is_alphabetic()) {
            break;
        }
        let (word, arg) = match rest.split_once(char::is_whitespace) {
            Some((w, a)) => (w, a.trim()),
            None => (rest, ""),
        };
        let word = fold(word.trim_end_matches([':', '.', ',']));
        let arg = crate::inbound::mail::without_mailto(arg.trim_start_matches(':').trim());
        let arg = arg.as_str();
        let need = |make: fn(String) -> Command, command: &'static str| {
            if arg.is_empty() {
                Err(Refusal::MissingArgument {
                    line: l.to_string(),
                    word: word.clone(),
                    command,
                })
            } else {
                Ok(make(arg.to_string()))
            }
        };
        let parsed = match word.as_str() {
            "resuelto" | "resolver" | "resuelta" | "resolve" | "resolved" => {
                Ok(Command::Resolve((!arg.is_empty()).then(|| arg.to_string())))
            }
            "cerrar" | "cerrado" | "close" | "closed" => close_as(arg)
                .map(Command::Close)
                .ok_or_else(|| Refusal::UnknownCommand {
                    line: l.to_string(),
                    word: format!("{word} {arg}"),
                }),
            "asignar" | "reasignar" | "assign" | "reassign" => need(Command::Assign, "assign"),
            "prioridad" | "priority" => need(Command::Priority, "priority"),
            "servicio" | "service" => need(Command::Service, "service"),
            "espera" | "enespera" | "pendiente" | "pending" | "hold" => Ok(Command::Pending),
            "nota" | "interno" | "interna" | "note" | "internal" => Ok(Command::Note),
            "reabrir" | "reopen" => Ok(Command::Reopen),
            _ => Err(Refusal::UnknownCommand {
                line: l.to_string(),
                word: word.clone(),
            }),
        };
        match parsed {
            Ok(c) => out.commands.push(c),
            Err(refusal) => out.errors.push(refusal),
        }
        lines.next();
    }
    out.body = lines.collect::<Vec<_>>().join("\n").trim().to_string();
    out
}

/// What a requester asks by mail instead of writing to the help desk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// `estado [FOLIO]` / `status [FOLIO]`: the folio in the line, if any.
    Status(Option<String>),
    /// `mis folios` / `my tickets`.
    MyTickets,
}

/// A query written as the first line of the new text (or as the whole subject), or `None`.
/// Only a short line that is nothing but the query counts: "estado del servidor: caído" is a
/// request, not a query.
pub fn parse_query(
    first_lines: &str,
    subject: &str,
    folio_format: &crate::folio::FolioFormat,
) -> Option<Query> {
    let line = first_lines
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let subject = crate::inbound::subject::strip_prefixes(subject);
    for candidate in [line, subject.as_str()] {
        let folded = fold(candidate)
            .trim_start_matches(['¿', '¡'])
            .trim_end_matches(['.', '?', '!', ':'])
            .trim()
            .to_string();
        if folded.len() > 60 {
            continue;
        }
        if matches!(
            folded.as_str(),
            "mis folios" | "mis tickets" | "mis reportes" | "my tickets" | "my folios"
        ) {
            return Some(Query::MyTickets);
        }
        let Some(rest) = ["estado", "estatus", "status"]
            .iter()
            .find_map(|w| folded.strip_prefix(w))
        else {
            continue;
        };
        // A whole word: "estadistica" is not "estado".
        if rest.starts_with(char::is_alphanumeric) {
            continue;
        }
        let rest = rest.trim_start_matches([':', ' ', '\t']);
        let rest = rest
            .strip_prefix("del ")
            .or_else(|| rest.strip_prefix("de "))
            .or_else(|| rest.strip_prefix("of "))
            .unwrap_or(rest)
            .trim();
        if rest.is_empty() {
            return Some(Query::Status(None));
        }
        // "estado MDA-2026-000042", "estado del folio MDA-2026-000042": nothing else in the line.
        if let Some((f, without)) = folio_format.extract(rest) {
            let others = without
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| {
                    !w.is_empty() && !["folio", "ticket", "no", "num", "numero"].contains(w)
                })
                .count();
            if others == 0 {
                return Some(Query::Status(Some(f)));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_at_the_top_spanish_and_english() {
        let c = parse_commands(
            "#Prioridad ALTA\n\n#asignar tech2\n#NOTA\nRevisé el servidor.\n#cerrar (no es comando aquí)\n",
        );
        assert_eq!(
            c.commands,
            vec![
                Command::Priority("ALTA".into()),
                Command::Assign("tech2".into()),
                Command::Note
            ]
        );
        assert!(c.errors.is_empty());
        assert_eq!(c.body, "Revisé el servidor.\n#cerrar (no es comando aquí)");
        let c = parse_commands("#resolve Password reset done\n#Reopen\n#PENDING");
        assert_eq!(
            c.commands,
            vec![
                Command::Resolve(Some("Password reset done".into())),
                Command::Reopen,
                Command::Pending
            ]
        );
        assert_eq!(c.body, "");
        // Accents optional, a colon tolerated.
        let c = parse_commands("#resuélto: listo\n#Asignár: tech1");
        assert_eq!(
            c.commands,
            vec![
                Command::Resolve(Some("listo".into())),
                Command::Assign("tech1".into())
            ]
        );
    }

    #[test]
    fn unknown_and_incomplete_commands_are_errors() {
        let c = parse_commands("#borrar todo\n#asignar\nhola");
        assert!(c.commands.is_empty());
        assert_eq!(c.errors.len(), 2);
        assert_eq!(c.errors[0].message(), "unknown command #borrar");
        assert_eq!(
            c.errors[0].to_string(),
            "#borrar todo: unknown command #borrar"
        );
        assert!(c.errors[1].message().contains("needs a technician"));
        assert_eq!(c.body, "hola");
    }

    #[test]
    fn outlook_link_text_is_not_part_of_the_argument() {
        let c = parse_commands("#asignar tech2@example.test<mailto:tech2@example.test>\n");
        assert_eq!(
            c.commands,
            vec![Command::Assign("tech2@example.test".into())]
        );
    }

    #[test]
    fn text_is_not_a_command() {
        let c = parse_commands("Hola,\n#cerrar\n");
        assert!(c.commands.is_empty() && c.errors.is_empty());
        let c = parse_commands("#1 problema: no hay red");
        assert!(c.commands.is_empty() && c.errors.is_empty());
        assert_eq!(c.body, "#1 problema: no hay red");
    }

    #[test]
    fn queries() {
        let folio = &crate::folio::FolioFormat::parse(crate::folio::DEFAULT_FORMAT).unwrap();
        assert_eq!(
            parse_query("Estado MDA-2026-000042\n\nSaludos", "", folio),
            Some(Query::Status(Some("MDA-2026-000042".into())))
        );
        assert_eq!(
            parse_query("estado del folio mda-2026-42?", "", folio),
            Some(Query::Status(Some("MDA-2026-000042".into())))
        );
        assert_eq!(parse_query("status", "", folio), Some(Query::Status(None)));
        assert_eq!(
            parse_query("¿Estatus?", "", folio),
            Some(Query::Status(None))
        );
        assert_eq!(
            parse_query("", "RE: [Folio MDA-2026-000042] estado", folio),
            None,
            "the subject must be only the query"
        );
        assert_eq!(
            parse_query("", "Estado MDA-2026-000042", folio),
            Some(Query::Status(Some("MDA-2026-000042".into())))
        );
        assert_eq!(parse_query("Mis folios", "", folio), Some(Query::MyTickets));
        assert_eq!(
            parse_query("Estado del servidor: caído desde ayer", "", folio),
            None
        );
        assert_eq!(
            parse_query(
                "estado MDA-2026-000042 y además no sirve la impresora",
                "",
                folio
            ),
            None
        );
    }
}
