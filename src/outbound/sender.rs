//! The sender: delivers the outbox over SMTP.
//!
//! A mail is marked sent only after the server accepted it; a crash in between sends it again
//! with the same Message-ID (at-least-once). Temporary failures retry with exponential backoff
//! (1 s doubling to 5 min); a permanent 5xx refusal marks the mail failed. The results that are
//! ready together are recorded in one transaction (group commit) while the other sends go on.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::clock::Clock;
use crate::config::Config;
use crate::desk::notice::{DeliveryFailed, HelpdeskView, Notice, Template};
use crate::desk::tokens::Tokens;
use crate::heartbeat::Heartbeat;
use crate::outbound::outgoing::{self, Addressing};
use crate::outbound::render::Templates;
use crate::outbound::smtp::{SendError, SetupError, SmtpClient};
use crate::shutdown::Shutdown;
use crate::store::{NewMail, OutboxMail, SendResult, Store, StoreError, MAILBOX_LEASE};

/// The longest the sender sleeps without looking at the outbox. `ready` wakes it for mail this
/// process queues; mail queued by another process (the instance holding the mailbox, seen from a
/// standby; a CLI command) is only seen by looking. A standby that slept until the next retry
/// or for a minute sent nothing of a 10,000-mail backlog (docs/benchmarks.md §8b). The look is
/// `Store::next_due`, an index probe when nothing is pending.
pub const OTHERS_POLL: Duration = Duration::from_secs(1);

/// The lease a mailbox holder keeps while it catches up on a backlog with
/// `smtp.during_backlog` = wait: the senders of the other instances start no new sends
/// meanwhile, as the holder's own does (its `pause`).
/// On one machine, or one database server, sending beside the catch-up slowed both: three
/// instances on one machine ingested at a quarter of one's rate and finished the backlog's
/// confirmations later than one instance alone (docs/benchmarks.md §8c).
pub const CATCH_UP_LEASE: &str = "catch-up";

/// Delivers queued mail.
pub struct Sender {
    store: Store,
    templates: Arc<Templates>,
    smtp: Arc<SmtpClient>,
    from_name: String,
    from_address: String,
    concurrency: usize,
    clock: Arc<dyn Clock>,
    /// While set, no new sends start (ingest is catching up; see `Pipeline::ingest_busy`).
    pause: Arc<AtomicBool>,
    /// How long a claimed mail is reserved for this sender: longer than connecting and sending
    /// can take (`send_timeout` and a margin).
    lease: Duration,
    /// The longest one send can take: connecting plus the SMTP conversation (2 × smtp.timeout).
    send_timeout: Duration,
    /// `limits.bounce_suppression`: how long an address the server refused as unknown gets no
    /// mail.
    bounce_suppression: Duration,
    /// `smtp.max_age`: how long after it was queued a mail that keeps failing temporarily is
    /// retried; then it is marked failed and the ticket's assignee told.
    max_age: Duration,
    /// Keys the Message-ID and Reply-To of the notices the sender writes itself.
    tokens: Tokens,
    /// The language of notices to technicians (`templates.language`).
    staff_language: String,
    /// `limits.max_notice_attachment_bytes` and `limits.max_notice_attachments`: what one
    /// technician notice carries of the relayed mail's files (the rest are listed by name).
    max_notice_attachment_bytes: u64,
    max_notice_attachments: usize,
    /// What the daemon's `/metrics` counts of the results.
    counters: SendCounters,
    /// Told before every round of sends and every wait by when the worker will be back (see
    /// [`crate::heartbeat`]).
    heartbeat: Heartbeat,
}

/// The sender's counters for `/metrics` (the daemon's `telemetry` fills them; no-ops unless it
/// serves metrics).
#[derive(Clone)]
pub struct SendCounters {
    /// `folio_mail_sent_total`: accepted by the SMTP server.
    pub sent: metrics::Counter,
    /// `folio_mail_failed_total`: given up on (refused permanently, or past `smtp.max_age`).
    pub failed: metrics::Counter,
    /// `folio_mail_retries_total`: failed temporarily, retried later.
    pub retried: metrics::Counter,
}

impl Default for SendCounters {
    /// Counting nothing.
    fn default() -> Self {
        SendCounters {
            sent: metrics::Counter::noop(),
            failed: metrics::Counter::noop(),
            retried: metrics::Counter::noop(),
        }
    }
}

