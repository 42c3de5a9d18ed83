//! The stall alarm's loop: on a timer, asks `desk::stall` whether the mail the worker saw
//! waiting has stalled (on the clock's now), and when a stall begins logs one error, sets
//! `folio_stalled` and queues one mail to `helpdesk.admins` through the outbox, claimed in
//! `scheduled_runs` (job `stall_alarm`, the episode's start) in the same transaction: a retry,
//! or a second instance seeing the same episode, queues nothing more.
//!
//! When the database itself is down the mail cannot be queued; it is retried on every tick
//! while the stall lasts (the log line and the metric do not wait for it).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::daemon::health::{Health, Role};
use crate::daemon::telemetry::Telemetry;
use crate::desk::policy::Policy;
use crate::desk::stall::{self, Alarm};
use crate::shutdown::Shutdown;
use crate::store::plan::Writing;
use crate::store::{Store, StoreError};

/// The job name of a stall episode in `scheduled_runs`.
const JOB: &str = "stall_alarm";

/// The stall alarm of one daemon.
pub struct StallAlarm {
    pub store: Store,
    pub policy: Arc<Policy>,
    pub clock: Arc<dyn Clock>,
    pub health: Arc<Health>,
    pub telemetry: Arc<Telemetry>,
    /// Woken after the alarm's mail is queued: the sender waits on it.
    pub outbox_ready: Arc<Notify>,
    /// `imap.folder`, named in the log and the mail.
    pub folder: String,
    /// `alarms.stall_after`.
    pub stall_after: Duration,
    /// `limits.bounce_suppression` and `limits.max_attachment_bytes`, as every writer of mail.
    pub bounce_suppression: Duration,
    pub max_attachment_bytes: u64,
}

/// The episode being alarmed.
struct Episode {
    since: DateTime<Utc>,
    /// Its mail is queued (or was by someone else).
    mailed: bool,
}

impl StallAlarm {
    /// How often to look: a few times per `stall_after`, at most every 30 s and at least every
    /// second, so a stall is alarmed within a fraction of `stall_after`.
    fn tick(&self) -> Duration {
        (self.stall_after / 4).clamp(Duration::from_secs(1), Duration::from_secs(30))
    }

