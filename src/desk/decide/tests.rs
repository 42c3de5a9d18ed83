use super::*;
use crate::desk::catalog::{Catalog, Priority};
use crate::desk::policy::cap_key;
use crate::desk::requester::Directory;
use crate::desk::ticket::Status;
use crate::desk::tokens::Tokens;
use chrono::{TimeZone, Utc};
use std::path::Path;
use std::sync::Arc;

const HD: &str = "helpdesk@example.test";

/// The test site: two technicians and a phone agent in one group, one service, a cap of 2.
/// Shared with the plan's tests.
pub(crate) fn policy() -> Policy {
    let mut p = Policy::with_defaults(HD, Tokens::new(b"decide-tests".to_vec()));
    p.max_auto_replies_per_address = 2;
    p.catalog = Arc::new(
        Catalog::parse(
            Path::new("catalog.toml"),
            "[[group]]\nid='g'\n\
             [[technician]]\nname='Tomás Uno'\nemail='tech1@example.test'\ngroups=['g']\n\
             [[technician]]\nname='Teresa Dos'\nemail='tech2@example.test'\ngroups=['g']\n\
             [[agent]]\nname='Agente'\nemail='agent1@example.test'\n\
             [[service]]\nid='correo'\nname='Correo'\ngroup='g'\nkeywords=['correo']\n",
        )
        .unwrap(),
    );
    p
}

fn ticket() -> TicketRef {
    TicketRef {
        id: 7,
        folio: "MDA-2026-000007".into(),
        status: Status::Open,
        subject: "Impresora".into(),
        requester_email: "ana@example.test".into(),
        requester_name: Some("Ana".into()),
        participants: vec!["carol@example.test".into()],
        assignee: Some("tech1@example.test".into()),
        priority: Priority::Media,
        service: "correo".into(),
        language: "es".into(),
        created_at: Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 0).unwrap(),
        updated_at: Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 0).unwrap(),
        opening_message_id: Some("a1@client.test".into()),
        life: Default::default(),
    }
}

fn analysis(from: &str, to: &str, subject: &str, body: &str, extra: &str) -> Analysis {
    let raw = format!(
        "From: {from}\r\nTo: {to}\r\n{extra}Subject: {subject}\r\nMessage-ID: <m1@client.test>\r\n\r\n{body}\r\n"
    );
    crate::desk::analysis::analyze(raw.as_bytes(), &Directory::default(), &policy(), u64::MAX)
        .unwrap()
}

/// A mail from tech1 to their tokenised address for ticket 7: proof that tech1 wrote it.
fn from_tech1(subject: &str, body: &str) -> Analysis {
    let token = policy()
        .tokens
        .staff_address(HD, "MDA-2026-000007", "tech1@example.test");
    analysis("tech1@example.test", &token, subject, body, "")
}

fn record(a: &Analysis, ctx: &Context) -> Record {
    match decide(a, ctx, &policy()) {
        Decision::Record(r) => r,
        Decision::Duplicate => panic!("unexpected duplicate"),
    }
}

fn on_ticket() -> Context<'static> {
    Context {
        thread_ticket: Some(ticket()),
        ..Context::default()
    }
}

#[test]
fn new_request_is_routed_confirmed_threaded_and_notified() {
    let a = analysis(
        "Ana <ana@example.test>",
        HD,
        "No llega el correo",
        "Hola",
        "Cc: carol@example.test\r\n",
    );
    let r = record(&a, &Context::default());
    assert_eq!(r.reason, Reason::NewTicket);
    let TicketAction::Open(t) = &r.action else {
        panic!()
    };
    assert_eq!(t.routing.service, "correo");
    assert_eq!(t.routing.assignee.as_deref(), Some("tech1@example.test"));
    assert_eq!(t.participants, vec!["carol@example.test"]);
    let templates: Vec<_> = r
        .replies
        .iter()
        .map(|x| (x.template().name(), x.to.as_str()))
        .collect();
    assert_eq!(
        templates,
        vec![
            ("confirmation", "ana@example.test"),
            ("assignment", "tech1@example.test")
        ]
    );
    assert_eq!(r.replies[0].in_reply_to.as_deref(), Some("m1@client.test"));
    assert_eq!(r.replies[1].staff.as_deref(), Some("tech1@example.test"));
}