/// Whether an SMTP refusal says the recipient's address itself is bad (RFC 3463 5.1.1 unknown,
/// 5.1.2 bad domain, 5.1.3 bad syntax, 5.1.6 moved, 5.1.10 null MX), rather than the message, the
/// sender or a policy: only then is the address marked failing.
pub fn refuses_the_address(error: &str) -> bool {
    // Recipient address statuses only: 5.1.7/5.1.8 (and bare 553s) concern the sender, and a
    // misconfigured From must not suppress every recipient.
    static ADDRESS: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\b5\.1\.(?:1|2|3|6|10)\b")
            .unwrap_or_else(|e| unreachable!("static regex: {e}"))
    });
    ADDRESS.is_match(error)
}

/// Retry delay after `attempts` failed attempts.
pub fn backoff(attempts: i64) -> Duration {
    let secs = 1u64 << attempts.clamp(0, 9);
    Duration::from_secs(secs.min(300))
}

impl Sender {
    /// The outbox worker as `config` sets it up (`[smtp]`, `limits.bounce_suppression`, the
    /// notice attachment caps, `templates.language` for technicians' notices), on `store` and
    /// `clock`. `pause` is the pipeline's catching-up flag; `tokens` key the notices the sender
    /// writes itself.
    pub fn new(
        config: &Config,
        store: Store,
        templates: Arc<Templates>,
        clock: Arc<dyn Clock>,
        pause: Arc<AtomicBool>,
        tokens: Tokens,
    ) -> Result<Sender, SetupError> {
        Ok(Sender {
            store,
            templates,
            smtp: Arc::new(SmtpClient::new(&config.smtp)?),
            from_name: config.smtp.from_name.clone(),
            from_address: config.smtp.from_address.clone(),
            concurrency: config.smtp.concurrency,
            clock,
            pause,
            lease: 2 * config.smtp.timeout + Duration::from_secs(5),
            send_timeout: 2 * config.smtp.timeout,
            bounce_suppression: config.limits.bounce_suppression,
            max_age: config.smtp.max_age,
            tokens,
            staff_language: config.templates.language.clone(),
            max_notice_attachment_bytes: config.limits.max_notice_attachment_bytes,
            max_notice_attachments: config.limits.max_notice_attachments,
            counters: SendCounters::default(),
            heartbeat: Heartbeat::new("outbox sender"),
        })
    }

    /// The same sender counting its results into `counters`.
    pub fn with_counters(mut self, counters: SendCounters) -> Sender {
        self.counters = counters;
        self
    }

    /// The outbox worker's heartbeat, for the watchdog.
    pub fn heartbeat(&self) -> &Heartbeat {
        &self.heartbeat
    }

    /// The longest one turn of [`Sender::send_due`]'s loop takes: waiting for a send to end
    /// (bounded by the lease) and recording results, with a minute for the database.
    fn step_limit(&self) -> Duration {
        self.lease * 2 + Duration::from_secs(60)
    }

    /// Logs into SMTP with tokens from `source` (`smtp.auth = "oauth2"`).
    pub fn set_token_source(&self, source: Arc<crate::oauth::TokenSource>) {
        self.smtp.set_token_source(source);
    }

    /// How long a claimed mail is reserved for this sender: a caller that waits for
    /// [`Sender::send_due`] waits this long at most.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Runs until shutdown: sends whatever is due, then sleeps until woken or the next retry.
    pub async fn run(self: Arc<Self>, ready: Arc<Notify>, mut shutdown: Shutdown) {
        self.heartbeat.ready();
        loop {
            if shutdown.is_triggered() {
                self.heartbeat.idle();
                return;
            }
            self.heartbeat.within(self.step_limit());
            let round = if another_catches_up(&self.store, self.clock.now()).await {
                RoundEnd::OtherCatchesUp
            } else {
                match self.send_share(Some(&shutdown)).await {
                    Ok(Some(_)) => RoundEnd::Sent,
                    Ok(None) => RoundEnd::NoShare,
                    Err(e) => {
                        tracing::error!(error = %e, "outbox: database error; retrying");
                        RoundEnd::Sent
                    }
                }
            };
            let paused = self.pause.load(Ordering::SeqCst);
            let next_due = if round == RoundEnd::Sent && !paused {
                Some(self.store.next_due().await)
            } else {
                None
            };
            let wait = wait_after(round, paused, next_due, self.clock.now());
            self.heartbeat.within(wait + Duration::from_secs(60));
            tokio::select! {
                _ = ready.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.wait() => {
                    self.heartbeat.idle();
                    return;
                }
            }
        }
    }

