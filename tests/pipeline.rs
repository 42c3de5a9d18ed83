//! The pipeline against a real SQLite database, without mail servers: batches, folio numbers,
//! dedup, threading of follow-ups, the per-address cap, quarantine.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use folio::clock::{Clock, FixedClock};
use folio::config::{Config, Env};
use folio::daemon::pipeline::{Disposition, Outcome, Pipeline, RawMessage};
use folio::store::scratch::database_url;
use folio::store::Store;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

struct NoEnv;
impl Env for NoEnv {
    fn var(&self, _: &str) -> Option<String> {
        None
    }
}

/// The one instant these tests live at: the pipeline's clock and every message's `seen_at`. Never
/// the wall clock, which would make a test depend on the day it runs.
fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 16, 0, 0).unwrap()
}

async fn pipeline(dir: &Path, cap: u32) -> Pipeline {
    pipeline_with(dir, &format!("max_auto_replies_per_address = {cap}\n")).await
}

/// A configuration whose `[limits]` section is `limits` (mail servers on 127.0.0.1, never
/// contacted by these tests).
fn config_with(limits: &str) -> Config {
    let text = format!(
        "[imap]\nhost = \"127.0.0.1\"\ntls = \"none\"\nusername = \"helpdesk@example.test\"\npassword = \"x\"\n\
         [smtp]\nhost = \"127.0.0.1\"\ntls = \"none\"\nfrom = \"Mesa de Ayuda <helpdesk@example.test>\"\n\
         [templates]\ndir = \"{REPO}/mail-templates\"\n[limits]\n{limits}"
    );
    Config::parse(Path::new("test.toml"), &text, &NoEnv).unwrap()
}

/// A pipeline whose `[limits]` section is `limits`.
async fn pipeline_with(dir: &Path, limits: &str) -> Pipeline {
    let config = config_with(limits);
    let store = Store::open(&database_url(dir)).await.unwrap();
    let clock = Arc::new(FixedClock::new(t0()));
    let tokens = folio::desk::tokens::Tokens::new(store.site_secret().await.unwrap());
    Pipeline::new(&config, store, clock, tokens).unwrap()
}

fn mail(from: &str, subject: &str, body: &str, id: &str, extra: &str) -> RawMessage {
    RawMessage {
        source: format!("test:{id}"),
        bytes: format!(
            "From: {from}\r\nTo: helpdesk@example.test\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n{extra}\r\n{body}\r\n"
        )
        .into_bytes(),
        seen_at: t0(),
    }
}

#[tokio::test]
async fn the_daemon_assembles_in_process_on_the_clock_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&database_url(dir.path())).await.unwrap();
    let clock = Arc::new(FixedClock::new(t0()));
    let parts = folio::daemon::assemble(&config_with(""), clock, store)
        .await
        .unwrap();
    // `folio ingest`'s path: one message, waited for.
    let raw = mail("beto@example.test", "Correo", "No llega.", "b1@x.test", "");
    let o = parts.pipeline.process_waiting(raw).await.unwrap();
    assert_eq!(o.decision, "new_ticket");
    let folio = o.folio.unwrap();
    assert!(folio.starts_with("MDA-2026-"), "{folio}");
    let t = parts.store.ticket(&folio).await.unwrap().unwrap();
    assert_eq!(t.ticket.created_at, folio::store::ts(t0()));
    assert_eq!(t.outgoing[0].created_at, folio::store::ts(t0()));
    parts.store.close().await;
}

/// Ana's first request ("Impresora", Message-ID a1@x.test): returns its folio and the Message-ID
/// of the confirmation queued for it.
async fn first_request(p: &Pipeline) -> (String, String) {
    let out = p
        .process(&[mail(
            "ana@example.test",
            "Impresora",
            "No imprime.",
            "a1@x.test",
            "",
        )])
        .await
        .unwrap();
    let folio = out[0].folio.clone().unwrap();
    let ours = p.store().ticket(&folio).await.unwrap().unwrap().outgoing[0]
        .message_id
        .clone();
    (folio, ours)
}

fn decisions(outcomes: &[Outcome]) -> Vec<&str> {
    outcomes.iter().map(|o| o.decision).collect()
}

#[tokio::test]
async fn batch_opens_gap_free_folios_and_skips_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), 20).await;
    let first = mail(
        "ana@example.test",
        "Impresora",
        "No imprime.",
        "a1@x.test",
        "",
    );
    let out = p
        .process(&[
            first.clone(),
            mail("beto@example.test", "Red", "Sin red.", "b1@x.test", ""),
            first.clone(),
            mail("caro@example.test", "Nómina", "No abre.", "c1@x.test", ""),
        ])
        .await
        .unwrap();
    assert_eq!(
        decisions(&out),
        ["new_ticket", "new_ticket", "duplicate", "new_ticket"]
    );
    let folios: Vec<_> = out.iter().filter_map(|o| o.folio.clone()).collect();
    assert_eq!(
        folios,
        ["MDA-2026-000001", "MDA-2026-000002", "MDA-2026-000003"]
    );
    assert!(out.iter().all(|o| o.disposition == Disposition::Processed));
    // The same message in a later batch is still a duplicate; numbering goes on without a gap.
    let out = p
        .process(&[
            first,
            mail("dani@example.test", "Correo", "Lleno.", "d1@x.test", ""),
        ])
        .await
        .unwrap();
    assert_eq!(decisions(&out), ["duplicate", "new_ticket"]);
    assert_eq!(out[1].folio.as_deref(), Some("MDA-2026-000004"));
    let c = p.store().counts().await.unwrap();
    assert_eq!((c.tickets, c.messages, c.outbox_pending), (4, 4, 4));
}

