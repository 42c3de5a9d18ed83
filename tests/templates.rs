//! Every mail folio sends, rendered from the contexts `decide` really produces: a scenario per
//! kind of mail (new request, phone note, follow-up, technician reply, commands, rejected
//! commands, forged staff mail, status queries, bounce), each reply rendered in every language
//! and compared with `tests/fixtures/rendered/`. A template that uses a variable the decision
//! does not provide fails here (templates are strict), not in production. After an intended
//! change, regenerate with `UPDATE_GOLDEN=1 cargo test --test templates` and review the diff.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, LazyLock};

use chrono::{TimeZone, Utc};
use folio::desk::analysis::analyze;
use folio::desk::catalog::{Catalog, Priority, TicketType};
use folio::desk::decide::{decide, BouncedMail, Context, Decision, Reply};
use folio::desk::digest::{digests, weekly_summary, OpenTicket};
use folio::desk::known::SentMail;
use folio::desk::lifecycle::{on_due, DueItem, DueKind};
use folio::desk::notice::{DeliveryFailed, HelpdeskView, Notice, Template};
use folio::desk::policy::Policy;
use folio::desk::report::{self, Period, Report, Rows};
use folio::desk::requester::Directory;
use folio::desk::routing::{Hit, Rule};
use folio::desk::ticket::{Status, TicketRef};
use folio::desk::tokens::Tokens;
use folio::outbound::render::Templates;
use regex::Regex;

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const HD: &str = "helpdesk@example.test";
const FOLIO: &str = "MDA-2026-000042";

fn policy() -> Policy {
    let mut p = Policy::with_defaults(HD, Tokens::new(b"templates".to_vec()));
    p.catalog = Arc::new(Catalog::load(&Path::new(REPO).join("config/catalog.toml")).unwrap());
    p.admins = vec!["coordinacion@example.test".into()];
    p
}

fn ticket() -> TicketRef {
    TicketRef {
        id: 42,
        folio: FOLIO.into(),
        status: Status::Open,
        subject: "No puedo entrar al correo <urgente>".into(),
        requester_email: "alice@example.test".into(),
        requester_name: Some("Alicia Hernández".into()),
        participants: vec!["carol@example.test".into()],
        assignee: Some("tech1@example.test".into()),
        priority: Priority::Media,
        service: "correo-institucional".into(),
        language: "es".into(),
        created_at: Utc.with_ymd_and_hms(2026, 11, 26, 16, 5, 0).unwrap(),
        updated_at: Utc.with_ymd_and_hms(2026, 11, 27, 9, 30, 0).unwrap(),
        opening_message_id: Some("m1@client.test".into()),
        life: Default::default(),
    }
}

fn raw(from: &str, to: &str, subject: &str, body: &str, extra: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\n{extra}Subject: {subject}\r\nMessage-ID: <m.{}@client.test>\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{}\r\n",
        subject.len() + body.len(),
        body.replace('\n', "\r\n")
    )
    .into_bytes()
}

/// A request from alice with `n` small attachments `f0.txt` … .
fn many_attachments(n: usize) -> Vec<u8> {
    let mut raw = format!(
        "From: alice@example.test\r\nTo: {HD}\r\nSubject: Archivos\r\nMessage-ID: <many@client.test>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nVan los archivos.\r\n"
    );
    for i in 0..n {
        raw.push_str(&format!(
            "--b\r\nContent-Type: text/plain; name=\"f{i}.txt\"\r\nContent-Disposition: attachment; filename=\"f{i}.txt\"\r\n\r\nx\r\n"
        ));
    }
    raw.push_str("--b--\r\n");
    raw.into_bytes()
}

/// The replies `decide` queues for `raw` given `ctx`.
fn replies(raw: &[u8], ctx: &Context) -> Vec<Reply> {
    replies_under(&policy(), raw, ctx)
}

/// The replies `decide` queues for `raw` given `ctx` and policy `p`.
fn replies_under(p: &Policy, raw: &[u8], ctx: &Context) -> Vec<Reply> {
    let a = analyze(raw, &Directory::default(), p, u64::MAX).unwrap();
    match decide(&a, ctx, p) {
        Decision::Record(r) => r.replies,
        Decision::Duplicate => vec![],
    }
}

/// The figures of a week with one answered, resolved ticket and one survey answer.
fn a_week() -> Report {
    let p = policy();
    let day = |d: u32, h: u32| Utc.with_ymd_and_hms(2026, 12, d, h, 0, 0).unwrap();
    let rows = Rows {
        tickets: vec![report::Ticket {
            folio: FOLIO.into(),
            service: Some("correo-institucional".into()),
            status: Status::Closed,
            priority: Priority::Alta,
            created_at: day(1, 16),
            first_response_at: Some(day(1, 17)),
            resolved_at: Some(day(2, 16)),
            closed_at: Some(day(2, 18)),
            response_breached: false,
            resolution_breached: true,
        }],
        answers: vec![report::Answer {
            folio: FOLIO.into(),
            rating: 4,
            comment: Some("Tardaron un poco, pero quedó.".into()),
            answered_at: day(3, 16),
        }],
    };
    let period = Period::days(
        chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
        chrono::NaiveDate::from_ymd_opt(2026, 12, 6).unwrap(),
        &p.calendar,
    )
    .unwrap();
    Report::build(&rows, &period, &p.catalog, &p.calendar)
}

