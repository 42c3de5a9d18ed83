//! End-to-end tests: the real `folio` binary against a real Dovecot + Postfix on loopback
//! (started by `scripts/mailstack`). Run with `cargo test --test e2e`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// These tests run the real binary on the real clock against real servers: their waits and
// unique names use the wall clock, and no fixed clock is in play.
#![allow(clippy::disallowed_methods)]

mod conversation;
mod harness;
mod instances;
mod lifecycle;
mod oauth;
mod observe;
mod service;

use std::collections::HashSet;
use std::time::Duration;

use harness::*;

const WAIT: Duration = Duration::from_secs(30);

/// Waits until `user`'s INBOX holds `n` messages and returns them parsed.
async fn inbox(user: &str, n: usize) -> Vec<folio::inbound::mail::InboundMail> {
    wait_for(
        &format!("{n} message(s) in {user}'s INBOX"),
        WAIT,
        || async {
            let all = fetch_all(user, "INBOX").await;
            (all.len() >= n).then(|| all.iter().map(|m| parse(m)).collect())
        },
    )
    .await
}

/// Sends a fresh request from `from` and waits for its confirmation: everything sent before it
/// has then been processed (folio works in UID order).
async fn sentinel(folio: &Folio, from: &str, confirmations_before: usize) {
    let id = message_id();
    send(
        from,
        &folio.hd,
        &message(from, &folio.hd, "Centinela", "Prueba.", &id),
    )
    .await;
    let mails = inbox(from, confirmations_before + 1).await;
    assert!(
        mails
            .iter()
            .any(|m| m.in_reply_to.as_deref() == Some(id.as_str())),
        "the sentinel was not answered"
    );
}