#[test]
fn duplicates_rate_limit_and_automatic_mail() {
    let a = analysis("ana@example.test", HD, "x", "y", "");
    let dup = Context {
        already_processed: true,
        ..Context::default()
    };
    assert_eq!(decide(&a, &dup, &policy()), Decision::Duplicate);
    let recent: HashMap<String, u32> = [("ana@example.test".to_string(), 2)].into();
    let busy = Context {
        recent_mails: Some(&recent),
        ..Context::default()
    };
    let r = record(&a, &busy);
    assert_eq!(r.reason, Reason::NewTicketRateLimited);
    assert!(r.replies.iter().all(|x| x.to != "ana@example.test"));
    let ooo = analysis(
        "ana@example.test",
        HD,
        "Fuera",
        "x",
        "Auto-Submitted: auto-replied\r\n",
    );
    let r = record(&ooo, &on_ticket());
    assert_eq!(r.reason, Reason::AutomaticOnTicket);
    assert!(r.replies.is_empty());
    assert!(matches!(r.action, TicketAction::Append { ref changes, .. } if changes.is_empty()));
}

#[test]
fn a_folio_counts_only_for_requester_participants_and_staff() {
    let by_folio = |from: &str| {
        let a = analysis(from, HD, "RE: [Folio MDA-2026-000007]", "más datos", "");
        record(
            &a,
            &Context {
                referenced_ticket: Some(ticket()),
                ..Context::default()
            },
        )
    };
    assert_eq!(by_folio("ana@example.test").reason, Reason::FollowUpByFolio);
    assert_eq!(
        by_folio("carol@example.test").reason,
        Reason::FollowUpByFolio
    );
    let stranger = by_folio("eve@example.test");
    assert_eq!(
        stranger.reason,
        Reason::NewTicket,
        "a stranger cannot write on it"
    );
    let TicketAction::Open(t) = &stranger.action else {
        panic!()
    };
    assert_eq!(t.referenced_folio.as_deref(), Some("MDA-2026-000007"));
}

#[test]
fn requester_follow_up_notifies_the_assignee_and_reopens_a_resolved_ticket() {
    let a = analysis("ana@example.test", HD, "RE: x", "Sigue igual", "");
    let mut t = ticket();
    t.status = Status::Resolved;
    let r = record(
        &a,
        &Context {
            thread_ticket: Some(t),
            ..Context::default()
        },
    );
    assert!(
        matches!(&r.action, TicketAction::Append { changes, .. } if changes == &vec![Change::Status(Status::Open)])
    );
    assert_eq!(r.replies.len(), 1);
    assert_eq!(
        (r.replies[0].template().name(), r.replies[0].to.as_str()),
        ("follow_up", "tech1@example.test")
    );
}

#[test]
fn technician_commands_need_proof() {
    let p = policy();
    // With the tokenised address: applied, confirmed, and the text relayed.
    let a = from_tech1("RE: x", "#prioridad alta\nYa casi queda.");
    let r = record(&a, &on_ticket());
    assert_eq!(r.reason, Reason::StaffReply);
    assert!(
        matches!(&r.action, TicketAction::Append { changes, .. } if changes == &vec![Change::Priority(Priority::Alta)])
    );
    let sent: Vec<_> = r
        .replies
        .iter()
        .map(|x| (x.template().name(), x.to.as_str()))
        .collect();
    assert_eq!(
        sent,
        vec![
            ("reply", "ana@example.test"),
            ("reply", "carol@example.test"),
            ("command_result", "tech1@example.test")
        ]
    );
    assert_eq!(r.replies[0].notice.context(None)["text"], "Ya casi queda.");
    // Another technician's token, or none: ignored, nothing relayed, a security event.
    let other = p
        .tokens
        .staff_address(HD, "MDA-2026-000007", "tech2@example.test");
    for to in [HD.to_string(), other] {
        let a = analysis("tech1@example.test", &to, "RE: x", "#cerrar", "");
        let r = record(&a, &on_ticket());
        assert_eq!(r.reason, Reason::StaffUnauthenticated);
        assert!(matches!(&r.action, TicketAction::Append { changes, .. } if changes.is_empty()));
        assert!(r.events.iter().any(|e| e.kind == "security"));
        assert!(
            r.replies.iter().all(|x| x.to == "tech1@example.test"),
            "only the real technician is told"
        );
    }
    // A trusted server's aligned DKIM pass is proof too.
    let mut p = policy();
    p.trusted_authserv_ids = vec!["mx.example.test".into()];
    let a = analysis(
        "tech1@example.test",
        HD,
        "RE: x",
        "#nota\ninterno",
        "Authentication-Results: mx.example.test; dkim=pass header.d=example.test\r\n",
    );
    let Decision::Record(r) = decide(&a, &on_ticket(), &p) else {
        panic!()
    };
    assert_eq!(r.reason, Reason::StaffReply);
    assert!(r.internal);
    assert!(
        r.replies
            .iter()
            .all(|x| x.template().name() == "command_result"),
        "a note reaches no requester"
    );
}