    /// Sends every mail due now, this instance's part of `smtp.concurrency` at a time, until
    /// none is due. Returns how many were accepted. Stops early (leaving mail queued) when
    /// shutdown is triggered.
    ///
    /// Bounds, for crash safety: at most `2 × smtp.concurrency` mails are accepted by the server but
    /// not yet recorded at any time (results waiting for their commit plus sends in flight), so a
    /// `kill -9` resends at most that many; a claimed mail is started only while its lease
    /// outlasts the longest a send can take, so no other process can have claimed it meanwhile.
    pub async fn send_due(&self, shutdown: Option<&Shutdown>) -> Result<usize, StoreError> {
        Ok(self.send_share(shutdown).await?.unwrap_or(0))
    }

    /// [`Sender::send_due`] over this instance's part of `smtp.concurrency`, which is the
    /// budget of connections to the server shared by every live instance (a server may cap
    /// them per mailbox: Microsoft 365 at three). `None` when that part is none (more live
    /// instances than connections).
    async fn send_share(&self, shutdown: Option<&Shutdown>) -> Result<Option<usize>, StoreError> {
        let connections = self
            .store
            .share_of(self.concurrency, MAILBOX_LEASE, self.clock.now())
            .await?;
        self.smtp.keep_idle(connections);
        if connections == 0 {
            return Ok(None);
        }
        let mut round = Round::new(self, shutdown, connections);
        loop {
            self.heartbeat.within(self.step_limit());
            round.claim_ahead();
            round.refill().await;
            if round.tasks.is_empty() {
                if round.claiming.is_some() {
                    // Nothing in flight: the next sends wait for the claim.
                    round.land_claim().await;
                    continue;
                }
                round.record().await?;
                if round.queue.is_empty() || round.halted() {
                    return round.finish().await.map(Some);
                }
                continue;
            }
            // Group commit: record every result that is ready now in one transaction. The
            // sends in flight go on meanwhile, so a slow fsync groups more results, not fewer.
            // (A crash between the server's "250 OK" and this commit resends those mails.)
            // A claim that lands meanwhile ends the wait too, so its mails start at once.
            round.collect_ready().await;
            // Start the next sends before the commit, so no connection waits for it (within the
            // bound: results waiting plus sends in flight stay within 2 × smtp.concurrency).
            round.refill().await;
            // Record once `smtp.concurrency` results are ready (each commit is a round trip to
            // the database), or when nothing else is in flight.
            if round.pending.len() >= round.budget || round.tasks.is_empty() {
                round.record().await?;
            }
        }
    }

    /// Gives claimed but unstarted mails back to the outbox (their lease is cleared), so they
    /// need not wait for it to end.
    async fn release(&self, ids: Vec<i64>) {
        if ids.is_empty() {
            return;
        }
        if let Err(e) = self.store.release_claims(&ids).await {
            // Not fatal: the leases end by themselves.
            tracing::warn!(error = %e, "outbox: could not release unstarted claims");
        }
    }

    /// No new sends: after a temporary failure, while ingest catches up, or on shutdown.
    fn halted(&self, stop_refilling: bool, shutdown: Option<&Shutdown>) -> bool {
        stop_refilling
            || self.pause.load(Ordering::SeqCst)
            || shutdown.is_some_and(|s| s.is_triggered())
    }

