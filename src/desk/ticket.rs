//! The ticket state machine: statuses, and what a technician's commands do to a ticket.
//!
//! Pure: the ticket's current state and the commands in, the changes (or the reasons they
//! cannot apply) out. A mail's commands apply all together or not at all, so a typo never
//! leaves a ticket half-changed.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::desk::catalog::{Catalog, Priority};
use crate::desk::command::{CloseAs, Command, Refusal};

/// Where a ticket is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Being worked on.
    Open,
    /// Waiting on the requester or a third party (`#espera`).
    Pending,
    /// The technician says it is solved (`#resuelto`).
    Resolved,
    /// Done (`#cerrar`).
    Closed,
}

impl Status {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Pending => "pending",
            Status::Resolved => "resolved",
            Status::Closed => "closed",
        }
    }

    /// Parses a stored name; unknown names read as open (never lose a ticket from view).
    pub fn parse(s: &str) -> Status {
        match s {
            "pending" => Status::Pending,
            "resolved" => Status::Resolved,
            "closed" => Status::Closed,
            _ => Status::Open,
        }
    }

    /// Still needs work (counts toward a technician's load).
    pub fn is_active(self) -> bool {
        matches!(self, Status::Open | Status::Pending)
    }
}

/// The part of a ticket commands change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketState {
    pub status: Status,
    pub priority: Priority,
    pub service: String,
    pub assignee: Option<String>,
}

/// A ticket as far as decisions need to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketRef {
    pub id: i64,
    pub folio: String,
    pub status: Status,
    pub subject: String,
    pub requester_email: String,
    pub requester_name: Option<String>,
    /// Addresses that receive public replies (CC'd on the opening mail), lower case.
    pub participants: Vec<String>,
    pub assignee: Option<String>,
    pub priority: Priority,
    pub service: String,
    pub language: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Message-ID of the mail that opened the ticket: what later mail about it refers to, so
    /// clients thread the whole conversation.
    pub opening_message_id: Option<String>,
    /// Where it is in its life after resolution.
    pub life: Life,
}

/// A ticket's life after resolution: validation, closing, survey.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Life {
    /// When it was last resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// When it was last closed.
    pub closed_at: Option<DateTime<Utc>>,
    /// When its satisfaction survey went out (one per ticket, ever).
    pub survey_sent_at: Option<DateTime<Utc>>,
    /// The one retry after an unreadable answer went out.
    pub survey_retried: bool,
    /// The survey was answered with a rating.
    pub survey_answered: bool,
    /// A technician's first public reply or change of status.
    pub first_response_at: Option<DateTime<Utc>>,
    /// Since when the resolution clock stands still (waiting on the requester, or resolved).
    pub sla_paused_at: Option<DateTime<Utc>>,
    /// How long it stood still before, in the measure of the resolution target (business or
    /// wall seconds).
    pub sla_paused_seconds: i64,
    /// The first-response target was breached (and escalated).
    pub response_breached: bool,
    /// The resolution target was breached (and escalated).
    pub resolution_breached: bool,
}

impl TicketRef {
    /// `References` for a mail about this ticket.
    pub fn thread(&self) -> Vec<String> {
        self.opening_message_id.iter().cloned().collect()
    }

    /// The part commands change.
    pub fn state(&self) -> TicketState {
        TicketState {
            status: self.status,
            priority: self.priority,
            service: self.service.clone(),
            assignee: self.assignee.clone(),
        }
    }
}

/// One change to a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "field", content = "value", rename_all = "snake_case")]
pub enum Change {
    Status(Status),
    Priority(Priority),
    Service(String),
    Assignee(String),
}

/// What a command did, for the technician's confirmation: a code (`kind`, the command as
/// [`Command`] serialises it) and what it set, with names beside ids, so the mail says it in
/// its language (the templates' `applied_command` partial).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Applied {
    /// Resolved, with the text for the requester.
    Resolve {
        resolution: Option<String>,
    },
    Close {
        /// `solved`, `spam` or `duplicate`.
        how: CloseAs,
    },
    Pending,
    Reopen,
    Assign {
        technician: String,
        technician_name: String,
    },
    Priority {
        priority: Priority,
    },
    Service {
        service: String,
        service_name: String,
    },
    /// The mail stays internal.
    Note,
}

impl Applied {
    /// One of every kind, for the sample notices (`desk::notice_samples`: `folio templates check`
    /// renders every template with them) and the tests that must see every field a template
    /// may use.
    pub fn every_kind() -> Vec<Applied> {
        vec![
            Applied::Resolve {
                resolution: Some("Listo.".into()),
            },
            Applied::Close {
                how: CloseAs::Solved,
            },
            Applied::Close { how: CloseAs::Spam },
            Applied::Pending,
            Applied::Reopen,
            Applied::Assign {
                technician: "tech2@example.test".into(),
                technician_name: "Técnico Dos".into(),
            },
            Applied::Priority {
                priority: Priority::Alta,
            },
            Applied::Service {
                service: "nomina".into(),
                service_name: "Nómina".into(),
            },
            Applied::Note,
        ]
    }
}

/// Commands that apply: the ticket's changes, and what each command did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub changes: Vec<Change>,
    /// One per command, in order.
    pub applied: Vec<Applied>,
}

/// Applies `commands` to `state`: every change, or every reason it cannot be done.
pub fn apply(
    state: &TicketState,
    commands: &[Command],
    catalog: &Catalog,
) -> Result<Outcome, Vec<Refusal>> {
    let mut s = state.clone();
    let mut out = Outcome::default();
    let mut refusals = Vec::new();
    for c in commands {
        match apply_one(&mut s, c, catalog) {
            Ok((change, applied)) => {
                out.changes.extend(change);
                out.applied.push(applied);
            }
            Err(refusal) => refusals.push(refusal),
        }
    }
    if refusals.is_empty() {
        Ok(out)
    } else {
        Err(refusals)
    }
}