#[test]
fn invalid_commands_change_nothing() {
    let a = from_tech1("RE: x", "#prioridad alta\n#reabrir\nTexto");
    let r = record(&a, &on_ticket());
    assert_eq!(r.reason, Reason::StaffCommandsRejected);
    assert!(matches!(&r.action, TicketAction::Append { changes, .. } if changes.is_empty()));
    assert_eq!(r.replies.len(), 1);
    assert_eq!(r.replies[0].template().name(), "command_result");
    let errors = &r.replies[0].notice.context(None)["errors"];
    assert_eq!(errors[0]["kind"], "wrong_status", "{errors}");
    assert_eq!(errors[0]["command"], "reopen", "{errors}");
    assert_eq!(errors[0]["status"], "open", "{errors}");
}

#[test]
fn phone_note_and_queries() {
    let proof = policy().tokens.personal_address(HD, "agent1@example.test");
    let a = analysis(
        "agent1@example.test",
        &proof,
        "Llamada",
        "Nombre: Bob\nCorreo: bob@example.test\nDetalle: no llega el correo",
        "",
    );
    let r = record(&a, &Context::default());
    assert_eq!(r.reason, Reason::PhoneNote);
    let TicketAction::Open(t) = &r.action else {
        panic!()
    };
    assert_eq!(
        (t.channel, t.requester.email.as_str()),
        ("phone", "bob@example.test")
    );
    assert_eq!(t.opened_by.as_deref(), Some("agent1@example.test"));
    let to: Vec<_> = r.replies.iter().map(|x| x.to.as_str()).collect();
    assert_eq!(
        to,
        vec![
            "bob@example.test",
            "agent1@example.test",
            "tech1@example.test"
        ]
    );

    let ask = |from: &str| {
        let a = analysis(from, HD, "Consulta", "estado MDA-2026-000007", "");
        record(
            &a,
            &Context {
                referenced_ticket: Some(ticket()),
                ..Context::default()
            },
        )
    };
    let mine = ask("ana@example.test");
    assert_eq!(
        (mine.reason, mine.replies[0].template().name()),
        (Reason::StatusQuery, "status")
    );
    let theirs = ask("eve@example.test");
    assert_eq!(
        (theirs.reason, theirs.replies[0].template().name()),
        (Reason::StatusQueryDenied, "status_denied")
    );
    assert_eq!(theirs.action, TicketAction::None);
    assert!(
        !theirs.replies[0]
            .notice
            .context(None)
            .to_string()
            .contains("Impresora"),
        "reveals nothing"
    );
    // A forged From with one's own Reply-To: the status goes to the real requester.
    let a = analysis(
        "ana@example.test",
        HD,
        "Consulta",
        "estado MDA-2026-000007",
        "Reply-To: eve@example.test\r\n",
    );
    let r = record(
        &a,
        &Context {
            referenced_ticket: Some(ticket()),
            ..Context::default()
        },
    );
    assert_eq!(r.replies[0].to, "ana@example.test");
}

#[test]
fn reply_to_never_makes_a_stranger_a_party() {
    let ctx = || Context {
        referenced_ticket: Some(ticket()),
        ..Context::default()
    };
    // Eve's own domain, Ana's address in Reply-To: not Ana's follow-up.
    let a = analysis(
        "eve@evil.test",
        HD,
        "Re: [Folio MDA-2026-000007]",
        "ciérrenlo",
        "Reply-To: ana@example.test\r\n",
    );
    let r = record(&a, &ctx());
    assert_eq!(r.reason, Reason::NewTicket);
    // Nor does it get Ana's tickets or ticket data.
    let a = analysis(
        "eve@evil.test",
        HD,
        "mis folios",
        "",
        "Reply-To: ana@example.test\r\n",
    );
    let r = record(
        &a,
        &Context {
            sender_tickets: vec![],
            ..Context::default()
        },
    );
    assert_eq!(r.replies[0].template().name(), "my_tickets");
    assert_eq!(r.replies[0].to, "eve@evil.test");
    let a = analysis(
        "eve@evil.test",
        HD,
        "x",
        "estado MDA-2026-000007",
        "Reply-To: ana@example.test\r\n",
    );
    let r = record(&a, &ctx());
    assert_eq!(
        (r.reason, r.replies[0].to.as_str()),
        (Reason::StatusQueryDenied, "eve@evil.test")
    );
}