    fn spawn_send(
        &self,
        tasks: &mut JoinSet<(i64, Delivery)>,
        in_flight: &mut HashMap<i64, InFlight>,
        mail: OutboxMail,
    ) {
        in_flight.insert(
            mail.id,
            InFlight {
                to: mail.to.clone(),
                message_id: mail.message_id.clone(),
                attempts: mail.attempts,
                queued_at: mail.created_at,
                ticket_id: mail.ticket_id,
                template: mail.template.clone(),
                helpdesk: mail
                    .context
                    .get("helpdesk")
                    .and_then(|h| serde_json::from_value(h.clone()).ok()),
            },
        );
        let addressing = self.addressing(&mail);
        let templates = self.templates.clone();
        let smtp = self.smtp.clone();
        let store = self.store.clone();
        let (max_files, max_bytes) = (
            self.max_notice_attachments,
            self.max_notice_attachment_bytes,
        );
        tasks.spawn(async move {
            let mut context = mail.context.clone();
            // Files go along up to the caps (50,000 empty parts once made a 13.7 MB notice);
            // the template says how many stayed behind (all are listed by name in its context).
            let files = match mail.attachments_of {
                Some(row) => match store.attachments_capped(row, max_files, max_bytes).await {
                    Ok((files, omitted)) => {
                        if let (Some(obj), true) = (context.as_object_mut(), omitted > 0) {
                            obj.insert("attachments_omitted".into(), omitted.into());
                        }
                        files
                    }
                    Err(e) => return (mail.id, Delivery::NotReady(format!("attachments: {e}"))),
                },
                None => vec![],
            };
            // A template error leaves the mail queued (the admin can fix the template).
            let job = templates
                .render(&mail.language, &mail.template, &context)
                .map(|rendered| (addressing, rendered))
                .map_err(|e| Delivery::NotReady(e.to_string()));
            let built = job.and_then(|(addressing, rendered)| {
                outgoing::build(&addressing, &rendered, &files)
                    .map_err(|e| Delivery::Refused(e.to_string()))
            });
            let delivery = match built {
                Ok(message) => match smtp.send(message.envelope(), &message.formatted()).await {
                    Ok(()) => Delivery::Sent,
                    Err(SendError::Permanent(e)) => Delivery::Refused(e),
                    Err(SendError::Temporary(e)) => Delivery::ServerTrouble(e),
                },
                Err(e) => e,
            };
            (mail.id, delivery)
        });
    }