#[tokio::test]
async fn replies_and_automatic_answers_thread_onto_their_ticket() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), 20).await;
    let (folio, ours) = first_request(&p).await;
    let out = p
        .process(&[
            // Outlook broke the subject, but In-Reply-To names our confirmation.
            mail(
                "ana@example.test",
                "RE: impresora",
                "Ya intenté reiniciarla.",
                "a2@x.test",
                &format!("In-Reply-To: <{ours}>\r\nReferences: <a1@x.test> <{ours}>\r\n"),
            ),
            mail(
                "ana@example.test",
                "Respuesta automática: Impresora",
                "Estoy fuera.",
                "a3@x.test",
                &format!("Auto-Submitted: auto-replied\r\nIn-Reply-To: <{ours}>\r\n"),
            ),
        ])
        .await
        .unwrap();
    assert_eq!(
        decisions(&out),
        ["follow_up_by_thread", "automatic_on_ticket"]
    );
    assert!(out
        .iter()
        .all(|o| o.folio.as_deref() == Some(folio.as_str()) && !o.queued));
    let ticket = p.store().ticket(&folio).await.unwrap().unwrap();
    assert_eq!(ticket.messages.len(), 3);
    assert_eq!(
        ticket.ticket.status, "open",
        "automatic mail never changes the state"
    );
    assert_eq!(p.store().counts().await.unwrap().tickets, 1);
}

#[tokio::test]
async fn a_folio_in_the_subject_counts_only_for_the_requester() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), 20).await;
    let (folio, _) = first_request(&p).await;
    let out = p
        .process(&[
            mail(
                "intruso@example.test",
                &format!("Re: [Folio {folio}] Impresora"),
                "Ciérrenlo.",
                "z1@x.test",
                "",
            ),
            mail(
                "ana@example.test",
                "Consulta",
                &format!("¿Cómo va el {}?", folio.to_lowercase()),
                "a2@x.test",
                "",
            ),
        ])
        .await
        .unwrap();
    assert_eq!(decisions(&out), ["new_ticket", "follow_up_by_folio"]);
    assert_ne!(out[0].folio.as_deref(), Some(folio.as_str()));
    let stranger = p
        .store()
        .ticket(out[0].folio.as_deref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stranger.referenced_folio.as_deref(), Some(folio.as_str()));
    assert_eq!(
        p.store()
            .ticket(&folio)
            .await
            .unwrap()
            .unwrap()
            .messages
            .len(),
        2
    );
}

#[tokio::test]
async fn the_cap_counts_mail_queued_earlier_in_the_same_batch() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), 2).await;
    let out = p
        .process(&[
            mail("ana@example.test", "Uno", "1", "a1@x.test", ""),
            mail("ana@example.test", "Dos", "2", "a2@x.test", ""),
            mail("ana@example.test", "Tres", "3", "a3@x.test", ""),
        ])
        .await
        .unwrap();
    assert_eq!(
        decisions(&out),
        ["new_ticket", "new_ticket", "new_ticket_rate_limited"]
    );
    assert_eq!(out.iter().filter(|o| o.queued).count(), 2);
    let out = p
        .process(&[mail("ana@example.test", "Cuatro", "4", "a4@x.test", "")])
        .await
        .unwrap();
    assert_eq!(decisions(&out), ["new_ticket_rate_limited"]);
}

#[tokio::test]
async fn unusable_mail_is_quarantined_without_sinking_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), 20).await;
    let garbage = RawMessage {
        source: "test:garbage".into(),
        bytes: std::fs::read(format!(
            "{REPO}/tests/fixtures/mail/malformed/binary_garbage_no_headers.eml"
        ))
        .unwrap(),
        seen_at: t0(),
    };
    let out = p
        .process(&[
            garbage,
            mail("ana@example.test", "Red", "Sin red.", "a1@x.test", ""),
        ])
        .await
        .unwrap();
    assert!(matches!(out[0].disposition, Disposition::Quarantined(_)));
    assert_eq!(out[1].decision, "new_ticket");
    let c = p.store().counts().await.unwrap();
    assert_eq!((c.quarantined, c.tickets), (1, 1));
}

/// NUL bytes, raw or decoded (`=00` in an encoded word, in quoted-printable, in a Message-ID
/// and a file name): PostgreSQL's text refuses them, and the batch once failed on every retry.
#[tokio::test]
async fn a_mail_full_of_nul_bytes_opens_its_ticket() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), 20).await;
    let raw = "From: Ana\0 Ruiz <ana@example.test>\r\nTo: helpdesk@example.test\r\n\
        Subject: =?utf-8?q?Impresora=00rota?=\r\nMessage-ID: <nul\0id@x.test>\r\n\
        In-Reply-To: <other\0@x.test>\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
        --b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
        Se =00atasca.\r\n--b\r\nContent-Type: text/plain; name=\"=?utf-8?q?log=00.txt?=\"\r\n\
        Content-Disposition: attachment; filename=\"=?utf-8?q?log=00.txt?=\"\r\n\r\nx\r\n--b--\r\n";
    let out = p
        .process(&[RawMessage {
            source: "test:nul".into(),
            bytes: raw.as_bytes().to_vec(),
            seen_at: t0(),
        }])
        .await
        .unwrap();
    assert_eq!(out[0].decision, "new_ticket", "{out:?}");
    let folio = out[0].folio.clone().expect("a folio");
    let t = p.store().ticket(&folio).await.unwrap().expect("the ticket");
    assert_eq!(t.ticket.subject, "Impresora\u{FFFD}rota");
}

#[tokio::test]
async fn a_batch_that_breaks_a_constraint_is_stored_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), 20).await;
    let out = p
        .process(&[mail("ana@example.test", "Uno", "1", "a1@x.test", "")])
        .await
        .unwrap();
    assert_eq!(out[0].folio.as_deref(), Some("MDA-2026-000001"));
    let ours = p
        .store()
        .ticket("MDA-2026-000001")
        .await
        .unwrap()
        .unwrap()
        .outgoing[0]
        .message_id
        .clone();
    // Someone "repairs" the database by hand and rewinds the folio counter: the next new ticket
    // would reuse MDA-2026-000001, which the UNIQUE constraint refuses.
    sqlx::any::install_default_drivers();
    let db = sqlx::AnyPool::connect(&database_url(dir.path()))
        .await
        .unwrap();
    sqlx::query("UPDATE folio_counter SET last_seq = 0")
        .execute(&db)
        .await
        .unwrap();
    let out = p
        .process(&[
            mail("beto@example.test", "Dos", "2", "b1@x.test", ""),
            // A reply to our confirmation needs no new number.
            mail(
                "ana@example.test",
                "Re: Uno",
                "más",
                "a2@x.test",
                &format!("In-Reply-To: <{ours}>\r\n"),
            ),
        ])
        .await
        .unwrap();
    // The message that needed the taken number is quarantined (kept, with the reason); the
    // other goes on.
    let Disposition::Quarantined(reason) = &out[0].disposition else {
        panic!("expected quarantine: {:?}", out[0])
    };
    // SQLite says "UNIQUE constraint failed", PostgreSQL "violates unique constraint".
    assert!(reason.to_lowercase().contains("unique"), "{reason}");
    assert_eq!(out[1].disposition, Disposition::Processed);
    let c = p.store().counts().await.unwrap();
    assert_eq!(c.quarantined, 1);
    assert_eq!(c.messages, 2);
}

