//! The daemon's health, shared in memory: the loops say what they see (the mailbox worker:
//! connected, mail found waiting, mail filed away, a pass finished; the stall alarm: stalled since), and
//! `/healthz` reads it with one cheap database query ([`report`], pure, decides 200 or 503).
//!
//! The instance's role is part of it: every instance is `active` today; an instance that does
//! not hold the mailbox (several `folio run` sharing one mailbox, one holding its lease) is set
//! to `standby` with [`Health::set_role`], and then answers 200 as long as its database
//! answers, saying it is a standby.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::daemon::telemetry::Telemetry;
use crate::desk::stall::Watch;
use crate::store::OutboxHealth;

/// Whether this instance works the mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Works the mailbox (every instance, until mailbox leases exist).
    Active,
    /// Waits to take over: healthy without a mailbox connection, never stalled.
    Standby,
}

impl Role {
    /// As `/healthz` writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Active => "active",
            Role::Standby => "standby",
        }
    }
}

/// What the loops have seen, as of the last thing they said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub role: Role,
    /// The IMAP session is up (set when the folder is selected, cleared when it fails).
    pub mailbox_connected: bool,
    /// The end of the last pass over the folder that finished without error.
    pub last_fetch_at: Option<DateTime<Utc>>,
    /// The mailbox worker's last error, until its next successful pass.
    pub last_error: Option<String>,
    /// What the stall alarm looks at.
    pub watch: Watch,
    /// The stall alarmed, if one is going on (set by the alarm, not derived here).
    pub stalled_since: Option<DateTime<Utc>>,
}

/// The shared state; cheap to update (one short lock, no I/O).
pub struct Health {
    seen: Mutex<Seen>,
    telemetry: Arc<Telemetry>,
}

impl Health {
    /// An active instance that has not connected yet.
    pub fn new(telemetry: Arc<Telemetry>) -> Arc<Health> {
        Arc::new(Health {
            seen: Mutex::new(Seen {
                role: Role::Active,
                mailbox_connected: false,
                last_fetch_at: None,
                last_error: None,
                watch: Watch::default(),
                stalled_since: None,
            }),
            telemetry,
        })
    }