#[test]
fn a_technicians_folio_counts_in_the_subject_only() {
    let ctx = || Context {
        referenced_ticket: Some(ticket()),
        ..Context::default()
    };
    let body_only = from_tech1("Nuevo problema", "Parecido a MDA-2026-000007.");
    assert_eq!(record(&body_only, &ctx()).reason, Reason::NewTicket);
    let in_subject = from_tech1("RE: [Folio MDA-2026-000007]", "Listo.");
    assert_eq!(record(&in_subject, &ctx()).reason, Reason::StaffReply);
}

#[test]
fn a_reply_to_a_ticket_called_estado_is_not_a_query() {
    let mut t = ticket();
    t.subject = "Estado".into();
    let a = analysis(
        "ana@example.test",
        HD,
        "RE: Estado",
        "Sigue sin funcionar",
        "",
    );
    let r = record(
        &a,
        &Context {
            thread_ticket: Some(t),
            ..Context::default()
        },
    );
    assert_eq!(r.reason, Reason::FollowUpByThread);
}

#[test]
fn relays_ignore_the_cap_and_staff_have_a_higher_one() {
    let recent: HashMap<String, u32> = [
        ("ana@example.test".to_string(), 50),
        ("tech1@example.test".to_string(), 5),
    ]
    .into();
    let ctx = Context {
        thread_ticket: Some(ticket()),
        recent_mails: Some(&recent),
        ..Context::default()
    };
    let a = from_tech1("RE: x", "#prioridad alta\nYa quedó.");
    let r = record(&a, &ctx);
    let to: Vec<_> = r
        .replies
        .iter()
        .map(|x| (x.template().name(), x.to.as_str()))
        .collect();
    assert!(to.contains(&("reply", "ana@example.test")), "{to:?}");
    let result = r
        .replies
        .iter()
        .find(|x| x.template().name() == "command_result")
        .unwrap();
    assert_eq!(result.notice.context(None)["relayed"], true);
    // A technician over ten times the cap gets no more notices (a forwarding loop ends).
    let looped: HashMap<String, u32> = [("tech1@example.test".to_string(), 19)].into();
    let a = analysis("ana@example.test", HD, "RE: x", "otra vez", "");
    let r = record(
        &a,
        &Context {
            thread_ticket: Some(ticket()),
            recent_mails: Some(&looped),
            ..Context::default()
        },
    );
    assert!(
        r.replies.iter().any(|x| x.to == "tech1@example.test"),
        "19 < 10 x the cap of 2"
    );
    let looped: HashMap<String, u32> = [("tech1@example.test".to_string(), 20 * 10)].into();
    let r = record(
        &a,
        &Context {
            thread_ticket: Some(ticket()),
            recent_mails: Some(&looped),
            ..Context::default()
        },
    );
    assert!(r.replies.is_empty());
}

#[test]
fn a_technicians_own_notice_forwarded_back_does_not_loop() {
    // tech1's mailbox rule forwards folio's notice back, without proof and without commands.
    let a = analysis(
        "tech1@example.test",
        HD,
        "RV: [Folio MDA-2026-000007] Nuevo mensaje",
        "tech1 escribió en el folio MDA-2026-000007:\n\nSigue igual",
        "In-Reply-To: <x@y>\r\n",
    );
    let r = record(&a, &on_ticket());
    assert_eq!(r.reason, Reason::StaffUnauthenticated);
    assert!(r.replies.is_empty(), "{:?}", r.replies);
}

#[test]
fn with_a_trusted_server_a_phone_note_needs_its_pass() {
    let mut p = policy();
    p.trusted_authserv_ids = vec!["mx.example.test".into()];
    let note = "Nombre: Bob\nCorreo: victim@example.test\nDetalle: compre aqui";
    let a = analysis("agent1@example.test", HD, "Llamada", note, "");
    let Decision::Record(r) = decide(&a, &Context::default(), &p) else {
        panic!()
    };
    assert_eq!(
        r.reason,
        Reason::NewTicket,
        "a forged agent opens only its own request"
    );
    assert!(r.replies.iter().all(|x| x.to != "victim@example.test"));
    assert!(r.events.iter().any(|e| e.kind == "security"));
    let a = analysis(
        "agent1@example.test",
        HD,
        "Llamada",
        note,
        "Authentication-Results: mx.example.test; dkim=pass header.d=example.test\r\n",
    );
    let Decision::Record(r) = decide(&a, &Context::default(), &p) else {
        panic!()
    };
    assert_eq!(r.reason, Reason::PhoneNote);
}