#[tokio::test]
async fn a_bounce_of_a_confirmation_lands_on_its_ticket() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), 20).await;
    let (folio, ours) = first_request(&p).await;
    let dsn = format!(
        "From: MAILER-DAEMON@mx.example.test (Mail Delivery System)\r\nTo: helpdesk@example.test\r\n\
         Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn1@mx.example.test>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\
         --b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.test\r\n\r\n\
         Final-Recipient: rfc822; ana@example.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
         --b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: helpdesk@example.test\r\nTo: ana@example.test\r\n\
         Subject: [Folio {folio}] Re: Impresora\r\nMessage-ID: <{ours}>\r\n\r\n--b--\r\n"
    );
    let out = p
        .process(&[RawMessage {
            source: "test:dsn".into(),
            bytes: dsn.into_bytes(),
            seen_at: t0(),
        }])
        .await
        .unwrap();
    assert_eq!(out[0].decision, "bounce_of_our_mail");
    assert_eq!(out[0].folio.as_deref(), Some(folio.as_str()));
    assert!(!out[0].queued, "a bounce is never answered");
    // The address is failing now: a new request from it opens a ticket but mails nothing.
    let out = p
        .process(&[mail(
            "ana@example.test",
            "Otra",
            "Sigue sin imprimir.",
            "a2@x.test",
            "",
        )])
        .await
        .unwrap();
    assert_eq!(out[0].decision, "new_ticket");
    assert!(!out[0].queued, "no mail to a hard-bouncing address");
    // Mail queued to it before the bounce is not sent either: the claim marks it failed.
    let due = p
        .store()
        .claim_due(t0(), 10, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    assert!(due.iter().all(|m| m.to != "ana@example.test"), "{due:?}");
    let t = p.store().ticket(&folio).await.unwrap().unwrap();
    assert_eq!(t.outgoing[0].status, "failed");
    assert!(t.outgoing[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("hard-bounced"));
}

#[tokio::test]
async fn a_queued_mail_is_claimed_by_one_sender_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), 20).await;
    p.process(&[
        mail("ana@example.test", "Uno", "1", "a1@x.test", ""),
        mail("beto@example.test", "Dos", "2", "b1@x.test", ""),
        mail("caro@example.test", "Tres", "3", "c1@x.test", ""),
    ])
    .await
    .unwrap();
    let now = t0();
    let lease = std::time::Duration::from_secs(30);
    // Two senders (the daemon and `folio ingest`, say) asking at once get disjoint mail.
    let first = p.store().claim_due(now, 2, lease).await.unwrap();
    let second = p.store().claim_due(now, 2, lease).await.unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(second.len(), 1);
    assert!(first.iter().all(|m| m.id != second[0].id));
    assert!(p
        .store()
        .claim_due(now, 10, lease)
        .await
        .unwrap()
        .is_empty());
    // A sender that stops gives its unstarted claims back: they can be claimed at once.
    p.store().release_claims(&[second[0].id]).await.unwrap();
    let again = p.store().claim_due(now, 10, lease).await.unwrap();
    assert_eq!(
        again.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![second[0].id]
    );
    // A sender that died leaves its claims behind; they expire.
    let later = now + chrono::Duration::seconds(31);
    assert_eq!(
        p.store().claim_due(later, 10, lease).await.unwrap().len(),
        3
    );
}

/// Registers instances `ids` (on one host) at `now`, alive until `alive`.
async fn register_instances(
    store: &folio::store::Store,
    ids: &[&str],
    now: chrono::DateTime<Utc>,
    alive: chrono::DateTime<Utc>,
) {
    for id in ids {
        let me = folio::store::NewInstance {
            id: (*id).into(),
            name: (*id).into(),
            host: "host-a".into(),
            pid: 4242,
        };
        store.register_instance(&me, now, alive).await.unwrap();
    }
}

/// While another live instance (the mailbox holder) catches up on a backlog, a standby's
/// sender claims nothing, as the holder's own does; it sends once the catch-up ends.
#[tokio::test]
async fn a_standby_sends_nothing_while_the_mailbox_holder_catches_up() {
    use folio::outbound::sender::CATCH_UP_LEASE;
    let dir = tempfile::tempdir().unwrap();
    let (port, accepted) = tiny_smtp(true).await;
    let (p, standby, clock) = with_sender(dir.path(), port, "").await;
    let now = clock.now();
    let alive = now + chrono::Duration::seconds(10);
    register_instances(p.store(), &["a", "b"], now, alive).await;
    p.process(&[mail("ana@example.test", "Uno", "1", "a1@x.test", "")])
        .await
        .unwrap();
    let holder = p.store().clone().claiming_as("a");
    assert!(holder.take_lease(CATCH_UP_LEASE, now, alive).await.unwrap());

    // The confirmation and the technician's notice.
    let queued = p.store().counts().await.unwrap().outbox_pending;
    assert!(queued >= 1);
    assert_eq!(standby.send_due(None).await.unwrap(), 0);
    assert!(accepted.lock().unwrap().is_empty(), "nothing sent");
    assert_eq!(p.store().counts().await.unwrap().outbox_pending, queued);

    holder.let_go(CATCH_UP_LEASE).await.unwrap();
    assert_eq!(standby.send_due(None).await.unwrap() as i64, queued);
    assert_eq!(accepted.lock().unwrap().len() as i64, queued);
}

