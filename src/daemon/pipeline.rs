//! The pipeline for a batch of raw messages, top to bottom in [`Pipeline::process`]: record the
//! attempts → analyse each message on the blocking pool ([`crate::desk::analysis`], one per core,
//! within a patience and a deadline) → look up what the batch needs and plan it
//! ([`crate::desk::plan`], pure) → write the plan in one transaction
//! ([`crate::store::Batch::write_plan`]) → forget the attempts. Used by the mailbox worker and by
//! `folio ingest`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::futures::Notified;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::config::Config;
use crate::daemon::telemetry::Telemetry;
use crate::desk::analysis::{analyze_checked, oversize_reason, quarantine_reason, Analysis};
use crate::desk::catalog::{Catalog, CatalogError};
use crate::desk::decide::{decide, Context, Decision, TicketAction};
use crate::desk::plan::{Plan, Planner, Step};
use crate::desk::policy::Policy;
use crate::desk::requester::{Directory, DirectoryError};
use crate::desk::tokens::Tokens;
use crate::folio::FolioFormat;
use crate::store::plan::{Original, Writing, Written};
use crate::store::{Store, StoreError};

/// How long a batch waits for a slow analysis before it goes on without it: the slow message is
/// deferred (its analysis goes on, and it is stored when that ends), so one slow mail delays the
/// others' confirmations by at most this.
// 500 ms let a 20 MB poison mail delay its batch-mates past the p99 target of benchmark 6
// (506 ms); at 100 ms a mail of a few MB still goes with its batch.
pub const ANALYSIS_PATIENCE: Duration = Duration::from_millis(100);

/// Attempts at a message's analysis that started and never finished (the process died during
/// them) after which the message is quarantined unread.
pub const MAX_UNFINISHED_ATTEMPTS: u32 = 2;

/// One message as fetched.
#[derive(Debug, Clone)]
pub struct RawMessage {
    /// `imap:<folder>:<uidvalidity>:<uid>` or `stdin:<hash>`.
    pub source: String,
    pub bytes: Vec<u8>,
    /// When folio noticed it (IMAP EXISTS, poll, stdin).
    pub seen_at: DateTime<Utc>,
}

/// What the mailbox side must do with the original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Stored (or a duplicate of something stored): move to the processed folder.
    Processed,
    /// Cannot be processed: move to the quarantine folder.
    Quarantined(String),
    /// Its analysis is slow and goes on in the background: leave it where it is;
    /// [`Pipeline::finish_slow`] returns its real outcome later.
    Deferred,
}

/// The result for one message, for the mailbox side and the log.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub disposition: Disposition,
    pub message_id: Option<String>,
    pub folio: Option<String>,
    pub verdict: String,
    /// The verdict's kind, as `folio_messages_processed_total` labels it: `human`, or the
    /// automatic kind (`auto_reply`, `bounce`, `bulk`, `loop`).
    pub verdict_kind: &'static str,
    /// It opened a ticket.
    pub opened: bool,
    pub decision: &'static str,
    /// A reply was queued.
    pub queued: bool,
}

impl Outcome {
    fn quarantined(reason: String, message_id: Option<String>) -> Outcome {
        Outcome {
            disposition: Disposition::Quarantined(reason),
            message_id,
            folio: None,
            verdict: "unusable".into(),
            verdict_kind: "human",
            opened: false,
            decision: "quarantined",
            queued: false,
        }
    }

    /// The outcome of a planned step, once written.
    fn of(step: &Step, written: Written) -> Outcome {
        let (a, decision) = match step {
            Step::Quarantine(reason) => return Outcome::quarantined(reason.clone(), None),
            Step::Duplicate(a) => (a, "duplicate"),
            Step::Record(a, r) => (a, r.reason.as_str()),
        };
        Outcome {
            disposition: Disposition::Processed,
            message_id: a.mail.message_id.clone(),
            folio: written.folio,
            verdict: a.verdict.reason.clone(),
            verdict_kind: a.verdict.kind.map_or("human", |k| k.as_str()),
            opened: step.new_ticket().is_some(),
            decision,
            queued: written.queued,
        }
    }

