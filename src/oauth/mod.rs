//! OAuth2 for the help desk's mailbox: an access token from `[oauth2]`'s token endpoint,
//! presented over SASL `XOAUTH2` or `OAUTHBEARER` by the IMAP and SMTP logins (Microsoft 365
//! and Google take no passwords there).
//!
//! One [`TokenSource`] serves both logins. It keeps the current token, fetches a new one once
//! three quarters of its lifetime have passed ([`lifetime`]) in a background task
//! ([`TokenSource::run`]) and on demand, keeps a rotated refresh token in memory, and records
//! every outcome in a [`Status`] that health checks and metrics read
//! ([`TokenSource::status`]). The first failure of an episode is logged and handed to the
//! alert hook ([`TokenSource::on_episode`]) once.
//!
//! - [`sasl`]: the SASL messages (pure).
//! - [`lifetime`]: when to refresh and retry (pure).
//! - [`status`]: success/failure bookkeeping and episodes (pure).
//! - [`endpoint`]: the HTTP request to the token endpoint (I/O).

pub mod endpoint;
pub mod lifetime;
pub mod sasl;
pub mod status;

use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::config::{OAuth2Config, SaslMechanism, Secret};
use crate::shutdown::Shutdown;
use endpoint::EndpointError;
use lifetime::Token;
use status::Change;
pub use status::Status;

/// No token to log in with: the endpoint failed and the last token (if any) is spent.
#[derive(Debug, thiserror::Error)]
#[error("no OAuth2 access token: {0}")]
pub struct NoToken(pub String);

/// The first failure of an episode, for the alert hook.
#[derive(Debug, Clone)]
pub struct Episode {
    pub token_url: String,
    pub since: DateTime<Utc>,
    pub error: String,
    /// Until when the last token still works (mail keeps flowing until then).
    pub token_expires_at: Option<DateTime<Utc>>,
}

/// The hook told of each new failure episode (e.g. a mail to `helpdesk.admins`).
pub type EpisodeHook = Box<dyn Fn(&Episode) + Send + Sync>;

/// The current token and what refreshing it needs.
struct Cache {
    token: Option<Token>,
    /// The refresh token in use: the configured one until the server rotates it. Only in
    /// memory: after a restart folio starts again from the configured one.
    refresh_token: Secret,
    /// After a failure: no new request before this.
    retry_at: Option<DateTime<Utc>>,
}

/// The access tokens for the mailbox, shared by the IMAP and SMTP sides.
pub struct TokenSource {
    cfg: OAuth2Config,
    http: endpoint::Http,
    clock: Arc<dyn Clock>,
    /// Held across a request, so concurrent logins wait for one refresh instead of each
    /// asking the endpoint.
    cache: tokio::sync::Mutex<Cache>,
    status: Mutex<Status>,
    hook: OnceLock<EpisodeHook>,
}

impl TokenSource {
    /// A source for `cfg`; asks nothing yet.
    pub fn new(cfg: &OAuth2Config, clock: Arc<dyn Clock>) -> Result<TokenSource, EndpointError> {
        Ok(TokenSource {
            http: endpoint::http_client(cfg)?,
            cache: tokio::sync::Mutex::new(Cache {
                token: None,
                refresh_token: cfg.refresh_token.clone(),
                retry_at: None,
            }),
            status: Mutex::new(Status::new(&cfg.token_url)),
            cfg: cfg.clone(),
            clock,
            hook: OnceLock::new(),
        })
    }

    /// The SASL mechanism the logins use (`oauth2.mechanism`).
    pub fn mechanism(&self) -> SaslMechanism {
        self.cfg.mechanism
    }