/// `smtp.concurrency` is the budget of connections of every live instance together: an
/// instance past it (more live instances than connections) sends nothing, and sends once
/// another stops.
#[tokio::test]
async fn an_instance_past_the_connection_budget_sends_nothing_until_another_stops() {
    let dir = tempfile::tempdir().unwrap();
    let (port, accepted) = tiny_smtp(true).await;
    // `smtp.concurrency = 2`; the sender claims as "b".
    let (p, sender, clock) = with_sender(dir.path(), port, "").await;
    let now = clock.now();
    let alive = now + chrono::Duration::seconds(10);
    register_instances(p.store(), &["a", "a2", "b"], now, alive).await;
    p.process(&[mail("ana@example.test", "Uno", "1", "a1@x.test", "")])
        .await
        .unwrap();
    let queued = p.store().counts().await.unwrap().outbox_pending;
    assert!(queued >= 1);
    assert_eq!(
        sender.send_due(None).await.unwrap(),
        0,
        "a and a2 have the two"
    );
    assert!(accepted.lock().unwrap().is_empty(), "nothing sent");

    p.store().mark_stopped(&["a2".into()], now).await.unwrap();
    assert_eq!(sender.send_due(None).await.unwrap() as i64, queued);
    assert_eq!(accepted.lock().unwrap().len() as i64, queued);
}

/// `n` new requests ("the printer does not print"), each from its own requester.
fn printer_requests(n: usize) -> Vec<RawMessage> {
    (0..n)
        .map(|i| {
            let from = format!("user{i}@example.test");
            mail(
                &from,
                "Impresora",
                "No imprime.",
                &format!("m{i}@x.test"),
                "",
            )
        })
        .collect()
}

/// A claimed mail may be started only within 5 s of its claim (its lease minus the longest a
/// send can take); one not started by then goes back to the outbox. A later claim of the same
/// round that brings it back sends it: it used to be dropped as a repeat and stay leased to
/// this instance until the lease ran out (never, on this fixed clock), so a round longer than
/// 5 s left mail behind.
#[tokio::test]
async fn mail_given_back_when_its_start_budget_runs_out_is_sent_in_the_same_round() {
    let dir = tempfile::tempdir().unwrap();
    // Two connections at 120 ms a mail: about 17 mails a second.
    let (port, accepted) = tiny_smtp_taking(true, std::time::Duration::from_millis(120)).await;
    // `smtp.concurrency = 2`; the sender claims as "b", alive throughout on the fixed clock.
    let (p, sender, clock) = with_sender(dir.path(), port, "").await;
    let now = clock.now();
    register_instances(p.store(), &["b"], now, now + chrono::Duration::seconds(10)).await;
    let batch = printer_requests(60);
    p.process(&batch).await.unwrap();
    let queued = p.store().counts().await.unwrap().outbox_pending;
    // More than 5 s of sending: the first claim's budget runs out mid-round.
    assert!(queued >= 100, "{queued} queued");
    assert_eq!(sender.send_due(None).await.unwrap() as i64, queued);
    assert_eq!(accepted.lock().unwrap().len() as i64, queued);
    assert_eq!(p.store().counts().await.unwrap().outbox_pending, 0);
}

/// Claims run beside the sends, and an instance's own claims are free to anyone, itself
/// included, while it is not registered or its heartbeat has run out (here: never registered).
/// Every claim of a round then returns the mail it has queued or is sending: each is still
/// sent once.
#[tokio::test]
async fn a_sender_whose_claims_are_free_to_itself_sends_each_mail_once() {
    let dir = tempfile::tempdir().unwrap();
    let (port, accepted) = tiny_smtp(true).await;
    let (p, sender, _) = with_sender(dir.path(), port, "").await;
    let batch = printer_requests(30);
    p.process(&batch).await.unwrap();
    let queued = p.store().counts().await.unwrap().outbox_pending;
    assert!(queued >= 30);
    assert_eq!(sender.send_due(None).await.unwrap() as i64, queued);
    let sent = accepted.lock().unwrap();
    let ids: std::collections::HashSet<String> = sent
        .iter()
        .map(|(_, data)| {
            let text = String::from_utf8_lossy(data);
            text.lines()
                .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
                .expect("a Message-ID")
                .to_string()
        })
        .collect();
    assert_eq!(sent.len() as i64, queued, "each mail once");
    assert_eq!(ids.len() as i64, queued);
}

/// An HTML-only request of about `mb` MB: its analysis takes far longer than a millisecond on any
/// machine (parsing and converting every byte).
fn big_html(id: &str, mb: usize) -> RawMessage {
    let para = "<p>La impresora del tercer piso no imprime desde ayer por la tarde.</p>\r\n";
    let body = para.repeat(mb * 1024 * 1024 / para.len());
    mail(
        "ana@example.test",
        "Impresora",
        &format!("<html><body>{body}</body></html>"),
        id,
        "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n",
    )
}

