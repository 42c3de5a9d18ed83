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
use crate::desk::lifecycle;
use crate::desk::policy::Policy;
use crate::shutdown::Shutdown;
use crate::store::plan::Writing;
use crate::store::{Store, StoreError};

/// Due items done per transaction: a sweep over 10,000 due items commits 20 times, and ingest
/// waits at most one chunk for the write lock.
const ITEMS_PER_TRANSACTION: u32 = 500;

/// Why the scheduler could not start.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("schedule.sweep = {expression:?}: {source}")]
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
        }
    }

    /// Does every item due at the clock's now, in transactions of [`ITEMS_PER_TRANSACTION`];
    /// returns how many it did.
    pub async fn sweep(&self) -> Result<usize, StoreError> {
        let mut done = 0;
        loop {
            let now = self.clock.now();
            let mut tx = self.store.begin().await?;
            let items = tx.due_items(now, ITEMS_PER_TRANSACTION).await?;
            if items.is_empty() {
                tx.rollback().await;
                return Ok(done);
            }
            let outcomes: Vec<_> = items
                .iter()
                .map(|item| lifecycle::on_due(item, now, &self.policy))
                .collect();
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
            if items.len() < ITEMS_PER_TRANSACTION as usize {
                return Ok(done);
            }
        }
    }

    /// Starts the cron trigger, then sweeps at once and on every tick of `schedule.sweep`
    /// until `shutdown` (the task this returns).
    pub async fn start(
        self: Arc<Self>,
        mut shutdown: Shutdown,
    ) -> Result<JoinHandle<()>, SchedulerError> {
        let tick = Arc::new(Notify::new());
        let mut cron = self.start_cron(tick.clone()).await?;
        Ok(tokio::spawn(async move {
            loop {
                if let Err(e) = self.sweep().await {
                    tracing::error!(error = %e, "sweep of due work failed; retried on the next tick");
                }
                tokio::select! {
                    _ = tick.notified() => {}
                    _ = shutdown.wait() => break,
                }
            }
            if let Err(e) = cron.shutdown().await {
                tracing::warn!(error = %e, "stopping the cron trigger");
            }
        }))
    }

    /// The cron job that wakes the sweep, evaluated in the calendar's time zone.
    async fn start_cron(&self, tick: Arc<Notify>) -> Result<JobScheduler, SchedulerError> {
        let error = |source| SchedulerError::Cron {
            expression: self.sweep_cron.clone(),
            source,
        };
        let scheduler = JobScheduler::new().await.map_err(error)?;
        let job = Job::new_async_tz(
            self.sweep_cron.as_str(),
            self.policy.calendar.timezone(),
            move |_, _| {
                let tick = tick.clone();
                Box::pin(async move { tick.notify_one() })
            },
        )
        .map_err(error)?;
        scheduler.add(job).await.map_err(error)?;
        scheduler.start().await.map_err(error)?;
        Ok(scheduler)
    }
}