    /// Runs until shutdown.
    pub async fn run(self, mut shutdown: Shutdown) {
        let mut interval = tokio::time::interval(self.tick());
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut episode: Option<Episode> = None;
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = shutdown.wait() => return,
            }
            self.check(&mut episode).await;
        }
    }

    /// One look: raise, clear, or (re)try the episode's mail.
    async fn check(&self, episode: &mut Option<Episode>) {
        let now = self.clock.now();
        let seen = self.health.seen();
        // A standby does not work the mailbox: whatever waits there is not its stall.
        let stalled = match seen.role {
            Role::Active => stall::stalled_since(&seen.watch, now, self.stall_after),
            Role::Standby => None,
        };
        match stall::alarm(episode.as_ref().map(|e| e.since), stalled) {
            Alarm::Quiet => {}
            Alarm::Raise(since) => {
                tracing::error!(
                    folder = %self.folder,
                    waiting = seen.watch.waiting,
                    since = %since,
                    last_error = seen.last_error.as_deref().unwrap_or("-"),
                    "stalled: mail is waiting in the folder and none was processed for alarms.stall_after; telling helpdesk.admins"
                );
                self.telemetry.stall_alarms.increment(1);
                self.health.set_stalled(Some(since));
                *episode = Some(Episode {
                    since,
                    mailed: false,
                });
            }
            Alarm::Clear => {
                if let Some(e) = episode.take() {
                    tracing::info!(folder = %self.folder, since = %e.since, "stall over: mail is processed again");
                }
                self.health.set_stalled(None);
            }
        }
        if let Some(e) = episode.as_mut().filter(|e| !e.mailed) {
            match self.mail(e.since, now).await {
                Ok(()) => e.mailed = true,
                Err(err) => {
                    tracing::warn!(error = %err, "could not queue the stall alarm's mail; retried on the next check")
                }
            }
        }
    }

    /// Queues the admins' mail about the stall that began at `since`, once per episode.
    async fn mail(&self, since: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), StoreError> {
        let seen = self.health.seen();
        let mails = stall::alarm_mails(
            &self.folder,
            &seen.watch,
            since,
            now,
            seen.last_error.as_deref(),
            &self.policy,
        );
        let mut tx = self.store.begin().await?;
        if !tx
            .claim_run(JOB, &stall::episode_key(since, &seen.watch), now)
            .await?
        {
            tx.rollback().await;
            return Ok(());
        }
        let how = Writing {
            policy: &self.policy,
            bounce_suppression: self.bounce_suppression,
            max_attachment_bytes: self.max_attachment_bytes,
            now,
        };
        tx.queue_reports(&mails, &how).await?;
        tx.commit().await?;
        if mails.is_empty() {
            tracing::warn!("stall alarm: helpdesk.admins is empty; nobody is mailed");
        } else {
            tracing::info!(mails = mails.len(), "stall alarm mailed to helpdesk.admins");
            self.outbox_ready.notify_one();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::TimeZone;

    use super::*;
    use crate::clock::FixedClock;
    use crate::desk::tokens::Tokens;

    async fn alarm_on(dir: &std::path::Path, clock: Arc<FixedClock>) -> StallAlarm {
        let store = Store::open(&format!("sqlite://{}", dir.join("folio.db").display()))
            .await
            .unwrap();
        let mut policy = Policy::with_defaults("mesa@example.test", Tokens::new(b"k".to_vec()));
        policy.admins = vec!["jefa@example.test".into(), "ops@example.test".into()];
        let telemetry = Telemetry::on();
        StallAlarm {
            store,
            policy: Arc::new(policy),
            clock,
            health: Health::new(telemetry.clone()),
            telemetry,
            outbox_ready: Arc::new(Notify::new()),
            folder: "INBOX".into(),
            stall_after: Duration::from_secs(15 * 60),
            bounce_suppression: Duration::from_secs(3600),
            max_attachment_bytes: 1024,
        }
    }

    #[tokio::test]
    async fn a_stall_mails_each_admin_once_even_across_a_restart_and_clears_when_mail_moves() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap();
        let clock = Arc::new(FixedClock::new(t0));
        let a = alarm_on(dir.path(), clock.clone()).await;
        a.health.connected();
        a.health.waiting(2, "imap:INBOX:1:5", t0);
        let mut episode = None;
        clock.advance(chrono::Duration::minutes(14));
        a.check(&mut episode).await;
        assert!(episode.is_none());
        assert_eq!(a.store.outbox_health().await.unwrap().depth, 0);

        clock.advance(chrono::Duration::minutes(1));
        a.check(&mut episode).await;
        assert_eq!(a.health.seen().stalled_since, Some(t0));
        assert_eq!(
            a.store.outbox_health().await.unwrap().depth,
            2,
            "one per admin"
        );
        a.check(&mut episode).await;
        // folio restarted during the stall: its new worker sees the same message stuck from
        // a later instant on, and raises the alarm again; the claim (keyed by the stuck
        // message) stops a second mail.
        let later = t0 + chrono::Duration::minutes(20);
        let restarted = alarm_on(dir.path(), Arc::new(FixedClock::new(later))).await;
        restarted
            .health
            .waiting(2, "imap:INBOX:1:5", t0 + chrono::Duration::minutes(5));
        restarted.check(&mut None).await;
        assert!(restarted.health.seen().stalled_since.is_some());
        assert_eq!(
            a.store.outbox_health().await.unwrap().depth,
            2,
            "never twice"
        );
        let text = a.telemetry.render();
        assert!(text.contains("folio_stalled 1\n"), "{text}");

        clock.advance(chrono::Duration::minutes(1));
        a.health.filed(clock.now());
        a.health.fetched(clock.now());
        a.check(&mut episode).await;
        assert!(episode.is_none());
        assert_eq!(a.health.seen().stalled_since, None);
        assert!(a.telemetry.render().contains("folio_stalled 0\n"));
        assert!(a
            .telemetry
            .render()
            .contains("folio_stall_alarms_total 1\n"));
    }

    #[tokio::test]
    async fn a_standby_never_alarms() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap();
        let clock = Arc::new(FixedClock::new(t0));
        let a = alarm_on(dir.path(), clock.clone()).await;
        a.health.set_role(Role::Standby);
        a.health.waiting(2, "imap:INBOX:1:5", t0);
        clock.advance(chrono::Duration::hours(2));
        let mut episode = None;
        a.check(&mut episode).await;
        assert!(episode.is_none());
        assert_eq!(a.store.outbox_health().await.unwrap().depth, 0);
    }
}