    fn deferred() -> Outcome {
        Outcome {
            disposition: Disposition::Deferred,
            message_id: None,
            folio: None,
            verdict: "pending".into(),
            verdict_kind: "human",
            opened: false,
            decision: "deferred",
            queued: false,
        }
    }
}

/// One line in the log per message.
fn log_outcome(source: &str, o: &Outcome, ms: f64) {
    match &o.disposition {
        Disposition::Processed => tracing::info!(
            source = %source,
            message_id = o.message_id.as_deref().unwrap_or("-"),
            folio = o.folio.as_deref().unwrap_or("-"),
            verdict = %o.verdict,
            decision = o.decision,
            ms = format!("{ms:.1}"),
            "processed"
        ),
        Disposition::Quarantined(reason) => tracing::warn!(
            source = %source,
            message_id = o.message_id.as_deref().unwrap_or("-"),
            reason = %reason,
            "quarantined"
        ),
        Disposition::Deferred => tracing::info!(source = %source, "deferred: slow analysis"),
    }
}

/// An analysis running on the blocking pool.
struct Analyzing {
    handle: JoinHandle<Result<Analysis, String>>,
    /// Set when the batch stopped waiting for it: its end must wake the mailbox worker.
    slow: Arc<AtomicBool>,
}

/// Messages of a batch by index, with their unfinished earlier attempts.
type Attempted = Vec<(usize, u32)>;

/// A batch whose analyses run: from [`Pipeline::start`] to [`Pipeline::finish`].
pub struct Started {
    started: std::time::Instant,
    /// Known already: the messages whose analysis still runs from an earlier pass.
    outcomes: Vec<Option<Outcome>>,
    /// The new messages, analysing.
    fresh: Vec<(usize, Analyzing)>,
    /// Messages whose analysis started before and never finished: they go alone.
    suspects: Attempted,
}

/// A message whose analysis outlasted [`ANALYSIS_PATIENCE`].
struct SlowAnalysis {
    raw: RawMessage,
    handle: JoinHandle<Result<Analysis, String>>,
}

/// The result of an analysis task.
fn joined(r: Result<Result<Analysis, String>, tokio::task::JoinError>) -> Result<Analysis, String> {
    r.unwrap_or_else(|e| Err(format!("the analysis of this message failed: {e}")))
}

/// Everything the pipeline needs, built once from the configuration.
pub struct Pipeline {
    store: Store,
    directory: Arc<Directory>,
    policy: Arc<Policy>,
    /// `limits.bounce_suppression`: how long a hard-bouncing address gets no mail.
    bounce_suppression: std::time::Duration,
    clock: Arc<dyn Clock>,
    limits: crate::config::LimitsConfig,
    /// Woken after a commit that queued mail, so the sender starts at once.
    outbox_ready: Arc<Notify>,
    /// Set while the mailbox worker catches up on more than one batch of mail. The sender pauses
    /// meanwhile: on a 2-core machine the SMTP work (and the mail server's delivery of it)
    /// would otherwise take half the CPU from ingest, and the first goal after an outage is that
    /// every waiting message has its ticket; the confirmations follow right after.
    ingest_busy: Arc<AtomicBool>,
    /// How long a batch waits for a slow analysis ([`ANALYSIS_PATIENCE`]).
    patience: Duration,
    /// Analyses that outlasted the patience and go on in the background.
    slow: Mutex<Vec<SlowAnalysis>>,
    /// Woken when one of them ends.
    slow_done: Arc<Notify>,
    /// One permit per core: analyses in parallel, never more than the machine runs at once.
    cores: Arc<Semaphore>,
    /// Where `folio_processing_seconds` is recorded (off unless the daemon serves metrics).
    telemetry: Arc<Telemetry>,
}

