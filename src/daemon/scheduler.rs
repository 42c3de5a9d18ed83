//! When folio looks for work that is due: one sweep at start-up (work missed while folio was
//! down), then one on every tick of `schedule.sweep` (tokio-cron-scheduler, in
//! `calendar.timezone`). What is due lives in the database (`store::due`), what to do with it
//! is `desk::lifecycle::on_due`; this file only decides when, and carries the result out.
//!
//! The cron job only wakes the sweep loop; the loop runs one sweep at a time, so a slow sweep
//! never overlaps the next tick (tokio-cron-scheduler has no overlap protection) and ticks that
//! arrive meanwhile fold into one. Times come from the injected clock: a test moves the clock
//! and calls [`Scheduler::sweep`] directly.

use std::sync::Arc;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::clock::Clock;
use crate::config::Config;
use crate::daemon::telemetry::Telemetry;
use crate::desk::lifecycle;
use crate::desk::policy::Policy;
use crate::desk::report::{Period, Report};
use crate::heartbeat::Heartbeat;
use crate::shutdown::Shutdown;
use crate::store::plan::Writing;
use crate::store::{Store, StoreError};

/// Due items done per transaction: a sweep over 10,000 due items commits 20 times, and ingest
/// waits at most one chunk for the write lock.
const ITEMS_PER_TRANSACTION: u32 = 500;

/// The longest one transaction of due work (or one report) takes before the loop beats again:
/// it is database work of milliseconds to seconds, so five minutes means it hangs.
const STEP_LIMIT: std::time::Duration = std::time::Duration::from_secs(300);

/// Why the scheduler could not start.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("schedule: {expression:?}: {source}")]
    Cron {
        expression: String,
        source: tokio_cron_scheduler::JobSchedulerError,
    },
}

/// The sweep over due work, and its trigger.
pub struct Scheduler {
    store: Store,
    policy: Arc<Policy>,
    clock: Arc<dyn Clock>,
    /// Woken after a sweep queued mail: the sender waits on it.
    outbox_ready: Arc<Notify>,
    bounce_suppression: std::time::Duration,
    max_attachment_bytes: u64,
    sweep_cron: String,
    digest_cron: String,
    weekly_cron: String,
    /// `limits.auto_reply_window`: what the per-address cap counts.
    cap_window: std::time::Duration,
    /// `folio_scheduled_items_done_total` (off unless the daemon serves metrics).
    telemetry: Arc<Telemetry>,
    /// Told before every sweep step by when the loop will be back; idle between ticks (see
    /// [`crate::heartbeat`]).
    heartbeat: Heartbeat,
}

impl Scheduler {
    /// The scheduler for `config`, writing to `store` with the pipeline's `policy`.
    pub fn new(
        config: &Config,
        store: Store,
        policy: Arc<Policy>,
        clock: Arc<dyn Clock>,
        outbox_ready: Arc<Notify>,
    ) -> Scheduler {
        Scheduler {
            store,
            policy,
            clock,
            outbox_ready,
            bounce_suppression: config.limits.bounce_suppression,
            max_attachment_bytes: config.limits.max_attachment_bytes,
            sweep_cron: config.schedule.sweep.clone(),
            digest_cron: config.schedule.technician_digest.clone(),
            weekly_cron: config.schedule.weekly_summary.clone(),
            cap_window: config.limits.auto_reply_window,
            telemetry: Telemetry::off(),
            heartbeat: Heartbeat::new("scheduler"),
        }
    }

    /// The same scheduler counting the items it does into `telemetry`.
    pub fn with_telemetry(mut self, telemetry: Arc<Telemetry>) -> Scheduler {
        self.telemetry = telemetry;
        self
    }

    /// The sweep loop's heartbeat, for the watchdog.
    pub fn heartbeat(&self) -> &Heartbeat {
        &self.heartbeat
    }