#[test]
fn an_unproven_phone_note_or_forward_opens_a_ticket_for_its_sender_only() {
    let note = "Nombre: Bob\nCorreo: victim@example.test\nDetalle: compre aqui";
    let fwd = "mire\n\n________________________________\nDe: Victim <victim@example.test>\nEnviado: jueves, 26 de noviembre de 2026 18:00\nPara: tech1@example.test\nAsunto: x\n\ncompre aqui\n";
    for (from, subject, body) in [
        ("agent1@example.test", "Llamada", note),
        ("tech1@example.test", "RV: x", fwd),
    ] {
        // No trusted server configured (the default): the From alone proves nothing.
        let a = analysis(from, HD, subject, body, "");
        let r = record(&a, &Context::default());
        assert_eq!(r.reason, Reason::NewTicket, "{from}");
        let TicketAction::Open(t) = &r.action else {
            panic!()
        };
        assert_eq!(t.requester.email, from);
        assert_eq!(t.opened_by, None);
        assert!(
            r.replies.iter().all(|x| x.to != "victim@example.test"),
            "{:?}",
            r.replies
        );
        assert!(
            r.events
                .iter()
                .any(|e| e.kind == "security" && e.detail.contains(from)),
            "{from}: {:?}",
            r.events
        );
        // Sent to another staff member's personal address: still unproven.
        let other = policy().tokens.personal_address(HD, "tech2@example.test");
        let a = analysis(from, &other, subject, body, "");
        assert_eq!(record(&a, &Context::default()).reason, Reason::NewTicket);
        // Sent to their own personal address (To, Cc or the envelope): on behalf.
        let mine = policy().tokens.personal_address(HD, from);
        for (to, extra) in [
            (mine.clone(), String::new()),
            (HD.to_string(), format!("Cc: {mine}\r\n")),
            (HD.to_string(), format!("Delivered-To: {mine}\r\n")),
        ] {
            let a = analysis(from, &to, subject, body, &extra);
            let r = record(&a, &Context::default());
            assert!(
                matches!(r.reason, Reason::PhoneNote | Reason::ForwardedByStaff),
                "{from} {extra}: {:?}",
                r.reason
            );
            assert_eq!(r.replies[0].to, "victim@example.test");
        }
    }
}

#[test]
fn a_confirmation_never_quotes_a_staff_token() {
    let mine = policy().tokens.personal_address(HD, "agent1@example.test");
    let note = format!(
        "Nombre: Bob\nCorreo: bob@example.test\nDetalle: me dio la dirección {mine} para avisar"
    );
    let a = analysis("agent1@example.test", &mine, "Llamada", &note, "");
    let r = record(&a, &Context::default());
    assert_eq!(r.reason, Reason::PhoneNote);
    let to_bob = r
        .replies
        .iter()
        .find(|x| x.to == "bob@example.test")
        .unwrap();
    let text = to_bob.notice.context(None).to_string();
    assert!(!text.contains("+a."), "{text}");
    assert!(
        text.contains("la dirección helpdesk@example.test"),
        "{text}"
    );
}