async fn confirmation_round_trip(mode: ImapMode) {
    let hd = unique("hd");
    let alice = unique("alice");
    let mut folio = Folio::new(
        &hd,
        Options {
            imap: mode,
            ..Options::default()
        },
    );
    folio.start(&[]).await;

    let id = message_id();
    let body = "Buenos días,\n\nNo puedo entrar al correo institucional desde ayer; me dice contraseña inválida.\n\nDepartamento: Recursos Humanos\n";
    send(
        &alice,
        &hd,
        &message(
            &format!("Alicia Hernández <{alice}>"),
            &hd,
            "No puedo entrar al correo",
            body,
            &id,
        ),
    )
    .await;

    let mails = inbox(&alice, 1).await;
    let c = &mails[0];
    let tickets = folio.tickets();
    assert_eq!(tickets.len(), 1, "{tickets:?}");
    let folio_number = tickets[0]["folio"].as_str().unwrap().to_string();
    assert!(
        folio_number.starts_with("MDA-20") && folio_number.len() == 15,
        "{folio_number}"
    );
    assert_eq!(
        c.subject,
        format!("[Folio {folio_number}] Re: No puedo entrar al correo")
    );
    assert_eq!(
        c.in_reply_to.as_deref(),
        Some(id.as_str()),
        "threaded under the request"
    );
    assert!(c.references.contains(&id));
    assert_eq!(c.from_email.as_deref(), Some(hd.as_str()));
    assert!(c.body_text.contains(&folio_number));
    assert!(
        c.body_text
            .contains("No puedo entrar al correo institucional desde ayer"),
        "summary: {}",
        c.body_text
    );
    assert!(c.body_text.contains("Alicia Hernández"));
    assert!(c.body_text.contains("Recursos Humanos"));
    assert!(c.body_text.contains("(722) 2769600 ext. 60100"));
    // Phone is missing: the requester is asked for it.
    assert!(
        c.body_text
            .contains("responda a este correo con los datos que faltan"),
        "{}",
        c.body_text
    );
    assert_eq!(c.signals.auto_submitted.as_deref(), Some("auto-replied"));
    assert_eq!(c.signals.x_auto_response_suppress.as_deref(), Some("All"));
    assert_eq!(c.signals.folio_loop.as_deref(), Some(hd.as_str()));

    assert_eq!(tickets[0]["requester_email"], alice.as_str());
    assert_eq!(tickets[0]["requester_department"], "Recursos Humanos");
    assert_eq!(tickets[0]["subject"], "No puedo entrar al correo");
    // The original is filed away, never deleted.
    let processed = wait_for("original in Procesados", WAIT, || async {
        let p = fetch_all(&hd, "Procesados").await;
        (p.len() == 1).then_some(p)
    })
    .await;
    assert_eq!(
        parse(&processed[0]).message_id.as_deref(),
        Some(id.as_str())
    );
    assert_eq!(count(&hd, "INBOX").await, 0);

    let show = folio.show(&folio_number);
    assert_eq!(show["outgoing"][0]["status"], "sent");
    assert_eq!(show["messages"][0]["decision_reason"], "new_ticket");

    assert!(folio.stop().success(), "clean exit on SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmation_round_trip_plain_imap() {
    confirmation_round_trip(ImapMode::Plain).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmation_round_trip_implicit_tls() {
    confirmation_round_trip(ImapMode::Implicit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmation_round_trip_starttls() {
    confirmation_round_trip(ImapMode::StartTls).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latin1_and_html_only_mail_become_readable_tickets() {
    let hd = unique("hd");
    let mut folio = Folio::new(&hd, Options::default());
    folio.start(&[]).await;
    let cases = [
        "requests/squirrelmail_iso8859_1_qp_plain",
        "requests/notes_html_only",
        "requests/windowslivemail_cp1252_curly_quotes_euro",
    ];
    for case in cases {
        send(
            "someone@client.example.test",
            &hd,
            &fixture(&format!("{case}.eml")),
        )
        .await;
    }
    let tickets = wait_for("three tickets", WAIT, || async {
        let t = folio.tickets();
        (t.len() == cases.len()).then_some(t)
    })
    .await;
    for case in cases {
        let expected: serde_json::Value =
            serde_json::from_slice(&fixture(&format!("{case}.expected.json"))).unwrap();
        let subject = expected["subject"].as_str().unwrap();
        let t = tickets
            .iter()
            .find(|t| t["subject"] == subject)
            .unwrap_or_else(|| panic!("no ticket with subject {subject:?}: {tickets:?}"));
        let show = folio.show(t["folio"].as_str().unwrap());
        let body = show["messages"][0]["body_text"].as_str().unwrap();
        for phrase in expected["body_contains"].as_array().unwrap() {
            assert!(
                body.contains(phrase.as_str().unwrap()),
                "{case}: {phrase} not in {body}"
            );
        }
        assert!(
            !body.contains('\u{FFFD}'),
            "{case}: replacement character in {body}"
        );
        assert!(!body.contains("<p>"), "{case}: markup left in {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_office_and_bounce_get_no_answer() {
    let hd = unique("hd");
    let alice = unique("alice");
    let mut folio = Folio::new(&hd, Options::default());
    folio.start(&[]).await;
    // The out-of-office reply comes "from alice": if folio answered, alice would get it.
    let oof = with_header(
        &fixture("auto_replies/exchange_oof_auto_submitted_es.eml"),
        "From",
        &alice,
    );
    send(&alice, &hd, &oof).await;
    let vacation = with_header(
        &fixture("auto_replies/gmail_vacation_responder.eml"),
        "From",
        &alice,
    );
    send(&alice, &hd, &vacation).await;
    send("", &hd, &fixture("bounces/postfix_dsn_user_unknown.eml")).await;
    sentinel(&folio, &alice, 0).await;
    // Only the sentinel was answered and only it made a ticket.
    assert_eq!(fetch_all(&alice, "INBOX").await.len(), 1);
    let tickets = folio.tickets();
    assert_eq!(tickets.len(), 1, "{tickets:?}");
    assert_eq!(tickets[0]["subject"], "Centinela");
    assert_eq!(
        count(&hd, "Procesados").await,
        4,
        "automatic mail is kept, not dropped"
    );
    let log = folio.log_text();
    assert!(log.contains("automatic_recorded"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_message_delivered_twice_makes_one_ticket() {
    let hd = unique("hd");
    let alice = unique("alice");
    let mut folio = Folio::new(&hd, Options::default());
    folio.start(&[]).await;
    let id = message_id();
    let raw = message(
        &alice,
        &hd,
        "Impresora atascada",
        "La impresora del piso 3 no imprime.",
        &id,
    );
    send(&alice, &hd, &raw).await;
    send(&alice, &hd, &raw).await;
    sentinel(&folio, &alice, 1).await;
    let mails = fetch_all(&alice, "INBOX").await;
    assert_eq!(
        mails.len(),
        2,
        "one confirmation for the request, one for the sentinel"
    );
    assert_eq!(folio.tickets().len(), 2);
    assert_eq!(count(&hd, "Procesados").await, 3, "both copies filed away");
    // A copy put back into the INBOX later (a user dragging it back) is recognised too.
    append(&hd, "INBOX", std::slice::from_ref(&raw)).await;
    wait_for("the copy filed away", WAIT, || async {
        (count(&hd, "Procesados").await == 4).then_some(())
    })
    .await;
    assert_eq!(folio.tickets().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_mail_is_quarantined_and_the_rest_goes_on() {
    let hd = unique("hd");
    let alice = unique("alice");
    let mut folio = Folio::new(&hd, Options::default());
    folio.start(&[]).await;
    let good = message(
        &alice,
        &hd,
        "Sin red",
        "No tengo red en la oficina 12.",
        &message_id(),
    );
    append(
        &hd,
        "INBOX",
        &[
            fixture("malformed/binary_garbage_no_headers.eml"),
            good,
            fixture("malformed/subject_header_only.eml"),
        ],
    )
    .await;
    inbox(&alice, 1).await;
    wait_for("two messages in Cuarentena", WAIT, || async {
        (count(&hd, "Cuarentena").await == 2).then_some(())
    })
    .await;
    assert_eq!(count(&hd, "Procesados").await, 1);
    assert_eq!(count(&hd, "INBOX").await, 0);
    assert_eq!(folio.tickets().len(), 1);
    assert!(folio.log_text().contains("quarantined"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_address_cap_breaks_loops() {
    let hd = unique("hd");
    let alice = unique("alice");
    let mut folio = Folio::new(
        &hd,
        Options {
            max_auto_replies: 2,
            ..Options::default()
        },
    );
    folio.start(&[]).await;
    for i in 0..3 {
        send(
            &alice,
            &hd,
            &message(
                &alice,
                &hd,
                &format!("Solicitud {i}"),
                "Texto.",
                &message_id(),
            ),
        )
        .await;
    }
    wait_for("three tickets", WAIT, || async {
        (folio.tickets().len() == 3).then_some(())
    })
    .await;
    wait_for("two confirmations", WAIT, || async {
        (count(&alice, "INBOX").await == 2).then_some(())
    })
    .await;
    // Still two after the third was processed and the sender had time to act.
    let other = unique("bob");
    sentinel(&folio, &other, 0).await;
    assert_eq!(count(&alice, "INBOX").await, 2);
    assert!(folio.log_text().contains("new_ticket_rate_limited"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_leaves_existing_mail_alone_unless_asked() {
    let hd = unique("hd");
    let alice = unique("alice");
    let old: Vec<Vec<u8>> = (0..2)
        .map(|i| {
            message(
                &alice,
                &hd,
                &format!("Correo viejo {i}"),
                "De hace meses.",
                &message_id(),
            )
        })
        .collect();
    append(&hd, "INBOX", &old).await;
    let mut folio = Folio::new(&hd, Options::default());
    folio.start(&[]).await;
    sentinel(&folio, &alice, 0).await;
    assert_eq!(count(&hd, "INBOX").await, 2, "old mail untouched");
    assert_eq!(folio.tickets().len(), 1);
    // A restart does not change that…
    assert!(folio.stop().success());
    folio.start(&[]).await;
    sentinel(&folio, &alice, 1).await;
    assert_eq!(count(&hd, "INBOX").await, 2);
    // …but --import-existing processes it.
    assert!(folio.stop().success());
    folio.start(&["--import-existing"]).await;
    wait_for("old mail processed", WAIT, || async {
        (folio.tickets().len() == 4).then_some(())
    })
    .await;
    inbox(&alice, 4).await;
}

/// A tiny TCP forwarder to the real SMTP server that the test can switch off and on.
struct SmtpGate {
    port: u16,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SmtpGate {
    fn closed() -> SmtpGate {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        SmtpGate { port, task: None }
    }

    async fn open(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        let upstream = stack().smtp_port;
        self.task = Some(tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                tokio::spawn(async move {
                    if let Ok(mut server) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        }));
    }
}

impl Drop for SmtpGate {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_outage_queues_mail_and_delivers_it_when_back() {
    let hd = unique("hd");
    let alice = unique("alice");
    let mut gate = SmtpGate::closed();
    let mut folio = Folio::new(
        &hd,
        Options {
            smtp_port: Some(gate.port),
            ..Options::default()
        },
    );
    folio.start(&[]).await;
    let id = ask(&alice, &hd, "Sin sistema de nómina", "No abre.").await;
    let folio_number = folio.first_folio().await;
    // The SMTP server is down: the confirmation waits in the outbox, with the error recorded.
    wait_for("a failed attempt recorded", WAIT, || async {
        let show = folio.show(&folio_number);
        let o = &show["outgoing"][0];
        (o["status"] == "pending" && o["attempts"].as_i64().unwrap_or(0) >= 1).then_some(())
    })
    .await;
    assert_eq!(count(&alice, "INBOX").await, 0);
    gate.open().await;
    let mails = inbox(&alice, 1).await;
    assert_eq!(mails[0].in_reply_to.as_deref(), Some(id.as_str()));
    let other = unique("bob");
    sentinel(&folio, &other, 0).await;
    assert_eq!(count(&alice, "INBOX").await, 1, "delivered exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_backlog_loses_nothing_and_duplicates_no_ticket() {
    const N: usize = 300;
    let hd = unique("hd");
    let alice = unique("alice");
    let mut folio = Folio::new(
        &hd,
        Options {
            max_auto_replies: 10_000,
            batch_size: 50,
            ..Options::default()
        },
    );
    // First start records the baseline; then the backlog arrives while folio is down.
    folio.start(&[]).await;
    assert!(folio.stop().success());
    let ids: Vec<String> = (0..N).map(|_| message_id()).collect();
    let backlog: Vec<Vec<u8>> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            message(
                &alice,
                &hd,
                &format!("Solicitud {i}"),
                "Equipo sin red.",
                id,
            )
        })
        .collect();
    append(&hd, "INBOX", &backlog).await;

    // Kill it twice mid-flight: once while ingesting, once while sending.
    folio.start(&[]).await;
    wait_for("some tickets", WAIT, || async {
        (std::fs::read_to_string(&folio.log)
            .unwrap_or_default()
            .matches("processed")
            .count()
            >= 50)
            .then_some(())
    })
    .await;
    folio.kill9();
    folio.start(&[]).await;
    wait_for("some confirmations", WAIT, || async {
        (count(&alice, "INBOX").await >= 30).then_some(())
    })
    .await;
    folio.kill9();
    folio.start(&[]).await;
    // The restart frees the dead process's outbox claims at once, instead of after their lease
    // (2 × smtp.timeout + 5 s): the mails it had claimed go out now.
    assert!(
        folio
            .log_text()
            .contains("instances on this host whose process is gone"),
        "{}",
        folio.log_text()
    );

    // Every request gets its confirmation.
    let confirmations = answers_to(&alice, N, Duration::from_secs(120)).await;
    let tickets = folio.tickets();
    assert_eq!(tickets.len(), N, "exactly one ticket per message");
    let folios: HashSet<&str> = tickets
        .iter()
        .map(|t| t["folio"].as_str().unwrap())
        .collect();
    assert_eq!(folios.len(), N);
    assert_eq!(count(&hd, "Procesados").await as usize, N);
    assert_eq!(count(&hd, "INBOX").await, 0);
    // SMTP has no idempotency: a kill between the server's "250 OK" and our commit resends that
    // mail, with the same Message-ID. Per kill that is at most the mails being recorded plus those
    // finished meanwhile: 2 × smtp.concurrency (4).
    let extra = resends(&confirmations, N);
    assert!(
        extra <= 2 * 2 * 4,
        "{extra} duplicate deliveries after two kills"
    );
    eprintln!(
        "kill -9 test: {} confirmations for {N} requests ({extra} resent)",
        confirmations.len()
    );
}

/// `smtp.during_backlog`: "wait" (what "auto" picks for this loopback server) sends nothing of
/// a backlog until its last ticket is opened; "send" lets confirmations go out beside the
/// catch-up. A backlog of 100 requests read one per batch (100 commits) while folio was down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn senders_wait_for_a_backlog_or_go_on_beside_it_as_configured() {
    const N: usize = 100;
    for during in [None, Some("send")] {
        let hd = unique("hd");
        let alice = unique("alice");
        let mut folio = Folio::new(
            &hd,
            Options {
                max_auto_replies: 10_000,
                batch_size: 1,
                during_backlog: during,
                ..Options::default()
            },
        );
        folio.start(&[]).await;
        assert!(folio.stop().success());
        let backlog: Vec<Vec<u8>> = (0..N)
            .map(|i| {
                let subject = format!("Solicitud {i}");
                message(&alice, &hd, &subject, "Equipo sin red.", &message_id())
            })
            .collect();
        append(&hd, "INBOX", &backlog).await;
        folio.start(&[]).await;
        answers_to(&alice, N, Duration::from_secs(120)).await;
        let mut tickets = folio.tickets();
        assert_eq!(tickets.len(), N);
        tickets.sort_by_key(|t| t["folio"].as_str().unwrap().to_string());
        let at = |v: &serde_json::Value| {
            chrono::DateTime::parse_from_rfc3339(v.as_str().expect("a timestamp")).unwrap()
        };
        let last_opened = tickets.iter().map(|t| at(&t["created_at"])).max().unwrap();
        // The confirmation of the first, a middle and the last request of the backlog.
        let sent: Vec<_> = [0, N / 2, N - 1]
            .iter()
            .map(|&i| {
                let show = folio.show(tickets[i]["folio"].as_str().unwrap());
                let confirmation = show["outgoing"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|o| o["to"] == alice.as_str())
                    .cloned()
                    .expect("the requester's confirmation");
                at(&confirmation["sent_at"])
            })
            .collect();
        eprintln!(
            "during_backlog {during:?}: confirmations sent {sent:?}, last ticket opened {last_opened}"
        );
        match during {
            None => assert!(
                sent.iter().all(|s| *s >= last_opened),
                "nothing is sent before the backlog is ticketed: sent {sent:?}, last opened {last_opened}"
            ),
            Some(_) => assert!(
                sent[0] < last_opened,
                "the first confirmation left during the catch-up: sent {}, last opened {last_opened}",
                sent[0]
            ),
        }
        assert!(folio.stop().success());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_template_keeps_mail_queued_until_an_admin_fixes_it() {
    let hd = unique("hd");
    let alice = unique("alice");
    let templates = tempfile::tempdir().unwrap();
    for lang in ["es", "en"] {
        let to = templates.path().join(lang);
        std::fs::create_dir(&to).unwrap();
        for f in std::fs::read_dir(format!("{REPO}/mail-templates/{lang}")).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
        }
    }
    let txt = templates.path().join("es/confirmation.txt.hbs");
    let good = std::fs::read_to_string(&txt).unwrap();
    // An admin's typo: an unclosed block.
    std::fs::write(&txt, format!("{{{{#if folio}}}}\n{good}")).unwrap();
    let mut folio = Folio::new(
        &hd,
        Options {
            templates_dir: Some(templates.path().to_path_buf()),
            ..Options::default()
        },
    );
    folio.start(&[]).await;
    let id = ask(&alice, &hd, "Firma electrónica", "No firma.").await;
    let folio_number = folio.first_folio().await;
    let error = wait_for(
        "the template error recorded on the queued mail",
        WAIT,
        || async {
            let show: serde_json::Value = folio.show(&folio_number);
            let o = show["outgoing"][0].clone();
            (o["status"] == "pending" && o["last_error"].is_string())
                .then(|| o["last_error"].as_str().unwrap().to_string())
        },
    )
    .await;
    assert!(
        error.contains("confirmation.txt.hbs"),
        "the error names the file: {error}"
    );
    assert_eq!(count(&alice, "INBOX").await, 0);
    // The fix takes effect without a restart; the queued mail goes out.
    std::fs::write(
        &txt,
        good.replace(
            "Su solicitud quedó registrada",
            "Su solicitud (editada) quedó registrada",
        ),
    )
    .unwrap();
    let mails = inbox(&alice, 1).await;
    assert!(
        mails[0]
            .body_text
            .contains("Su solicitud (editada) quedó registrada"),
        "{}",
        mails[0].body_text
    );
    assert_eq!(mails[0].in_reply_to.as_deref(), Some(id.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_server_outage_folio_reconnects_and_catches_up() {
    // A private stack: stopping its Dovecot does not disturb the other tests.
    let private = Stack::private("outage", 11143);
    let hd = unique("hd");
    let alice = unique("alice");
    let mut folio = Folio::new_on(&private, &hd, Options::default());
    folio.start(&[]).await;
    let first = message_id();
    send_on(
        &private,
        &alice,
        &hd,
        &message(&alice, &hd, "Antes del corte", "Uno.", &first),
    )
    .await;
    wait_for("first confirmation", WAIT, || async {
        (count_on(&private, &alice, "INBOX").await == 1).then_some(())
    })
    .await;

    private.script("stop-imap");
    let second = message_id();
    // Postfix queues it while Dovecot is down.
    send_on(
        &private,
        &alice,
        &hd,
        &message(&alice, &hd, "Durante el corte", "Dos.", &second),
    )
    .await;
    wait_for("folio to notice the outage", WAIT, || async {
        folio
            .log_text()
            .contains("mailbox connection failed")
            .then_some(())
    })
    .await;
    private.script("start-imap");
    wait_for(
        "second confirmation after the outage",
        Duration::from_secs(60),
        || async { (count_on(&private, &alice, "INBOX").await == 2).then_some(()) },
    )
    .await;
    assert_eq!(folio.tickets().len(), 2);
    assert!(folio.stop().success());
    private.script("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uidvalidity_reset_does_not_make_second_tickets() {
    let hd = unique("hd");
    let alice = unique("alice");
    {
        let mut s = imap(&hd).await;
        s.create("Soporte").await.unwrap();
        let _ = s.logout().await;
    }
    // Mail from long ago, left alone by the first start (new_only).
    const LONG_AGO: &str = "01-Jan-2026 10:00:00 +0000";
    let old = message(&alice, &hd, "Solicitud vieja", "De enero.", &message_id());
    append_dated(&hd, "Soporte", &old, LONG_AGO).await;
    let mut folio = Folio::new(
        &hd,
        Options {
            folder: Some("Soporte".into()),
            ..Options::default()
        },
    );
    folio.start(&[]).await;
    let a = message(&alice, &hd, "Solicitud A", "Primera.", &message_id());
    append(&hd, "Soporte", std::slice::from_ref(&a)).await;
    wait_for("confirmation of A", WAIT, || async {
        (count(&alice, "INBOX").await == 1).then_some(())
    })
    .await;
    assert!(folio.stop().success());

    // The server rebuilds the folder: new UIDVALIDITY, and A shows up again next to a new B.
    {
        let mut s = imap(&hd).await;
        s.delete("Soporte").await.unwrap();
        s.create("Soporte").await.unwrap();
        let _ = s.logout().await;
    }
    let b = message(&alice, &hd, "Solicitud B", "Segunda.", &message_id());
    append_dated(&hd, "Soporte", &old, LONG_AGO).await;
    append(&hd, "Soporte", &[a, b]).await;
    folio.start(&[]).await;
    wait_for("confirmation of B", WAIT, || async {
        (count(&alice, "INBOX").await == 2).then_some(())
    })
    .await;
    wait_for(
        "A and B filed away, the old mail left alone",
        WAIT,
        || async { (count(&hd, "Soporte").await == 1).then_some(()) },
    )
    .await;
    let tickets = folio.tickets();
    assert_eq!(tickets.len(), 2, "A is not a new ticket: {tickets:?}");
    assert!(folio.log_text().contains("UIDVALIDITY changed"));
    // A sentinel after them: once it is answered, anything A could have caused has happened.
    let bob = unique("bob");
    append(
        &hd,
        "Soporte",
        &[message(&bob, &hd, "Centinela", "Prueba.", &message_id())],
    )
    .await;
    wait_for("the sentinel's confirmation", WAIT, || async {
        (count(&bob, "INBOX").await == 1).then_some(())
    })
    .await;
    assert_eq!(
        count(&alice, "INBOX").await,
        2,
        "A was not confirmed twice and the old mail not at all"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_one_object_per_line_with_the_message_facts() {
    let hd = unique("hd");
    let alice = unique("alice");
    let mut folio = Folio::new(
        &hd,
        Options {
            log_format: Some("json"),
            ..Options::default()
        },
    );
    folio.start(&[]).await;
    let id = ask(&alice, &hd, "Correo lleno", "Buzón lleno.").await;
    inbox(&alice, 1).await;
    let log = folio.log_text();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let processed = lines
        .iter()
        .find(|l| l["fields"]["message"] == "processed")
        .expect("a 'processed' line");
    let f = &processed["fields"];
    assert_eq!(f["message_id"], id.as_str());
    assert!(f["folio"].as_str().unwrap().starts_with("MDA-"));
    assert!(f["source"].as_str().unwrap().starts_with("imap:INBOX:"));
    assert_eq!(f["verdict"], "human");
    assert_eq!(f["decision"], "new_ticket");
    assert!(f["ms"].as_str().unwrap().parse::<f64>().is_ok());
    assert!(lines
        .iter()
        .any(|l| l["fields"]["message"] == "sent" && l["fields"]["to"] == alice.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_idle_folio_polls() {
    let hd = unique("hd");
    let alice = unique("alice");
    let mut folio = Folio::new(
        &hd,
        Options {
            idle: false,
            ..Options::default()
        },
    );
    folio.start(&[]).await;
    assert!(
        folio.log_text().contains("idle=false"),
        "{}",
        folio.log_text()
    );
    for i in 0..2 {
        let id = message_id();
        send(
            &alice,
            &hd,
            &message(&alice, &hd, &format!("Sondeo {i}"), "Prueba.", &id),
        )
        .await;
        let mails = inbox(&alice, i + 1).await;
        assert!(mails
            .iter()
            .any(|m| m.in_reply_to.as_deref() == Some(id.as_str())));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_mail_is_quarantined_without_being_downloaded() {
    let hd = unique("hd");
    let alice = unique("alice");
    let mut folio = Folio::new(
        &hd,
        Options {
            max_message_bytes: 4000,
            ..Options::default()
        },
    );
    folio.start(&[]).await;
    let big = message(
        &alice,
        &hd,
        "Adjunto enorme",
        &"x".repeat(10_000),
        &message_id(),
    );
    let small = message(&alice, &hd, "Pequeño", "Hola.", &message_id());
    append(&hd, "INBOX", &[big, small]).await;
    inbox(&alice, 1).await;
    wait_for("the big one in Cuarentena", WAIT, || async {
        (count(&hd, "Cuarentena").await == 1).then_some(())
    })
    .await;
    assert_eq!(folio.tickets().len(), 1);
    assert!(folio
        .log_text()
        .contains("exceeds limits.max_message_bytes"));
}