    /// Does every item due at the clock's now, in transactions of [`ITEMS_PER_TRANSACTION`];
    /// returns how many it did.
    pub async fn sweep(&self) -> Result<usize, StoreError> {
        let mut done = 0;
        loop {
            self.heartbeat.within(STEP_LIMIT);
            let now = self.clock.now();
            let mut tx = self.store.begin().await?;
            let items = tx.due_items(now, ITEMS_PER_TRANSACTION).await?;
            if items.is_empty() {
                tx.rollback().await;
                return Ok(done);
            }
            // Items of one ticket are decided in order, each on the ticket as the ones before
            // it left it (a closing, then its survey, in one sweep).
            let mut items = items;
            let mut fresh: std::collections::HashMap<i64, crate::desk::ticket::TicketRef> =
                std::collections::HashMap::new();
            let mut outcomes = Vec::with_capacity(items.len());
            for item in &mut items {
                if let Some(t) = fresh.get(&item.ticket.id) {
                    item.ticket = t.clone();
                }
                let out = lifecycle::on_due(item, now, &self.policy);
                let mut t = item.ticket.clone();
                lifecycle::apply(&mut t, &out.changes, &out.life, now);
                fresh.insert(t.id, t);
                outcomes.push(out);
            }
            let to: Vec<&str> = outcomes
                .iter()
                .flat_map(|o| o.replies.iter())
                .filter(|r| lifecycle::capped(r.template()))
                .map(|r| r.to.as_str())
                .collect();
            let since = now - chrono::Duration::from_std(self.cap_window).unwrap_or_default();
            let mut recent = tx.recent_mail_counts(&to, since).await?;
            lifecycle::cap(&mut outcomes, &mut recent, &self.policy);
            let how = Writing {
                policy: &self.policy,
                bounce_suppression: self.bounce_suppression,
                max_attachment_bytes: self.max_attachment_bytes,
                now,
            };
            tx.write_due(&items, &outcomes, &how).await?;
            tx.commit().await?;
            for (item, out) in items.iter().zip(&outcomes) {
                tracing::info!(
                    folio = %item.ticket.folio,
                    due = item.kind.as_str(),
                    due_at = %item.due_at,
                    outcome = %out.outcome,
                    "due work done"
                );
            }
            if outcomes.iter().any(|o| !o.replies.is_empty()) {
                self.outbox_ready.notify_one();
            }
            done += items.len();
            self.telemetry
                .scheduled_items_done
                .increment(items.len() as u64);
            if items.len() < ITEMS_PER_TRANSACTION as usize {
                return Ok(done);
            }
        }
    }

    /// Queues the technicians' digests of today, unless they went out already today or
    /// today's `schedule.technician_digest` time has not come yet (at start-up: a digest
    /// missed while folio was down goes out late the same day, never twice). How many.
    pub async fn send_digests(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let Some(period) = today_if_due(&self.digest_cron, now, &self.policy) else {
            return Ok(0);
        };
        if self.store.run_done("technician_digest", &period).await? {
            return Ok(0);
        }
        let open = self.store.open_tickets().await?;
        let digests = crate::desk::digest::digests(&open, now, &self.policy);
        let mut tx = self.store.begin().await?;
        if !tx.claim_run("technician_digest", &period, now).await? {
            tx.rollback().await;
            return Ok(0);
        }
        tx.queue_reports(&digests, &self.writing(now)).await?;
        tx.commit().await?;
        tracing::info!(period = %period, digests = digests.len(), "technicians' digests queued");
        if !digests.is_empty() {
            self.outbox_ready.notify_one();
        }
        Ok(digests.len())
    }