#[test]
fn directory_data_never_reach_another_address() {
    let dir = Directory::parse(
        Path::new("d.csv"),
        "email,name,department,phone\nana@example.test,Ana López,Nómina,7221112233\n",
    )
    .unwrap();
    // A forged From of an employee with an outsider's Reply-To.
    let raw = format!(
        "From: ana@example.test\r\nReply-To: eve@evil.test\r\nTo: {HD}\r\nSubject: hola\r\n\r\nx\r\n"
    );
    let a = crate::desk::analysis::analyze(raw.as_bytes(), &dir, &policy(), u64::MAX).unwrap();
    let r = record(&a, &Context::default());
    for reply in r.replies.iter().filter(|x| x.to == "eve@evil.test") {
        let text = reply.notice.context(None).to_string();
        for secret in ["Ana López", "Nómina", "7221112233"] {
            assert!(
                !text.contains(secret),
                "{secret} in {}: {text}",
                reply.template().name()
            );
        }
    }
    assert!(r.replies.iter().any(|x| x.to == "eve@evil.test"));
    // Relays, status replies and lists reach participants without the requester's name.
    let mut t = ticket();
    t.requester_name = Some("Ana López".into());
    let a = from_tech1("RE: x", "Listo.");
    let ctx = Context {
        thread_ticket: Some(t.clone()),
        ..Context::default()
    };
    let r = record(&a, &ctx);
    let name_to = |r: &Record, to: &str| {
        r.replies
            .iter()
            .find(|x| x.to == to)
            .map(|x| x.notice.context(None).to_string().contains("Ana López"))
    };
    assert_eq!(name_to(&r, "ana@example.test"), Some(true));
    assert_eq!(name_to(&r, "carol@example.test"), Some(false));
    for body in ["estado MDA-2026-000007", "mis folios"] {
        let a = analysis("carol@example.test", HD, "Consulta", body, "");
        let ctx = Context {
            referenced_ticket: Some(t.clone()),
            sender_tickets: vec![t.clone()],
            ..Context::default()
        };
        let r = record(&a, &ctx);
        assert_eq!(r.reason, Reason::StatusQuery);
        assert_eq!(name_to(&r, "carol@example.test"), Some(false), "{body}");
    }
}

#[test]
fn caps_count_addresses_without_tags_and_outside_domains_per_hour() {
    assert_eq!(cap_key("Bob+Promo.1@Outside.Test"), "bob@outside.test");
    assert_eq!(cap_key("bob@outside.test"), "bob@outside.test");
    assert_eq!(cap_key("nobody"), "nobody");
    let p = policy();
    assert!(p.is_outside("x@outside.test") && p.is_outside("x@example.test.evil"));
    assert!(!p.is_outside("x@EXAMPLE.test") && !p.is_outside("x@mail.example.test"));
    let recent: HashMap<String, u32> = [("bob@outside.test".to_string(), 2)].into();
    let domains: HashMap<String, u32> = [("outside.test".to_string(), 100)].into();
    let a = analysis("bob+7@outside.test", HD, "x", "y", "");
    let r = record(
        &a,
        &Context {
            recent_mails: Some(&recent),
            ..Context::default()
        },
    );
    assert_eq!(r.reason, Reason::NewTicketRateLimited);
    let a = analysis("carol@outside.test", HD, "x", "y", "");
    let r = record(
        &a,
        &Context {
            recent_domains: Some(&domains),
            ..Context::default()
        },
    );
    assert_eq!(r.reason, Reason::NewTicketRateLimited);
    assert!(r.events.iter().any(|e| e.kind == "domain_cap"));
    // The own domain has no domain cap; the global cap holds everyone.
    let own: HashMap<String, u32> = [("example.test".to_string(), 100)].into();
    let a = analysis("ana@example.test", HD, "x", "y", "");
    let ctx = Context {
        recent_domains: Some(&own),
        ..Context::default()
    };
    assert_eq!(record(&a, &ctx).reason, Reason::NewTicket);
    let ctx = Context {
        recent_total: 2000,
        ..Context::default()
    };
    let r = record(&a, &ctx);
    assert_eq!(r.reason, Reason::NewTicketRateLimited);
    assert!(
        r.replies
            .iter()
            .all(|x| x.template().name() == "assignment"),
        "only the technician's assignment notice (never capped) goes out"
    );
    assert!(r.events.iter().any(|e| e.kind == "global_cap"));
}

#[test]
fn status_answers_to_outside_domains_quote_no_subject() {
    let mut t = ticket();
    t.requester_email = "victim@outside.test".into();
    t.subject = "Compre en spam.test".into();
    for body in ["estado MDA-2026-000007", "mis folios"] {
        let a = analysis("victim@outside.test", HD, "Consulta", body, "");
        let ctx = Context {
            referenced_ticket: Some(t.clone()),
            sender_tickets: vec![t.clone()],
            ..Context::default()
        };
        let r = record(&a, &ctx);
        assert_eq!(r.reason, Reason::StatusQuery, "{body}");
        let text = r.replies[0].notice.context(None).to_string();
        assert!(!text.contains("spam.test"), "{body}: {text}");
        assert!(text.contains("MDA-2026-000007"), "{body}: {text}");
    }
}

