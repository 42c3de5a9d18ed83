//! `folio run` as a systemd `Type=notify` service, without systemd: the test binds the
//! notification socket itself (as systemd does, a datagram socket named in NOTIFY_SOCKET) and
//! reads what folio tells it: READY=1 only after the mailbox accepted the login, WATCHDOG=1
//! pings while the loops are alive, SIGHUP reloads (refused on a broken configuration, applied
//! on a good one), STOPPING=1.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::harness::*;

/// The notification socket and every line received on it.
struct Notifications {
    path: PathBuf,
    lines: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Notifications {
    fn bind(dir: &Path) -> Notifications {
        let path = dir.join("notify.sock");
        let socket = tokio::net::UnixDatagram::bind(&path).expect("bind the notify socket");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let got = lines.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf).await {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                got.lock().unwrap().extend(text.lines().map(str::to_string));
            }
        });
        Notifications { path, lines, task }
    }

    /// The environment systemd gives a `Type=notify` service with `WatchdogSec=1s`.
    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("NOTIFY_SOCKET".into(), self.path.display().to_string()),
            ("WATCHDOG_USEC".into(), "1000000".into()),
        ]
    }

    fn count(&self, line: &str) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.as_str() == line)
            .count()
    }

    fn any(&self, starts: &str) -> bool {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with(starts))
    }

    /// Waits for a line starting with `starts` (the log line that goes with a notification can
    /// be read before the notification's datagram is).
    async fn wait_any(&self, starts: &str) {
        wait_for(
            &format!("a line starting {starts:?} on the notify socket"),
            Duration::from_secs(30),
            || async { self.any(starts).then_some(()) },
        )
        .await
    }

    async fn wait(&self, line: &str, n: usize) {
        wait_for(
            &format!("{n} × {line:?} on the notify socket"),
            Duration::from_secs(30),
            || async { (self.count(line) >= n).then_some(()) },
        )
        .await
    }
}

impl Drop for Notifications {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn log_contains(folio: &Folio, what: &str, n: usize) {
    wait_for(
        &format!("{n} × {what:?} in folio's log"),
        Duration::from_secs(30),
        || async { (folio.log_text().matches(what).count() >= n).then_some(()) },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_watchdog_reload_and_stop_are_told_to_systemd() {
    let hd = unique("hd");
    let alice = unique("alice");
    let dir = tempfile::tempdir().unwrap();
    let notes = Notifications::bind(dir.path());
    let mut folio = Folio::new(&hd, Options::default());
    folio.env = notes.env();
    let good = std::fs::read_to_string(&folio.config).unwrap();
    folio.start(&[]).await;
    notes.wait("READY=1", 1).await;
    notes.wait_any("STATUS=watching INBOX").await;
    notes.wait("WATCHDOG=1", 3).await;

    // A broken configuration: refused, named, and folio goes on as it was.
    std::fs::write(
        &folio.config,
        good.replace("batch_size = 500", "batch_size = 0"),
    )
    .unwrap();
    folio.signal("HUP");
    log_contains(&folio, "reload refused", 1).await;
    let log = folio.log_text();
    assert!(
        log.contains("imap.batch_size") && log.contains("folio.toml"),
        "the refusal names the file and key:\n{log}"
    );
    notes.wait_any("STATUS=reload refused").await;
    assert_eq!(notes.count("RELOADING=1"), 0);
    let pings = notes.count("WATCHDOG=1");
    notes.wait("WATCHDOG=1", pings + 2).await;
    assert!(folio.running());

    // A good one with another processed folder: the workers restart on it.
    std::fs::write(
        &folio.config,
        good.replace(
            "folder = \"INBOX\"",
            "folder = \"INBOX\"\nprocessed_folder = \"Hechos\"",
        ),
    )
    .unwrap();
    folio.signal("HUP");
    notes.wait("RELOADING=1", 1).await;
    notes.wait("READY=1", 2).await;
    log_contains(&folio, "mailbox ready", 2).await;
    send(
        &alice,
        &hd,
        &message(&alice, &hd, "Tras recargar", "Hola.", &message_id()),
    )
    .await;
    wait_for(
        "the request filed in the reloaded processed folder",
        Duration::from_secs(30),
        || async { (count(&hd, "Hechos").await == 1).then_some(()) },
    )
    .await;

    // A database that cannot be opened passes the check but not the start: folio goes back to
    // the configuration it ran on.
    let reloaded = std::fs::read_to_string(&folio.config).unwrap();
    let url = regex::Regex::new(r#"(?m)^url = ".*"$"#).unwrap();
    assert!(url.is_match(&reloaded), "{reloaded}");
    std::fs::write(
        &folio.config,
        url.replace(&reloaded, r#"url = "sqlite:///proc/no-such-dir/folio.db""#)
            .as_ref(),
    )
    .unwrap();
    folio.signal("HUP");
    log_contains(&folio, "cannot open the new database", 1).await;
    notes.wait("READY=1", 3).await;
    log_contains(&folio, "mailbox ready", 3).await;
    assert!(folio.running());

    let status = folio.stop();
    assert!(status.success(), "{status:?}");
    assert_eq!(notes.count("STOPPING=1"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_until_the_mailbox_accepts_the_login() {
    let hd = unique("hd");
    let dir = tempfile::tempdir().unwrap();
    let notes = Notifications::bind(dir.path());
    let mut folio = Folio::new(&hd, Options::default());
    folio.env = notes.env();
    let good = std::fs::read_to_string(&folio.config).unwrap();
    std::fs::write(
        &folio.config,
        good.replace("password = \"secret\"", "password = \"wrong\""),
    )
    .unwrap();
    folio.launch(&[]);
    log_contains(&folio, "mailbox connection failed", 1).await;
    // Alive (the loops keep their deadlines while retrying) but not ready.
    notes.wait("WATCHDOG=1", 3).await;
    assert_eq!(notes.count("READY=1"), 0, "{:?}", notes.lines);

    // The password fixed and reloaded: now it is ready.
    std::fs::write(&folio.config, &good).unwrap();
    folio.signal("HUP");
    notes.wait("READY=1", 1).await;
    log_contains(&folio, "mailbox ready", 1).await;
    assert!(folio.stop().success());
}