fn on_ticket() -> Context<'static> {
    on_this(ticket())
}

fn on_this(t: TicketRef) -> Context<'static> {
    Context {
        answered: Some(last_to_requester(&t)),
        thread_ticket: Some(t),
        ..Context::default()
    }
}

/// The mail of ours to `t`'s requester a reply of theirs answers: the resolution while the
/// ticket is resolved, the survey once it is closed, the confirmation before.
fn last_to_requester(t: &TicketRef) -> SentMail {
    SentMail {
        outbox_id: 1,
        to: t.requester_email.clone(),
        ticket_id: Some(t.id),
        template: match t.status {
            Status::Resolved => "resolved",
            Status::Closed => "survey",
            _ => "confirmation",
        }
        .into(),
    }
}

/// `t` in `status`, its survey sent when closed.
fn in_life(status: Status) -> TicketRef {
    let mut t = ticket();
    t.status = status;
    t.life.resolved_at = Some(Utc.with_ymd_and_hms(2026, 12, 1, 16, 0, 0).unwrap());
    if status == Status::Closed {
        t.life.survey_sent_at = Some(Utc.with_ymd_and_hms(2026, 12, 3, 16, 0, 0).unwrap());
    }
    t
}

/// The mail doing a due item of `kind` on `t` sends.
fn due_replies(p: &Policy, kind: DueKind, t: TicketRef) -> Vec<Reply> {
    let item = DueItem {
        id: 1,
        kind,
        // Two business days after `in_life`'s resolution: the reminder's time, before the closing's.
        due_at: Utc.with_ymd_and_hms(2026, 12, 3, 16, 0, 0).unwrap(),
        ticket: t,
        requester_opted_out: false,
        requester_failing: false,
    };
    on_due(&item, item.due_at, p).replies
}

fn scenarios() -> Vec<(&'static str, Vec<Reply>)> {
    let tokens = policy().tokens;
    let tech1_token = tokens.staff_address(HD, FOLIO, "tech1@example.test");
    // A phone note is taken on the agent's word only when sent to their personal address.
    let agent1_proof = tokens.personal_address(HD, "agent1@example.test");
    let tech = |body: &str| {
        raw(
            "Técnico Uno <tech1@example.test>",
            &tech1_token,
            &format!("RE: [Folio {FOLIO}] Asignado"),
            body,
            "",
        )
    };
    let bounced_ctx = Context {
        bounced: Some(BouncedMail {
            outbox_id: 7,
            to: "alice@example.test".into(),
            ticket: Some(ticket()),
        }),
        ..Context::default()
    };
    let mine = Context {
        sender_tickets: vec![ticket()],
        ..Context::default()
    };
    vec![
        (
            "new_request",
            replies(
                &raw(
                    "Alicia Hernández <alice@example.test>",
                    HD,
                    "No puedo entrar al correo <urgente>",
                    "Desde ayer no puedo entrar.\nMe dice \"contraseña inválida\" & <b>no</b> la cambié.",
                    "Cc: carol@example.test\r\n",
                ),
                &Context::default(),
            ),
        ),
        (
            "phone_note",
            replies(
                &raw(
                    "agent1@example.test",
                    &agent1_proof,
                    "Llamada",
                    "Nombre: Bob Benítez\nCorreo: bob@example.test\nDetalle: La impresora no imprime.\n",
                    "",
                ),
                &Context::default(),
            ),
        ),
        (
            "follow_up",
            replies(
                &raw(
                    "alice@example.test",
                    HD,
                    &format!("RE: [Folio {FOLIO}]"),
                    "Sigue igual.\n\nEl jue, 26 nov 2026 a las 10:15, Mesa de Ayuda escribió:\n> Hola",
                    "",
                ),
                &on_ticket(),
            ),
        ),
        ("technician_reply", replies(&tech("Ya quedó, intente de nuevo."), &on_ticket())),
        (
            "technician_commands",
            replies(&tech("#prioridad alta\n#asignar tech2"), &on_ticket()),
        ),
        (
            "technician_resolves",
            replies(&tech("#resuelto Se restableció la contraseña."), &on_ticket()),
        ),
        ("technician_bad_command", replies(&tech("#borrar todo"), &on_ticket())),
        (
            "forged_technician",
            replies(
                &raw("tech1@example.test", HD, "RE: x", "#cerrar", ""),
                &on_ticket(),
            ),
        ),
        (
            "status",
            replies(
                &raw("alice@example.test", HD, "Consulta", "estado", ""),
                &on_ticket(),
            ),
        ),
        (
            "status_denied",
            replies(
                &raw("eve@example.test", HD, "Consulta", &format!("estado {FOLIO}"), ""),
                &Context::default(),
            ),
        ),
        (
            "my_tickets",
            replies(&raw("alice@example.test", HD, "mis folios", "", ""), &mine),
        ),
        (
            // Outside the institution's domains: the folio and a fixed line, nothing quoted.
            "outside_request",
            replies(
                &raw(
                    "Compre en spam.test <victim@outside.test>",
                    HD,
                    "Oferta en spam.test",
                    "Visite http://spam.test\nTeléfono: 555 SPAM",
                    "",
                ),
                &Context::default(),
            ),
        ),
        ("many_attachments", replies(&many_attachments(23), &Context::default())),
        (
            "requester_confirms",
            replies(
                &raw("alice@example.test", HD, &format!("RE: [Folio {FOLIO}] Resuelto"), "Sí, ya quedó. Muchas gracias!", ""),
                &on_this(in_life(Status::Resolved)),
            ),
        ),
        (
            "requester_rejects",
            replies(
                &raw("alice@example.test", HD, &format!("RE: [Folio {FOLIO}] Resuelto"), "No, sigue sin funcionar.", ""),
                &on_this(in_life(Status::Resolved)),
            ),
        ),
        (
            "survey_answer",
            replies(
                &raw("alice@example.test", HD, &format!("RE: [Folio {FOLIO}] Encuesta"), "5 - excelente servicio", ""),
                &on_this(in_life(Status::Closed)),
            ),
        ),
        (
            "survey_unreadable",
            replies(
                &raw("alice@example.test", HD, &format!("RE: [Folio {FOLIO}] Encuesta"), "Muy bien atendido", ""),
                &on_this(in_life(Status::Closed)),
            ),
        ),
        ("due_confirm_reminder", due_replies(&policy(), DueKind::ConfirmReminder, in_life(Status::Resolved))),
        ("due_auto_close", due_replies(&policy(), DueKind::AutoClose, in_life(Status::Resolved))),
        ("due_survey", due_replies(&policy(), DueKind::Survey, {
            let mut t = in_life(Status::Closed);
            t.life.survey_sent_at = None;
            t
        })),
        ("due_survey_reminder", due_replies(&policy(), DueKind::SurveyReminder, in_life(Status::Closed))),
        ("due_sla_response_warning", due_replies(&policy(), DueKind::SlaResponseWarning, ticket())),
        ("due_sla_resolution_breach", due_replies(&policy(), DueKind::SlaResolutionBreach, ticket())),
        ("due_unassigned", due_replies(&policy(), DueKind::Unassigned, TicketRef { assignee: None, ..ticket() })),
        (
            "technician_digest",
            digests(
                &[OpenTicket {
                    ticket: ticket(),
                    next_breach: Some(Utc.with_ymd_and_hms(2026, 11, 27, 19, 0, 0).unwrap()),
                }],
                Utc.with_ymd_and_hms(2026, 11, 27, 14, 0, 0).unwrap(),
                &policy(),
            ),
        ),
        ("weekly_summary", weekly_summary(&a_week(), &policy())),
        ("stall_alarm", stall_alarm(&policy())),
        (
            "oauth_failure",
            folio::desk::alert::oauth_failure(
                OAUTH_URL,
                OAUTH_ERROR,
                Utc.with_ymd_and_hms(2026, 11, 27, 14, 0, 0).unwrap(),
                Some(Utc.with_ymd_and_hms(2026, 11, 27, 14, 15, 0).unwrap()),
                &policy(),
            ),
        ),
        (
            "bounce",
            replies(
                &raw(
                    "MAILER-DAEMON@example.test",
                    HD,
                    "Undelivered Mail Returned to Sender",
                    "Mailbox full.",
                    "Auto-Submitted: auto-replied\r\n",
                ),
                &bounced_ctx,
            ),
        ),
    ]
}

