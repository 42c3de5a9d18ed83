//! Mails to `helpdesk.admins` about folio itself: the OAuth2 token endpoint failing. The token
//! source reports each failure episode once ([`TokenSource::on_episode`]); this task queues
//! the `oauth_failure` notice through the outbox, claimed per episode (`runs` table, kind
//! `oauth2_failure`, keyed by the episode's start), so the mail goes out once even if the
//! queueing is retried.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::daemon::scheduler::Scheduler;
use crate::oauth::{Episode, TokenSource};
use crate::shutdown::Shutdown;

/// How often queueing an alert is tried before it is given up (logged): the database may be
/// busy for a moment, not for minutes.
const ATTEMPTS: u32 = 5;

/// Hooks `source`'s failure episodes: each is logged at error level and its notice queued for
/// the admins, until `shutdown` (the task this returns).
pub fn mail_oauth_failures(
    source: &TokenSource,
    scheduler: Arc<Scheduler>,
    mut shutdown: Shutdown,
) -> JoinHandle<()> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Episode>();
    source.on_episode(Box::new(move |e| {
        tracing::error!(
            token_url = %e.token_url, error = %e.error, token_expires_at = ?e.token_expires_at,
            "OAuth2 failure episode started: the admins are mailed once; logins stop once the current token expires"
        );
        let _ = tx.send(e.clone());
    }));
    tokio::spawn(async move {
        loop {
            let episode = tokio::select! {
                e = rx.recv() => match e { Some(e) => e, None => break },
                _ = shutdown.wait() => break,
            };
            queue(&scheduler, &episode).await;
        }
    })
}

async fn queue(scheduler: &Scheduler, e: &Episode) {
    let key = e.since.to_rfc3339();
    for attempt in 1..=ATTEMPTS {
        let result = scheduler
            .queue_once("oauth2_failure", &key, |policy| {
                crate::desk::alert::oauth_failure(
                    &e.token_url,
                    &e.error,
                    e.since,
                    e.token_expires_at,
                    policy,
                )
            })
            .await;
        match result {
            Ok(0) => {
                tracing::warn!(token_url = %e.token_url, "OAuth2 failure notice: nothing queued (helpdesk.admins is empty, or it was queued already)");
                return;
            }
            Ok(n) => {
                tracing::info!(mails = n, since = %key, "OAuth2 failure notice queued for the admins");
                return;
            }
            Err(err) if attempt < ATTEMPTS => {
                tracing::warn!(error = %err, attempt, "queueing the OAuth2 failure notice failed; retrying");
                tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
            }
            Err(err) => {
                tracing::error!(error = %err, "queueing the OAuth2 failure notice failed; the admins are not mailed");
            }
        }
    }
}