#[test]
fn outside_confirmations_quote_only_when_configured() {
    let a = analysis("Spam <x@outside.test>", HD, "Compre", "http://spam", "");
    let r = record(&a, &Context::default());
    assert_eq!(r.replies[0].notice.context(None)["quoted"], false);
    assert!(!r.replies[0]
        .notice
        .context(None)
        .to_string()
        .contains("spam"));
    let mut p = policy();
    p.quote_outside_domains = true;
    let Decision::Record(r) = decide(&a, &Context::default(), &p) else {
        panic!()
    };
    assert_eq!(r.replies[0].notice.context(None)["quoted"], true);
    assert_eq!(r.replies[0].notice.context(None)["summary"], "http://spam");
}

#[test]
fn a_delayed_delivery_report_is_not_a_hard_bounce() {
    let dsn = |action: &str, status: &str| {
        format!(
            "From: MAILER-DAEMON@x.test\r\nTo: {HD}\r\nSubject: Delivery Status Notification\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\n\
             Reporting-MTA: dns; x.test\r\n\r\nFinal-Recipient: rfc822; ana@example.test\r\nAction: {action}\r\nStatus: {status}\r\n\r\n--b--\r\n"
        )
    };
    let ctx = Context {
        bounced: Some(BouncedMail {
            outbox_id: 1,
            to: "ana@example.test".into(),
            ticket: Some(ticket()),
        }),
        ..Context::default()
    };
    let p = policy();
    let run = |raw: String| {
        let a = crate::desk::analysis::analyze(raw.as_bytes(), &Directory::default(), &p, u64::MAX)
            .unwrap();
        record(&a, &ctx)
    };
    let hard = run(dsn("failed", "5.1.1"));
    assert_eq!(hard.reason, Reason::BounceOfOurMail);
    assert_eq!(hard.failing_address.as_deref(), Some("ana@example.test"));
    let soft = run(dsn("delayed", "4.4.1"));
    assert_eq!(soft.reason, Reason::AutomaticOnTicket);
    assert_eq!(soft.failing_address, None);
}

#[test]
fn how_a_technician_closes_decides_the_closure_notice_and_the_survey() {
    use crate::desk::lifecycle::{CloseReason, DueKind, LifeEffect};
    let surveys = |r: &Record| {
        r.life
            .iter()
            .filter(|e| matches!(e, LifeEffect::Schedule(d) if d.kind == DueKind::Survey))
            .count()
    };
    let closures = |r: &Record| {
        r.replies
            .iter()
            .filter(|m| m.template() == Template::Closure)
            .count()
    };
    let closed = |r: &Record| {
        matches!(&r.action, TicketAction::Append { changes, .. }
            if changes == &[Change::Status(Status::Closed)])
    };
    let plain = record(&from_tech1("RE: x", "#cerrar"), &on_ticket());
    assert!(closed(&plain));
    assert_eq!((closures(&plain), surveys(&plain)), (1, 1));
    assert!(plain.life.contains(&LifeEffect::Closed {
        reason: CloseReason::Technician
    }));
    // Spam: closed, nothing to the sender or the participants (not even the signature), no
    // survey.
    let spam = record(
        &from_tech1("RE: x", "#cerrar spam\n\nSaludos,\nTomás Uno"),
        &on_ticket(),
    );
    assert!(closed(&spam));
    assert_eq!((closures(&spam), surveys(&spam)), (0, 0));
    assert!(spam.internal);
    assert!(
        spam.replies.iter().all(|m| m.to == "tech1@example.test"),
        "{:?}",
        spam.replies
    );
    // A duplicate: the requester is told, no survey.
    let duplicate = record(&from_tech1("RE: x", "#cerrar duplicado"), &on_ticket());
    assert!(closed(&duplicate));
    assert_eq!((closures(&duplicate), surveys(&duplicate)), (1, 0));
    // Closed, reopened and closed again in one mail: one closing, one survey.
    let twice = record(
        &from_tech1("RE: x", "#cerrar\n#reabrir\n#cerrar"),
        &on_ticket(),
    );
    assert_eq!((closures(&twice), surveys(&twice)), (1, 1));
    // A word #cerrar does not know closes nothing.
    let typo = record(&from_tech1("RE: x", "#cerrar spma"), &on_ticket());
    assert!(!closed(&typo));
    assert_eq!(typo.reason, Reason::StaffCommandsRejected);
}

