//! `folio status`: one screen from the database, whether or not a daemon runs: each instance
//! with its last heartbeat and whether it is alive, the one holding the mailbox, the folder's
//! backlog as the holder last saw it, the outbox, the latest errors and the quarantine.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::config::Config;
use crate::daemon::instance::MAILBOX_LEASE;
use crate::store::{InstanceRow, LeaseRow, MailFailure, OutboxSummary, Store, StoreError};
use crate::terminal;

/// How many stopped instances and failures the screen lists.
const SHOWN: u32 = 10;

/// Why there is no status.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(
        "{config}: database.url: no database at {file} (it is created at folio's first start)"
    )]
    NoDatabase { config: String, file: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the status as JSON: {0}")]
    Json(serde_json::Error),
}

/// An instance as the screen shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InstanceStatus {
    #[serde(flatten)]
    pub row: InstanceRow,
    /// Heartbeat running and no stop recorded.
    pub alive: bool,
    /// Holds the mailbox lease now.
    pub holds_mailbox: bool,
}

/// Everything `folio status` shows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub at: DateTime<Utc>,
    pub instances: Vec<InstanceStatus>,
    /// The mailbox lease, if any instance ever held it.
    pub mailbox: Option<LeaseRow>,
    pub outbox: OutboxSummary,
    pub recent_failures: Vec<MailFailure>,
}

impl Status {
    /// The status at `now` from the rows read.
    pub fn build(
        now: DateTime<Utc>,
        rows: Vec<InstanceRow>,
        leases: Vec<LeaseRow>,
        outbox: OutboxSummary,
        recent_failures: Vec<MailFailure>,
    ) -> Status {
        let alive =
            |r: &InstanceRow| r.stopped_at.is_none() && r.alive_until.is_some_and(|t| t > now);
        let mailbox = leases.into_iter().find(|l| l.name == MAILBOX_LEASE);
        let holder = mailbox
            .as_ref()
            .filter(|l| l.until.is_some_and(|t| t > now))
            .map(|l| l.holder.clone());
        // Running instances first, then the latest stopped ones.
        let (mut live, dead): (Vec<InstanceRow>, Vec<InstanceRow>) =
            rows.into_iter().partition(|r| alive(r));
        live.extend(dead.into_iter().take(SHOWN as usize));
        let instances = live
            .into_iter()
            .map(|row| InstanceStatus {
                alive: alive(&row),
                holds_mailbox: alive(&row) && holder.as_deref() == Some(row.id.as_str()),
                row,
            })
            .collect();
        Status {
            at: now,
            instances,
            mailbox,
            outbox,
            recent_failures,
        }
    }

    /// The instance holding the mailbox now, if a live one does.
    pub fn holder(&self) -> Option<&InstanceStatus> {
        self.instances.iter().find(|i| i.holds_mailbox)
    }
}

/// Reads the status from `config`'s database at `clock`'s now.
pub async fn read(config: &Config, clock: &dyn Clock) -> Result<Status, StatusError> {
    if !Store::exists(&config.database.url) {
        return Err(StatusError::NoDatabase {
            config: config.path.display().to_string(),
            file: Store::describe(&config.database.url),
        });
    }
    let store = Store::open(&config.database.url).await?;
    let read = async {
        Ok::<_, StoreError>((
            store.instances(200).await?,
            store.leases().await?,
            store.outbox_summary().await?,
            store.recent_mail_failures(SHOWN).await?,
        ))
    }
    .await;
    store.close().await;
    let (rows, leases, outbox, failures) = read?;
    Ok(Status::build(clock.now(), rows, leases, outbox, failures))
}

/// The status as text (`json`: one JSON object).
pub async fn run(config: &Config, clock: &dyn Clock, json: bool) -> Result<String, StatusError> {
    let status = read(config, clock).await?;
    Ok(if json {
        crate::terminal::json(&status).map_err(StatusError::Json)? + "\n"
    } else {
        text(&status)
    })
}