/// Waits until slow analyses end and returns what they stored; fails the test rather than hang.
async fn slow_outcomes(p: &Pipeline) -> Vec<(String, Outcome)> {
    let wait = async {
        loop {
            let woken = p.slow_done();
            let ended = p.finish_slow().await.unwrap();
            if !ended.is_empty() {
                return ended;
            }
            woken.await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(120), wait)
        .await
        .expect("the slow analysis never ended")
}

#[tokio::test]
async fn a_slow_message_is_deferred_and_stored_when_its_analysis_ends() {
    let dir = tempfile::tempdir().unwrap();
    // No patience at all: on this single-threaded test runtime the analysis task has not even
    // started when the batch looks, so the message is deferred, deterministically.
    let p = pipeline(dir.path(), 20)
        .await
        .with_patience(std::time::Duration::ZERO);
    let out = p.process(&[big_html("slow@x.test", 2)]).await.unwrap();
    assert_eq!(out[0].disposition, Disposition::Deferred);
    assert_eq!(p.store().counts().await.unwrap().tickets, 0);
    // A second look at the same message (the mailbox read again) starts no second analysis.
    let again = p.process(&[big_html("slow@x.test", 2)]).await.unwrap();
    assert_eq!(again[0].disposition, Disposition::Deferred);
    let ended = slow_outcomes(&p).await;
    assert_eq!(ended.len(), 1, "one analysis, one outcome");
    assert_eq!(ended[0].0, "test:slow@x.test");
    assert_eq!(ended[0].1.disposition, Disposition::Processed);
    assert_eq!(ended[0].1.decision, "new_ticket");
    assert!(ended[0].1.queued, "its confirmation is queued");
    assert!(!p.has_slow());
    assert!(p.finish_slow().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_analysis_past_its_deadline_is_quarantined_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline_with(dir.path(), "analysis_deadline = \"1ms\"\n")
        .await
        .with_patience(std::time::Duration::ZERO);
    let out = p.process(&[big_html("poison@x.test", 4)]).await.unwrap();
    assert_eq!(out[0].disposition, Disposition::Deferred);
    let ended = slow_outcomes(&p).await;
    assert_eq!(ended[0].0, "test:poison@x.test");
    let poison = &ended[0].1;
    match &poison.disposition {
        Disposition::Quarantined(reason) => assert!(
            reason.contains("limits.analysis_deadline (1ms)"),
            "{reason}"
        ),
        d => panic!("expected quarantine, got {d:?}"),
    }
    let c = p.store().counts().await.unwrap();
    assert_eq!(c.quarantined, 1);
}

#[tokio::test]
async fn a_message_whose_analysis_never_finished_twice_is_quarantined_unread() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), 20).await;
    // Two earlier starts of its analysis never finished: the process died during them.
    for _ in 0..2 {
        p.store()
            .begin_attempts(&["test:crash@x.test"], t0())
            .await
            .unwrap();
    }
    let out = p
        .process(&[mail("ana@example.test", "Uno", "1", "crash@x.test", "")])
        .await
        .unwrap();
    match &out[0].disposition {
        Disposition::Quarantined(reason) => assert!(reason.contains("never finished"), "{reason}"),
        d => panic!("expected quarantine, got {d:?}"),
    }
    assert_eq!(
        p.store()
            .unfinished_attempts(&["test:crash@x.test"])
            .await
            .unwrap(),
        [0],
        "the attempt record is cleared once the message is quarantined"
    );
}

#[tokio::test]
async fn after_a_crash_the_batch_is_retried_one_message_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), 20).await;
    let batch = [
        mail("ana@example.test", "Uno", "1", "a1@x.test", ""),
        mail("bob@example.test", "Dos", "2", "b1@x.test", ""),
        mail("eva@example.test", "Tres", "3", "e1@x.test", ""),
    ];
    // The process died once while the whole batch was being analysed.
    let sources: Vec<&str> = batch.iter().map(|m| m.source.as_str()).collect();
    p.store().begin_attempts(&sources, t0()).await.unwrap();
    // Each is a suspect now and goes alone; none is blamed for the others.
    let out = p.process(&batch).await.unwrap();
    assert_eq!(decisions(&out), ["new_ticket", "new_ticket", "new_ticket"]);
    assert_eq!(
        p.store().unfinished_attempts(&sources).await.unwrap(),
        [0, 0, 0]
    );
    // A fresh message leaves no attempt behind either.
    let out = p
        .process(&[mail("ana@example.test", "Cuatro", "4", "a2@x.test", "")])
        .await
        .unwrap();
    assert_eq!(decisions(&out), ["new_ticket"]);
    assert_eq!(
        p.store()
            .unfinished_attempts(&["test:a2@x.test"])
            .await
            .unwrap(),
        [0]
    );
}

/// A tiny SMTP server that defers every recipient with `451` (what a greylisting or overloaded
/// server answers), so every delivery attempt fails temporarily.
async fn deferring_smtp() -> u16 {
    tiny_smtp(false).await.0
}

/// Messages a [`tiny_smtp`] server accepted: `(recipients, message)`.
type Accepted = Arc<std::sync::Mutex<Vec<(Vec<String>, Vec<u8>)>>>;

/// A tiny SMTP server on loopback: with `accept`, it takes every mail and keeps it; otherwise
/// it defers every recipient with `451`.
async fn tiny_smtp(accept: bool) -> (u16, Accepted) {
    tiny_smtp_taking(accept, std::time::Duration::ZERO).await
}

/// [`tiny_smtp`], taking `per_mail` to accept each mail (a slow server).
async fn tiny_smtp_taking(accept: bool, per_mail: std::time::Duration) -> (u16, Accepted) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted: Accepted = Arc::default();
    let store = accepted.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let store = store.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = tokio::io::BufReader::new(r).lines();
                if w.write_all(b"220 tiny.test ESMTP\r\n").await.is_err() {
                    return;
                }
                let mut rcpt = Vec::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 tiny.test\r\n",
                        "RCPT" if !accept => b"451 4.7.1 Try again later\r\n",
                        "RCPT" => {
                            rcpt.push(line[8..].trim_matches(|c| c == '<' || c == '>').to_string());
                            b"250 2.1.5 OK\r\n"
                        }
                        "DATA" => {
                            if w.write_all(b"354 go on\r\n").await.is_err() {
                                return;
                            }
                            let mut data = Vec::new();
                            while let Ok(Some(l)) = lines.next_line().await {
                                if l == "." {
                                    break;
                                }
                                data.extend_from_slice(
                                    l.strip_prefix('.').unwrap_or(&l).as_bytes(),
                                );
                                data.extend_from_slice(b"\r\n");
                            }
                            tokio::time::sleep(per_mail).await;
                            store
                                .lock()
                                .unwrap()
                                .push((std::mem::take(&mut rcpt), data));
                            b"250 2.0.0 queued\r\n"
                        }
                        "QUIT" => b"221 2.0.0 Bye\r\n",
                        _ => b"250 2.0.0 OK\r\n",
                    };
                    if w.write_all(reply).await.is_err() || verb == "QUIT" {
                        return;
                    }
                }
            });
        }
    });
    (port, accepted)
}

