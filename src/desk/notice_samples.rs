//! Sample mails: realistic notices of every [`Template`] (ticket MDA-2026-000042, Alicia
//! Hernández cannot get into her institutional mail), some templates with several so that
//! each branch of the shipped templates is rendered (an agent's copy, a reassignment, the
//! three ways a ticket closes, …).
//!
//! One source for three readers: `folio templates check` renders every template with every
//! sample of it in strict mode, `folio templates preview` shows a template's first sample
//! (built around a real ticket with `--ticket`), and the tests of [`crate::desk::notice`]
//! compare the variables the samples have with `docs/templates.md`. So every list of a
//! notice has an element in at least one sample (its elements' fields show), and every
//! template has a sample (`desk::notice`'s `every_template_has_a_sample`).
//!
//! Pure: the dates are fixed, and nothing is read.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

use crate::desk::catalog::{Catalog, Priority, TicketType};
use crate::desk::command::Refusal;
use crate::desk::notice::{
    first_name, guide, reply_subject, AssignedTicketView, Assignment, AttachmentList, AuthorView,
    BounceNotice, BreachCounts, Closure, CommandResult, CommentView, ConfirmReminder, Confirmation,
    DeliveryFailed, DigestLine, FollowUp, HelpdeskView, MissingView, MyTickets, Notice,
    OAuthFailure, PriorityCounts, Relay, RequesterView, SatisfactionFigures, ServiceTickets,
    SlaEscalation, SlaWarning, StallAlarm, StatusCounts, StatusDenied, StatusReport, SurveyRequest,
    SurveyThanks, TechnicianDigest, TechnicianView, Template, TicketView, TimeFigures,
    WeeklySummary,
};
use crate::desk::policy::Policy;
use crate::desk::requester::Requester;
use crate::desk::routing::{Hit, Rule};
use crate::desk::ticket::{Applied, Status, TicketRef};
use crate::inbound::mail::Attachment;

/// The sample ticket's folio.
pub const SAMPLE_FOLIO: &str = "MDA-2026-000042";

/// The sample ticket: open, assigned to tech1, from Alicia Hernández.
pub fn sample_ticket() -> TicketRef {
    TicketRef {
        id: 42,
        folio: SAMPLE_FOLIO.into(),
        status: Status::Open,
        subject: "No puedo entrar al correo institucional".into(),
        requester_email: "alicia.hernandez@example.test".into(),
        requester_name: Some("Alicia Hernández".into()),
        participants: vec![],
        assignee: Some("tech1@example.test".into()),
        priority: Priority::Media,
        service: "correo-institucional".into(),
        language: "es".into(),
        created_at: at(2026, 11, 26, 16, 5),
        updated_at: at(2026, 11, 27, 9, 30),
        opening_message_id: None,
        life: Default::default(),
    }
}

/// Every sample mail, about the sample ticket, in the order of [`Template::ALL`]; a template's
/// first sample is its usual mail.
pub fn samples(policy: &Policy) -> Vec<Notice> {
    build(policy, Some("Dirección de Finanzas"), |template| {
        let mut t = sample_ticket();
        t.status = match template {
            Template::Resolved | Template::ConfirmReminder => Status::Resolved,
            Template::Closure
            | Template::Survey
            | Template::SurveyReminder
            | Template::SurveyRetry
            | Template::SurveyThanks => Status::Closed,
            _ => Status::Open,
        };
        t
    })
}

/// The samples with `ticket` in place of the sample ticket (`folio templates preview
/// --ticket`): its subject, requester, status, priority, service and assignee, as it is now.
/// What a mail would quote (a request's text, a technician's reply, a survey's comment) and
/// the answers that concern no single ticket (`status_denied`, `my_tickets`) stay the
/// samples'.
pub fn samples_about(ticket: &TicketRef, policy: &Policy) -> Vec<Notice> {
    // The ticket does not store the requester's department: none rather than an invented one.
    build(policy, None, |_| ticket.clone())
}