#[test]
fn only_a_proven_requester_closes_rates_or_opts_out() {
    use crate::desk::known::SentMail;
    use crate::desk::lifecycle::LifeEffect;
    let ours = |template: &str| SentMail {
        outbox_id: 1,
        to: "ana@example.test".into(),
        ticket_id: Some(7),
        template: template.into(),
    };
    let resolved = TicketRef {
        status: Status::Resolved,
        ..ticket()
    };
    let yes = analysis(
        "ana@example.test",
        HD,
        "RE: [Folio MDA-2026-000007] Resuelto",
        "Sí, ya quedó, gracias.",
        "",
    );
    let closes = |r: &Record| {
        matches!(&r.action, TicketAction::Append { changes, .. }
            if changes.contains(&Change::Status(Status::Closed)))
    };
    // Her From and the folio alone (anyone can write both): the technician judges.
    let by_folio = Context {
        referenced_ticket: Some(resolved.clone()),
        ..Context::default()
    };
    assert!(!closes(&record(&yes, &by_folio)));
    // An answer to our mail to someone else (a participant's notice): still unproven.
    let to_carol = Context {
        thread_ticket: Some(resolved.clone()),
        answered: Some(SentMail {
            to: "carol@example.test".into(),
            ..ours("resolved")
        }),
        ..Context::default()
    };
    assert!(!closes(&record(&yes, &to_carol)));
    // An answer to our mail to her: closed.
    let to_her = Context {
        thread_ticket: Some(resolved),
        answered: Some(ours("resolved")),
        ..Context::default()
    };
    assert!(closes(&record(&yes, &to_her)));

    // The survey: only an answer to the survey itself counts as one.
    let surveyed = TicketRef {
        status: Status::Closed,
        life: crate::desk::ticket::Life {
            survey_sent_at: Some(Utc.with_ymd_and_hms(2026, 12, 1, 16, 0, 0).unwrap()),
            ..Default::default()
        },
        ..ticket()
    };
    let rated = |r: &Record| {
        r.life.iter().any(|e| {
            matches!(
                e,
                LifeEffect::Satisfaction { .. } | LifeEffect::SurveyOptOut { .. }
            )
        })
    };
    for body in ["5 excelente", "no más encuestas"] {
        let a = analysis("ana@example.test", HD, "RE: Encuesta", body, "");
        let answering = |m: SentMail| Context {
            thread_ticket: Some(surveyed.clone()),
            answered: Some(m),
            ..Context::default()
        };
        assert!(rated(&record(&a, &answering(ours("survey")))), "{body}");
        assert!(!rated(&record(&a, &answering(ours("closure")))), "{body}");
        let by_folio = Context {
            referenced_ticket: Some(surveyed.clone()),
            ..Context::default()
        };
        let forged = analysis("ana@example.test", HD, "MDA-2026-000007", body, "");
        assert!(!rated(&record(&forged, &by_folio)), "{body}");
    }
    // A new problem written right after the survey reaches the technician.
    let problem = analysis(
        "ana@example.test",
        HD,
        "RE: Encuesta",
        "Otra vez falla la impresora, tres personas no pueden imprimir.",
        "",
    );
    let r = record(
        &problem,
        &Context {
            thread_ticket: Some(surveyed.clone()),
            answered: Some(ours("survey")),
            ..Context::default()
        },
    );
    assert!(r.replies.iter().any(|m| m.to == "tech1@example.test"));
}

#[test]
fn a_survey_thanks_quotes_no_comment_to_an_outside_domain() {
    use crate::desk::known::SentMail;
    use crate::desk::notice::Notice;
    let thanks_comment = |requester: &str| {
        let t = TicketRef {
            status: Status::Closed,
            requester_email: requester.into(),
            life: crate::desk::ticket::Life {
                survey_sent_at: Some(Utc.with_ymd_and_hms(2026, 12, 1, 16, 0, 0).unwrap()),
                ..Default::default()
            },
            ..ticket()
        };
        let a = analysis(
            requester,
            HD,
            "RE: Encuesta",
            "4 - visite http://x.test",
            "",
        );
        let ctx = Context {
            thread_ticket: Some(t),
            answered: Some(SentMail {
                outbox_id: 1,
                to: requester.into(),
                ticket_id: Some(7),
                template: "survey".into(),
            }),
            ..Context::default()
        };
        record(&a, &ctx)
            .replies
            .into_iter()
            .find_map(|r| match r.notice {
                Notice::SurveyThanks(t) => Some(t.comment),
                _ => None,
            })
            .expect("thanked")
    };
    assert!(thanks_comment("ana@example.test").is_some());
    assert_eq!(thanks_comment("ana@outside.test"), None);
}