/// A pipeline and a sender (on the same fixed clock) sending to `127.0.0.1:port`, with the
/// repository's templates and catalogue (so tickets get an assignee) and `extra` configuration.
async fn with_sender(
    dir: &Path,
    port: u16,
    extra: &str,
) -> (Pipeline, folio::outbound::sender::Sender, Arc<FixedClock>) {
    with_sender_and_templates(dir, port, extra, &format!("{REPO}/mail-templates")).await
}

/// [`with_sender`] with the templates in `templates`.
async fn with_sender_and_templates(
    dir: &Path,
    port: u16,
    extra: &str,
    templates: &str,
) -> (Pipeline, folio::outbound::sender::Sender, Arc<FixedClock>) {
    use std::sync::atomic::AtomicBool;
    let text = format!(
        "[imap]\nhost = \"127.0.0.1\"\ntls = \"none\"\nusername = \"helpdesk@example.test\"\npassword = \"x\"\n\
         [smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\ntimeout = \"10s\"\nconcurrency = 2\n\
         from = \"Mesa de Ayuda <helpdesk@example.test>\"\n\
         [templates]\ndir = \"{templates}\"\n[catalog]\nfile = \"{REPO}/config/catalog.toml\"\n{extra}"
    );
    let config = Config::parse(Path::new("test.toml"), &text, &NoEnv).unwrap();
    let store = Store::open(&database_url(dir)).await.unwrap();
    // As a running daemon's store: its claims carry the instance "b" (registered by tests
    // that need it alive).
    let store = store.claiming_as("b");
    let clock = Arc::new(FixedClock::new(
        Utc.with_ymd_and_hms(2026, 11, 27, 16, 0, 0).unwrap(),
    ));
    let tokens = folio::desk::tokens::Tokens::new(store.site_secret().await.unwrap());
    let p = Pipeline::new(&config, store.clone(), clock.clone(), tokens.clone()).unwrap();
    let templates = Arc::new(folio::outbound::render::Templates::new(
        &config.templates.dir,
    ));
    let sender = folio::outbound::sender::Sender::new(
        &config,
        store,
        templates,
        clock.clone(),
        Arc::new(AtomicBool::new(false)),
        tokens,
    )
    .unwrap();
    (p, sender, clock)
}

#[tokio::test]
async fn a_notice_carries_files_up_to_the_caps_and_lists_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (port, accepted) = tiny_smtp(true).await;
    let (p, sender, _) = with_sender(
        dir.path(),
        port,
        "[limits]\nmax_notice_attachments = 3\nmax_notice_attachment_bytes = 1000\n",
    )
    .await;
    // Six files: 100, 100, 900 (does not fit the 1000 bytes after the first two), 100, 100, 100.
    let mut body = String::from(
        "From: ana@example.test\r\nTo: helpdesk@example.test\r\nSubject: Impresora\r\n\
         Message-ID: <files@x.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nNo imprime.\r\n",
    );
    for (i, size) in [100, 100, 900, 100, 100, 100].iter().enumerate() {
        body.push_str(&format!(
            "--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=\"f{i}.txt\"\r\n\r\n{}\r\n",
            "x".repeat(*size)
        ));
    }
    body.push_str("--b--\r\n");
    let out = p
        .process(&[RawMessage {
            source: "test:files".into(),
            bytes: body.into_bytes(),
            seen_at: t0(),
        }])
        .await
        .unwrap();
    let folio = out[0].folio.clone().unwrap();
    let assignee = p
        .store()
        .ticket(&folio)
        .await
        .unwrap()
        .unwrap()
        .ticket
        .assignee
        .unwrap();
    sender.send_due(None).await.unwrap();

    let accepted = accepted.lock().unwrap();
    let (_, raw) = accepted
        .iter()
        .find(|(rcpt, _)| rcpt.contains(&assignee))
        .expect("the assignment was sent");
    let notice = folio::inbound::mail::parse(raw, u64::MAX);
    let names: Vec<&str> = notice.attachments.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["f0.txt", "f1.txt", "f3.txt"]);
    assert!(
        notice.body_text.contains(
            "3 adjuntos más no se incluyeron en este correo; están guardados en el folio"
        ),
        "{}",
        notice.body_text
    );
    // Every file is still listed by name and size.
    for i in 0..6 {
        assert!(notice.body_text.contains(&format!("f{i}.txt")), "f{i}.txt");
    }
    // Ana's confirmation carries no files and no note.
    let (_, raw) = accepted
        .iter()
        .find(|(rcpt, _)| rcpt.iter().any(|r| r == "ana@example.test"))
        .unwrap();
    let confirmation = folio::inbound::mail::parse(raw, u64::MAX);
    assert!(confirmation.attachments.is_empty());
    assert!(!confirmation.body_text.contains("adjuntos más"));
}

