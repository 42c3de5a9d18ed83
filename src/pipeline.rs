//! The pipeline for a batch of raw messages: parse → classify → requester → decide → store, with
//! one transaction per batch. Used by the IMAP loop and by `folio ingest`.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::Notify;

use crate::classify::{classify, Verdict};
use crate::clock::Clock;
use crate::config::Config;
use crate::decide::{decide, Context, Decision, Policy};
use crate::folio::FolioFormat;
use crate::mail::{self, InboundMail};
use crate::requester::{requester_of, Directory, DirectoryError, Requester};
use crate::store::{Inbound, Store, StoreError};

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
}

/// The result for one message, for the mailbox side and the log.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub disposition: Disposition,
    pub message_id: Option<String>,
    pub folio: Option<String>,
    pub verdict: String,
    pub decision: &'static str,
}

/// What the pure part of the pipeline makes of one message.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub mail: InboundMail,
    pub verdict: Verdict,
    pub requester: Requester,
    pub folio_reference: Option<String>,
}

/// Everything the pipeline needs, built once from the configuration.
pub struct Pipeline {
    pub store: Store,
    pub directory: Directory,
    pub folio_format: FolioFormat,
    pub policy: Policy,
    pub clock: Arc<dyn Clock>,
    pub limits: crate::config::LimitsConfig,
    /// Woken after a commit that queued mail, so the sender starts at once.
    pub outbox_ready: Arc<Notify>,
}

/// A problem building the pipeline from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error("{path}: helpdesk.folio_format: {message}")]
    FolioFormat { path: String, message: String },
}

/// The site policy and folio format from the configuration.
pub fn policy_of(config: &Config) -> Result<(Policy, FolioFormat), SetupError> {
    let folio_format = FolioFormat::parse(&config.helpdesk.folio_format).map_err(|message| {
        SetupError::FolioFormat {
            path: config.path.display().to_string(),
            message,
        }
    })?;
    let policy = Policy {
        own_addresses: config.helpdesk.own_addresses.clone(),
        max_auto_replies_per_address: config.limits.max_auto_replies_per_address,
        language: config.templates.language.clone(),
        helpdesk_name: config.helpdesk.name.clone(),
        institution: config.helpdesk.institution.clone(),
        helpdesk_phone: config.helpdesk.phone.clone(),
        helpdesk_address: config.smtp.from_address.clone(),
    };
    Ok((policy, folio_format))
}

/// Loads the directory file named in the configuration, or an empty one.
pub fn directory_of(config: &Config) -> Result<Directory, SetupError> {
    Ok(match &config.directory.file {
        Some(f) => Directory::load(f)?,
        None => Directory::default(),
    })
}

/// The pure analysis of one message. A parser panic on hostile input is caught and reported.
pub fn analyze(
    raw: &[u8],
    directory: &Directory,
    folio_format: &FolioFormat,
    policy: &Policy,
    max_attachment_bytes: u64,
) -> Result<Analysis, String> {
    let mail = std::panic::catch_unwind(|| mail::parse(raw, max_attachment_bytes))
        .map_err(|_| "the MIME parser failed on this message".to_string())?;
    let verdict = classify(&mail, &policy.own_addresses);
    let requester = requester_of(&mail, directory);
    let folio_reference = folio_format
        .find(&mail.subject)
        .or_else(|| folio_format.find(&mail.body_text));
    Ok(Analysis {
        mail,
        verdict,
        requester,
        folio_reference,
    })
}

impl Pipeline {
    pub fn new(
        config: &Config,
        store: Store,
        clock: Arc<dyn Clock>,
    ) -> Result<Pipeline, SetupError> {
        let (policy, folio_format) = policy_of(config)?;
        Ok(Pipeline {
            store,
            directory: directory_of(config)?,
            folio_format,
            policy,
            clock,
            limits: config.limits.clone(),
            outbox_ready: Arc::new(Notify::new()),
        })
    }