    /// Queues the admins' summary of the seven whole days before this week's
    /// `schedule.weekly_summary` day, unless it went out already (a summary missed while
    /// folio was down goes out when it starts, within the week). How many mails.
    pub async fn send_weekly_summary(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let week = chrono::Duration::days(7);
        let Some(day) =
            last_occurrence(&self.weekly_cron, now, &self.policy).filter(|at| now - *at < week)
        else {
            return Ok(0);
        };
        let calendar = &self.policy.calendar;
        let key = calendar.local_date(day).to_string();
        if self.store.run_done("weekly_summary", &key).await? {
            return Ok(0);
        }
        let Ok(period) = Period::resolve(None, None, day, calendar) else {
            return Ok(0);
        };
        let rows = self.store.report_rows(period.start, period.end).await?;
        let report = Report::build(&rows, &period, &self.policy.catalog, calendar);
        let mails = crate::desk::digest::weekly_summary(&report, &self.policy);
        let mut tx = self.store.begin().await?;
        if !tx.claim_run("weekly_summary", &key, now).await? {
            tx.rollback().await;
            return Ok(0);
        }
        tx.queue_reports(&mails, &self.writing(now)).await?;
        tx.commit().await?;
        tracing::info!(from = %period.from, to = %period.to, mails = mails.len(), "weekly summary queued");
        if !mails.is_empty() {
            self.outbox_ready.notify_one();
        }
        Ok(mails.len())
    }

    /// Queues the mails `build` makes from the policy, once for (`kind`, `key`) ever (claimed
    /// in the same transaction, like the reports): for alerts about folio itself. How many.
    pub async fn queue_once(
        &self,
        kind: &str,
        key: &str,
        build: impl FnOnce(&Policy) -> Vec<crate::desk::decide::Reply>,
    ) -> Result<usize, StoreError> {
        let now = self.clock.now();
        if self.store.run_done(kind, key).await? {
            return Ok(0);
        }
        let mails = build(&self.policy);
        let mut tx = self.store.begin().await?;
        if !tx.claim_run(kind, key, now).await? {
            tx.rollback().await;
            return Ok(0);
        }
        tx.queue_reports(&mails, &self.writing(now)).await?;
        tx.commit().await?;
        if !mails.is_empty() {
            self.outbox_ready.notify_one();
        }
        Ok(mails.len())
    }

    fn writing(&self, now: chrono::DateTime<chrono::Utc>) -> Writing<'_> {
        Writing {
            policy: &self.policy,
            bounce_suppression: self.bounce_suppression,
            max_attachment_bytes: self.max_attachment_bytes,
            now,
        }
    }

    /// Starts the cron triggers, then sweeps (and sends the day's digests if due) at once and
    /// on every tick of `schedule.sweep` (`schedule.technician_digest`) until `shutdown` (the
    /// task this returns).
    pub async fn start(
        self: Arc<Self>,
        mut shutdown: Shutdown,
    ) -> Result<JoinHandle<()>, SchedulerError> {
        let tick = Arc::new(Notify::new());
        let digest_tick = Arc::new(Notify::new());
        let weekly_tick = Arc::new(Notify::new());
        let mut cron = self
            .start_cron(&[
                (&self.sweep_cron, tick.clone()),
                (&self.digest_cron, digest_tick.clone()),
                (&self.weekly_cron, weekly_tick.clone()),
            ])
            .await?;
        Ok(tokio::spawn(async move {
            let (mut digest_due, mut weekly_due) = (true, true);
            self.heartbeat.ready();
            loop {
                if let Err(e) = self.sweep().await {
                    tracing::error!(error = %e, "sweep of due work failed; retried on the next tick");
                }
                self.heartbeat.within(STEP_LIMIT);
                if std::mem::take(&mut digest_due) {
                    if let Err(e) = self.send_digests().await {
                        tracing::error!(error = %e, "technicians' digests failed; retried on the next tick");
                    }
                }
                self.heartbeat.within(STEP_LIMIT);
                if std::mem::take(&mut weekly_due) {
                    if let Err(e) = self.send_weekly_summary().await {
                        tracing::error!(error = %e, "weekly summary failed; retried on the next tick");
                    }
                }
                // Waiting for a tick cannot hang (the cron trigger only wakes this loop).
                self.heartbeat.idle();
                tokio::select! {
                    // Every sweep also looks whether a report's time has come: the cron
                    // crate fixes the zone's UTC offset at start, so after a daylight-saving
                    // change its own tick comes an hour off (the claim keeps it to one run).
                    _ = tick.notified() => (digest_due, weekly_due) = (true, true),
                    _ = digest_tick.notified() => digest_due = true,
                    _ = weekly_tick.notified() => weekly_due = true,
                    _ = shutdown.wait() => break,
                }
            }
            if let Err(e) = cron.shutdown().await {
                tracing::warn!(error = %e, "stopping the cron trigger");
            }
        }))
    }

    /// The cron jobs that wake the loop (each `(expression, what it wakes)`), evaluated in
    /// the calendar's time zone.
    async fn start_cron(
        &self,
        jobs: &[(&String, Arc<Notify>)],
    ) -> Result<JobScheduler, SchedulerError> {
        let error = |expression: &str| {
            let expression = expression.to_string();
            move |source| SchedulerError::Cron { expression, source }
        };
        let scheduler = JobScheduler::new().await.map_err(error(""))?;
        for (expression, wake) in jobs {
            let wake = wake.clone();
            let job = Job::new_async_tz(
                expression.as_str(),
                self.policy.calendar.timezone(),
                move |_, _| {
                    let wake = wake.clone();
                    Box::pin(async move { wake.notify_one() })
                },
            )
            .map_err(error(expression))?;
            scheduler.add(job).await.map_err(error(expression))?;
        }
        scheduler.start().await.map_err(error(""))?;
        Ok(scheduler)
    }
}