    /// What happened so far: for `/healthz` ([`Status::healthy`]) and metrics
    /// (`successes`, `failures` as counters; `failing_since`, `expires_at` as gauges).
    pub fn status(&self) -> Status {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Sets the hook told of each new failure episode (once; later calls are ignored).
    pub fn on_episode(&self, hook: EpisodeHook) {
        let _ = self.hook.set(hook);
    }

    /// A token a server may be given now: the current one, or a new one when it is due (a
    /// failed refresh still returns the current one while it lasts).
    pub async fn token(&self) -> Result<Secret, NoToken> {
        let mut cache = self.cache.lock().await;
        let now = self.clock.now();
        if let Some(t) = &cache.token {
            let waiting = cache.retry_at.is_some_and(|r| now < r);
            if t.usable(now) && (!t.due(now) || waiting) {
                return Ok(t.access.clone());
            }
        }
        if cache.retry_at.is_some_and(|r| now < r) {
            let last = self.status().last_error.map(|(_, e)| e).unwrap_or_default();
            return Err(NoToken(last));
        }
        self.refresh(&mut cache).await
    }

    /// One request to the endpoint, recorded; the token to use afterwards.
    async fn refresh(&self, cache: &mut Cache) -> Result<Secret, NoToken> {
        let result = endpoint::request(&self.cfg, &self.http, &cache.refresh_token).await;
        let now = self.clock.now();
        match result {
            Ok(granted) => {
                let token = Token::new(granted.access, now, granted.lifetime);
                if let Some(rotated) = granted.refresh_token {
                    if rotated.0 != cache.refresh_token.0 {
                        tracing::info!(token_url = %self.cfg.token_url, "OAuth2 refresh token rotated (kept in memory)");
                    }
                    cache.refresh_token = rotated;
                }
                let change = self.with_status(|s| s.succeeded(now, token.expires_at));
                if let Change::Recovered { since } = change {
                    tracing::info!(token_url = %self.cfg.token_url, failing_since = %since, "OAuth2 token endpoint works again");
                }
                tracing::debug!(expires_at = %token.expires_at, refresh_at = %token.refresh_at, "OAuth2 access token obtained");
                let access = token.access.clone();
                cache.token = Some(token);
                cache.retry_at = None;
                Ok(access)
            }
            Err(e) => {
                let error = e.reason().to_string();
                let retry = Token::retry_after(cache.token.as_ref());
                cache.retry_at = Some(now + chrono::Duration::from_std(retry).unwrap_or_default());
                let still = cache.token.as_ref().filter(|t| t.usable(now));
                let expires_at = cache.token.as_ref().map(|t| t.expires_at);
                tracing::error!(
                    token_url = %self.cfg.token_url, error = %error, retry_in = ?retry,
                    token_expires_at = ?expires_at,
                    "OAuth2 token refresh failed"
                );
                if self.with_status(|s| s.failed(now, &error)) == Change::EpisodeStarted {
                    if let Some(hook) = self.hook.get() {
                        hook(&Episode {
                            token_url: self.cfg.token_url.clone(),
                            since: now,
                            error: error.clone(),
                            token_expires_at: expires_at,
                        });
                    }
                }
                match still {
                    Some(t) => Ok(t.access.clone()),
                    None => Err(NoToken(error)),
                }
            }
        }
    }

    fn with_status<T>(&self, f: impl FnOnce(&mut Status) -> T) -> T {
        f(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Refreshes before expiry until `shutdown`: wakes at the refresh time (or the next retry
    /// after a failure), so a failing endpoint is noticed even while no login needs a token.
    pub async fn run(self: Arc<Self>, mut shutdown: Shutdown) {
        loop {
            let _ = self.token().await;
            let wait = {
                let cache = self.cache.lock().await;
                let now = self.clock.now();
                let wake = lifetime::next_wake(cache.token.as_ref(), cache.retry_at, now);
                // Re-checked at least every minute: the clock may jump (suspend, NTP).
                (wake - now)
                    .to_std()
                    .unwrap_or_default()
                    .clamp(std::time::Duration::from_millis(200), lifetime::MAX_RETRY)
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.wait() => break,
            }
        }
    }
}