    /// Processes a batch in one transaction. An `Err` means nothing was stored (a database
    /// problem): the caller leaves the messages where they are and retries later.
    pub async fn process(&self, batch: &[RawMessage]) -> Result<Vec<Outcome>, StoreError> {
        let started = Instant::now();
        let analyses: Vec<Result<Analysis, String>> = batch
            .iter()
            .map(|m| {
                if m.bytes.len() as u64 > self.limits.max_message_bytes {
                    return Err(format!(
                        "message of {} bytes exceeds limits.max_message_bytes ({})",
                        m.bytes.len(),
                        self.limits.max_message_bytes
                    ));
                }
                let a = analyze(
                    &m.bytes,
                    &self.directory,
                    &self.folio_format,
                    &self.policy,
                    self.limits.max_attachment_bytes,
                )?;
                match a.mail.unusable_reason() {
                    Some(reason) => Err(reason.to_string()),
                    None => Ok(a),
                }
            })
            .collect();

        let mut tx = self.store.begin().await?;
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut queued = 0;
        for (raw, analysis) in batch.iter().zip(analyses) {
            let now = self.clock.now();
            let outcome = match analysis {
                Err(reason) => {
                    tx.quarantine(&raw.source, &reason, &raw.bytes, now).await?;
                    Outcome {
                        disposition: Disposition::Quarantined(reason),
                        message_id: None,
                        folio: None,
                        verdict: "unusable".into(),
                        decision: "quarantined",
                    }
                }
                Ok(a) => {
                    tx.savepoint().await?;
                    match self.store_one(&mut tx, raw, &a, now).await {
                        Ok((outcome, n)) => {
                            tx.release().await?;
                            queued += n;
                            outcome
                        }
                        // Only a constraint violation is the message's fault; anything else
                        // (disk full, I/O) aborts the batch so it is retried whole.
                        Err(StoreError::Sql(sqlx::Error::Database(e)))
                            if !matches!(e.kind(), sqlx::error::ErrorKind::Other) =>
                        {
                            tx.rollback_to_savepoint().await?;
                            let reason = format!("cannot store message: {e}");
                            tx.quarantine(&raw.source, &reason, &raw.bytes, now).await?;
                            Outcome {
                                disposition: Disposition::Quarantined(reason),
                                message_id: a.mail.message_id.clone(),
                                folio: None,
                                verdict: a.verdict.reason.clone(),
                                decision: "quarantined",
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
            };
            outcomes.push(outcome);
        }
        tx.commit().await?;
        if queued > 0 {
            self.outbox_ready.notify_one();
        }
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        for (raw, o) in batch.iter().zip(&outcomes) {
            match &o.disposition {
                Disposition::Processed => tracing::info!(
                    source = %raw.source,
                    message_id = o.message_id.as_deref().unwrap_or("-"),
                    folio = o.folio.as_deref().unwrap_or("-"),
                    verdict = %o.verdict,
                    decision = o.decision,
                    ms = format!("{ms:.1}"),
                    "processed"
                ),
                Disposition::Quarantined(reason) => tracing::warn!(
                    source = %raw.source,
                    message_id = o.message_id.as_deref().unwrap_or("-"),
                    reason = %reason,
                    "quarantined"
                ),
            }
        }
        Ok(outcomes)
    }

    async fn store_one(
        &self,
        tx: &mut crate::store::Batch,
        raw: &RawMessage,
        a: &Analysis,
        now: DateTime<Utc>,
    ) -> Result<(Outcome, u32), StoreError> {
        let window_start = now
            - chrono::Duration::from_std(self.limits.auto_reply_window)
                .unwrap_or(chrono::Duration::hours(24));
        let ctx = tx
            .context(
                &a.mail,
                a.folio_reference.as_deref(),
                Some(&a.requester.email),
                window_start,
            )
            .await?;
        let decision = decide(
            &a.mail,
            &a.verdict,
            &a.requester,
            a.folio_reference.as_deref(),
            &ctx,
            &self.policy,
        );
        let applied = tx
            .store_message(
                &Inbound {
                    source: &raw.source,
                    raw: &raw.bytes,
                    mail: &a.mail,
                    automatic_kind: a.verdict.kind.map(|k| k.as_str()),
                    verdict_reason: &a.verdict.reason,
                    seen_at: raw.seen_at,
                },
                &decision,
                &self.folio_format,
                self.message_id_domain(),
                self.limits.max_attachment_bytes,
                now,
            )
            .await?;
        let decision_name = match &decision {
            Decision::Duplicate => "duplicate",
            Decision::Record { reason, .. } => reason.as_str(),
        };
        Ok((
            Outcome {
                disposition: Disposition::Processed,
                message_id: a.mail.message_id.clone(),
                folio: applied.folio,
                verdict: a.verdict.reason.clone(),
                decision: decision_name,
            },
            applied.queued_mails,
        ))
    }

    fn message_id_domain(&self) -> &str {
        self.policy
            .helpdesk_address
            .rsplit_once('@')
            .map(|(_, d)| d)
            .unwrap_or("folio.invalid")
    }
}

/// What `folio inspect --json` prints: what the pipeline extracts and decides, without a database.
pub fn inspect_json(a: &Analysis, policy: &Policy) -> serde_json::Value {
    let m = &a.mail;
    let decision = match m.unusable_reason() {
        Some(r) => json!({"action": "quarantine", "reason": r}),
        None => match decide(
            m,
            &a.verdict,
            &a.requester,
            a.folio_reference.as_deref(),
            &Context::default(),
            policy,
        ) {
            Decision::Duplicate => json!({"action": "duplicate"}),
            Decision::Record { reply, reason, .. } => json!({
                "action": "record",
                "reason": reason.as_str(),
                "reply_to": reply.as_ref().map(|r| r.to.clone()),
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
        "unparseable": m.unusable_reason().is_some(),
        "requester": a.requester,
        "missing": a.requester.missing(),
        "decision": decision,
    })
}