/// Holds [`Pipeline::ingest_busy`] set; clears it and wakes the sender when dropped.
pub struct CatchingUp<'a>(&'a Pipeline);

impl Drop for CatchingUp<'_> {
    fn drop(&mut self) {
        self.0.ingest_busy.store(false, Ordering::SeqCst);
        self.0.outbox_ready.notify_one();
    }
}

/// A problem building the pipeline from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("{path}: helpdesk.folio_format: {message}")]
    FolioFormat { path: String, message: String },
}

/// The site policy from the configuration, the catalogue it names, and the token secret.
pub fn policy_of(config: &Config, tokens: Tokens) -> Result<Policy, SetupError> {
    let folio_format = FolioFormat::parse(&config.helpdesk.folio_format).map_err(|message| {
        SetupError::FolioFormat {
            path: config.path.display().to_string(),
            message,
        }
    })?;
    let catalog = match &config.catalog.file {
        Some(f) => Catalog::load(f)?,
        None => Catalog::default(),
    };
    Ok(Policy {
        own_addresses: config.helpdesk.own_addresses.clone(),
        max_auto_replies_per_address: config.limits.max_auto_replies_per_address,
        language: config.templates.language.clone(),
        helpdesk_name: config.helpdesk.name.clone(),
        institution: config.helpdesk.institution.clone(),
        helpdesk_phone: config.helpdesk.phone.clone(),
        helpdesk_address: config.smtp.from_address.clone(),
        catalog: Arc::new(catalog),
        tokens,
        folio_format,
        trusted_authserv_ids: config.security.trusted_authserv_ids.clone(),
        cc_participants: config.tickets.cc_participants,
        own_domains: config.helpdesk.domains.clone(),
        quote_outside_domains: config.helpdesk.quote_outside_domains,
        max_auto_replies_per_domain_per_hour: config.limits.max_auto_replies_per_domain_per_hour,
        max_auto_replies_per_hour: config.limits.max_auto_replies_per_hour,
        max_listed_attachments: config.limits.max_listed_attachments as usize,
        calendar: config.calendar.clone(),
        lifecycle: config.lifecycle.clone(),
        sla: config.sla.clone(),
        admins: config.helpdesk.admins.clone(),
    })
}

/// Loads the directory file named in the configuration, or an empty one.
pub fn directory_of(config: &Config) -> Result<Directory, SetupError> {
    Ok(match &config.directory.file {
        Some(f) => Directory::load(f)?,
        None => Directory::default(),
    })
}

impl Pipeline {
    pub fn new(
        config: &Config,
        store: Store,
        clock: Arc<dyn Clock>,
        tokens: Tokens,
    ) -> Result<Pipeline, SetupError> {
        Ok(Pipeline {
            store,
            directory: Arc::new(directory_of(config)?),
            policy: Arc::new(policy_of(config, tokens)?),
            bounce_suppression: config.limits.bounce_suppression,
            clock,
            limits: config.limits.clone(),
            outbox_ready: Arc::new(Notify::new()),
            ingest_busy: Arc::new(AtomicBool::new(false)),
            patience: ANALYSIS_PATIENCE,
            slow: Mutex::new(Vec::new()),
            slow_done: Arc::new(Notify::new()),
            cores: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
            telemetry: Telemetry::off(),
        })
    }

    /// The same pipeline recording its processing times into `telemetry`.
    pub fn with_telemetry(mut self, telemetry: Arc<Telemetry>) -> Pipeline {
        self.telemetry = telemetry;
        self
    }

    /// The same pipeline waiting `patience` for a batch's slow analyses instead of
    /// [`ANALYSIS_PATIENCE`] (tests: zero defers every analysis, a long one none).
    pub fn with_patience(mut self, patience: Duration) -> Pipeline {
        self.patience = patience;
        self
    }