    /// Logs and stores a group of results in one transaction.
    async fn record(
        &self,
        pending: &mut Vec<(i64, SendResult)>,
        in_flight: &mut HashMap<i64, InFlight>,
        accepted: &mut usize,
    ) -> Result<(), StoreError> {
        if pending.is_empty() {
            return Ok(());
        }
        for (id, result) in pending.iter_mut() {
            if let (SendResult::Expired { .. }, Some(f)) = (&result, in_flight.get(id)) {
                *result = self.expiry(f, result).await?;
            }
        }
        self.store.record_results(pending, self.clock.now()).await?;
        for (id, r) in pending.drain(..) {
            let InFlight { to, message_id, .. } = in_flight.remove(&id).unwrap_or_default();
            match r {
                SendResult::Sent => {
                    *accepted += 1;
                    self.counters.sent.increment(1);
                    tracing::info!(outbox_id = id, %to, %message_id, "sent");
                }
                SendResult::Failed { error, retry_at } => {
                    self.counters.retried.increment(1);
                    tracing::warn!(
                        outbox_id = id, %to, %message_id, %error, retry_at = %retry_at,
                        "send failed; will retry"
                    )
                }
                SendResult::Expired { error, notice, .. } => {
                    self.counters.failed.increment(1);
                    tracing::error!(
                        outbox_id = id, %to, %message_id, %error,
                        notice_to = notice.as_ref().map_or("-", |n| n.to.as_str()),
                        "failing temporarily for longer than smtp.max_age; not retried"
                    )
                }
                SendResult::Rejected { error } => {
                    self.counters.failed.increment(1);
                    tracing::error!(
                        outbox_id = id, %to, %message_id, %error,
                        "refused by the SMTP server; not retried"
                    );
                    // An unknown address stays unknown: nothing more goes to it for a while,
                    // as after a bounce report.
                    // Not fatal: the results are stored, and the sends in flight must go on.
                    if refuses_the_address(&error) {
                        let now = self.clock.now();
                        let until = now + to_chrono(self.bounce_suppression);
                        if let Err(e) = self.store.mark_failing(&to, until, &error, now).await {
                            tracing::warn!(error = %e, %to, "could not mark the address failing");
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The full result for a mail that failed temporarily past `smtp.max_age`: the line for
    /// its ticket's history and the notice to the ticket's assignee, unless the mail was to the
    /// assignee (a notice about a notice would only add to the pile the address cannot take).
    async fn expiry(&self, f: &InFlight, result: &SendResult) -> Result<SendResult, StoreError> {
        let error = match result {
            SendResult::Expired { error, .. } => error.clone(),
            other => return Ok(other.clone()),
        };
        let ticket = match f.ticket_id {
            Some(id) => self.store.ticket_by_id(id).await?,
            None => None,
        };
        let event = format!(
            "{} to {} not delivered: temporary failures since {} (smtp.max_age {}); last error: {error}",
            f.template,
            f.to,
            f.queued_at.format("%Y-%m-%d %H:%M UTC"),
            humantime::format_duration(self.max_age),
        );
        let notice = ticket.as_ref().and_then(|t| {
            let assignee = t.assignee.as_deref()?;
            if assignee.eq_ignore_ascii_case(&f.to) {
                return None;
            }
            let domain = self
                .from_address
                .rsplit_once('@')
                .map_or("folio.invalid", |(_, d)| d);
            let nonce = crate::desk::tokens::nonce(self.clock.now());
            Some(NewMail {
                ticket_id: Some(t.id),
                template: Template::DeliveryFailed.name().into(),
                language: self.staff_language.clone(),
                to: assignee.to_string(),
                message_id: self.tokens.message_id(&t.folio, &nonce, domain),
                references: t.opening_message_id.iter().cloned().collect(),
                context: Notice::DeliveryFailed(DeliveryFailed::new(
                    t,
                    &f.to,
                    f.queued_at,
                    &error,
                    f.helpdesk.clone(),
                ))
                .context(None),
                reply_to: Some(
                    self.tokens
                        .staff_address(&self.from_address, &t.folio, assignee),
                ),
            })
        });
        Ok(SendResult::Expired {
            error,
            ticket_id: f.ticket_id,
            event,
            notice: notice.map(Box::new),
        })
    }

    /// The addresses and headers of one mail (it is rendered and built with its files in the
    /// send task); an address lettre cannot use will never work and is refused for good when
    /// built.
    fn addressing(&self, m: &OutboxMail) -> Addressing {
        Addressing {
            from_name: self.from_name.clone(),
            from_address: self.from_address.clone(),
            to: m.to.clone(),
            reply_to: m.reply_to.clone(),
            message_id: m.message_id.clone(),
            in_reply_to: m.in_reply_to.clone(),
            references: m.references.clone(),
            auto_submitted: if m.auto_submitted == "auto-generated" {
                "auto-generated"
            } else {
                "auto-replied"
            },
            date: m.created_at,
        }
    }
}

/// How a sender's turn at the outbox ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RoundEnd {
    /// It sent what was due (or met an error, logged).
    Sent,
    /// Another instance holds [`CATCH_UP_LEASE`]: nothing was claimed.
    OtherCatchesUp,
    /// No connection of `smtp.concurrency` is left for this instance: the others send.
    NoShare,
}

/// How long a standby looks at [`CATCH_UP_LEASE`] again while another instance holds it. The
/// holder lets go of it when its catch-up ends, and every connection of this instance idles
/// until it sees that: looking every [`OTHERS_POLL`] started the standbys' sending 0.4-1.0 s
/// after the holder's in benchmark 8 (docs/benchmarks.md §8f). The look is one lease row.
pub const CATCH_UP_POLL: Duration = Duration::from_millis(100);

/// How long the sender sleeps after a turn (unless woken first): `next_due` is the store's
/// answer for when the next mail is due, read only after a turn that sent (`None` otherwise).
fn wait_after(
    round: RoundEnd,
    paused: bool,
    next_due: Option<Result<Option<DateTime<Utc>>, StoreError>>,
    now: DateTime<Utc>,
) -> Duration {
    match round {
        RoundEnd::OtherCatchesUp => CATCH_UP_POLL,
        RoundEnd::NoShare => OTHERS_POLL,
        // Woken by `ready` when the catch-up ends.
        RoundEnd::Sent if paused => Duration::from_secs(1),
        RoundEnd::Sent => match next_due {
            Some(Ok(Some(t))) => (t - now)
                .to_std()
                .unwrap_or(Duration::ZERO)
                .clamp(Duration::from_millis(50), OTHERS_POLL),
            Some(Ok(None)) | None => OTHERS_POLL,
            Some(Err(_)) => Duration::from_secs(5),
        },
    }
}

/// Whether another instance holds [`CATCH_UP_LEASE`]. A database error counts as no (the
/// claim that follows reports it).
async fn another_catches_up(store: &Store, now: DateTime<Utc>) -> bool {
    match store.held_by_another(CATCH_UP_LEASE, now).await {
        Ok(held) => held,
        Err(e) => {
            tracing::warn!(error = %e, "outbox: could not read the catch-up lease");
            false
        }
    }
}

/// What a claim found.
enum Claimed {
    /// Another instance catches up on a backlog: nothing was claimed.
    HeldBack,
    /// The mails now leased to this sender (none: nothing is due).
    Due(Vec<OutboxMail>),
}

/// A claim running beside the sends ([`Round::claim_ahead`]).
struct Claim {
    /// When it started: its mails may be started until this plus the lease, minus the longest
    /// one send can take.
    started: Instant,
    task: tokio::task::JoinHandle<Result<Claimed, StoreError>>,
}

/// One call of [`Sender::send_due`]: the mail it claimed, the sends in flight and the results
/// waiting for their commit.
struct Round<'s> {
    sender: &'s Sender,
    /// This instance's part of `smtp.concurrency`: the most sends in flight.
    concurrency: usize,
    /// `smtp.concurrency`, the whole budget: how many results are grouped in one commit and
    /// how many mails one claim takes, so an instance with a small part does not pay a commit
    /// per mail. The resend bound stays 2 × `smtp.concurrency` per killed instance.
    budget: usize,
    shutdown: Option<&'s Shutdown>,
    /// Mails accepted by the server and recorded.
    accepted: usize,
    /// Mails being sent, for the log, the retry delay, and to skip them when refilling.
    in_flight: HashMap<i64, InFlight>,
    tasks: JoinSet<(i64, Delivery)>,
    /// Claimed mail not started yet, each with the instant until which it may be started: its
    /// claim's lease minus the longest one send can take. Claims land in order, so the
    /// earliest deadlines are at the front.
    queue: VecDeque<(OutboxMail, Instant)>,
    /// Results waiting for their commit.
    pending: Vec<(i64, SendResult)>,
    /// After a temporary failure the server is probably down: finish what is in flight and let
    /// `run` sleep until the earliest retry instead of trying the rest of the queue.
    stop_refilling: bool,
    /// A database error while claiming: sends in flight are finished and recorded first.
    failure: Option<StoreError>,
    /// Another instance catches up on a backlog ([`CATCH_UP_LEASE`]): no more claims.
    held_back: bool,
    /// The claim in flight, if any.
    claiming: Option<Claim>,
    /// False once a claim found nothing new: the round ends when what it has is sent.
    more_due: bool,
    /// Every mail this round has queued.
    queued: HashSet<i64>,
}

impl<'s> Round<'s> {
    // Shell: the claim budget is measured on this process's monotonic timer, never a date.
    #[allow(clippy::disallowed_methods)]
    fn new(sender: &'s Sender, shutdown: Option<&'s Shutdown>, concurrency: usize) -> Round<'s> {
        Round {
            sender,
            concurrency,
            budget: sender.concurrency.max(concurrency),
            shutdown,
            accepted: 0,
            in_flight: HashMap::new(),
            tasks: JoinSet::new(),
            queue: VecDeque::new(),
            pending: Vec::new(),
            stop_refilling: false,
            failure: None,
            held_back: false,
            claiming: None,
            more_due: true,
            queued: HashSet::new(),
        }
    }

    /// No new sends: after server trouble or a database error, while ingest catches up, or on
    /// shutdown.
    fn halted(&self) -> bool {
        self.sender.halted(
            self.stop_refilling || self.failure.is_some() || self.held_back,
            self.shutdown,
        )
    }

    /// Starts claiming the next due mails once the queue runs low (`2 × concurrency` left), so
    /// the claim's round trips to the database overlap the sends in flight instead of leaving
    /// every connection that ends meanwhile idle (benchmark 2: claims every 64 mails took
    /// 3-8 ms each on a busy PostgreSQL, during which no send started).
    // Shell: the claim's monotonic budget starts here (see `land_claim`).
    #[allow(clippy::disallowed_methods)]
    fn claim_ahead(&mut self) {
        let s = self.sender;
        if self.claiming.is_some()
            || !self.more_due
            || self.halted()
            || self.queue.len() > 2 * self.concurrency
        {
            return;
        }
        // The budget starts before the lease is computed, so it never outlasts it.
        let started = Instant::now();
        let (store, now, lease) = (s.store.clone(), s.clock.now(), s.lease);
        // 16 per connection at a time: a crash strands only what was claimed, until its holder's
        // heartbeat runs out.
        let limit = 16 * self.budget as u32;
        let task = tokio::spawn(async move {
            if another_catches_up(&store, now).await {
                return Ok(Claimed::HeldBack);
            }
            store.claim_due(now, limit, lease).await.map(Claimed::Due)
        });
        self.claiming = Some(Claim { started, task });
    }

    /// Waits for the claim in flight, if any, and queues what it claimed.
    async fn land_claim(&mut self) {
        if let Some(claim) = self.claiming.take() {
            let claimed = claim.task.await;
            self.take_claim(claim.started, claimed);
        }
    }

    /// Queues a landed claim's mails (its budget counted from when it started); a database
    /// error stops the round's claims and sends (those in flight are finished and recorded).
    fn take_claim(
        &mut self,
        started: Instant,
        claimed: Result<Result<Claimed, StoreError>, tokio::task::JoinError>,
    ) {
        let s = self.sender;
        match claimed {
            Ok(Ok(Claimed::Due(due))) => {
                let was_queued = self.queue.len();
                let valid_until = started + s.lease.saturating_sub(s.send_timeout);
                // A claim can return mail this round has queued, is sending or has just sent
                // (a claim that read it before the result's commit): once this instance's
                // heartbeat has run out, or before it is registered, its claims are free to
                // anyone, itself included. A round starts each mail once.
                let queued = &mut self.queued;
                self.queue.extend(
                    due.into_iter()
                        .filter(|m| queued.insert(m.id))
                        .map(|m| (m, valid_until)),
                );
                // Nothing new (nothing due, or only mail this round has): no more claims; the
                // next round takes the rest.
                self.more_due = self.queue.len() > was_queued;
            }
            Ok(Ok(Claimed::HeldBack)) => self.held_back = true,
            Ok(Err(e)) => self.failure = Some(e),
            Err(e) => {
                // Its mails, if any, stay leased until their holder's lease or heartbeat ends.
                tracing::error!(error = %e, "outbox: claim task failed");
                self.more_due = false;
            }
        }
    }

    /// Starts queued mails while there is a free connection, results waiting plus sends in
    /// flight stay within `2 × smtp.concurrency`, and the claims are still safely leased (else they go
    /// back to the outbox).
    // Shell: checks the claim's monotonic budget (see `claim`).
    #[allow(clippy::disallowed_methods)]
    async fn refill(&mut self) {
        if self.halted() {
            return;
        }
        let s = self.sender;
        let now = Instant::now();
        let expired = self
            .queue
            .iter()
            .take_while(|(_, until)| now > *until)
            .count();
        if expired > 0 {
            self.give_back(expired).await;
        }
        while self.tasks.len() < self.concurrency
            && self.tasks.len() + self.pending.len() < 2 * self.budget
        {
            let Some((mail, _)) = self.queue.pop_front() else {
                break;
            };
            s.spawn_send(&mut self.tasks, &mut self.in_flight, mail);
        }
    }

    /// Gives the first `n` queued mails back to the outbox. They were never started, so a
    /// later claim of this round may bring them back and they are sent then. (Dropping them
    /// as repeats left them leased to this instance until the lease ran out: every 5 s of a
    /// long round stranded up to a claim's worth of mail for the lease's length, and the
    /// pinned benchmark's last 150 confirmations took 25 s; docs/benchmarks.md §8f.)
    async fn give_back(&mut self, n: usize) {
        let ids: Vec<i64> = self.queue.drain(..n).map(|(m, _)| m.id).collect();
        for id in &ids {
            self.queued.remove(id);
        }
        self.more_due = true;
        self.sender.release(ids).await;
    }

    /// Waits for one send to end, or for the claim in flight to land, and takes every result
    /// that is ready now.
    async fn collect_ready(&mut self) {
        let first = match self.claiming.as_mut() {
            Some(claim) => tokio::select! {
                ended = self.tasks.join_next() => ended,
                claimed = &mut claim.task => {
                    let started = claim.started;
                    self.claiming = None;
                    self.take_claim(started, claimed);
                    None
                }
            },
            None => self.tasks.join_next().await,
        };
        let mut ended = Vec::new();
        ended.extend(first);
        while let Some(r) = self.tasks.try_join_next() {
            ended.push(r);
        }
        let s = self.sender;
        for r in ended {
            match r {
                Ok((id, delivery)) => {
                    self.stop_refilling |= matches!(delivery, Delivery::ServerTrouble(_));
                    let now = s.clock.now();
                    let (attempts, queued_at) = self
                        .in_flight
                        .get(&id)
                        .map_or((0, now), |f| (f.attempts, f.queued_at));
                    let expired = now - queued_at >= to_chrono(s.max_age);
                    self.pending
                        .push((id, delivery.result(attempts, now, expired)));
                }
                Err(e) => tracing::error!(error = %e, "outbox: send task failed"),
            }
        }
    }

    /// Stores the results waiting, in one transaction.
    async fn record(&mut self) -> Result<(), StoreError> {
        self.sender
            .record(&mut self.pending, &mut self.in_flight, &mut self.accepted)
            .await
    }

    /// Ends the round: every send has ended and its result is recorded.
    async fn finish(mut self) -> Result<usize, StoreError> {
        // A claim still in flight (the round halted meanwhile) lands, so its mails go back too.
        self.land_claim().await;
        // After server trouble the unstarted claims keep their lease: it spaces out the retries
        // while the server is down. Otherwise (shutdown, a pause for ingest) they go back at once.
        if !self.stop_refilling {
            let ids = self.queue.drain(..).map(|(m, _)| m.id).collect();
            self.sender.release(ids).await;
        }
        match self.failure {
            Some(e) => Err(e),
            None => Ok(self.accepted),
        }
    }
}

/// A mail being sent.
#[derive(Default)]
struct InFlight {
    to: String,
    message_id: String,
    attempts: i64,
    queued_at: DateTime<Utc>,
    ticket_id: Option<i64>,
    template: String,
    /// The `helpdesk` of its context, for a notice about it.
    helpdesk: Option<HelpdeskView>,
}

/// How one attempt ended, before it is turned into a stored [`SendResult`].
enum Delivery {
    Sent,
    /// The server refused the mail for good, or it cannot be built: never retried.
    Refused(String),
    /// Connection, timeout or 4xx: the server may be down; retried with backoff.
    ServerTrouble(String),
    /// The mail could not be rendered (template error): retried with backoff.
    NotReady(String),
}

impl Delivery {
    /// The stored result; the retry time counts from when the attempt ended. `expired`: the
    /// mail was queued longer than `smtp.max_age` ago, so server trouble ends its retries (a
    /// template error does not: the admin's fix sends it).
    fn result(self, attempts: i64, now: DateTime<Utc>, expired: bool) -> SendResult {
        let retry_at = now + to_chrono(backoff(attempts));
        match self {
            Delivery::Sent => SendResult::Sent,
            Delivery::Refused(error) => SendResult::Rejected { error },
            Delivery::ServerTrouble(error) if expired => SendResult::Expired {
                error,
                ticket_id: None,
                event: String::new(),
                notice: None,
            },
            Delivery::ServerTrouble(error) | Delivery::NotReady(error) => {
                SendResult::Failed { error, retry_at }
            }
        }
    }
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_address_refusals_mark_the_address() {
        assert!(refuses_the_address(
            "permanent error (550): 5.1.1 <x@y>: Recipient address rejected: User unknown"
        ));
        assert!(!refuses_the_address(
            "permanent error (553): 5.7.1 <hd@x>: Sender address rejected: not owned by user"
        ));
        assert!(!refuses_the_address(
            "permanent error (550): 5.1.8 Bad sender's system address"
        ));
        assert!(!refuses_the_address(
            "permanent error (552): 5.3.4 Message size exceeds limit"
        ));
        assert!(!refuses_the_address(
            "permanent error (550): 5.7.1 Relay access denied"
        ));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(50), Duration::from_secs(300));
    }

    #[test]
    fn a_standby_looks_again_soon_while_another_instance_catches_up() {
        let now = DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z")
            .unwrap()
            .to_utc();
        let due_in = |ms: i64| Some(Ok(Some(now + chrono::Duration::milliseconds(ms))));
        // Every connection of a standby idles until it sees the holder's catch-up end.
        assert_eq!(
            wait_after(RoundEnd::OtherCatchesUp, false, None, now),
            CATCH_UP_POLL
        );
        assert!(CATCH_UP_POLL * 5 <= OTHERS_POLL);
        // Past the connection budget nothing changes fast: instances come and go rarely.
        assert_eq!(wait_after(RoundEnd::NoShare, false, None, now), OTHERS_POLL);
        // After sending: until the next retry, at least 50 ms, at most OTHERS_POLL.
        assert_eq!(
            wait_after(RoundEnd::Sent, false, due_in(300), now),
            Duration::from_millis(300)
        );
        assert_eq!(
            wait_after(RoundEnd::Sent, false, due_in(-5_000), now),
            Duration::from_millis(50)
        );
        assert_eq!(
            wait_after(RoundEnd::Sent, false, due_in(3_600_000), now),
            OTHERS_POLL
        );
        assert_eq!(
            wait_after(RoundEnd::Sent, false, Some(Ok(None)), now),
            OTHERS_POLL
        );
        assert_eq!(
            wait_after(
                RoundEnd::Sent,
                false,
                Some(Err(StoreError::UnknownBackend { url: "x".into() })),
                now
            ),
            Duration::from_secs(5)
        );
        // The holder's own sender, paused for its catch-up, is woken when it ends.
        assert_eq!(
            wait_after(RoundEnd::Sent, true, None, now),
            Duration::from_secs(1)
        );
    }
}
