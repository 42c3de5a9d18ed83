//! The sender: delivers the outbox over SMTP.
//!
//! A mail is marked sent only after the server accepted it; a crash in between sends it again
//! with the same Message-ID (at-least-once). Temporary failures retry with exponential backoff
//! (1 s doubling to 5 min); a permanent 5xx refusal marks the mail failed. Results that complete
//! together are recorded in one transaction (group commit).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::clock::Clock;
use crate::config::{SmtpConfig, TlsMode};
use crate::outgoing::{self, Addressing};
use crate::render::Templates;
use crate::shutdown::Shutdown;
use crate::store::{OutboxMail, SendResult, Store, StoreError};

/// A problem setting up SMTP, naming the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("smtp.ca_file: cannot read {path}: {source}")]
    CaFile {
        path: String,
        source: std::io::Error,
    },
    #[error("smtp: {0}")]
    Tls(#[from] lettre::transport::smtp::Error),
}

/// Builds the pooled SMTP transport from the configuration.
pub fn transport(c: &SmtpConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>, SetupError> {
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&c.host)
        .port(c.port)
        .timeout(Some(c.timeout))
        .hello_name(lettre::transport::smtp::extension::ClientId::Domain(
            c.hello_name.clone(),
        ))
        .pool_config(PoolConfig::new().max_size(c.concurrency as u32));
    if c.tls != TlsMode::None {
        let mut params = TlsParameters::builder(c.host.clone());
        if let Some(path) = &c.ca_file {
            let pem = std::fs::read(path).map_err(|source| SetupError::CaFile {
                path: path.display().to_string(),
                source,
            })?;
            params = params.add_root_certificate(Certificate::from_pem(&pem)?);
        }
        let params: TlsParameters = params.build_rustls()?;
        builder = builder.tls(match c.tls {
            TlsMode::Implicit => Tls::Wrapper(params),
            _ => Tls::Required(params),
        });
    }
    if let Some(user) = &c.username {
        builder = builder.credentials(Credentials::new(user.clone(), c.password.0.clone()));
    }
    Ok(builder.build())
}

/// Delivers queued mail.
pub struct Sender {
    pub store: Store,
    pub templates: Arc<Templates>,
    pub transport: AsyncSmtpTransport<Tokio1Executor>,
    pub from_name: String,
    pub from_address: String,
    pub concurrency: usize,
    pub clock: Arc<dyn Clock>,
}

/// Retry delay after `attempts` failed attempts.
pub fn backoff(attempts: i64) -> Duration {
    let secs = 1u64 << attempts.clamp(0, 9);
    Duration::from_secs(secs.min(300))
}

impl Sender {
    /// Runs until shutdown: sends whatever is due, then sleeps until woken or the next retry.
    pub async fn run(self: Arc<Self>, ready: Arc<Notify>, mut shutdown: Shutdown) {
        loop {
            if shutdown.is_triggered() {
                return;
            }
            match self.send_due(Some(&shutdown)).await {
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "outbox: database error; retrying in 5s"),
            }
            let wait = match self.store.next_due().await {
                Ok(Some(t)) => (t - self.clock.now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .clamp(Duration::from_millis(50), Duration::from_secs(60)),
                Ok(None) => Duration::from_secs(60),
                Err(_) => Duration::from_secs(5),
            };
            tokio::select! {
                _ = ready.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.wait() => return,
            }
        }
    }