    /// The site's rules the pipeline decides by (the scheduler decides by them too).
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.clone()
    }

    /// The database the pipeline writes to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Woken after a commit that queued mail: the sender waits on it.
    pub fn outbox_ready(&self) -> Arc<Notify> {
        self.outbox_ready.clone()
    }

    /// Set while ingest catches up on a backlog ([`Pipeline::catching_up`], taken only with
    /// `smtp.during_backlog` = wait): the sender pauses meanwhile.
    pub fn ingest_busy(&self) -> Arc<AtomicBool> {
        self.ingest_busy.clone()
    }

    /// Resolves when a slow analysis has ended (or ended since the last wait): its message is
    /// ready for [`Pipeline::finish_slow`]. Create it before calling `finish_slow`, so an end in
    /// between is not missed.
    pub fn slow_done(&self) -> Notified<'_> {
        self.slow_done.notified()
    }

    /// `limits.max_message_bytes`: a bigger message is quarantined unread.
    pub fn max_message_bytes(&self) -> u64 {
        self.limits.max_message_bytes
    }

    /// Records messages quarantined without reading them (`(source, reason)`), in one transaction.
    pub async fn quarantine_unread(&self, items: &[(String, String)]) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        for (source, reason) in items {
            tx.quarantine(source, reason, b"", now).await?;
            tracing::warn!(source = %source, reason = %reason, "quarantined");
        }
        tx.commit().await
    }

    /// Quarantines a message too big to store (`folio ingest` read only its head): its headers
    /// and size are kept, not its bytes.
    pub async fn quarantine_oversize(
        &self,
        source: &str,
        head: &[u8],
        size: u64,
    ) -> Result<Outcome, StoreError> {
        let reason = oversize_reason(size, &self.limits)
            .unwrap_or_else(|| format!("message of {size} bytes exceeds limits.max_message_bytes"));
        let mut tx = self.store.begin().await?;
        tx.quarantine(source, &reason, head, self.clock.now())
            .await?;
        tx.commit().await?;
        let o = Outcome::quarantined(reason, None);
        log_outcome(source, &o, 0.0);
        Ok(o)
    }

    /// Marks a backlog catch-up until the returned guard is dropped.
    pub fn catching_up(&self) -> CatchingUp<'_> {
        self.ingest_busy.store(true, Ordering::SeqCst);
        CatchingUp(self)
    }

    /// Processes a batch: the analyses run in parallel off the async task (see
    /// [`ANALYSIS_PATIENCE`]), then one transaction stores the results. Returns one outcome
    /// per message, in order; a message whose analysis outlasts the patience is
    /// [`Disposition::Deferred`] and comes back from [`Pipeline::finish_slow`]. An `Err` means
    /// nothing was stored (a database problem): the caller leaves the messages where they are
    /// and retries later. [`Pipeline::start`] then [`Pipeline::finish`], in one go.
    pub async fn process(&self, batch: &[RawMessage]) -> Result<Vec<Outcome>, StoreError> {
        let started = self.start(batch).await?;
        self.finish(batch, started).await
    }

    /// Starts a batch: records the attempts of its new messages and starts their analyses,
    /// which run on while the caller does other work (the mailbox worker stores the batch
    /// before meanwhile). [`Pipeline::finish`] (or [`Pipeline::abandon`]) takes the result
    /// with the same `batch`.
    // Shell: `started` times the work for the log line, on this process's monotonic timer.
    #[allow(clippy::disallowed_methods)]
    pub async fn start(&self, batch: &[RawMessage]) -> Result<Started, StoreError> {
        let started = std::time::Instant::now();
        let mut outcomes: Vec<Option<Outcome>> = vec![None; batch.len()];
        // A message whose analysis still runs in the background (the mailbox was read again
        // after a reconnection) is not started twice.
        let running = self.slow_sources();
        let candidates: Vec<usize> = (0..batch.len())
            .filter(|&i| {
                let slow = running.contains(&batch[i].source);
                if slow {
                    outcomes[i] = Some(Outcome::deferred());
                }
                !slow
            })
            .collect();
        let sources: Vec<&str> = candidates
            .iter()
            .map(|&i| batch[i].source.as_str())
            .collect();
        let earlier = self.store.unfinished_attempts(&sources).await?;
        let (fresh, suspects): (Attempted, Attempted) = candidates
            .into_iter()
            .zip(earlier)
            .partition(|(_, n)| *n == 0);
        // New messages together: one attempt record for all, analyses in parallel, one commit.
        let fresh: Vec<usize> = fresh.into_iter().map(|(i, _)| i).collect();
        let fresh = self.begin_analyses(batch, &fresh).await?;
        Ok(Started {
            started,
            outcomes,
            fresh,
            suspects,
        })
    }

    /// Finishes a batch [`Pipeline::start`]ed with `batch`: waits for its analyses (up to the
    /// patience), stores the results, and returns one outcome per message, as
    /// [`Pipeline::process`] does.
    pub async fn finish(
        &self,
        batch: &[RawMessage],
        started: Started,
    ) -> Result<Vec<Outcome>, StoreError> {
        let Started {
            started,
            mut outcomes,
            fresh,
            suspects,
        } = started;
        let mut done = self.end_analyses(batch, fresh).await?;
        // A message whose analysis was cut short before (the process died during it) goes
        // alone: if it kills the process again, the next start knows which one it was.
        for (i, earlier) in suspects {
            if earlier >= MAX_UNFINISHED_ATTEMPTS {
                let reason = format!(
                    "its analysis started {earlier} times and never finished: the process stopped \
                     during it (crash, kill -9 or out of memory)"
                );
                done.extend(
                    self.store_results(vec![(&batch[i], Err(reason))])
                        .await?
                        .into_iter()
                        .map(|o| (i, o)),
                );
            } else {
                tracing::warn!(source = %batch[i].source, earlier, "retrying alone a message whose analysis never finished");
                let alone = self.begin_analyses(batch, &[i]).await?;
                done.extend(self.end_analyses(batch, alone).await?);
            }
        }
        for (i, o) in done {
            outcomes[i] = Some(o);
        }
        let outcomes: Vec<Outcome> = outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(Outcome::deferred))
            .collect();
        let seconds = started.elapsed().as_secs_f64();
        for (raw, o) in batch.iter().zip(&outcomes) {
            log_outcome(&raw.source, o, seconds * 1000.0);
            // A deferred message's time is not known yet (its analysis goes on).
            if o.disposition != Disposition::Deferred {
                self.telemetry.processing_seconds.record(seconds);
            }
        }
        Ok(outcomes)
    }

    /// Gives up on a batch [`Pipeline::start`]ed with `batch` without storing it (the batch
    /// before failed to store): waits for its analyses as [`Pipeline::finish`] would (up to the
    /// patience) and forgets the attempts of those that ended, so the retry takes those
    /// messages for new ones, not for messages that stopped the process. One still running
    /// keeps its attempt, as if the process had stopped during it.
    pub async fn abandon(&self, batch: &[RawMessage], started: Started) {
        let patience = tokio::time::sleep(self.patience);
        tokio::pin!(patience);
        let mut ended = Vec::with_capacity(started.fresh.len());
        for (i, mut job) in started.fresh {
            tokio::select! {
                biased;
                _ = &mut job.handle => ended.push(batch[i].source.as_str()),
                () = &mut patience => job.handle.abort(),
            }
        }
        if let Err(e) = self.store.end_attempts(&ended).await {
            tracing::warn!(error = %e, "could not clear analysis attempts");
        }
    }

    /// Processes one message, waiting for its analysis however slow (up to
    /// `limits.analysis_deadline`): for `folio ingest`, which has nothing else to do meanwhile.
    pub async fn process_waiting(&self, raw: RawMessage) -> Result<Outcome, StoreError> {
        let mut outcome = self.process(std::slice::from_ref(&raw)).await?.remove(0);
        while outcome.disposition == Disposition::Deferred {
            let wake = self.slow_done();
            if let Some((_, o)) = self.finish_slow().await?.pop() {
                outcome = o;
            } else {
                wake.await;
            }
        }
        Ok(outcome)
    }

    /// Records the attempts of `which` messages of `batch` and starts their analyses, in
    /// parallel.
    async fn begin_analyses(
        &self,
        batch: &[RawMessage],
        which: &[usize],
    ) -> Result<Vec<(usize, Analyzing)>, StoreError> {
        if which.is_empty() {
            return Ok(vec![]);
        }
        let sources: Vec<&str> = which.iter().map(|&i| batch[i].source.as_str()).collect();
        self.store
            .begin_attempts(&sources, self.clock.now())
            .await?;
        Ok(which
            .iter()
            .map(|&i| (i, self.spawn_analysis(&batch[i])))
            .collect())
    }

    /// Waits for the analyses `running` of `batch` and stores those that finished within the
    /// patience; the others are left running in the background.
    async fn end_analyses(
        &self,
        batch: &[RawMessage],
        running: Vec<(usize, Analyzing)>,
    ) -> Result<Vec<(usize, Outcome)>, StoreError> {
        if running.is_empty() {
            return Ok(vec![]);
        }
        // One patience for the whole batch: together the slow ones delay it by at most that.
        let patience = tokio::time::sleep(self.patience);
        tokio::pin!(patience);
        let mut ready = Vec::with_capacity(running.len());
        let mut ready_index = Vec::with_capacity(running.len());
        for (i, mut job) in running {
            let ended = tokio::select! {
                biased;
                r = &mut job.handle => Some(r),
                () = &mut patience => None,
            };
            match ended {
                Some(result) => {
                    ready.push((&batch[i], joined(result)));
                    ready_index.push(i);
                }
                None => {
                    tracing::warn!(source = %batch[i].source, "slow analysis: the batch goes on without it");
                    job.slow.store(true, Ordering::SeqCst);
                    self.slow
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(SlowAnalysis {
                            raw: batch[i].clone(),
                            handle: job.handle,
                        });
                }
            }
        }
        let stored = self.store_results(ready).await?;
        Ok(ready_index.into_iter().zip(stored).collect())
    }

    /// Stores the messages whose slow analysis has ended (or was cut off at
    /// `limits.analysis_deadline`, which quarantines the message). Returns `(source, outcome)`
    /// for each; nothing when none has ended.
    pub async fn finish_slow(&self) -> Result<Vec<(String, Outcome)>, StoreError> {
        let ended: Vec<SlowAnalysis> = {
            let mut slow = self.slow.lock().unwrap_or_else(|p| p.into_inner());
            let (ended, running) = std::mem::take(&mut *slow)
                .into_iter()
                .partition(|s| s.handle.is_finished());
            *slow = running;
            ended
        };
        if ended.is_empty() {
            return Ok(vec![]);
        }
        let mut ended = ended;
        let mut results = Vec::with_capacity(ended.len());
        for s in &mut ended {
            // Already finished: this does not wait.
            results.push(joined((&mut s.handle).await));
        }
        let items = ended.iter().map(|s| &s.raw).zip(results).collect();
        let outcomes = self.store_results(items).await?;
        for (s, o) in ended.iter().zip(&outcomes) {
            log_outcome(&s.raw.source, o, 0.0);
        }
        Ok(ended
            .iter()
            .map(|s| s.raw.source.clone())
            .zip(outcomes)
            .collect())
    }

    /// Whether analyses are still running in the background.
    pub fn has_slow(&self) -> bool {
        !self
            .slow
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    fn slow_sources(&self) -> HashSet<String> {
        self.slow
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|s| s.raw.source.clone())
            .collect()
    }

    /// Starts the analysis of one message on the blocking pool, at most one per core at a time,
    /// cut off at `limits.analysis_deadline` (counted from when it gets a core).
    fn spawn_analysis(&self, raw: &RawMessage) -> Analyzing {
        let bytes = raw.bytes.clone();
        let directory = self.directory.clone();
        let policy = self.policy.clone();
        let limits = self.limits.clone();
        let cores = self.cores.clone();
        let slow = Arc::new(AtomicBool::new(false));
        let (flag, wake) = (slow.clone(), self.slow_done.clone());
        let handle = tokio::spawn(async move {
            let deadline = limits.analysis_deadline;
            // The permit travels with the work and is released only when the thread is done,
            // so an analysis cut off at its deadline still holds its core while it runs on.
            let permit = cores.acquire_owned().await;
            let work = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                analyze_checked(&bytes, &directory, &policy, &limits)
            });
            let result = match tokio::time::timeout(deadline, work).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => Err(format!("the analysis of this message failed: {e}")),
                Err(_) => Err(format!(
                    "its analysis took longer than limits.analysis_deadline ({})",
                    humantime::format_duration(deadline)
                )),
            };
            if flag.load(Ordering::SeqCst) {
                wake.notify_one();
            }
            result
        });
        Analyzing { handle, slow }
    }

    /// Decides and stores analysed messages in one transaction (one by one if the batch
    /// breaks a constraint), then forgets their attempts.
    async fn store_results(
        &self,
        items: Vec<(&RawMessage, Result<Analysis, String>)>,
    ) -> Result<Vec<Outcome>, StoreError> {
        if items.is_empty() {
            return Ok(vec![]);
        }
        let (raws, analyses): (Vec<&RawMessage>, Vec<Result<Analysis, String>>) =
            items.into_iter().unzip();
        let outcomes = match self.store_batch(&raws, &analyses).await {
            Err(e) if e.is_constraint_violation() => {
                // Something in the batch breaks a constraint (it should not happen: decide saw
                // the duplicates). Store the messages one at a time so only that one is
                // quarantined.
                tracing::warn!(error = %e, "a message of the batch breaks a constraint; storing one by one");
                let mut out = Vec::with_capacity(raws.len());
                for (raw, a) in raws.iter().zip(&analyses) {
                    out.extend(self.store_alone(raw, a).await?);
                }
                out
            }
            Err(e) => {
                // The analyses finished: the database failed, not the messages. Their attempts
                // go, so the retry does not take them for messages that kill the process.
                let sources: Vec<&str> = raws.iter().map(|r| r.source.as_str()).collect();
                if let Err(end) = self.store.end_attempts(&sources).await {
                    tracing::warn!(error = %end, "could not clear analysis attempts");
                }
                return Err(e);
            }
            Ok(outcomes) => outcomes,
        };
        if outcomes.iter().any(|o| o.queued) {
            self.outbox_ready.notify_one();
        }
        let sources: Vec<&str> = raws.iter().map(|r| r.source.as_str()).collect();
        if let Err(e) = self.store.end_attempts(&sources).await {
            // The messages are stored; a leftover attempt only makes a rare re-delivery of the
            // same source go alone.
            tracing::warn!(error = %e, "could not clear analysis attempts");
        }
        Ok(outcomes)
    }

    /// One message in its own transaction; quarantined if it breaks a constraint.
    async fn store_alone(
        &self,
        raw: &RawMessage,
        a: &Result<Analysis, String>,
    ) -> Result<Vec<Outcome>, StoreError> {
        match self
            .store_batch(std::slice::from_ref(&raw), std::slice::from_ref(a))
            .await
        {
            Err(e) if e.is_constraint_violation() => {
                let reason = format!("cannot store message: {e}");
                let mut tx = self.store.begin().await?;
                tx.quarantine(&raw.source, &reason, &raw.bytes, self.clock.now())
                    .await?;
                tx.commit().await?;
                let message_id = a.as_ref().ok().and_then(|a| a.mail.message_id.clone());
                Ok(vec![Outcome::quarantined(reason, message_id)])
            }
            r => r,
        }
    }

    /// Looks up what the batch needs, plans every message, and writes the plan, all in one
    /// transaction.
    async fn store_batch(
        &self,
        raws: &[&RawMessage],
        analyses: &[Result<Analysis, String>],
    ) -> Result<Vec<Outcome>, StoreError> {
        let now = self.clock.now();
        let window = chrono::Duration::from_std(self.limits.auto_reply_window)
            .unwrap_or(chrono::Duration::hours(24));
        let planner = Planner::new(analyses, &self.policy);
        let mut tx = self.store.begin().await?;
        let known = tx.lookup(&planner.lookup(now, window)).await?;
        let plan = planner.plan(known);
        log_caps_reached(raws, &plan);
        let originals: Vec<Original> = raws
            .iter()
            .map(|r| Original {
                source: &r.source,
                bytes: &r.bytes,
                seen_at: r.seen_at,
            })
            .collect();
        let how = Writing {
            policy: &self.policy,
            bounce_suppression: self.bounce_suppression,
            max_attachment_bytes: self.limits.max_attachment_bytes,
            now,
        };
        let written = tx.write_plan(&plan, &originals, &how).await?;
        Ok(plan
            .steps
            .iter()
            .zip(written)
            .map(|(step, w)| Outcome::of(step, w))
            .collect())
    }
}