/// Every sample's contexts with its template: what the strict check renders
/// (`outbound::render::Templates::check_strictly`).
pub fn all_contexts(policy: &Policy) -> Vec<(Template, Value)> {
    samples(policy)
        .iter()
        .flat_map(|n| {
            contexts(n, SAMPLE_FOLIO)
                .into_iter()
                .map(|c| (n.template(), c))
        })
        .collect()
}

/// The contexts a template renders `notice` with: as it is queued (with `folio` when the mail
/// concerns one ticket), and, when its mail may carry files, as the sender renders it when
/// some stayed behind (`attachments_omitted`).
pub fn contexts(notice: &Notice, folio: &str) -> Vec<Value> {
    let template = notice.template();
    let queued = notice.context(template.has_folio().then_some(folio));
    let mut out = vec![queued.clone()];
    if template.may_carry_files() {
        let mut omitted = queued;
        if let Some(object) = omitted.as_object_mut() {
            object.insert("attachments_omitted".into(), 2.into());
        }
        out.push(omitted);
    }
    out
}

fn at(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(year, month, day, hour, minute, 0)
        .single()
        .unwrap_or_default()
}

/// The samples, each about `ticket_for(its template)`, from a requester of `department`.
fn build(
    policy: &Policy,
    department: Option<&str>,
    ticket_for: impl Fn(Template) -> TicketRef,
) -> Vec<Notice> {
    let helpdesk = HelpdeskView::of(policy);
    let catalog = &policy.catalog;
    let mut out = Vec::new();
    for template in Template::ALL {
        let t = ticket_for(template);
        let s = Sampler {
            helpdesk: &helpdesk,
            catalog,
            // To the requester: the view a mail to them has (their name in it).
            view: TicketView::public(&t, catalog, &t.requester_email),
            staff_view: TicketView::new(&t, catalog),
            t: &t,
            department,
        };
        out.extend(s.of(template));
    }
    out
}

/// What the samples of one template are built from.
struct Sampler<'a> {
    helpdesk: &'a HelpdeskView,
    catalog: &'a Catalog,
    t: &'a TicketRef,
    view: TicketView,
    staff_view: TicketView,
    department: Option<&'a str>,
}

