//! The pipeline against a real SQLite database, without mail servers: batches, folio numbers,
//! dedup, threading of follow-ups, the per-address cap, quarantine.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use folio::clock::FixedClock;
use folio::config::{Config, Env};
use folio::pipeline::{Disposition, Outcome, Pipeline, RawMessage};
use folio::store::Store;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

struct NoEnv;
impl Env for NoEnv {
    fn var(&self, _: &str) -> Option<String> {
        None
    }
}

/// The pipeline's fixed clock: tests never mix it with the wall clock (a bounce suppression of
/// 72 h from 2026-11-27 would have expired on the wall clock of a later day).
fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 16, 0, 0).unwrap()
}

async fn pipeline(dir: &Path, cap: u32) -> Pipeline {
    pipeline_with(dir, &format!("max_auto_replies_per_address = {cap}\n")).await
}

/// A pipeline whose `[limits]` section holds `limits`.
async fn pipeline_with(dir: &Path, limits: &str) -> Pipeline {
    let text = format!(
        "[imap]\nhost = \"127.0.0.1\"\ntls = \"none\"\nusername = \"helpdesk@example.test\"\npassword = \"x\"\n\
         [smtp]\nhost = \"127.0.0.1\"\ntls = \"none\"\nfrom = \"Mesa de Ayuda <helpdesk@example.test>\"\n\
         [templates]\ndir = \"{REPO}/mail-templates\"\n[limits]\n{limits}"
    );
    let config = Config::parse(Path::new("test.toml"), &text, &NoEnv).unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.join("folio.db").display()))
        .await
        .unwrap();
    let clock = Arc::new(FixedClock::new(now()));
    let tokens = folio::tokens::Tokens::new(store.site_secret().await.unwrap());
    Pipeline::new(&config, store, clock, tokens).unwrap()
}

fn mail(from: &str, subject: &str, body: &str, id: &str, extra: &str) -> RawMessage {
    RawMessage {
        source: format!("test:{id}"),
        bytes: format!(
            "From: {from}\r\nTo: helpdesk@example.test\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n{extra}\r\n{body}\r\n"
        )
        .into_bytes(),
        seen_at: now(),
    }
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
    let ours = p.store.ticket(&folio).await.unwrap().unwrap().outgoing[0]
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
    let c = p.store.counts().await.unwrap();
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
    let ticket = p.store.ticket(&folio).await.unwrap().unwrap();
    assert_eq!(ticket.messages.len(), 3);
    assert_eq!(
        ticket.ticket.status, "open",
        "automatic mail never changes the state"
    );
    assert_eq!(p.store.counts().await.unwrap().tickets, 1);
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
        .store
        .ticket(out[0].folio.as_deref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stranger.referenced_folio.as_deref(), Some(folio.as_str()));
    assert_eq!(
        p.store
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
        seen_at: now(),
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
    let c = p.store.counts().await.unwrap();
    assert_eq!((c.quarantined, c.tickets), (1, 1));
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
        .store
        .ticket("MDA-2026-000001")
        .await
        .unwrap()
        .unwrap()
        .outgoing[0]
        .message_id
        .clone();
    // Someone "repairs" the database by hand and rewinds the folio counter: the next new ticket
    // would reuse MDA-2026-000001, which the UNIQUE constraint refuses.
    let db = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        dir.path().join("folio.db").display()
    ))
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
    assert!(reason.contains("UNIQUE"), "{reason}");
    assert_eq!(out[1].disposition, Disposition::Processed);
    let c = p.store.counts().await.unwrap();
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
            seen_at: now(),
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
        .store
        .claim_due(now(), 10, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    assert!(due.iter().all(|m| m.to != "ana@example.test"), "{due:?}");
    let t = p.store.ticket(&folio).await.unwrap().unwrap();
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
    let now = p.clock.now();
    let lease = std::time::Duration::from_secs(30);
    // Two senders (the daemon and `folio ingest`, say) asking at once get disjoint mail.
    let first = p.store.claim_due(now, 2, lease).await.unwrap();
    let second = p.store.claim_due(now, 2, lease).await.unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(second.len(), 1);
    assert!(first.iter().all(|m| m.id != second[0].id));
    assert!(p.store.claim_due(now, 10, lease).await.unwrap().is_empty());
    // A sender that stops gives its unstarted claims back: they can be claimed at once.
    p.store.release_claims(&[second[0].id]).await.unwrap();
    let again = p.store.claim_due(now, 10, lease).await.unwrap();
    assert_eq!(
        again.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![second[0].id]
    );
    // A sender that died leaves its claims behind; they expire.
    let later = now + chrono::Duration::seconds(31);
    assert_eq!(p.store.claim_due(later, 10, lease).await.unwrap().len(), 3);
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
    let refused = p.store.ticket("MDA-2026-000030").await.unwrap().unwrap();
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
    let t = p.store.ticket(&refused).await.unwrap().unwrap();
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
    let t = p.store.ticket(&refused).await.unwrap().unwrap();
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
        .store
        .claim_due(now(), 10, std::time::Duration::from_secs(60))
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