#[tokio::test]
async fn mail_deferred_past_max_age_fails_and_the_assignee_is_told_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = deferring_smtp().await;
    let (p, sender, clock) = with_sender(dir.path(), port, "").await;
    let store = p.store().clone();

    // A request: a confirmation to Ana and an assignment to the technician are queued.
    let (folio, _) = first_request(&p).await;
    let show = || async { store.ticket(&folio).await.unwrap().unwrap() };
    let assignee = show().await.ticket.assignee.clone().unwrap();
    let mails = |t: &folio::store::TicketDetail, template: &str| {
        t.outgoing
            .iter()
            .filter(|m| m.template == template)
            .cloned()
            .collect::<Vec<_>>()
    };
    let events = |t: &folio::store::TicketDetail| {
        t.events
            .iter()
            .filter(|e| e.kind == "delivery_failed")
            .count()
    };

    // Deferred again and again for four days: still retried.
    sender.send_due(None).await.unwrap();
    clock.advance(chrono::Duration::days(4));
    sender.send_due(None).await.unwrap();
    let t = show().await;
    assert!(
        t.outgoing.iter().all(|m| m.status == "pending"),
        "{:?}",
        t.outgoing
    );
    assert!(t.outgoing[0].last_error.as_deref().unwrap().contains("451"));

    // Past smtp.max_age: the next deferral marks both failed. Ana's confirmation is reported to
    // the assignee; the assignment was to the assignee, so it is only recorded.
    clock.advance(chrono::Duration::days(1) + chrono::Duration::minutes(1));
    sender.send_due(None).await.unwrap();
    let t = show().await;
    for template in ["confirmation", "assignment"] {
        let m = &mails(&t, template)[0];
        assert_eq!(m.status, "failed", "{m:?}");
        assert!(
            m.last_error.as_deref().unwrap().contains("smtp.max_age"),
            "{m:?}"
        );
    }
    assert_eq!(events(&t), 2, "{:?}", t.events);
    let notices = mails(&t, "delivery_failed");
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0].to, assignee);
    assert_eq!(notices[0].status, "pending");

    // The notice itself is deferred (it rendered and reached the server), then expires too:
    // it was to the assignee, so nobody is told about it, and nothing is told twice.
    clock.advance(chrono::Duration::minutes(10));
    sender.send_due(None).await.unwrap();
    let t = show().await;
    let notice = &mails(&t, "delivery_failed")[0];
    assert!(
        notice.last_error.as_deref().unwrap().contains("451"),
        "{notice:?}"
    );
    clock.advance(chrono::Duration::days(6));
    sender.send_due(None).await.unwrap();
    clock.advance(chrono::Duration::days(6));
    sender.send_due(None).await.unwrap();
    let t = show().await;
    assert_eq!(mails(&t, "delivery_failed").len(), 1);
    assert_eq!(mails(&t, "delivery_failed")[0].status, "failed");
    assert_eq!(events(&t), 3, "{:?}", t.events);
}

#[tokio::test]
async fn a_template_broken_from_the_start_holds_only_its_own_mail() {
    let dir = tempfile::tempdir().unwrap();
    let templates = dir.path().join("mail-templates");
    for lang in ["es", "en"] {
        std::fs::create_dir_all(templates.join(lang)).unwrap();
        for entry in std::fs::read_dir(Path::new(REPO).join("mail-templates").join(lang)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), templates.join(lang).join(entry.file_name())).unwrap();
        }
    }
    let broken = templates.join("es/confirmation.txt.hbs");
    std::fs::write(&broken, "{{#if folio}}sin cerrar\n").unwrap();
    let (port, accepted) = tiny_smtp(true).await;
    let (p, sender, _) =
        with_sender_and_templates(dir.path(), port, "", &templates.display().to_string()).await;
    let out = p
        .process(&[mail(
            "ana@example.test",
            "Impresora",
            "No imprime.",
            "a1@x.test",
            "",
        )])
        .await
        .unwrap();
    sender.send_due(None).await.unwrap();
    let t = p
        .store()
        .ticket(out[0].folio.as_deref().unwrap())
        .await
        .unwrap()
        .unwrap();
    // The technician's assignment (Spanish too) went out; Ana's confirmation waits for the fix.
    let assignment = t
        .outgoing
        .iter()
        .find(|m| m.template == "assignment")
        .unwrap();
    assert_eq!(assignment.status, "sent");
    let confirmation = t
        .outgoing
        .iter()
        .find(|m| m.template == "confirmation")
        .unwrap();
    assert_eq!(confirmation.status, "pending");
    let error = confirmation.last_error.as_deref().unwrap();
    assert!(error.contains(&broken.display().to_string()), "{error}");
    assert_eq!(accepted.lock().unwrap().len(), 1);
}

/// `n` new requests from `from(i)`, as one batch.
fn requests(n: usize, from: impl Fn(usize) -> String, tag: &str) -> Vec<RawMessage> {
    (0..n)
        .map(|i| {
            mail(
                &from(i),
                "Compre ya",
                "Oferta: http://spam.test",
                &format!("{tag}{i}@x.test"),
                "",
            )
        })
        .collect()
}

fn queued(out: &[Outcome]) -> usize {
    out.iter().filter(|o| o.queued).count()
}

#[tokio::test]
async fn plus_addressing_shares_one_cap() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), 5).await;
    // bob+1@ … bob+30@ in one batch: the earlier messages count for the later ones.
    let out = p
        .process(&requests(30, |i| format!("bob+{i}@outside.test"), "p"))
        .await
        .unwrap();
    assert_eq!(out.len(), 30);
    assert_eq!(queued(&out), 5, "{:?}", decisions(&out));
    assert_eq!(
        decisions(&out)
            .iter()
            .filter(|d| **d == "new_ticket_rate_limited")
            .count(),
        25
    );
    // A later batch counts the outbox: bob@ and BOB+x@ are over the cap too.
    for from in ["bob@outside.test", "Bob+Other@Outside.test"] {
        let out = p
            .process(&requests(1, |_| from.to_string(), from))
            .await
            .unwrap();
        assert_eq!(out[0].decision, "new_ticket_rate_limited", "{from}");
    }
    // Someone else at the same domain is not.
    let out = p
        .process(&requests(1, |_| "carol@outside.test".into(), "c"))
        .await
        .unwrap();
    assert!(out[0].queued);
    // The cap reached is recorded on the ticket.
    let refused = p.store().ticket("MDA-2026-000030").await.unwrap().unwrap();
    assert!(
        refused
            .events
            .iter()
            .any(|e| e.kind == "rate_limited" && e.detail.contains("bob@outside.test")),
        "{:?}",
        refused.events.iter().map(|e| &e.detail).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn outside_domains_and_all_mail_have_hourly_caps() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline_with(
        dir.path(),
        "max_auto_replies_per_domain_per_hour = 3\nmax_auto_replies_per_hour = 8\n",
    )
    .await;
    // Five people at one outside domain: three confirmations.
    let out = p
        .process(&requests(5, |i| format!("u{i}@outside.test"), "d"))
        .await
        .unwrap();
    assert_eq!(queued(&out), 3, "{:?}", decisions(&out));
    let refused = out[4].folio.clone().unwrap();
    let t = p.store().ticket(&refused).await.unwrap().unwrap();
    assert!(
        t.events
            .iter()
            .any(|e| e.kind == "domain_cap" && e.detail.contains("outside.test")),
        "the cap reached is recorded"
    );
    // The institution's own domain has no domain cap, but all mail has: 3 + 5 = 8.
    let out = p
        .process(&requests(7, |i| format!("e{i}@example.test"), "g"))
        .await
        .unwrap();
    assert_eq!(queued(&out), 5, "{:?}", decisions(&out));
    let refused = out[6].folio.clone().unwrap();
    let t = p.store().ticket(&refused).await.unwrap().unwrap();
    assert!(
        t.events.iter().any(|e| e.kind == "global_cap"),
        "{:?}",
        t.events.iter().map(|e| &e.kind).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_confirmation_to_an_outside_domain_quotes_nothing_the_sender_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), 20).await;
    let out = p
        .process(&[
            mail(
                "Visit spam.test <victim@outside.test>",
                "Compre ya en spam.test",
                "Oferta increíble: http://spam.test",
                "o1@x.test",
                "",
            ),
            mail(
                "Ana <ana@example.test>",
                "Impresora",
                "No imprime.",
                "o2@x.test",
                "",
            ),
        ])
        .await
        .unwrap();
    assert_eq!(queued(&out), 2);
    let due = p
        .store()
        .claim_due(t0(), 10, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    let outside = due.iter().find(|m| m.to == "victim@outside.test").unwrap();
    let context = outside.context.to_string();
    assert!(!context.contains("spam.test"), "{context}");
    assert_eq!(outside.context["quoted"], false);
    let inside = due.iter().find(|m| m.to == "ana@example.test").unwrap();
    assert!(inside.context.to_string().contains("No imprime."));
    assert_eq!(inside.context["quoted"], true);
}