#[test]
fn every_mail_renders_in_every_language_and_matches_its_snapshot() {
    let templates = Templates::new(Path::new(REPO).join("mail-templates"));
    let dir = Path::new(REPO).join("tests/fixtures/rendered");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    if update {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
    }
    let mut mismatches = Vec::new();
    let mut used = BTreeSet::new();
    for (scenario, replies) in scenarios() {
        assert!(!replies.is_empty(), "{scenario}: no mail queued");
        for (n, reply) in replies.iter().enumerate() {
            used.insert(reply.template().name());
            let folio = reply.template().has_folio().then_some(FOLIO);
            let context = reply.notice.context(folio);
            for lang in ["es", "en"] {
                let r = templates
                    .render(lang, reply.template().name(), &context)
                    .unwrap_or_else(|e| panic!("{scenario}: {e}"));
                for (part, text) in [("subject", &r.subject), ("txt", &r.text), ("html", &r.html)] {
                    let file =
                        dir.join(format!("{scenario}.{n}.{}.{lang}.{part}", reply.template()));
                    if update {
                        std::fs::write(&file, text).unwrap();
                        continue;
                    }
                    let want = std::fs::read_to_string(&file).unwrap_or_else(|e| {
                        panic!("{}: {e} (run with UPDATE_GOLDEN=1)", file.display())
                    });
                    if &want != text {
                        std::fs::write(file.with_extension(format!("{part}.actual")), text)
                            .unwrap();
                        mismatches.push(file.display().to_string());
                    }
                }
                // User text is escaped in HTML and shown as written in text.
                if reply.template() == Template::Confirmation && scenario == "new_request" {
                    assert!(r.html.contains("&amp; &lt;b&gt;no&lt;/b&gt;"), "{}", r.html);
                    assert!(r.text.contains("& <b>no</b> la cambié"));
                    assert!(r.subject.contains("<urgente>"), "subjects are text");
                }
            }
        }
    }
    // The sender's own notice (a mail it gave up on after smtp.max_age).
    used.insert("delivery_failed");
    let context = Notice::DeliveryFailed(DeliveryFailed::new(
        &ticket(),
        "alice@example.test",
        Utc.with_ymd_and_hms(2026, 11, 26, 16, 6, 0).unwrap(),
        "temporary error (451): 4.7.1 Try again later",
        Some(HelpdeskView {
            name: "Mesa de Ayuda".into(),
            institution: "DGSTI".into(),
            phone: "(722) 2769600".into(),
            address: HD.into(),
        }),
    ))
    .context(None);
    for lang in ["es", "en"] {
        let r = templates
            .render(lang, "delivery_failed", &context)
            .unwrap_or_else(|e| panic!("delivery_failed: {e}"));
        assert!(r.text.contains("alice@example.test") && r.text.contains("451"));
        for (part, text) in [("subject", &r.subject), ("txt", &r.text), ("html", &r.html)] {
            let file = dir.join(format!("max_age.0.delivery_failed.{lang}.{part}"));
            if update {
                std::fs::write(&file, text).unwrap();
                continue;
            }
            let want = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", file.display()));
            if &want != text {
                std::fs::write(file.with_extension(format!("{part}.actual")), text).unwrap();
                mismatches.push(file.display().to_string());
            }
        }
    }
    let all: BTreeSet<&str> = Template::ALL.map(Template::name).into_iter().collect();
    assert_eq!(used, all, "every template is exercised by a scenario");
    assert!(
        mismatches.is_empty(),
        "rendered mail differs from the snapshot: {mismatches:?}"
    );
}

