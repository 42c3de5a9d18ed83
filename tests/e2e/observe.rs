//! Watching folio run: `/healthz` and `/metrics` of a real daemon as mail goes through it, a
//! listen address that cannot be bound, and the stall alarm when the database stops taking
//! mail in.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::harness::*;
use super::inbox;

/// `[http]` on a port the system picks (read back from the log).
pub(super) const HTTP: &str = "[http]\nlisten = \"127.0.0.1:0\"\n";

/// A cron time that never comes.
const NEVER: &str = "0 0 0 1 1 * 2099";

/// The address the daemon's listener was given, from its log line.
pub(super) async fn http_addr(folio: &Folio) -> String {
    let line = regex::Regex::new(r"http listener ready.*addr=(127\.0\.0\.1:\d+)").unwrap();
    wait_for(
        "the http listener's address",
        Duration::from_secs(10),
        || async { line.captures(&folio.log_text()).map(|c| c[1].to_string()) },
    )
    .await
}

/// `GET path` over a plain TCP connection: (status, body).
pub(super) async fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw))
        .await
        .expect("the response within 10 s")
        .unwrap();
    let text = String::from_utf8(raw).expect("UTF-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("a header and a body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    (status, body.to_string())
}

pub(super) async fn healthz(addr: &str) -> (u16, Value) {
    let (status, body) = get(addr, "/healthz").await;
    (status, serde_json::from_str(&body).expect("JSON"))
}