impl Sampler<'_> {
    fn of(&self, template: Template) -> Vec<Notice> {
        let helpdesk = || self.helpdesk.clone();
        match template {
            Template::Confirmation => self.confirmations(),
            Template::Reply => vec![Notice::Reply(self.relay(
                "Buenos días, Alicia. Restablecí su contraseña; la temporal le llegó por SMS al \
                 teléfono registrado. ¿Puede intentar entrar de nuevo y decirme si funciona?",
                None,
            ))],
            Template::Resolved => vec![Notice::Resolved(self.relay(
                "Ya quedó: su buzón estaba bloqueado por intentos fallidos.",
                Some("Se desbloqueó la cuenta y se verificó el acceso desde el webmail."),
            ))],
            Template::Status => vec![Notice::Status(StatusReport {
                ticket: self.view.clone(),
                helpdesk: helpdesk(),
            })],
            Template::StatusDenied => [Some("MDA-2026-000041"), None]
                .map(|asked| {
                    Notice::StatusDenied(StatusDenied {
                        folio_asked: asked.map(String::from),
                        helpdesk: helpdesk(),
                    })
                })
                .into(),
            Template::MyTickets => vec![Notice::MyTickets(MyTickets {
                tickets: my_tickets(self.catalog),
                helpdesk: helpdesk(),
            })],
            Template::Assignment => self.assignments(),
            Template::FollowUp => self.follow_ups(),
            Template::CommandResult => self.command_results(),
            Template::BounceNotice => vec![Notice::BounceNotice(BounceNotice {
                ticket: self.staff_view.clone(),
                bounced_to: self.t.requester_email.clone(),
                report: format!(
                    "<{}>: host mx.example.test said: 550 5.1.1 User unknown",
                    self.t.requester_email
                ),
                helpdesk: helpdesk(),
            })],
            Template::DeliveryFailed => vec![Notice::DeliveryFailed(DeliveryFailed::new(
                self.t,
                &self.t.requester_email,
                at(2026, 11, 26, 16, 6),
                "451 4.7.1 Greylisted, please try again later",
                Some(helpdesk()),
            ))],
            Template::Closure
            | Template::ConfirmReminder
            | Template::Survey
            | Template::SurveyReminder
            | Template::SurveyRetry
            | Template::SurveyThanks => self.after_resolution(template),
            Template::SlaWarning => ["first_response", "resolution"]
                .map(|target| {
                    Notice::SlaWarning(SlaWarning {
                        ticket: self.staff_view.clone(),
                        target,
                        due_at: "2026-11-26 14:05".into(),
                        helpdesk: helpdesk(),
                    })
                })
                .into(),
            Template::TechnicianDigest => vec![self.digest()],
            Template::WeeklySummary => vec![self.weekly_summary()],
            // With the worker's last error, and without one (the connection simply hangs).
            Template::StallAlarm => [Some("database error: disk I/O error"), None]
                .map(|last_error| {
                    Notice::StallAlarm(StallAlarm {
                        folder: "INBOX".into(),
                        waiting: 7,
                        since: "2026-11-26 16:06 UTC".into(),
                        stalled_for: "25 min".into(),
                        last_error: last_error.map(str::to_string),
                        helpdesk: helpdesk(),
                    })
                })
                .into(),
            Template::OAuthFailure => [Some(at(2026, 11, 26, 17, 15)), None]
                .map(|expires| {
                    Notice::OAuthFailure(OAuthFailure::new(
                        "https://login.microsoftonline.com/example/oauth2/v2.0/token",
                        "the server refused: invalid_client (AADSTS7000222: The provided client secret keys are expired.)",
                        at(2026, 11, 26, 17, 0),
                        expires,
                        helpdesk(),
                    ))
                })
                .into(),
            Template::SlaEscalation => ["first_response", "resolution", "assignment"]
                .map(|target| {
                    Notice::SlaEscalation(SlaEscalation {
                        ticket: self.staff_view.clone(),
                        target,
                        due_at: "2026-11-26 14:05".into(),
                        helpdesk: helpdesk(),
                    })
                })
                .into(),
        }
    }

    /// A week of the help desk in figures, with a comment quoted and one more left out.
    fn weekly_summary(&self) -> Notice {
        Notice::WeeklySummary(WeeklySummary {
            from: "2026-11-30".into(),
            to: "2026-12-06".into(),
            tickets: 42,
            by_service: vec![
                ServiceTickets {
                    name: "Correo electrónico institucional".into(),
                    tickets: 17,
                },
                ServiceTickets {
                    name: "Nómina".into(),
                    tickets: 9,
                },
            ],
            by_status: StatusCounts {
                open: 8,
                pending: 3,
                resolved: 6,
                closed: 25,
            },
            by_priority: PriorityCounts {
                baja: 10,
                media: 24,
                alta: 7,
                critica: 1,
            },
            first_response: TimeFigures {
                measured: 39,
                still_open: 3,
                mean: Some("1 h 25 min".into()),
                p90: Some("3 h 40 min".into()),
            },
            resolution: TimeFigures {
                measured: 31,
                still_open: 11,
                mean: Some("1 d 2 h".into()),
                p90: None,
            },
            sla_breaches: BreachCounts {
                first_response: 2,
                resolution: 1,
                tickets: 3,
            },
            satisfaction: SatisfactionFigures {
                answers: 12,
                average: Some("4.42".into()),
                comments: vec![CommentView {
                    folio: self.t.folio.clone(),
                    rating: 5,
                    comment: "Muy rápida la atención, gracias.".into(),
                }],
                comments_more: 1,
            },
            helpdesk: self.helpdesk.clone(),
        })
    }

    /// A technician's digest: one ticket at risk, one breached and waiting, one more unlisted.
    fn digest(&self) -> Notice {
        Notice::TechnicianDigest(TechnicianDigest {
            technician_name: "Tomás Ortega Ruiz".into(),
            open: 3,
            at_risk: 1,
            by_priority: PriorityCounts {
                baja: 0,
                media: 2,
                alta: 1,
                critica: 0,
            },
            tickets: vec![
                DigestLine {
                    folio: self.t.folio.clone(),
                    subject: self.staff_view.subject.clone(),
                    status: "open",
                    priority: "alta",
                    age_days: 2,
                    at_risk: true,
                    breached: false,
                    due_at: Some("2026-11-27 13:00".into()),
                },
                DigestLine {
                    folio: "MDA-2026-000040".into(),
                    subject: "Alta de usuario en el sistema de nómina".into(),
                    status: "pending",
                    priority: "media",
                    age_days: 6,
                    at_risk: false,
                    breached: true,
                    due_at: None,
                },
            ],
            listed_more: 1,
            helpdesk: self.helpdesk.clone(),
        })
    }

    /// The mail of the ticket's life after resolution: closing (each way it closes), the
    /// reminder to confirm (with and without a closing date), the survey and its answers.
    fn after_resolution(&self, template: Template) -> Vec<Notice> {
        let helpdesk = || self.helpdesk.clone();
        match template {
            Template::Closure => ["confirmed", "technician", "no_answer", "duplicate"]
                .map(|reason| {
                    Notice::Closure(Closure {
                        ticket: self.view.clone(),
                        reason,
                        helpdesk: helpdesk(),
                    })
                })
                .into(),
            Template::ConfirmReminder => [Some("2026-12-11".to_string()), None]
                .map(|auto_close_on| {
                    Notice::ConfirmReminder(ConfirmReminder {
                        ticket: self.view.clone(),
                        auto_close_on,
                        helpdesk: helpdesk(),
                    })
                })
                .into(),
            Template::Survey | Template::SurveyReminder | Template::SurveyRetry => {
                let request = SurveyRequest {
                    ticket: self.view.clone(),
                    helpdesk: helpdesk(),
                };
                vec![match template {
                    Template::Survey => Notice::Survey(request),
                    Template::SurveyReminder => Notice::SurveyReminder(request),
                    _ => Notice::SurveyRetry(request),
                }]
            }
            Template::SurveyThanks => [(5, Some("Muy rápida la atención, gracias.")), (2, None)]
                .map(|(rating, comment)| {
                    Notice::SurveyThanks(SurveyThanks {
                        ticket: self.view.clone(),
                        rating,
                        comment: comment.map(String::from),
                        helpdesk: helpdesk(),
                    })
                })
                .into(),
            // `of` sends only the templates above here.
            _ => vec![],
        }
    }

    /// The requester as the ticket names them (the sample's with a department, as the
    /// directory gives it).
    fn requester(&self) -> Requester {
        Requester {
            email: self.t.requester_email.clone(),
            name: self.t.requester_name.clone(),
            department: self.department.map(String::from),
            phone: None,
        }
    }

    /// To the requester by mail; the phone agent's copy of a phone note; to an outside domain.
    fn confirmations(&self) -> Vec<Notice> {
        let requester = self.requester();
        let subject = self.view.subject.clone();
        let by_mail = Confirmation {
            reply_subject: reply_subject(&subject),
            subject,
            summary: "Desde ayer no puedo entrar a mi correo institucional: me dice \
                      \"contraseña inválida\" y no la he cambiado. Adjunto la captura."
                .into(),
            quoted: true,
            channel: "email",
            agent_copy: false,
            missing_fields: vec![],
            requester: RequesterView::from(&requester),
            missing: MissingView::from(&requester),
            files: files(),
            helpdesk: self.helpdesk.clone(),
        };
        let by_phone = Confirmation {
            channel: "phone",
            agent_copy: true,
            missing_fields: vec!["departamento", "telefono"],
            files: AttachmentList::default(),
            ..by_mail.clone()
        };
        let mut outside = by_mail.clone();
        outside.quote_nothing();
        [by_mail, by_phone, outside]
            .map(Notice::Confirmation)
            .into()
    }

    fn relay(&self, text: &str, resolution: Option<&str>) -> Relay {
        let technician = self
            .t
            .assignee
            .as_deref()
            .and_then(|a| self.catalog.technician(a));
        Relay {
            ticket: self.view.clone(),
            text: text.into(),
            resolution: resolution.map(String::from),
            technician: TechnicianView {
                first_name: technician.map(|x| first_name(&x.name)),
                name: technician.map(|x| x.name.clone()),
            },
            helpdesk: self.helpdesk.clone(),
        }
    }

    /// A new ticket routed by keywords; a phone note with a rule of every kind; a reassignment.
    fn assignments(&self) -> Vec<Notice> {
        let t = self.t;
        let service_name = self.catalog.service_name(&t.service);
        let technician = t.assignee.clone().unwrap_or_default();
        let new_ticket = Assignment {
            ticket: AssignedTicketView {
                subject: self.view.subject.clone(),
                channel: Some("email"),
                service: t.service.clone(),
                service_name: service_name.clone(),
                ticket_type: Some(TicketType::Incidente.as_str()),
                priority: t.priority.as_str(),
                rules: vec![
                    Rule::Service {
                        service: t.service.clone(),
                        service_name: service_name.clone(),
                        hits: vec![Hit {
                            keyword: "\"correo\"".into(),
                            place: "subject",
                        }],
                    },
                    Rule::Type {
                        ticket_type: TicketType::Incidente,
                        keywords: vec!["\"no puedo\"".into()],
                    },
                    Rule::DefaultPriority {
                        priority: t.priority,
                    },
                    Rule::LeastOpen {
                        technician_name: self.catalog.staff_name(&technician),
                        technician,
                        group: "correo".into(),
                        open: 2,
                    },
                ],
            },
            requester: RequesterView::from(&self.requester()),
            detail: "Desde ayer no puedo entrar a mi correo institucional: me dice \
                     \"contraseña inválida\" y no la he cambiado.\n\nGracias."
                .into(),
            files: files(),
            opened_by: None,
            opened_by_name: None,
            reassigned_by: None,
            reassigned_by_name: None,
            commands: guide(),
            helpdesk: self.helpdesk.clone(),
        };
        let agent = "agent1@example.test";
        let mut by_phone = new_ticket.clone();
        by_phone.ticket.channel = Some("phone");
        by_phone.ticket.rules = Rule::every_kind();
        by_phone.opened_by = Some(agent.into());
        by_phone.opened_by_name = Some(self.catalog.staff_name(agent));
        let by = "tech2@example.test";
        let mut reassigned = new_ticket.clone();
        reassigned.ticket.channel = None;
        reassigned.ticket.ticket_type = None;
        reassigned.ticket.rules = vec![];
        reassigned.requester.department = None;
        reassigned.requester.phone = None;
        reassigned.detail = "#asignar tech1\nEs de correo, no de redes.".into();
        reassigned.files = AttachmentList::default();
        reassigned.reassigned_by = Some(by.into());
        reassigned.reassigned_by_name = Some(self.catalog.staff_name(by));
        [new_ticket, by_phone, reassigned]
            .map(Notice::Assignment)
            .into()
    }

    /// The requester writes; answers a resolution (unclear); mail in the technician's name
    /// without proof.
    fn follow_ups(&self) -> Vec<Notice> {
        let t = self.t;
        let from_requester = FollowUp {
            ticket: self.staff_view.clone(),
            author: AuthorView {
                name: t.requester_name.clone(),
                email: t.requester_email.clone(),
                role: "requester",
            },
            text: "Sigue igual: ya reinicié la computadora y me sigue diciendo contraseña \
                   inválida."
                .into(),
            unauthenticated: false,
            validation: None,
            files: files(),
            commands: guide(),
            helpdesk: self.helpdesk.clone(),
        };
        let unclear = FollowUp {
            text: "Creo que ya, aunque en el teléfono todavía no entra.".into(),
            validation: Some("unclear"),
            files: AttachmentList::default(),
            ..from_requester.clone()
        };
        let technician = t.assignee.clone().unwrap_or_default();
        let forged = FollowUp {
            author: AuthorView {
                name: Some(self.catalog.staff_name(&technician)),
                email: technician,
                role: "technician",
            },
            text: "#cerrar".into(),
            unauthenticated: true,
            files: AttachmentList::default(),
            ..from_requester.clone()
        };
        [from_requester, unclear, forged]
            .map(Notice::FollowUp)
            .into()
    }

    /// Commands applied (one of every kind) and refused (one of every kind).
    fn command_results(&self) -> Vec<Notice> {
        let applied = CommandResult {
            ticket: self.staff_view.clone(),
            applied: Applied::every_kind(),
            errors: vec![],
            relayed: true,
            commands: guide(),
            helpdesk: self.helpdesk.clone(),
        };
        let refused = CommandResult {
            applied: vec![],
            errors: Refusal::every_kind(),
            relayed: false,
            ..applied.clone()
        };
        [applied, refused].map(Notice::CommandResult).into()
    }
}