    fn update<T>(&self, f: impl FnOnce(&mut Seen) -> T) -> T {
        f(&mut self.seen.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A copy of what was seen.
    pub fn seen(&self) -> Seen {
        self.update(|s| s.clone())
    }

    /// Sets the instance's role (the mailbox lease's holder is `Active`, the others `Standby`).
    pub fn set_role(&self, role: Role) {
        self.update(|s| s.role = role);
    }

    /// The session is up: logged in, the folder selected and its baseline known.
    pub fn connected(&self) {
        self.telemetry.mailbox_connected.set(1.0);
        self.update(|s| s.mailbox_connected = true);
    }

    /// The session failed with `error`; the worker reconnects with backoff.
    pub fn disconnected(&self, error: &str) {
        self.telemetry.mailbox_connected.set(0.0);
        self.update(|s| {
            s.mailbox_connected = false;
            s.last_error = Some(error.to_string());
        });
    }

    /// A pass found `waiting` messages to process, the oldest named `first`, at `now`.
    pub fn waiting(&self, waiting: u32, first: &str, now: DateTime<Utc>) {
        self.update(|s| {
            set_waiting(&mut s.watch, waiting, now);
            s.watch
                .first_waiting
                .get_or_insert_with(|| first.to_string());
        });
        self.telemetry.mailbox_waiting.set(f64::from(waiting));
    }

    /// Messages left the folder (processed or quarantined and moved) at `now`.
    pub fn filed(&self, now: DateTime<Utc>) {
        self.update(|s| s.watch.last_filed_at = Some(now));
    }

    /// A pass over the folder ended without error at `now`: what it found is processed (or
    /// deferred to its slow analysis, which its deadline bounds), so nothing waits.
    pub fn fetched(&self, now: DateTime<Utc>) {
        self.update(|s| {
            s.last_fetch_at = Some(now);
            s.last_error = None;
            set_waiting(&mut s.watch, 0, now);
        });
        self.telemetry.mailbox_waiting.set(0.0);
    }

    /// The stall alarm's verdict: stalled since when, or not.
    pub fn set_stalled(&self, since: Option<DateTime<Utc>>) {
        self.telemetry
            .stalled
            .set(if since.is_some() { 1.0 } else { 0.0 });
        self.update(|s| s.stalled_since = since);
    }
}

/// Mail first seen waiting starts the clock; an empty folder stops it.
fn set_waiting(w: &mut Watch, waiting: u32, now: DateTime<Utc>) {
    if waiting == 0 {
        w.waiting_since = None;
        w.first_waiting = None;
    } else if w.waiting == 0 || w.waiting_since.is_none() {
        w.waiting_since = Some(now);
    }
    w.waiting = waiting;
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `/healthz`: healthy or not, and the JSON that says why. Healthy: the database answers,
/// the OAuth2 token (when a login uses one) still works, and, for an active instance, the
/// mailbox is connected and not stalled. `outbox` is the database's answer (its error when it
/// did not answer); `oauth` the token source's state, if there is one.
pub fn report(
    seen: &Seen,
    outbox: &Result<OutboxHealth, String>,
    oauth: Option<&crate::oauth::Status>,
    now: DateTime<Utc>,
) -> (bool, Value) {
    let mut problems = Vec::new();
    if let Err(e) = outbox {
        problems.push(format!("database unreachable: {e}"));
    }
    if let Some(o) = oauth.filter(|o| !o.healthy(now)) {
        problems.push(format!(
            "oauth2: no working token from {} since {}: {}",
            o.token_url,
            o.failing_since.map_or("start".to_string(), rfc3339),
            o.last_error.as_ref().map_or("", |(_, e)| e.as_str())
        ));
    }
    if seen.role == Role::Active {
        if !seen.mailbox_connected {
            problems.push(match &seen.last_error {
                Some(e) => format!("mailbox not connected: {e}"),
                None => "mailbox not connected".to_string(),
            });
        }
        if let Some(since) = seen.stalled_since {
            problems.push(format!(
                "stalled: mail waiting, none processed since {}",
                rfc3339(since)
            ));
        }
    }
    let ok = outbox.as_ref().ok();
    let oldest_age = ok
        .and_then(|o| o.oldest_queued_at)
        .map(|t| (now - t).num_seconds().max(0));
    let healthy = problems.is_empty();
    let body = json!({
        "status": if healthy { "ok" } else { "unhealthy" },
        "role": seen.role.as_str(),
        "mailbox_connected": seen.mailbox_connected,
        "last_fetch_at": seen.last_fetch_at.map(rfc3339),
        "mail_waiting": seen.watch.waiting,
        "stalled_since": seen.stalled_since.map(rfc3339),
        "database_reachable": outbox.is_ok(),
        "outbox_depth": ok.map(|o| o.depth),
        "outbox_oldest_age_seconds": oldest_age,
        "oauth2": oauth.map(|o| json!({
            "failing_since": o.failing_since.map(rfc3339),
            "token_expires_at": o.expires_at.map(rfc3339),
            "last_success": o.last_success.map(rfc3339),
        })),
        "problems": problems,
    });
    (healthy, body)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 10, minute, 0).unwrap()
    }

    fn connected() -> Seen {
        let h = Health::new(Telemetry::off());
        h.connected();
        h.fetched(at(1));
        h.seen()
    }

    #[test]
    fn a_connected_instance_with_a_database_is_healthy_and_says_so() {
        let outbox = Ok(OutboxHealth {
            depth: 2,
            oldest_queued_at: Some(at(0)),
        });
        let (healthy, body) = report(&connected(), &outbox, None, at(2));
        assert!(healthy, "{body}");
        assert_eq!(
            body,
            json!({
                "status": "ok", "role": "active", "mailbox_connected": true,
                "last_fetch_at": "2026-11-27T10:01:00Z", "mail_waiting": 0,
                "stalled_since": null, "database_reachable": true, "outbox_depth": 2,
                "outbox_oldest_age_seconds": 120, "oauth2": null, "problems": [],
            })
        );
    }

    #[test]
    fn no_database_no_mailbox_or_a_stall_is_unhealthy_and_names_the_problem() {
        let (healthy, body) = report(&connected(), &Err("disk I/O error".into()), None, at(2));
        assert!(!healthy);
        assert_eq!(body["database_reachable"], false);
        assert_eq!(body["problems"][0], "database unreachable: disk I/O error");

        let h = Health::new(Telemetry::off());
        h.disconnected("connection refused");
        let (healthy, body) = report(&h.seen(), &Ok(OutboxHealth::default()), None, at(2));
        assert!(!healthy);
        assert_eq!(body["status"], "unhealthy");
        assert_eq!(
            body["problems"][0],
            "mailbox not connected: connection refused"
        );

        let h = Health::new(Telemetry::off());
        h.connected();
        h.waiting(3, "imap:INBOX:1:0", at(0));
        h.set_stalled(Some(at(0)));
        let (healthy, body) = report(&h.seen(), &Ok(OutboxHealth::default()), None, at(20));
        assert!(!healthy);
        assert_eq!(body["stalled_since"], "2026-11-27T10:00:00Z");
        assert_eq!(body["mail_waiting"], 3);
    }

    #[test]
    fn a_healthy_standby_answers_200_and_says_it_is_a_standby() {
        let h = Health::new(Telemetry::off());
        h.set_role(Role::Standby);
        let (healthy, body) = report(&h.seen(), &Ok(OutboxHealth::default()), None, at(2));
        assert!(healthy, "{body}");
        assert_eq!(body["role"], "standby");
        assert_eq!(body["mailbox_connected"], false);
        // Its database still counts.
        let (healthy, _) = report(&h.seen(), &Err("gone".into()), None, at(2));
        assert!(!healthy);
    }

    #[test]
    fn mail_waiting_starts_the_stall_clock_once_and_an_empty_pass_stops_it() {
        let h = Health::new(Telemetry::off());
        h.connected();
        h.waiting(2, "imap:INBOX:1:0", at(0));
        h.disconnected("database error");
        h.connected();
        h.waiting(2, "imap:INBOX:1:5", at(5));
        assert_eq!(
            h.seen().watch.waiting_since,
            Some(at(0)),
            "still the same mail"
        );
        h.waiting(3, "imap:INBOX:1:6", at(6));
        assert_eq!(h.seen().watch.waiting_since, Some(at(0)));
        h.filed(at(7));
        h.fetched(at(7));
        let w = h.seen().watch;
        assert_eq!(
            (w.waiting, w.waiting_since, w.last_filed_at),
            (0, None, Some(at(7)))
        );
        h.waiting(1, "imap:INBOX:1:9", at(9));
        assert_eq!(h.seen().watch.waiting_since, Some(at(9)));
    }

    #[test]
    fn a_token_endpoint_failing_past_the_tokens_life_is_unhealthy() {
        let mut o = crate::oauth::Status::new("https://login.example/token");
        o.succeeded(at(0), at(10));
        o.failed(at(5), "invalid_client");
        let outbox = Ok(OutboxHealth::default());
        // The last token still works: healthy, the failure shown.
        let (healthy, body) = report(&connected(), &outbox, Some(&o), at(6));
        assert!(healthy, "{body}");
        assert_eq!(body["oauth2"]["failing_since"], "2026-11-27T10:05:00Z");
        let (healthy, body) = report(&connected(), &outbox, Some(&o), at(11));
        assert!(!healthy);
        let problem = body["problems"][0].as_str().unwrap();
        assert!(
            problem.contains("login.example") && problem.contains("invalid_client"),
            "{problem}"
        );
    }
}
