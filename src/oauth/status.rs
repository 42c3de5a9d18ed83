//! What the token source reports to the rest of the daemon (health, metrics, the admins):
//! the last success, the last error and the failure episode under way. Pure bookkeeping.
//!
//! A failure *episode* starts with the first failed refresh after a success (or at start) and
//! ends with the next success; the admins are told once per episode.

use chrono::{DateTime, Utc};

/// A snapshot of the token source, cheap to clone; see [`super::TokenSource::status`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// `oauth2.token_url` (never a secret).
    pub token_url: String,
    /// When a token was last obtained.
    pub last_success: Option<DateTime<Utc>>,
    /// When the current token expires (`None` before the first).
    pub expires_at: Option<DateTime<Utc>>,
    /// When a request last failed, and why (the server's `error` and `error_description`, or
    /// the transport's error).
    pub last_error: Option<(DateTime<Utc>, String)>,
    /// When the failure episode under way started (`None`: the last request succeeded).
    pub failing_since: Option<DateTime<Utc>>,
    /// Tokens obtained since start (a counter for metrics).
    pub successes: u64,
    /// Failed requests since start (a counter for metrics).
    pub failures: u64,
}

/// What a recorded outcome means for the log and the admins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Nothing new to tell.
    Same,
    /// The first failure of an episode: tell the admins.
    EpisodeStarted,
    /// A success ending an episode that started then.
    Recovered { since: DateTime<Utc> },
}

impl Status {
    /// A source that has asked nothing yet.
    pub fn new(token_url: &str) -> Status {
        Status {
            token_url: token_url.to_string(),
            ..Status::default()
        }
    }

    /// A token was obtained at `now`, valid until `expires_at`.
    pub fn succeeded(&mut self, now: DateTime<Utc>, expires_at: DateTime<Utc>) -> Change {
        self.last_success = Some(now);
        self.expires_at = Some(expires_at);
        self.successes += 1;
        match self.failing_since.take() {
            Some(since) => Change::Recovered { since },
            None => Change::Same,
        }
    }

    /// A request failed at `now` with `error`.
    pub fn failed(&mut self, now: DateTime<Utc>, error: &str) -> Change {
        self.last_error = Some((now, error.to_string()));
        self.failures += 1;
        if self.failing_since.is_some() {
            Change::Same
        } else {
            self.failing_since = Some(now);
            Change::EpisodeStarted
        }
    }

    /// Healthy: no failure episode under way, or one the current token still outlives (a
    /// refresh can fail a few times without anyone losing mail).
    pub fn healthy(&self, now: DateTime<Utc>) -> bool {
        self.failing_since.is_none() || self.expires_at.is_some_and(|e| now < e)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn an_episode_starts_once_and_ends_with_the_next_success() {
        let t = |s| Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, s).unwrap();
        let mut st = Status::new("https://login.example.test/token");
        assert!(st.healthy(t(0)));
        assert_eq!(st.succeeded(t(0), t(20)), Change::Same);
        assert_eq!(st.failed(t(15), "invalid_grant"), Change::EpisodeStarted);
        assert_eq!(st.failed(t(17), "invalid_grant"), Change::Same);
        assert!(st.healthy(t(19)), "the old token still works");
        assert!(!st.healthy(t(20)));
        assert_eq!(st.last_error, Some((t(17), "invalid_grant".into())));
        assert_eq!(
            st.succeeded(t(21), t(41)),
            Change::Recovered { since: t(15) }
        );
        assert!(st.healthy(t(22)));
        assert_eq!(st.failed(t(40), "down"), Change::EpisodeStarted);
        assert_eq!((st.successes, st.failures), (2, 3));
    }
}