/// A request with `n` empty attached parts.
fn many_parts(id: &str, n: usize) -> RawMessage {
    let parts: String = (0..n)
        .map(|i| {
            format!("--b\r\nContent-Type: application/octet-stream; name=\"f{i}.bin\"\r\n\r\n\r\n")
        })
        .collect();
    mail(
        "ana@example.test",
        "Archivos",
        &format!("--b\r\nContent-Type: text/plain\r\n\r\nVan los archivos.\r\n{parts}--b--"),
        id,
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n",
    )
}

#[tokio::test]
async fn a_mail_of_too_many_mime_parts_is_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    // However loaded the machine, both are decided in this batch (none deferred as slow).
    let p = pipeline_with(dir.path(), "max_mime_parts = 50\n")
        .await
        .with_patience(std::time::Duration::from_secs(600));
    let out = p
        .process(&[
            many_parts("few@x.test", 10),
            many_parts("many@x.test", 50_000),
        ])
        .await
        .unwrap();
    assert_eq!(out[0].decision, "new_ticket");
    match &out[1].disposition {
        Disposition::Quarantined(reason) => assert!(
            reason.contains("exceeds limits.max_mime_parts (50)"),
            "{reason}"
        ),
        d => panic!("expected quarantine, got {d:?}"),
    }
    // Nothing was queued for the quarantined one: one confirmation in all.
    assert_eq!(queued(&out), 1);
}

/// The store of the pipeline in `dir` with its `messages` table renamed away: a batch's writes
/// fail, the attempts' bookkeeping does not; [`BrokenStore::repair`] puts it back.
struct BrokenStore(sqlx::AnyPool);

impl BrokenStore {
    async fn fail_writes(dir: &Path) -> BrokenStore {
        sqlx::any::install_default_drivers();
        let db = sqlx::AnyPool::connect(&database_url(dir)).await.unwrap();
        sqlx::query("ALTER TABLE messages RENAME TO messages_away")
            .execute(&db)
            .await
            .unwrap();
        BrokenStore(db)
    }

    async fn repair(self) {
        sqlx::query("ALTER TABLE messages_away RENAME TO messages")
            .execute(&self.0)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_database_failure_while_storing_is_retried_and_never_quarantines_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), 20).await;
    // The database fails the batch's writes (not the attempts' bookkeeping), three times.
    let broken = BrokenStore::fail_writes(dir.path()).await;
    let request = mail(
        "ana@example.test",
        "Sin red",
        "No hay red.",
        "db1@x.test",
        "",
    );
    for _ in 0..3 {
        assert!(p.process(std::slice::from_ref(&request)).await.is_err());
    }
    broken.repair().await;
    // The analysis always finished: the retry stores the message, it is not taken for one
    // that kills the process.
    let out = p.process(&[request]).await.unwrap();
    assert_eq!(out[0].folio.as_deref(), Some("MDA-2026-000001"), "{out:?}");
    assert_eq!(p.store().counts().await.unwrap().quarantined, 0);
}

#[tokio::test]
async fn a_batch_started_behind_one_that_fails_to_store_is_retried_as_new_mail() {
    // The mailbox worker fetches and starts the next batch while one is stored; when the
    // store fails, the next batch is abandoned. Its analyses ended: its messages must not be
    // taken for ones that stopped the process (retried alone, then quarantined).
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), 20).await;
    let first = [mail("ana@example.test", "Uno", "1", "ab1@x.test", "")];
    let next = [
        mail("beto@example.test", "Dos", "2", "ab2@x.test", ""),
        mail("carla@example.test", "Tres", "3", "ab3@x.test", ""),
    ];
    let sources: Vec<&str> = next.iter().map(|r| r.source.as_str()).collect();
    let started_first = p.start(&first).await.unwrap();
    let started_next = p.start(&next).await.unwrap();
    assert_eq!(
        p.store().unfinished_attempts(&sources).await.unwrap(),
        [1, 1]
    );
    let broken = BrokenStore::fail_writes(dir.path()).await;
    assert!(p.finish(&first, started_first).await.is_err());
    p.abandon(&next, started_next).await;
    assert_eq!(
        p.store().unfinished_attempts(&sources).await.unwrap(),
        [0, 0]
    );
    broken.repair().await;
    let out = p.process(&next).await.unwrap();
    assert_eq!(decisions(&out), ["new_ticket", "new_ticket"]);
    let out = p.process(&first).await.unwrap();
    assert_eq!(decisions(&out), ["new_ticket"]);
}