/// The files of the sample request: a screenshot and a document.
fn files() -> AttachmentList {
    let file = |name: &str, content_type: &str, size| Attachment {
        name: name.into(),
        content_type: content_type.into(),
        size,
        data: vec![],
    };
    AttachmentList::of(
        &[
            file("captura de pantalla.png", "image/png", 48_213),
            file("oficio 123-2026.pdf", "application/pdf", 212_440),
        ],
        20,
    )
}

/// `mis folios`: the requester's tickets, newest first.
fn my_tickets(catalog: &Catalog) -> Vec<TicketView> {
    let open = sample_ticket();
    let mut older = sample_ticket();
    older.id = 17;
    older.folio = "MDA-2026-000017".into();
    older.subject = "Alta en el sistema de nómina".into();
    older.status = Status::Closed;
    older.service = "nomina".into();
    older.assignee = Some("tech3@example.test".into());
    older.created_at = at(2026, 10, 2, 15, 40);
    older.updated_at = at(2026, 10, 6, 18, 2);
    [open, older]
        .iter()
        .map(|t| TicketView::public(t, catalog, &t.requester_email))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desk::tokens::Tokens;

    fn policy() -> Policy {
        Policy::with_defaults("helpdesk@example.test", Tokens::new(b"t".to_vec()))
    }

    #[test]
    fn a_real_ticket_replaces_the_sample_one() {
        let mut real = sample_ticket();
        real.folio = "MDA-2026-000777".into();
        real.subject = "La impresora del piso 3 no imprime".into();
        real.status = Status::Pending;
        for notice in samples_about(&real, &policy()) {
            let context = notice.context(Some(&real.folio)).to_string();
            match notice.template() {
                // Not about one ticket: no ticket's subject in them.
                Template::StatusDenied
                | Template::MyTickets
                | Template::WeeklySummary
                | Template::StallAlarm
                | Template::OAuthFailure => {
                    assert!(!context.contains("piso 3"), "{context}")
                }
                Template::Confirmation if context.contains("\"quoted\":false") => {}
                template => assert!(
                    context.contains("La impresora del piso 3 no imprime"),
                    "{template}: {context}"
                ),
            }
        }
    }

    #[test]
    fn files_stay_behind_only_in_mail_that_carries_them() {
        for notice in samples(&policy()) {
            let contexts = contexts(&notice, SAMPLE_FOLIO);
            let template = notice.template();
            assert_eq!(
                contexts.len(),
                if template.may_carry_files() { 2 } else { 1 }
            );
            assert_eq!(
                contexts[0].get("folio").is_some(),
                template.has_folio(),
                "{template}"
            );
        }
    }
}