    /// Sends every mail due now, `concurrency` at a time, until none is due. Returns how many
    /// were accepted. Stops early (leaving mail queued) when shutdown is triggered.
    pub async fn send_due(&self, shutdown: Option<&Shutdown>) -> Result<usize, StoreError> {
        let mut accepted = 0;
        // Mails being sent: id → (recipient, Message-ID), for the log and to skip them when refilling.
        let mut in_flight: HashMap<i64, (String, String)> = HashMap::new();
        let mut tasks: JoinSet<(i64, SendResult)> = JoinSet::new();
        let mut queue: std::collections::VecDeque<OutboxMail> = Default::default();
        let mut exhausted = false;
        let mut failed_round = false;
        loop {
            let stopping = shutdown.is_some_and(|s| s.is_triggered());
            if queue.is_empty() && !exhausted && !stopping {
                let due = self.store.due_mails(self.clock.now(), 256).await?;
                let fresh: Vec<OutboxMail> = due
                    .into_iter()
                    .filter(|m| !in_flight.contains_key(&m.id))
                    .collect();
                exhausted = fresh.is_empty();
                queue.extend(fresh);
            }
            while tasks.len() < self.concurrency && !stopping {
                let Some(mail) = queue.pop_front() else { break };
                in_flight.insert(mail.id, (mail.to.clone(), mail.message_id.clone()));
                let job = self.prepare(&mail);
                let transport = self.transport.clone();
                let now = self.clock.now();
                tasks.spawn(async move {
                    let result = match job {
                        Ok(message) => deliver(&transport, message, mail.attempts, now).await,
                        Err(e) => SendResult::Failed {
                            retry_at: now
                                + chrono::Duration::from_std(backoff(mail.attempts))
                                    .unwrap_or_default(),
                            error: e,
                        },
                    };
                    (mail.id, result)
                });
            }
            let Some(first) = tasks.join_next().await else {
                if queue.is_empty() && (exhausted || stopping) {
                    return Ok(accepted);
                }
                continue;
            };
            let mut results = Vec::new();
            for r in std::iter::once(first).chain(std::iter::from_fn(|| tasks.try_join_next())) {
                match r {
                    Ok(r) => results.push(r),
                    Err(e) => tracing::error!(error = %e, "outbox: send task failed"),
                }
            }
            for (id, r) in &results {
                let (to, message_id) = in_flight.remove(id).unwrap_or_default();
                match r {
                    SendResult::Sent => {
                        accepted += 1;
                        tracing::info!(outbox_id = id, %to, %message_id, "sent");
                    }
                    SendResult::Failed { error, retry_at } => tracing::warn!(
                        outbox_id = id, %to, %message_id, %error, retry_at = %retry_at,
                        "send failed; will retry"
                    ),
                    SendResult::Rejected { error } => tracing::error!(
                        outbox_id = id, %to, %message_id, %error,
                        "refused by the SMTP server; not retried"
                    ),
                }
            }
            self.store
                .record_results(&results, self.clock.now())
                .await?;
            if results
                .iter()
                .any(|(_, r)| matches!(r, SendResult::Failed { .. }))
            {
                // The server is probably down: stop this round; the run loop sleeps until the
                // earliest retry instead of hammering it with the rest of the queue.
                queue.clear();
                exhausted = true;
                failed_round = true;
            } else if !failed_round {
                exhausted = false;
            }
        }
    }

    /// Renders and builds one mail. An error (a broken template, a bad address) leaves it queued.
    fn prepare(&self, m: &OutboxMail) -> Result<lettre::Message, String> {
        let rendered = self
            .templates
            .render(&m.language, &m.template, &m.context)
            .map_err(|e| e.to_string())?;
        let addressing = Addressing {
            from_name: self.from_name.clone(),
            from_address: self.from_address.clone(),
            to: m.to.clone(),
            message_id: m.message_id.clone(),
            in_reply_to: m.in_reply_to.clone(),
            references: m.references.clone(),
            auto_submitted: if m.auto_submitted == "auto-generated" {
                "auto-generated"
            } else {
                "auto-replied"
            },
            date: m.created_at,
        };
        outgoing::build(&addressing, &rendered).map_err(|e| e.to_string())
    }
}

async fn deliver(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    message: lettre::Message,
    attempts: i64,
    now: DateTime<Utc>,
) -> SendResult {
    match transport.send(message).await {
        Ok(_) => SendResult::Sent,
        Err(e) if e.is_permanent() => SendResult::Rejected {
            error: e.to_string(),
        },
        Err(e) => SendResult::Failed {
            error: e.to_string(),
            retry_at: now + chrono::Duration::from_std(backoff(attempts)).unwrap_or_default(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(50), Duration::from_secs(300));
    }
}