/// Today's date (in the calendar's zone) when `expression` had an occurrence today at or
/// before `now`: the period a daily job run now belongs to.
fn today_if_due(
    expression: &str,
    now: chrono::DateTime<chrono::Utc>,
    policy: &Policy,
) -> Option<String> {
    let last = last_occurrence(expression, now, policy)?;
    let calendar = &policy.calendar;
    (calendar.local_date(last) == calendar.local_date(now))
        .then(|| calendar.local_date(now).to_string())
}

/// The last occurrence of `expression` at or before `now`, in the calendar's zone.
fn last_occurrence(
    expression: &str,
    now: chrono::DateTime<chrono::Utc>,
    policy: &Policy,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let cron = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(expression)
        .ok()?;
    let local = now.with_timezone(&policy.calendar.timezone());
    let last = cron.find_previous_occurrence(&local, true).ok()?;
    Some(last.with_timezone(&chrono::Utc))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::desk::tokens::Tokens;

    #[test]
    fn a_daily_job_is_due_from_its_time_until_the_end_of_that_local_day() {
        let p = Policy::with_defaults("helpdesk@example.test", Tokens::new(b"t".to_vec()));
        let weekdays_at_8 = "0 0 8 * * Mon-Fri";
        // Mexico City is UTC-6: Monday 7 December 2026.
        let at = |h: u32, m: u32| Utc.with_ymd_and_hms(2026, 12, 7, h, m, 0).unwrap();
        assert_eq!(today_if_due(weekdays_at_8, at(13, 59), &p), None, "07:59");
        assert_eq!(
            today_if_due(weekdays_at_8, at(14, 0), &p).as_deref(),
            Some("2026-12-07")
        );
        assert_eq!(
            today_if_due(weekdays_at_8, at(23, 0), &p).as_deref(),
            Some("2026-12-07"),
            "started late the same day: still today's"
        );
        // Weekly: the last occurrence, a week back at most.
        let mondays_at_9 = "0 0 9 * * Mon";
        let thursday = Utc.with_ymd_and_hms(2026, 12, 10, 18, 0, 0).unwrap();
        assert_eq!(
            last_occurrence(mondays_at_9, thursday, &p),
            Some(Utc.with_ymd_and_hms(2026, 12, 7, 15, 0, 0).unwrap())
        );
        // Sunday: no occurrence that day.
        let sunday = Utc.with_ymd_and_hms(2026, 12, 6, 18, 0, 0).unwrap();
        assert_eq!(today_if_due(weekdays_at_8, sunday, &p), None);
    }
}