/// The value of the sample `name` (with its labels, as rendered) in `/metrics`.
pub(super) fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Waits until `/metrics` shows `name` at `want`; returns the whole text.
async fn metric_reaches(addr: &str, name: &str, want: f64) -> String {
    wait_for(
        &format!("{name} = {want}"),
        Duration::from_secs(60),
        || async {
            let (_, text) = get(addr, "/metrics").await;
            (sample(&text, name) == Some(want)).then_some(text)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_metrics_follow_a_request_through_the_daemon() {
    let hd = unique("hd");
    let alice = unique("alice");
    let mut folio = Folio::new(
        &hd,
        Options {
            extra: HTTP.into(),
            ..Options::default()
        },
    );
    folio.start(&[]).await;
    let addr = http_addr(&folio).await;

    let (status, health) = healthz(&addr).await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["role"], "active");
    assert_eq!(health["mailbox_connected"], true);
    assert_eq!(health["database_reachable"], true);
    assert_eq!(health["outbox_depth"], 0);
    assert_eq!(health["outbox_oldest_age_seconds"], Value::Null);
    let fetched = health["last_fetch_at"].as_str().expect("a pass was made");
    chrono::DateTime::parse_from_rfc3339(fetched).expect("RFC 3339");
    assert!(fetched.ends_with('Z'), "UTC: {fetched}");

    ask(&alice, &hd, "No imprime", "La impresora no imprime.").await;
    inbox(&alice, 1).await;
    let text = metric_reaches(&addr, "folio_mail_sent_total", 1.0).await;
    for (name, want) in [
        ("folio_tickets_opened_total", 1.0),
        ("folio_messages_processed_total{verdict=\"human\"}", 1.0),
        ("folio_messages_processed_total{verdict=\"bounce\"}", 0.0),
        ("folio_messages_quarantined_total", 0.0),
        ("folio_mail_failed_total", 0.0),
        ("folio_outbox_depth", 0.0),
        ("folio_outbox_oldest_age_seconds", 0.0),
        ("folio_imap_reconnects_total", 0.0),
        ("folio_mailbox_connected", 1.0),
        ("folio_database_up", 1.0),
        ("folio_stalled", 0.0),
        ("folio_processing_seconds_count", 1.0),
    ] {
        assert_eq!(sample(&text, name), Some(want), "{name}:\n{text}");
    }
    assert!(
        text.contains("# TYPE folio_processing_seconds histogram"),
        "{text}"
    );
    assert!(sample(&text, "folio_scheduled_items_done_total").is_some());
    let (status, health) = healthz(&addr).await;
    assert_eq!((status, &health["outbox_depth"]), (200, &Value::from(0)));

    // A second instance on the same configuration, told the same address on the command line,
    // refuses to start and says which setting is at fault.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_folio"))
        .arg("--config")
        .arg(&folio.config)
        .args(["run", "--http-listen", &addr])
        .env_remove("FOLIO_HTTP_LISTEN")
        .output()
        .expect("run folio");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("--http-listen: cannot listen on {addr}")),
        "{stderr}"
    );
    assert_eq!(folio.stop().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_stuck_in_the_folder_alarms_the_admins_once_and_clears_when_it_moves() {
    let hd = unique("hd");
    let alice = unique("alice");
    let admin = unique("admin");
    let mut folio = Folio::new(
        &hd,
        Options {
            // The admins would get the weekly summary too: not in this test.
            extra: format!(
                "{HTTP}[alarms]\nstall_after = \"3s\"\n[helpdesk]\nadmins = [\"{admin}\"]\n\
                 [schedule]\ntechnician_digest = \"{NEVER}\"\nweekly_summary = \"{NEVER}\"\n"
            ),
            ..Options::default()
        },
    );
    folio.start(&[]).await;
    let addr = http_addr(&folio).await;

    // The database stops taking mail in (the table of analysis attempts, the pipeline's first
    // step, is gone) while the outbox still works: every pass over the new message fails, and
    // the message stays in the folder.
    // The daemon's own database, on either engine (the scratch URL is kept beside the config).
    let dir = folio.config.parent().unwrap();
    sqlx::any::install_default_drivers();
    // (On SQLite the attempts have a file of their own.)
    let pool = sqlx::AnyPool::connect(&folio::store::attempts_url(
        &folio::store::scratch::database_url(dir),
    ))
    .await
    .unwrap();
    sqlx::query("ALTER TABLE analysis_attempts RENAME TO attempts_away")
        .execute(&pool)
        .await
        .unwrap();
    ask(&alice, &hd, "No imprime", "La impresora no imprime.").await;

    let alarm = inbox(&admin, 1).await;
    assert!(
        alarm[0].subject.contains("no se procesa"),
        "{:?}",
        alarm[0].subject
    );
    assert!(
        alarm[0].body_text.contains("INBOX"),
        "{}",
        alarm[0].body_text
    );
    assert!(
        // SQLite's words, or PostgreSQL's.
        [
            "no such table: analysis_attempts",
            "relation \"analysis_attempts\" does not exist"
        ]
        .iter()
        .any(|e| alarm[0].body_text.contains(e)),
        "the worker's last error: {}",
        alarm[0].body_text
    );
    let text = metric_reaches(&addr, "folio_stalled", 1.0).await;
    assert_eq!(sample(&text, "folio_stall_alarms_total"), Some(1.0));
    assert!(sample(&text, "folio_imap_reconnects_total").unwrap_or(0.0) >= 1.0);
    let (status, health) = healthz(&addr).await;
    assert_eq!(status, 503, "{health}");
    assert!(health["stalled_since"].is_string(), "{health}");
    assert_eq!(health["mail_waiting"], 1);
    assert!(
        folio.log_text().matches("stalled: mail is waiting").count() == 1,
        "one error line per stall"
    );

    // More checks of the same stall mail nobody again.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(count(&admin, "INBOX").await, 1, "one mail per stall");

    // The database takes mail again: the message leaves the folder and the stall is over.
    sqlx::query("ALTER TABLE attempts_away RENAME TO analysis_attempts")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    metric_reaches(&addr, "folio_stalled", 0.0).await;
    assert_eq!(count(&hd, "INBOX").await, 0);
    let (status, health) = healthz(&addr).await;
    assert_eq!(status, 200, "{health}");
    assert!(folio.log_text().contains("stall over"));
    assert_eq!(count(&admin, "INBOX").await, 1);
    // Nothing was lost: the request got its ticket and its confirmation.
    inbox(&alice, 1).await;
    assert_eq!(folio.tickets().len(), 1);
}
