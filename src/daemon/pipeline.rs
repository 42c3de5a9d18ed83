//! The pipeline for a batch of raw messages: parse → classify → requester → decide → store, with
//! one transaction per batch. Used by the IMAP loop and by `folio ingest`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};
use serde_json::json;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::config::Config;
use crate::desk::analysis::{analyze_checked, oversize_reason, quarantine_reason, Analysis};
use crate::desk::catalog::{Catalog, CatalogError};
use crate::desk::command::{self, Query};
use crate::desk::decide::{decide, BouncedMail, Context, Decision, TicketAction};
use crate::desk::folio::FolioFormat;
use crate::desk::policy::{cap_key, domain_of, Policy};
use crate::desk::requester::{Directory, DirectoryError};
use crate::desk::routing::Workload;
use crate::desk::ticket::Change;
use crate::desk::tokens::Tokens;
use crate::inbound::mail::InboundMail;
use crate::store::{EventRow, Lookup, MessageRow, OutboxRow, Store, StoreError, TicketRow};

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
    pub decision: &'static str,
    /// A reply was queued.
    pub queued: bool,
}

impl Outcome {
    fn deferred() -> Outcome {
        Outcome {
            disposition: Disposition::Deferred,
            message_id: None,
            folio: None,
            verdict: "pending".into(),
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

/// A message whose analysis outlasted [`ANALYSIS_PATIENCE`].
struct SlowAnalysis {
    raw: RawMessage,
    handle: JoinHandle<Result<Analysis, String>>,
}

/// The result of an analysis task.
fn joined(r: Result<Result<Analysis, String>, tokio::task::JoinError>) -> Result<Analysis, String> {
    r.unwrap_or_else(|e| Err(format!("the analysis of this message failed: {e}")))
}

/// What a batch does with one message, decided before anything is written.
// One plan per message of a batch, held briefly: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
enum Plan<'a> {
    Quarantine(String),
    Store { a: &'a Analysis, decision: Decision },
}

impl Plan<'_> {
    fn new_ticket(&self) -> Option<&crate::desk::decide::NewTicket> {
        match self {
            Plan::Store {
                decision: Decision::Record(r),
                ..
            } => match &r.action {
                TicketAction::Open(t) => Some(t),
                _ => None,
            },
            _ => None,
        }
    }
}

/// The Message-IDs a message answers, nearest first: In-Reply-To, References from the end, and
/// for a delivery report the Message-ID of the bounced mail (so a bounce of a confirmation lands
/// on its ticket).
fn parents(mail: &InboundMail) -> impl Iterator<Item = &String> {
    mail.in_reply_to
        .iter()
        .chain(mail.references.iter().rev())
        .chain(mail.signals.report_original_message_id.iter())
}

/// Everything the pipeline needs, built once from the configuration.
pub struct Pipeline {
    pub store: Store,
    pub directory: Arc<Directory>,
    pub policy: Arc<Policy>,
    /// `limits.bounce_suppression`: how long a hard-bouncing address gets no mail.
    pub bounce_suppression: std::time::Duration,
    pub clock: Arc<dyn Clock>,
    pub limits: crate::config::LimitsConfig,
    /// Woken after a commit that queued mail, so the sender starts at once.
    pub outbox_ready: Arc<Notify>,
    /// Set while the mailbox worker catches up on more than one batch of mail. The sender pauses
    /// meanwhile: on a 2-core machine the SMTP work (and the mail server's delivery of it)
    /// would otherwise take half the CPU from ingest, and the first goal after an outage is that
    /// every waiting message has its ticket; the confirmations follow right after.
    pub ingest_busy: Arc<AtomicBool>,
    /// How long a batch waits for a slow analysis ([`ANALYSIS_PATIENCE`]).
    pub patience: Duration,
    /// Analyses that outlasted the patience and go on in the background.
    slow: Mutex<Vec<SlowAnalysis>>,
    /// Woken when one of them ends.
    pub slow_done: Arc<Notify>,
    /// One permit per core: analyses in parallel, never more than the machine runs at once.
    cores: Arc<Semaphore>,
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
        })
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
        let o = Outcome {
            disposition: Disposition::Quarantined(reason),
            message_id: None,
            folio: None,
            verdict: "unusable".into(),
            decision: "quarantined",
            queued: false,
        };
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
    /// and retries later.
    // Shell: `started` times the work for the log line, on this process's monotonic timer.
    #[allow(clippy::disallowed_methods)]
    pub async fn process(&self, batch: &[RawMessage]) -> Result<Vec<Outcome>, StoreError> {
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
        type Attempted = Vec<(usize, u32)>;
        let (fresh, suspects): (Attempted, Attempted) = candidates
            .into_iter()
            .zip(earlier)
            .partition(|(_, n)| *n == 0);

        // New messages together: one attempt record for all, analyses in parallel, one commit.
        let fresh: Vec<usize> = fresh.into_iter().map(|(i, _)| i).collect();
        let mut done = self.run_attempts(batch, &fresh).await?;
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
                done.extend(self.run_attempts(batch, &[i]).await?);
            }
        }
        for (i, o) in done {
            outcomes[i] = Some(o);
        }
        let outcomes: Vec<Outcome> = outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(Outcome::deferred))
            .collect();
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        for (raw, o) in batch.iter().zip(&outcomes) {
            log_outcome(&raw.source, o, ms);
        }
        Ok(outcomes)
    }

    /// Records the attempts, analyses `which` messages of `batch` in parallel and stores those
    /// that finished within the patience; the others are left running in the background.
    async fn run_attempts(
        &self,
        batch: &[RawMessage],
        which: &[usize],
    ) -> Result<Vec<(usize, Outcome)>, StoreError> {
        if which.is_empty() {
            return Ok(vec![]);
        }
        let sources: Vec<&str> = which.iter().map(|&i| batch[i].source.as_str()).collect();
        self.store
            .begin_attempts(&sources, self.clock.now())
            .await?;
        let running: Vec<Analyzing> = which
            .iter()
            .map(|&i| self.spawn_analysis(&batch[i]))
            .collect();
        // One patience for the whole batch: together the slow ones delay it by at most that.
        let patience = tokio::time::sleep(self.patience);
        tokio::pin!(patience);
        let mut ready = Vec::with_capacity(which.len());
        let mut ready_index = Vec::with_capacity(which.len());
        for (&i, mut job) in which.iter().zip(running) {
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
            r => r?,
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
                Ok(vec![Outcome {
                    disposition: Disposition::Quarantined(reason),
                    message_id: a.as_ref().ok().and_then(|a| a.mail.message_id.clone()),
                    folio: None,
                    verdict: "unusable".into(),
                    decision: "quarantined",
                    queued: false,
                }])
            }
            r => r,
        }
    }

    /// The folio of one of our (verified) Message-IDs this message answers, normalised.
    fn thread_folio(&self, mail: &InboundMail) -> Option<String> {
        parents(mail)
            .find_map(|id| self.policy.tokens.verify_message_id(id))
            .map(|f| {
                self.policy
                    .folio_format
                    .find(&f)
                    .unwrap_or_else(|| f.to_uppercase())
            })
    }

    /// Looks up what the batch needs, decides every message, and writes the results, all in
    /// one transaction.
    async fn store_batch(
        &self,
        raws: &[&RawMessage],
        analyses: &[Result<Analysis, String>],
    ) -> Result<Vec<Outcome>, StoreError> {
        let now = self.clock.now();
        let window = chrono::Duration::from_std(self.limits.auto_reply_window)
            .unwrap_or(chrono::Duration::hours(24));
        let mut tx = self.store.begin().await?;

        let usable: Vec<&Analysis> = analyses.iter().filter_map(|a| a.as_ref().ok()).collect();
        let keys: Vec<String> = usable.iter().map(|a| a.mail.dedup_key()).collect();
        let thread_folios: Vec<Option<String>> = analyses
            .iter()
            .map(|a| a.as_ref().ok().and_then(|a| self.thread_folio(&a.mail)))
            .collect();
        let asks_for_list = |a: &Analysis| {
            command::parse_query(&a.new_content, &a.mail.subject, &self.policy.folio_format)
                == Some(Query::MyTickets)
        };
        let mut known = tx
            .lookup(&Lookup {
                dedup_keys: keys.iter().map(String::as_str).collect(),
                parent_ids: usable
                    .iter()
                    .flat_map(|a| parents(&a.mail))
                    .map(String::as_str)
                    .collect(),
                folios: usable
                    .iter()
                    .filter_map(|a| a.folio_reference.clone())
                    .chain(thread_folios.iter().flatten().cloned())
                    .collect(),
                // Where mail may be queued: the senders and on-behalf requesters (the cap),
                // and the technicians (their notices have a cap too).
                addresses: usable
                    .iter()
                    .flat_map(|a| {
                        std::iter::once(a.requester.email.as_str())
                            .chain(a.mail.from_email.as_deref())
                            .chain(a.forward.iter().map(|f| f.requester.email.as_str()))
                            .chain(a.phone_note.iter().filter_map(|n| n.email.as_deref()))
                    })
                    .chain(
                        self.policy
                            .catalog
                            .technicians
                            .iter()
                            .map(|t| t.email.as_str()),
                    )
                    .collect(),
                // `mis folios` lists the From address's tickets.
                senders: usable
                    .iter()
                    .filter(|a| asks_for_list(a))
                    .filter_map(|a| a.mail.from_email.as_deref())
                    .collect(),
                since: now - window,
                hour_ago: now - chrono::Duration::hours(1),
                now,
            })
            .await?;

        // Decide, in mailbox order; what earlier messages of the batch did counts for later ones.
        let mut seen_keys = HashSet::new();
        let mut recent = std::mem::take(&mut known.recent_mails);
        let mut recent_domains = std::mem::take(&mut known.recent_domains);
        let mut recent_total = known.recent_total;
        let mut workload: Workload = std::mem::take(&mut known.workload);
        let mut cursors: HashMap<String, String> = HashMap::new();
        let mut plans: Vec<Plan> = Vec::with_capacity(analyses.len());
        for (i, a) in analyses.iter().enumerate() {
            let a = match a {
                Err(reason) => {
                    plans.push(Plan::Quarantine(reason.clone()));
                    continue;
                }
                Ok(a) => a,
            };
            let key = a.mail.dedup_key();
            let bounced = a
                .mail
                .signals
                .report_original_message_id
                .as_ref()
                .and_then(|id| known.sent.get(id))
                .map(|s| BouncedMail {
                    outbox_id: s.outbox_id,
                    to: s.to.clone(),
                    ticket: s.ticket_id.and_then(|id| known.ticket_by_id(id)).cloned(),
                });
            let thread_ticket = thread_folios[i]
                .as_ref()
                .and_then(|f| known.tickets.get(f))
                .or_else(|| {
                    parents(&a.mail)
                        .find_map(|id| known.sent.get(id))
                        .and_then(|s| s.ticket_id)
                        .and_then(|id| known.ticket_by_id(id))
                })
                .cloned();
            let decision = {
                let ctx = Context {
                    already_processed: known.dedup_keys.contains(&key) || !seen_keys.insert(key),
                    thread_ticket,
                    referenced_ticket: a
                        .folio_reference
                        .as_ref()
                        .and_then(|f| known.tickets.get(f))
                        .cloned(),
                    bounced,
                    sender_tickets: a
                        .mail
                        .from_email
                        .as_ref()
                        .and_then(|f| known.sender_tickets.get(f))
                        .cloned()
                        .unwrap_or_default(),
                    recent_mails: Some(&recent),
                    recent_domains: Some(&recent_domains),
                    recent_total,
                    failing: Some(&known.failing),
                    workload: Some(&workload),
                };
                decide(a, &ctx, &self.policy)
            };
            if let Decision::Record(r) = &decision {
                for reply in &r.replies {
                    *recent.entry(cap_key(&reply.to)).or_default() += 1;
                    *recent_domains.entry(domain_of(&reply.to)).or_default() += 1;
                    recent_total += 1;
                }
                // A cap reached is an error for the admin (and a ticket event, kept).
                for e in r
                    .events
                    .iter()
                    .filter(|e| matches!(e.kind, "rate_limited" | "domain_cap" | "global_cap"))
                {
                    tracing::error!(source = %raws[i].source, cap = e.kind, "{}", e.detail);
                }
                // A hard bounce counts for the rest of the batch too.
                if let Some(addr) = &r.failing_address {
                    known.failing.insert(addr.clone());
                }
                match &r.action {
                    TicketAction::Open(t) => {
                        if let (Some(tech), Some(service)) = (
                            &t.routing.assignee,
                            self.policy.catalog.service(&t.routing.service),
                        ) {
                            workload.assigned(&service.group, tech);
                            cursors.insert(service.group.clone(), tech.clone());
                        }
                    }
                    // Later messages of the batch see the ticket as changed.
                    TicketAction::Append { folio, changes, .. } => {
                        if let Some(t) = known.tickets.get_mut(folio) {
                            for c in changes {
                                match c {
                                    Change::Status(s) => t.status = *s,
                                    Change::Priority(p) => t.priority = *p,
                                    Change::Service(s) => t.service = s.clone(),
                                    Change::Assignee(a) => t.assignee = Some(a.clone()),
                                }
                            }
                        }
                    }
                    TicketAction::None => {}
                }
            }
            plans.push(Plan::Store { a, decision });
        }

        // Folio numbers for the new tickets, reserved in one statement.
        let opens = plans.iter().filter(|p| p.new_ticket().is_some()).count();
        let mut seq = if opens > 0 {
            tx.allocate_folios(now.year(), opens).await?
        } else {
            0
        };
        let mut folios: Vec<Option<String>> = vec![None; plans.len()];
        let mut ticket_rows = Vec::with_capacity(opens);
        for (i, p) in plans.iter().enumerate() {
            if let Some(t) = p.new_ticket() {
                let folio = self.policy.folio_format.render(now.year(), seq);
                seq += 1;
                folios[i] = Some(folio.clone());
                ticket_rows.push(TicketRow { folio, ticket: t });
            }
        }
        let ticket_ids = tx.insert_tickets(&ticket_rows, now).await?;
        tx.set_cursors(&cursors).await?;

        // Messages, with the ticket each belongs to; the tickets' changes.
        let mut ticket_of: Vec<Option<i64>> = vec![None; plans.len()];
        let mut appended = Vec::new();
        let mut message_rows = Vec::with_capacity(plans.len());
        let mut message_index = vec![None; plans.len()];
        for (i, p) in plans.iter().enumerate() {
            let Plan::Store {
                a,
                decision: Decision::Record(r),
            } = p
            else {
                continue;
            };
            ticket_of[i] = match &r.action {
                TicketAction::Open(_) => {
                    folios[i].as_ref().and_then(|f| ticket_ids.get(f)).copied()
                }
                TicketAction::Append {
                    ticket_id,
                    folio,
                    changes,
                } => {
                    folios[i] = Some(folio.clone());
                    appended.push(*ticket_id);
                    tx.change_ticket(*ticket_id, changes).await?;
                    Some(*ticket_id)
                }
                TicketAction::None => None,
            };
            if let Some(addr) = &r.failing_address {
                let until = now
                    + chrono::Duration::from_std(self.bounce_suppression)
                        .unwrap_or(chrono::Duration::hours(72));
                let error = r
                    .events
                    .iter()
                    .find(|e| e.kind == "bounce")
                    .map_or("bounced", |e| e.detail.as_str());
                tx.mark_failing(addr, until, error, now).await?;
            }
            message_index[i] = Some(message_rows.len());
            message_rows.push(MessageRow {
                ticket_id: ticket_of[i],
                source: &raws[i].source,
                raw: &raws[i].bytes,
                mail: &a.mail,
                new_content: &a.new_content,
                automatic_kind: a.verdict.kind.map(|k| k.as_str()),
                verdict_reason: &a.verdict.reason,
                decision_reason: r.reason.as_str(),
                author_role: r.author.as_str(),
                internal: r.internal,
                seen_at: raws[i].seen_at,
            });
        }
        appended.sort_unstable();
        appended.dedup();
        tx.touch_tickets(&appended, now).await?;
        let row_ids = tx.insert_messages(&message_rows, now).await?;
        let attachments: Vec<(i64, &crate::inbound::mail::Attachment)> = message_rows
            .iter()
            .zip(&row_ids)
            .flat_map(|(m, id)| m.mail.attachments.iter().map(move |a| (*id, a)))
            .collect();
        tx.insert_attachments(&attachments, self.limits.max_attachment_bytes)
            .await?;

        // History, and replies into the outbox.
        let mut events = Vec::new();
        let mut outbox_rows = Vec::new();
        let mut queued = vec![false; plans.len()];
        for (i, p) in plans.iter().enumerate() {
            let Plan::Store {
                a,
                decision: Decision::Record(r),
            } = p
            else {
                continue;
            };
            let actor = a.mail.from_email.clone();
            let message_row = message_index[i].map(|k| row_ids[k]);
            for e in &r.events {
                events.push(EventRow {
                    ticket_id: ticket_of[i],
                    message_row,
                    kind: e.kind,
                    actor: actor.clone(),
                    detail: e.detail.clone(),
                });
            }
            if let TicketAction::Append { changes, .. } = &r.action {
                for c in changes {
                    events.push(EventRow {
                        ticket_id: ticket_of[i],
                        message_row,
                        kind: "changed",
                        actor: actor.clone(),
                        detail: describe_change(c),
                    });
                }
            }
            for reply in &r.replies {
                let nonce = crate::desk::tokens::nonce(now);
                let domain = self.message_id_domain();
                let (message_id, reply_to) = match &folios[i] {
                    Some(folio) => (
                        self.policy.tokens.message_id(folio, &nonce, domain),
                        reply.staff.as_ref().map(|tech| {
                            self.policy.tokens.staff_address(
                                &self.policy.helpdesk_address,
                                folio,
                                tech,
                            )
                        }),
                    ),
                    None => (format!("{nonce}@{domain}"), None),
                };
                let has_files = a.mail.attachments.iter().any(|x| !x.data.is_empty());
                outbox_rows.push(OutboxRow {
                    ticket_id: ticket_of[i],
                    reply,
                    message_id,
                    reply_to,
                    attachments_of: message_row.filter(|_| reply.with_attachments && has_files),
                    context: reply.context_json(folios[i].as_deref()),
                });
                queued[i] = true;
            }
        }
        tx.insert_events(&events, now).await?;
        tx.insert_outbox(&outbox_rows, now).await?;

        for (raw, p) in raws.iter().zip(&plans) {
            if let Plan::Quarantine(reason) = p {
                tx.quarantine(&raw.source, reason, &raw.bytes, now).await?;
            }
        }
        tx.commit().await?;

        Ok(plans
            .iter()
            .enumerate()
            .map(|(i, p)| match p {
                Plan::Quarantine(reason) => Outcome {
                    disposition: Disposition::Quarantined(reason.clone()),
                    message_id: None,
                    folio: None,
                    verdict: "unusable".into(),
                    decision: "quarantined",
                    queued: false,
                },
                Plan::Store { a, decision } => Outcome {
                    disposition: Disposition::Processed,
                    message_id: a.mail.message_id.clone(),
                    folio: folios[i].clone(),
                    verdict: a.verdict.reason.clone(),
                    decision: decision.reason().map_or("duplicate", |r| r.as_str()),
                    queued: queued[i],
                },
            })
            .collect())
    }

    fn message_id_domain(&self) -> &str {
        self.policy
            .helpdesk_address
            .rsplit_once('@')
            .map(|(_, d)| d)
            .unwrap_or("folio.invalid")
    }
}

/// A ticket change as the history shows it.
fn describe_change(c: &Change) -> String {
    match c {
        Change::Status(s) => format!("status → {}", s.as_str()),
        Change::Priority(p) => format!("priority → {}", p.as_str()),
        Change::Service(s) => format!("service → {s}"),
        Change::Assignee(a) => format!("assignee → {a}"),
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