/// A cap reached is an error for the admin (and a ticket event, kept).
fn log_caps_reached(raws: &[&RawMessage], plan: &Plan) {
    for (i, _, r) in plan.records() {
        for e in r
            .events
            .iter()
            .filter(|e| matches!(e.kind, "rate_limited" | "domain_cap" | "global_cap"))
        {
            tracing::error!(source = %raws[i].source, cap = e.kind, "{}", e.detail);
        }
    }
}

/// What `folio inspect --json` prints: what the pipeline extracts and decides, without a database.
pub fn inspect_json(
    a: &Analysis,
    policy: &Policy,
    limits: &crate::config::LimitsConfig,
) -> serde_json::Value {
    let m = &a.mail;
    let decision = match quarantine_reason(a, limits) {
        Some(r) => json!({"action": "quarantine", "reason": r}),
        None => match decide(a, &Context::default(), policy) {
            Decision::Duplicate => json!({"action": "duplicate"}),
            Decision::Record(r) => json!({
                "action": match &r.action {
                    TicketAction::Open(_) => "open",
                    TicketAction::Append { .. } => "append",
                    TicketAction::None => "record",
                },
                "reason": r.reason.as_str(),
                "routing": match &r.action {
                    TicketAction::Open(t) => Some(&t.routing),
                    _ => None,
                },
                "replies": r.replies.iter().map(|x| json!({"template": x.template().name(), "to": x.to})).collect::<Vec<_>>(),
                "note": "assuming no earlier ticket or message matches (inspect reads no database)",
            }),
        },
    };
    json!({
        "from_email": m.from_email,
        "from_name": m.from_name,
        "reply_to": m.reply_to,
        "to": m.to,
        "cc": m.cc,
        "subject": m.subject,
        "date": m.date.map(|d| d.to_rfc3339()),
        "message_id": m.message_id,
        "in_reply_to": m.in_reply_to,
        "references": m.references,
        "body_text": m.body_text,
        "attachments": m.attachments,
        "automatic": a.verdict.is_automatic(),
        "automatic_kind": a.verdict.kind.map(|k| k.as_str()),
        "automatic_reason": if a.verdict.is_automatic() { Some(&a.verdict.reason) } else { None },
        "folio_reference": a.folio_reference,
        "new_content": a.new_content,
        "phone_note": a.phone_note,
        "forwarded_from": a.forward.as_ref().map(|f| &f.requester.email),
        "unparseable": m.unusable_reason().is_some(),
        "requester": a.requester,
        "missing": a.requester.missing(),
        "decision": decision,
    })
}