/// Copies `mail-templates` to a temporary folder an edit can break.
fn templates_copy() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for lang in ["es", "en"] {
        let from = Path::new(REPO).join("mail-templates").join(lang);
        let to = tmp.path().join(lang);
        std::fs::create_dir(&to).unwrap();
        for entry in std::fs::read_dir(&from).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
    tmp
}

#[test]
fn one_broken_template_stops_no_other_mail() {
    let tmp = templates_copy();
    let file = tmp.path().join("es/confirmation.txt.hbs");
    // Checked for changes on every render: no test waits on the once-a-second timer.
    let templates = Templates::with_recheck(tmp.path(), std::time::Duration::ZERO);
    let all = scenarios();
    let render_all = |t: &Templates| -> Vec<(&str, Result<String, String>)> {
        all.iter()
            .flat_map(|(_, replies)| replies)
            .map(|r| {
                let context = r.notice.context(Some(FOLIO));
                (
                    r.template().name(),
                    t.render("es", r.template().name(), &context)
                        .map(|m| m.text)
                        .map_err(|e| e.to_string()),
                )
            })
            .collect()
    };
    let good = render_all(&templates);
    assert!(good.iter().all(|(_, r)| r.is_ok()), "{good:?}");

    // An admin's edit breaks the Spanish confirmation: every mail still renders, the
    // confirmation from its last good version, and the file is reported.
    let original = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{original}\n{{{{#if requester.name}}\n")).unwrap();
    assert_eq!(render_all(&templates), good);
    let broken = templates.broken("es").unwrap();
    assert_eq!(broken.len(), 1);
    assert!(broken[0].to_string().contains(&file.display().to_string()));

    // A fresh start with the file broken: only the confirmation fails, naming the file.
    let fresh = Templates::with_recheck(tmp.path(), std::time::Duration::ZERO);
    for (template, r) in render_all(&fresh) {
        match template {
            "confirmation" => {
                let e = r.unwrap_err();
                assert!(e.contains("es/confirmation.txt.hbs"), "{e}");
            }
            other => assert!(r.is_ok(), "{other}: {r:?}"),
        }
    }
    let problems = fresh.check("es");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(fresh.check("en").is_empty());

    // The fix takes effect on the next render, without a restart.
    std::fs::write(&file, format!("{original}\nGracias.\n")).unwrap();
    let fixed = render_all(&fresh);
    assert!(fixed.iter().all(|(_, r)| r.is_ok()), "{fixed:?}");
    assert!(fresh.broken("es").unwrap().is_empty());
}

#[test]
fn confirmations_list_a_bounded_number_of_attachments() {
    let r = replies(&many_attachments(23), &Context::default());
    let c = &r[0].notice.context(None);
    assert_eq!(r[0].template(), Template::Confirmation);
    assert_eq!(c["attachments"].as_array().unwrap().len(), 20);
    assert_eq!(c["attachments_more"], 3);
    let templates = Templates::new(Path::new(REPO).join("mail-templates"));
    let mut c = c.clone();
    c["folio"] = FOLIO.into();
    let es = templates.render("es", "confirmation", &c).unwrap();
    assert!(
        es.text.contains("y 3 más") && !es.text.contains("f20.txt"),
        "{}",
        es.text
    );
    let en = templates.render("en", "confirmation", &c).unwrap();
    assert!(en.text.contains("and 3 more"), "{}", en.text);
}

/// A subject that decodes to several lines (CR/LF in an encoded word) and is very long: the
/// mail folio sends has one Subject line of bounded length and no header of the sender's.
#[test]
fn a_hostile_subject_injects_no_header() {
    // Q-encoded: =0D=0A is CR LF, _ a space.
    let encoded = format!(
        "Hola=0D=0ABcc:_eve@evil.test=0D=0AX-Evil:_1_{}",
        "x".repeat(500)
    );
    let inbound = raw(
        "alice@example.test",
        HD,
        &format!("=?utf-8?q?{encoded}?="),
        "Hola",
        "",
    );
    let a = analyze(&inbound, &Directory::default(), &policy(), u64::MAX).unwrap();
    assert!(
        a.mail.subject.contains("\nBcc:"),
        "the attack decodes: {:?}",
        a.mail.subject
    );
    let r = replies(&inbound, &Context::default());
    let context = r[0].notice.context(Some(FOLIO));
    let subject = context["reply_subject"].as_str().unwrap();
    assert!(!subject.contains(['\r', '\n']), "{subject:?}");
    assert!(
        subject.chars().count() <= 205,
        "{}",
        subject.chars().count()
    );
    let rendered = Templates::new(Path::new(REPO).join("mail-templates"))
        .render("es", "confirmation", &context)
        .unwrap();
    let a = folio::outbound::outgoing::Addressing {
        from_name: "Mesa de Ayuda".into(),
        from_address: HD.into(),
        to: "alice@example.test".into(),
        reply_to: None,
        message_id: "x.1@example.test".into(),
        in_reply_to: None,
        references: vec![],
        auto_submitted: "auto-replied",
        date: Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap(),
    };
    let bytes = folio::outbound::outgoing::build(&a, &rendered, &[])
        .unwrap()
        .formatted();
    let text = String::from_utf8_lossy(&bytes);
    let headers = text.split("\r\n\r\n").next().unwrap();
    for line in headers.lines() {
        assert!(
            !line.starts_with("Bcc:") && !line.starts_with("X-Evil:"),
            "injected header: {headers}"
        );
    }
    // lettre itself encodes a raw CR/LF in a subject rather than ending the header.
    let m = lettre::Message::builder()
        .from(HD.parse().unwrap())
        .to("alice@example.test".parse().unwrap())
        .subject("Hola\r\nBcc: eve@evil.test")
        .body(String::from("x"))
        .unwrap();
    let text = String::from_utf8_lossy(&m.formatted()).into_owned();
    assert!(
        !text.lines().any(|l| l.starts_with("Bcc:")),
        "lettre let a header through: {text}"
    );
}

/// English words folio's own text uses (codes, and the sentences Rust used to write): none may
/// show in a Spanish mail.
/// The token endpoint and its answer in the `oauth_failure` scenarios (the server's words, shown
/// as they are in either language).
const OAUTH_URL: &str = "https://login.microsoftonline.com/example/oauth2/v2.0/token";
const OAUTH_ERROR: &str = "the server refused: invalid_client (AADSTS7000222: The provided client secret keys are expired.)";

const ENGLISH: &[&str] = &[
    "open",
    "pending",
    "waiting",
    "resolved",
    "closed",
    "low",
    "medium",
    "high",
    "critical",
    "incident",
    "request",
    "email",
    "phone",
    "requester",
    "participant",
    "technician",
    "agent",
    "automatic",
    "subject",
    "body",
    "text",
    "service",
    "priority",
    "type",
    "status",
    "ticket",
    "tickets",
    "default",
    "unassigned",
    "assigned",
    "assignee",
    "fewest",
    "turn",
    "group",
    "level",
    "command",
    "unknown",
    "needs",
    "already",
    "known",
    "allowed",
    "note",
    "the",
    "and",
    "is",
    "in",
    "of",
    "to",
    "by",
    "now",
    "with",
    "there",
    "or",
    "not",
    "has",
    "this",
    "when",
    "use",
    "round",
    "robin",
    "keyword",
    "matched",
    "department",
    "technicians",
    "route",
];

/// Spanish words of folio's codes and of the Spanish templates: none may show in an English
/// mail (the catalogue's names and keywords are data, and the scenarios avoid these words).
const SPANISH: &[&str] = &[
    "abierto",
    "espera",
    "resuelto",
    "resuelta",
    "cerrado",
    "baja",
    "media",
    "alta",
    "crítica",
    "critica",
    "incidente",
    "solicitud",
    "correo",
    "teléfono",
    "telefono",
    "solicitante",
    "técnico",
    "agente",
    "asunto",
    "texto",
    "servicio",
    "prioridad",
    "tipo",
    "estado",
    "asignado",
    "folio",
    "folios",
    "nota",
    "turno",
    "grupo",
    "nivel",
    "comando",
    "falta",
    "existe",
    "atiende",
    "predeterminado",
    "predeterminada",
    "departamento",
    "nombre",
    "sin",
    "del",
    "por",
    "con",
    "para",
    "ya",
    "hay",
    "quedó",
];

/// Codes that are Spanish words: a Spanish mail shows them capitalised (`Alta`), never as the
/// code (`alta`), outside the command guide.
const SPANISH_CODES: &[&str] = &["baja", "media", "alta", "critica", "incidente"];

/// A ticket in `status` and `priority`, about nothing either language's word list names.
fn ticket_in(status: Status, priority: Priority) -> TicketRef {
    TicketRef {
        status,
        priority,
        subject: "Impresora 204".into(),
        requester_name: Some("Ana Pérez".into()),
        service: "verificacion-equipo".into(),
        ..ticket()
    }
}

/// Every mail about `t` the rules send: follow-ups, replies, every command applied or refused,
/// forged staff mail, queries, bounces, and the sender's delivery failure.
fn mails_about(p: &Policy, t: &TicketRef) -> Vec<(String, serde_json::Value)> {
    let token = p.tokens.staff_address(HD, FOLIO, "tech1@example.test");
    let on = Context {
        thread_ticket: Some(t.clone()),
        answered: Some(last_to_requester(t)),
        sender_tickets: vec![t.clone()],
        ..Context::default()
    };
    let tech = |body: &str| raw("tech1@example.test", &token, "RE: x", body, "");
    let requester = |body: &str| raw("alice@example.test", HD, "RE: x", body, "");
    let inbound = [
        requester("Qqq 204."),
        requester("estado"),
        requester("mis folios"),
        tech("Qqq 204."),
        tech("#prioridad alta\n#asignar tech2\n#servicio nomina\n#nota\nQqq 204."),
        tech("#resuelto Qqq 204."),
        tech("#cerrar"),
        tech("#espera"),
        tech("#reabrir"),
        tech("#borrar qqq\n#asignar\n#prioridad\n#servicio"),
        tech("#asignar nadie\n#prioridad altisima\n#servicio zzz"),
        tech("#asignar tech1"),
        raw("tech1@example.test", HD, "RE: x", "#cerrar", ""),
    ];
    // Answers to a resolution and to a survey (they count only in those statuses).
    let inbound: Vec<Vec<u8>> = inbound
        .into_iter()
        .chain(REQUESTER_ANSWERS.iter().map(|a| requester(a)))
        .collect();
    let mut out: Vec<(String, serde_json::Value)> = inbound
        .iter()
        .flat_map(|m| replies_under(p, m, &on))
        .map(|r| {
            (
                r.template().name().to_string(),
                r.notice.context(Some(FOLIO)),
            )
        })
        .collect();
    let bounced = Context {
        bounced: Some(BouncedMail {
            outbox_id: 7,
            to: "alice@example.test".into(),
            ticket: Some(t.clone()),
        }),
        ..Context::default()
    };
    let bounce = raw(
        "MAILER-DAEMON@example.test",
        HD,
        "Undelivered Mail Returned to Sender",
        "550 5.1.1 qqq",
        "Auto-Submitted: auto-replied\r\n",
    );
    out.extend(replies_under(p, &bounce, &bounced).iter().map(|r| {
        (
            r.template().name().to_string(),
            r.notice.context(Some(FOLIO)),
        )
    }));
    let mut answered = t.clone();
    answered.life.survey_sent_at = Some(Utc.with_ymd_and_hms(2026, 12, 3, 16, 0, 0).unwrap());
    for kind in [
        DueKind::ConfirmReminder,
        DueKind::AutoClose,
        DueKind::Survey,
        DueKind::SlaResponseWarning,
        DueKind::SlaResponseBreach,
        DueKind::SlaResolutionWarning,
        DueKind::SlaResolutionBreach,
        DueKind::Unassigned,
    ] {
        out.extend(due_replies(p, kind, t.clone()).iter().map(|r| {
            (
                r.template().name().to_string(),
                r.notice.context(Some(FOLIO)),
            )
        }));
    }
    out.extend(
        due_replies(p, DueKind::SurveyReminder, answered.clone())
            .iter()
            .map(|r| {
                (
                    r.template().name().to_string(),
                    r.notice.context(Some(FOLIO)),
                )
            }),
    );
    let at_risk = OpenTicket {
        ticket: t.clone(),
        next_breach: Some(Utc.with_ymd_and_hms(2026, 11, 27, 19, 0, 0).unwrap()),
    };
    let digest_day = Utc.with_ymd_and_hms(2026, 11, 27, 14, 0, 0).unwrap();
    out.extend(
        digests(&[at_risk], digest_day, p)
            .iter()
            .map(|r| (r.template().name().to_string(), r.notice.context(None))),
    );
    out.extend(
        folio::desk::alert::oauth_failure(
            OAUTH_URL,
            OAUTH_ERROR,
            Utc.with_ymd_and_hms(2026, 11, 27, 14, 0, 0).unwrap(),
            None,
            p,
        )
        .iter()
        .map(|r| (r.template().name().to_string(), r.notice.context(None))),
    );
    out.extend(
        weekly_summary(&a_week(), p)
            .iter()
            .map(|r| (r.template().name().to_string(), r.notice.context(None))),
    );
    out.extend(
        stall_alarm(p)
            .iter()
            .map(|r| (r.template().name().to_string(), r.notice.context(None))),
    );
    let on_answered = on_this(answered);
    for body in REQUESTER_ANSWERS {
        out.extend(
            replies_under(p, &requester(body), &on_answered)
                .iter()
                .map(|r| {
                    (
                        r.template().name().to_string(),
                        r.notice.context(Some(FOLIO)),
                    )
                }),
        );
    }
    let failed = DeliveryFailed::new(
        t,
        "alice@example.test",
        Utc.with_ymd_and_hms(2026, 11, 26, 16, 6, 0).unwrap(),
        "451 4.7.1 qqq",
        Some(HelpdeskView::of(p)),
    );
    out.push((
        "delivery_failed".into(),
        Notice::DeliveryFailed(failed).context(None),
    ));
    out
}

/// New tickets: routed by keywords, by default, by a VIP department; a phone note with fields
/// missing; an outside sender; and an assignment with a rule of every kind.
fn new_tickets(p: &Policy) -> Vec<(String, serde_json::Value)> {
    let agent_proof = p.tokens.personal_address(HD, "agent1@example.test");
    let inbound = [
        raw(
            "ana@example.test",
            HD,
            "Impresora 204",
            "No imprime, urgente.",
            "",
        ),
        raw("ana@example.test", HD, "Qqq", "Qqq 204.", ""),
        raw(
            "ana@example.test",
            HD,
            "Qqq",
            &format!("Qqq 204.\n\n{VIP_LINE}"),
            "",
        ),
        raw(
            "agent1@example.test",
            &agent_proof,
            "Llamada",
            "Nombre: Ana Pérez\nCorreo: ana@example.test\nDetalle: Qqq 204.\n",
            "",
        ),
        raw("x@outside.test", HD, "Qqq", "Qqq 204.", ""),
        raw(
            "eve@example.test",
            HD,
            "Qqq",
            &format!("estado {FOLIO}"),
            "",
        ),
    ];
    let mut out: Vec<(String, serde_json::Value)> = inbound
        .iter()
        .flat_map(|m| replies_under(p, m, &Context::default()))
        .map(|r| {
            (
                r.template().name().to_string(),
                r.notice.context(Some(FOLIO)),
            )
        })
        .collect();
    let (_, assignment) = out
        .iter()
        .find(|(t, _)| t == "assignment")
        .cloned()
        .unwrap();
    let mut every_rule = assignment;
    every_rule["ticket"]["rules"] = serde_json::to_value(every_rule_kind()).unwrap();
    out.push(("assignment".into(), every_rule));
    out
}

/// A routing rule of every kind, including those the shipped catalogue never produces.
fn every_rule_kind() -> Vec<Rule> {
    let tech = || {
        (
            "tech2@example.test".to_string(),
            "Teresa Vázquez León".to_string(),
        )
    };
    let rules = vec![
        Rule::Service {
            service: "nomina".into(),
            service_name: "Nómina".into(),
            hits: vec![
                Hit {
                    keyword: "\"recibo\"".into(),
                    place: "subject",
                },
                Hit {
                    keyword: "/qqq/".into(),
                    place: "body",
                },
            ],
        },
        Rule::DefaultService {
            service: "nomina".into(),
            service_name: "Nómina".into(),
        },
        Rule::Type {
            ticket_type: TicketType::Solicitud,
            keywords: vec!["\"solicito\"".into()],
        },
        Rule::DefaultType {
            ticket_type: TicketType::Incidente,
        },
        Rule::Priority {
            priority: Priority::Critica,
            keywords: vec!["\"qqq\"".into()],
        },
        Rule::DefaultPriority {
            priority: Priority::Baja,
        },
        Rule::VipDepartment {
            priority: Priority::Alta,
            department: "Qqq".into(),
        },
        Rule::LeastOpen {
            technician: tech().0,
            technician_name: tech().1,
            group: "redes".into(),
            open: 2,
        },
        Rule::RoundRobin {
            technician: tech().0,
            technician_name: tech().1,
            group: "redes".into(),
        },
        Rule::EmptyGroup {
            group: "redes".into(),
        },
        Rule::NoService,
    ];
    // A new kind of rule stops this from compiling until it is added above (and said by the
    // `routing_rule` partials).
    for r in &rules {
        match r {
            Rule::Service { .. }
            | Rule::DefaultService { .. }
            | Rule::Type { .. }
            | Rule::DefaultType { .. }
            | Rule::Priority { .. }
            | Rule::DefaultPriority { .. }
            | Rule::VipDepartment { .. }
            | Rule::LeastOpen { .. }
            | Rule::RoundRobin { .. }
            | Rule::EmptyGroup { .. }
            | Rule::NoService => {}
        }
    }
    rules
}

/// What the checks read of a rendered part: HTML without its tags and entities, and without
/// the command guide (command syntax, the same in every mail: `#prioridad <baja|…>`), the
/// requester's own words and `data` (the catalogue's ids and names, written in one language
/// for every mail).
fn visible(text: &str, html: bool, data: &[String]) -> String {
    static TAGS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"<[^>]*>").unwrap());
    let text = if html {
        TAGS.replace_all(text, " ")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#x27;", "'")
            .replace("&amp;", "&")
    } else {
        text.to_string()
    };
    let mut text = text
        .lines()
        .filter(|l| {
            !folio::desk::command::GUIDE
                .iter()
                .any(|(es, en)| l.contains(es) || l.contains(en))
                && !l.contains(VIP_LINE)
        })
        .collect::<Vec<_>>()
        .join("\n");
    for d in data {
        text = text.replace(d.as_str(), "·");
    }
    text
}

/// The catalogue's ids and names, longest first (a name may contain a shorter one).
fn catalogue_data(p: &Policy) -> Vec<String> {
    let c = &p.catalog;
    let mut data: Vec<String> = c
        .services
        .iter()
        .flat_map(|s| [s.id.clone(), s.name.clone()])
        .chain(c.technicians.iter().map(|t| t.name.clone()))
        .chain(c.agents.iter().map(|a| a.name.clone()))
        .collect();
    data.sort_by_key(|d| std::cmp::Reverse(d.chars().count()));
    data
}

/// What requesters answer to a resolution and to a survey: their words, not the template's, so
/// the language check leaves them out.
const REQUESTER_ANSWERS: [&str; 5] = [
    "Sí, ya quedó, gracias.",
    "No, sigue sin funcionar.",
    "Gracias.",
    "5 - excelente servicio",
    "Muy bien atendido",
];

/// The line of a request that makes its sender's department a VIP one.
const VIP_LINE: &str = "Departamento: Secretaría Particular";

/// Whole words of `banned` (`case`: as written; otherwise in any case), or a snake_case code
/// (`least_open`).
fn banned_words(banned: &[&str], case: bool) -> Regex {
    let flags = if case { "" } else { "(?i)" };
    Regex::new(&format!(
        r"{flags}\b(?:{})\b|\b[a-z]+_[a-z_]+\b",
        banned.join("|")
    ))
    .unwrap()
}

#[test]
fn a_mail_shows_codes_only_in_its_own_language() {
    let templates = Templates::new(Path::new(REPO).join("mail-templates"));
    let statuses = [
        (Status::Open, "Abierto", "Open"),
        (Status::Pending, "En espera", "Waiting"),
        (Status::Resolved, "Resuelto", "Resolved"),
        (Status::Closed, "Cerrado", "Closed"),
    ];
    let priorities = ["Baja", "Media", "Alta", "Crítica"]
        .into_iter()
        .zip(["Low", "Medium", "High", "Critical"]);
    let p = policy();
    let mut mails = new_tickets(&p);
    let mut problems = Vec::new();
    for (status, es_status, en_status) in statuses {
        for (priority, (es_priority, en_priority)) in
            Priority::ALL.into_iter().zip(priorities.clone())
        {
            let about = mails_about(&p, &ticket_in(status, priority));
            // The `status` answer names the status and the priority in the mail's words.
            let (_, status_answer) = about.iter().find(|(t, _)| t == "status").unwrap();
            for (lang, status_word, priority_word) in [
                ("es", es_status, es_priority),
                ("en", en_status, en_priority),
            ] {
                let text = templates
                    .render(lang, "status", status_answer)
                    .unwrap()
                    .text;
                if !text.contains(status_word) || !text.contains(priority_word) {
                    problems.push(format!(
                        "{lang} status of a {status:?} {priority:?} ticket does not say {status_word:?} and {priority_word:?}:\n{text}"
                    ));
                }
            }
            mails.extend(about);
        }
    }
    let kinds: BTreeSet<&str> = mails.iter().map(|(t, _)| t.as_str()).collect();
    let all: BTreeSet<&str> = Template::ALL.map(Template::name).into_iter().collect();
    assert_eq!(kinds, all, "every template is checked");
    let mut data = catalogue_data(&p);
    data.extend(REQUESTER_ANSWERS.iter().map(|a| a.to_string()));
    data.push("Tardaron un poco, pero quedó.".into());
    data.push("excelente servicio".into());
    // The token endpoint's own words.
    data.push(OAUTH_URL.into());
    data.push(OAUTH_ERROR.into());
    let checks = [
        ("es", banned_words(ENGLISH, false)),
        ("es", banned_words(SPANISH_CODES, true)),
        ("en", banned_words(SPANISH, false)),
    ];
    for (template, context) in &mails {
        for (lang, banned) in &checks {
            let r = templates
                .render(lang, template, context)
                .unwrap_or_else(|e| panic!("{template}: {e}"));
            for (part, text) in [("subject", &r.subject), ("txt", &r.text), ("html", &r.html)] {
                let shown = visible(text, part == "html", &data);
                let found: Vec<&str> = banned.find_iter(&shown).map(|m| m.as_str()).collect();
                if !found.is_empty() {
                    problems.push(format!(
                        "{template}.{part} in {lang} shows {found:?}:\n{shown}"
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n\n"));
}

/// A partial that is not `*_html` is used by the text part and, inside `<pre>`, by the HTML
/// part, where only variables are escaped: a literal `<` in it (the follow-up's
/// `<{{author.email}}>` once) reads as a tag, and the browser hides what it encloses.
#[test]
fn partials_shared_with_html_write_no_markup() {
    let expression = Regex::new(r"(?s)\{\{.*?\}\}").unwrap();
    let mut problems = Vec::new();
    for lang in ["es", "en"] {
        let dir = Path::new(REPO).join("mail-templates").join(lang);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.starts_with('_') || name.ends_with("_html.hbs") {
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            let literal = expression.replace_all(&source, "");
            if literal.contains(['<', '>']) {
                problems.push(format!("{lang}/{name}: {literal}"));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// The admins' alarm about mail stuck in the watched folder for 25 minutes, with the worker's
/// last error.
fn stall_alarm(p: &Policy) -> Vec<Reply> {
    let since = Utc.with_ymd_and_hms(2026, 11, 27, 15, 35, 0).unwrap();
    let watch = folio::desk::stall::Watch {
        waiting: 7,
        waiting_since: Some(since),
        last_filed_at: None,
        first_waiting: Some("imap:INBOX:1796384626:42".into()),
    };
    folio::desk::stall::alarm_mails(
        "INBOX",
        &watch,
        since,
        since + chrono::Duration::minutes(25),
        Some("database error: disk I/O error"),
        p,
    )
}