/// `folio status` as text: instances (alive ones first), the mailbox's holder and backlog,
/// the outbox, the latest failures (addresses and errors escaped: they come from mail and
/// from servers).
fn text(s: &Status) -> String {
    let mut out = String::new();
    let o = &mut out;
    let when = |t: Option<chrono::DateTime<chrono::Utc>>| match t {
        Some(t) if t > s.at => format!(
            "in {}",
            crate::desk::digest::human((t - s.at).num_seconds())
        ),
        Some(t) => format!(
            "{} ago",
            crate::desk::digest::human((s.at - t).num_seconds())
        ),
        None => "never".to_string(),
    };
    let _ = writeln!(
        o,
        "folio status at {}\n",
        s.at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    let _ = writeln!(o, "Instances");
    if s.instances.is_empty() {
        let _ = writeln!(o, "  none has run on this database");
    }
    for i in &s.instances {
        let state = match (i.alive, i.holds_mailbox) {
            (true, true) => "running, holds the mailbox",
            (true, false) => "running, standby",
            (false, _) if i.row.stopped_at.is_some() => "stopped",
            (false, _) => "not responding (no heartbeat)",
        };
        let _ = writeln!(
            o,
            "  {:<28} {:<28} heartbeat {}",
            terminal::line(&i.row.name),
            state,
            when(i.row.heartbeat_at)
        );
        if let (Some(e), true) = (&i.row.last_error, i.alive) {
            let _ = writeln!(
                o,
                "    last error {}: {}",
                when(i.row.last_error_at),
                terminal::line(e)
            );
        }
    }
    let _ = writeln!(o, "\nMailbox");
    match s.holder() {
        Some(h) => {
            let waiting = h
                .row
                .folder_waiting
                .map_or("unknown".to_string(), |n| n.to_string());
            let _ = writeln!(
                o,
                "  held by {} since {}\n  waiting in the folder: {} (last fetch {})",
                terminal::line(&h.row.name),
                when(s.mailbox.as_ref().and_then(|l| l.since)),
                waiting,
                when(h.row.last_fetch_at)
            );
        }
        None => {
            let _ = writeln!(o, "  nobody holds it: no mail is being read");
        }
    }
    let ob = &s.outbox;
    let _ = writeln!(
        o,
        "\nOutbox\n  waiting to be sent: {}{}\n  given up: {}\n\nQuarantine: {} message(s)",
        ob.pending,
        ob.oldest_pending_at
            .map(|t| format!(" (oldest queued {})", when(Some(t))))
            .unwrap_or_default(),
        ob.failed,
        ob.quarantined
    );
    if !s.recent_failures.is_empty() {
        let _ = writeln!(o, "\nLatest delivery errors");
        for f in &s.recent_failures {
            let _ = writeln!(
                o,
                "  {} {} ({}): {}",
                when(f.queued_at),
                terminal::line(&f.to),
                f.status,
                terminal::line(&f.error)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::{TimeDelta, TimeZone};

    use super::*;

    fn row(id: &str, alive_until: DateTime<Utc>, stopped: bool) -> InstanceRow {
        InstanceRow {
            id: id.into(),
            name: format!("h:{id}"),
            host: "h".into(),
            pid: 1,
            started_at: Some(alive_until),
            heartbeat_at: Some(alive_until),
            alive_until: Some(alive_until),
            stopped_at: stopped.then_some(alive_until),
            folder_waiting: None,
            last_fetch_at: None,
            last_error: None,
            last_error_at: None,
        }
    }

    #[test]
    fn live_instances_come_first_and_only_a_live_holder_holds_the_mailbox() {
        let now = Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap();
        let later = now + TimeDelta::seconds(5);
        let lease = |holder: &str, until| LeaseRow {
            name: MAILBOX_LEASE.into(),
            holder: holder.into(),
            until: Some(until),
            since: Some(now),
        };
        let rows = vec![
            row("old", now - TimeDelta::seconds(60), true),
            row("a", later, false),
            row("dead", now - TimeDelta::seconds(1), false),
            row("b", later, false),
        ];
        let s = Status::build(
            now,
            rows.clone(),
            vec![lease("b", later)],
            OutboxSummary::default(),
            vec![],
        );
        let order: Vec<(&str, bool, bool)> = s
            .instances
            .iter()
            .map(|i| (i.row.id.as_str(), i.alive, i.holds_mailbox))
            .collect();
        assert_eq!(
            order,
            vec![
                ("a", true, false),
                ("b", true, true),
                ("old", false, false),
                ("dead", false, false)
            ]
        );
        assert_eq!(s.holder().unwrap().row.id, "b");
        // The holder died: its lease still runs, but nobody holds the mailbox.
        let s = Status::build(
            now,
            rows,
            vec![lease("dead", later)],
            OutboxSummary::default(),
            vec![],
        );
        assert!(s.holder().is_none());
    }

    #[test]
    fn the_text_names_the_holder_and_escapes_what_came_from_mail_or_servers() {
        let now = Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap();
        let later = now + TimeDelta::seconds(5);
        let mut holder = row("a", later, false);
        holder.folder_waiting = Some(7);
        let lease = LeaseRow {
            name: MAILBOX_LEASE.into(),
            holder: "a".into(),
            until: Some(later),
            since: Some(now - TimeDelta::minutes(90)),
        };
        let failure = MailFailure {
            to: "x\u{1b}]52;c;evil\u{7}@example.test".into(),
            error: "550 no such user\r\nfake line".into(),
            status: "failed".into(),
            queued_at: Some(now - TimeDelta::hours(2)),
        };
        let s = Status::build(
            now,
            vec![holder],
            vec![lease],
            OutboxSummary::default(),
            vec![failure],
        );
        let t = text(&s);
        assert!(t.contains("held by h:a since 1 h 30 min ago"), "{t}");
        assert!(t.contains("waiting in the folder: 7"), "{t}");
        assert!(t.contains("running, holds the mailbox"), "{t}");
        assert!(!t.contains('\u{1b}') && !t.contains('\r'), "{t}");
        assert!(t.contains("\\u{1b}]52") && t.contains("\\r\\nfake"), "{t}");
    }
}