/// One command on `s`: the change it makes (none for `#nota`) and what it did, or why not.
fn apply_one(
    s: &mut TicketState,
    c: &Command,
    catalog: &Catalog,
) -> Result<(Option<Change>, Applied), Refusal> {
    let set_status = |s: &mut TicketState, to: Status, allowed: &[Status], command| {
        if allowed.contains(&s.status) {
            s.status = to;
            Ok(Some(Change::Status(to)))
        } else {
            Err(Refusal::WrongStatus {
                command,
                status: s.status.as_str(),
                allowed: allowed.iter().map(|x| x.as_str()).collect(),
            })
        }
    };
    Ok(match c {
        Command::Resolve(text) => (
            set_status(
                s,
                Status::Resolved,
                &[Status::Open, Status::Pending],
                "resolve",
            )?,
            Applied::Resolve {
                resolution: text.clone(),
            },
        ),
        Command::Close(how) => (
            set_status(
                s,
                Status::Closed,
                &[Status::Open, Status::Pending, Status::Resolved],
                "close",
            )?,
            Applied::Close { how: *how },
        ),
        Command::Pending => (
            set_status(s, Status::Pending, &[Status::Open], "pending")?,
            Applied::Pending,
        ),
        Command::Reopen => (
            set_status(
                s,
                Status::Open,
                &[Status::Pending, Status::Resolved, Status::Closed],
                "reopen",
            )?,
            Applied::Reopen,
        ),
        Command::Assign(who) => match catalog.find_technician(who) {
            Some(t) if s.assignee.as_deref() == Some(t.email.as_str()) => {
                return Err(Refusal::AlreadyAssigned {
                    technician: t.email.clone(),
                    technician_name: t.name.clone(),
                })
            }
            Some(t) => {
                s.assignee = Some(t.email.clone());
                (
                    Some(Change::Assignee(t.email.clone())),
                    Applied::Assign {
                        technician: t.email.clone(),
                        technician_name: t.name.clone(),
                    },
                )
            }
            None => {
                return Err(Refusal::UnknownTechnician {
                    typed: who.clone(),
                    known: catalog
                        .technicians
                        .iter()
                        .map(|t| t.email.split('@').next().unwrap_or_default().to_string())
                        .collect(),
                })
            }
        },
        Command::Priority(p) => match Priority::parse(p) {
            Some(p) => {
                s.priority = p;
                (Some(Change::Priority(p)), Applied::Priority { priority: p })
            }
            None => return Err(Refusal::UnknownPriority { typed: p.clone() }),
        },
        Command::Service(x) => match catalog.find_service(x) {
            Some(svc) => {
                s.service = svc.id.clone();
                (
                    Some(Change::Service(svc.id.clone())),
                    Applied::Service {
                        service: svc.id.clone(),
                        service_name: svc.name.clone(),
                    },
                )
            }
            None => {
                return Err(Refusal::UnknownService {
                    typed: x.clone(),
                    known: catalog.services.iter().map(|s| s.id.clone()).collect(),
                })
            }
        },
        Command::Note => (None, Applied::Note),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn catalog() -> Catalog {
        Catalog::parse(
            Path::new("c.toml"),
            "[[group]]\nid='g'\n[[technician]]\nname='Técnico Dos'\nemail='tech2@example.test'\ngroups=['g']\n\
             [[service]]\nid='nomina'\nname='Nómina'\ngroup='g'\n",
        )
        .unwrap()
    }

    fn open() -> TicketState {
        TicketState {
            status: Status::Open,
            priority: Priority::Media,
            service: "nomina".into(),
            assignee: Some("tech1@example.test".into()),
        }
    }

    #[test]
    fn commands_change_the_ticket() {
        let c = catalog();
        let got = apply(
            &open(),
            &[
                Command::Note,
                Command::Priority("Alta".into()),
                Command::Assign("tech2".into()),
                Command::Resolve(None),
            ],
            &c,
        )
        .unwrap();
        assert_eq!(
            got.changes,
            vec![
                Change::Priority(Priority::Alta),
                Change::Assignee("tech2@example.test".into()),
                Change::Status(Status::Resolved)
            ]
        );
        assert_eq!(
            got.applied,
            vec![
                Applied::Note,
                Applied::Priority {
                    priority: Priority::Alta
                },
                Applied::Assign {
                    technician: "tech2@example.test".into(),
                    technician_name: "Técnico Dos".into()
                },
                Applied::Resolve { resolution: None }
            ]
        );
    }

    #[test]
    fn all_or_nothing() {
        let c = catalog();
        let errs = apply(
            &open(),
            &[
                Command::Priority("alta".into()),
                Command::Assign("nadie".into()),
                Command::Reopen,
            ],
            &c,
        )
        .unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].to_string().contains("no technician \"nadie\""));
        assert_eq!(
            errs[1].to_string(),
            "#reabrir: the ticket is open (allowed when pending or resolved or closed)"
        );
    }

    #[test]
    fn lifecycle() {
        let c = catalog();
        let mut s = open();
        s.status = Status::Closed;
        assert!(apply(&s, &[Command::Resolve(None)], &c).is_err());
        assert_eq!(
            apply(&s, &[Command::Reopen], &c).unwrap().changes,
            vec![Change::Status(Status::Open)]
        );
        s.status = Status::Resolved;
        assert_eq!(
            apply(&s, &[Command::Close(CloseAs::Solved)], &c)
                .unwrap()
                .changes,
            vec![Change::Status(Status::Closed)]
        );
    }
}
