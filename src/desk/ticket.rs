//! The ticket state machine: statuses, and what a technician's commands do to a ticket.
//!
//! Pure: the ticket's current state and the commands in, the changes (or the reasons they
//! cannot apply) out. A mail's commands apply all together or not at all, so a typo never
//! leaves a ticket half-changed.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::desk::catalog::{Catalog, Priority};
use crate::desk::command::Command;

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

/// Applies `commands` to `state`: every change, or every reason it cannot be done.
pub fn apply(
    state: &TicketState,
    commands: &[Command],
    catalog: &Catalog,
) -> Result<Vec<Change>, Vec<String>> {
    let mut s = state.clone();
    let mut changes = Vec::new();
    let mut errors = Vec::new();
    let set_status = |s: &mut TicketState, to: Status, allowed: &[Status], what: &str| {
        if allowed.contains(&s.status) {
            s.status = to;
            Ok(Change::Status(to))
        } else {
            Err(format!(
                "{what}: the ticket is {} (allowed when {})",
                s.status.as_str(),
                allowed
                    .iter()
                    .map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ))
        }
    };
    for c in commands {
        let r = match c {
            Command::Resolve(_) => set_status(
                &mut s,
                Status::Resolved,
                &[Status::Open, Status::Pending],
                "#resuelto",
            ),
            Command::Close => set_status(
                &mut s,
                Status::Closed,
                &[Status::Open, Status::Pending, Status::Resolved],
                "#cerrar",
            ),
            Command::Pending => set_status(&mut s, Status::Pending, &[Status::Open], "#espera"),
            Command::Reopen => set_status(
                &mut s,
                Status::Open,
                &[Status::Pending, Status::Resolved, Status::Closed],
                "#reabrir",
            ),
            Command::Assign(who) => match catalog.find_technician(who) {
                Some(t) if s.assignee.as_deref() == Some(t.email.as_str()) => {
                    Err(format!("#asignar: {} already has this ticket", t.email))
                }
                Some(t) => {
                    s.assignee = Some(t.email.clone());
                    Ok(Change::Assignee(t.email.clone()))
                }
                None => Err(format!(
                    "#asignar: no technician {who:?} (known: {})",
                    catalog
                        .technicians
                        .iter()
                        .map(|t| t.email.split('@').next().unwrap_or_default())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            },
            Command::Priority(p) => match Priority::parse(p) {
                Some(p) => {
                    s.priority = p;
                    Ok(Change::Priority(p))
                }
                None => Err(format!(
                    "#prioridad: {p:?} is not a level (baja, media, alta, critica)"
                )),
            },
            Command::Service(x) => match catalog.find_service(x) {
                Some(svc) => {
                    s.service = svc.id.clone();
                    Ok(Change::Service(svc.id.clone()))
                }
                None => Err(format!(
                    "#servicio: no service {x:?} (use an id: {})",
                    catalog
                        .services
                        .iter()
                        .map(|s| s.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            },
            Command::Note => continue,
        };
        match r {
            Ok(change) => changes.push(change),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(changes)
    } else {
        Err(errors)
    }
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
            got,
            vec![
                Change::Priority(Priority::Alta),
                Change::Assignee("tech2@example.test".into()),
                Change::Status(Status::Resolved)
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
        assert!(errs[0].contains("no technician \"nadie\""));
        assert!(errs[1].contains("#reabrir: the ticket is open"));
    }

    #[test]
    fn lifecycle() {
        let c = catalog();
        let mut s = open();
        s.status = Status::Closed;
        assert!(apply(&s, &[Command::Resolve(None)], &c).is_err());
        assert_eq!(
            apply(&s, &[Command::Reopen], &c).unwrap(),
            vec![Change::Status(Status::Open)]
        );
        s.status = Status::Resolved;
        assert_eq!(
            apply(&s, &[Command::Close], &c).unwrap(),
            vec![Change::Status(Status::Closed)]
        );
    }
}
