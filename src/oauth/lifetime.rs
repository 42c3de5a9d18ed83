//! When a token is used, refreshed and retried. Pure: instants in, instants out.
//!
//! A token is refreshed once three quarters of its lifetime have passed, so a failing token
//! endpoint is noticed (and the admins told) while the current token still works for a quarter
//! of its life: an hour-long token leaves 15 minutes of retries, and the failure notice itself
//! can still be sent over SMTP with it.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::Secret;

/// Assumed when the token endpoint does not say `expires_in` (RFC 6749 only recommends it;
/// Microsoft and Google always send it).
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// The longest wait between attempts after a failure.
pub const MAX_RETRY: Duration = Duration::from_secs(60);

/// An access token and the instants that matter for it.
#[derive(Debug, Clone)]
pub struct Token {
    pub access: Secret,
    pub issued_at: DateTime<Utc>,
    /// When the endpoint says it expires.
    pub expires_at: DateTime<Utc>,
    /// From here on a new token is fetched.
    pub refresh_at: DateTime<Utc>,
    /// Past this it is not offered to a server any more (a margin before `expires_at`, so a
    /// login never races the expiry).
    pub usable_until: DateTime<Utc>,
}

impl Token {
    /// A token received at `now`, valid for `lifetime` (`None`: [`DEFAULT_LIFETIME`]).
    pub fn new(access: Secret, now: DateTime<Utc>, lifetime: Option<Duration>) -> Token {
        let lifetime = lifetime.unwrap_or(DEFAULT_LIFETIME);
        let life = chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::hours(1));
        let margin = (life / 10).min(chrono::Duration::seconds(30));
        Token {
            access,
            issued_at: now,
            expires_at: now + life,
            refresh_at: now + life * 3 / 4,
            usable_until: now + life - margin,
        }
    }

    /// Whether a server may still be given this token at `now`.
    pub fn usable(&self, now: DateTime<Utc>) -> bool {
        now < self.usable_until
    }

    /// Whether it is time to fetch its successor.
    pub fn due(&self, now: DateTime<Utc>) -> bool {
        now >= self.refresh_at
    }

    /// How long to wait before trying again after a failed refresh: a tenth of the token's
    /// lifetime, between 1 s and [`MAX_RETRY`] (several tries fit in the quarter left).
    pub fn retry_after(lifetime: Option<&Token>) -> Duration {
        let life = lifetime
            .and_then(|t| (t.expires_at - t.issued_at).to_std().ok())
            .unwrap_or(DEFAULT_LIFETIME);
        (life / 10).clamp(Duration::from_secs(1), MAX_RETRY)
    }
}

/// When the refresher should look again: at the token's refresh time, or at the next retry
/// after a failure, whichever comes first; at once with neither.
pub fn next_wake(
    token: Option<&Token>,
    retry_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    match (token.map(|t| t.refresh_at), retry_at) {
        (Some(r), Some(a)) => r.max(a),
        (Some(r), None) => r,
        (None, Some(a)) => a,
        (None, None) => now,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 5, 6, 7, 0, 0).unwrap()
    }

    #[test]
    fn an_hour_token_is_refreshed_at_45_minutes_and_used_until_30_s_before_expiry() {
        let t = Token::new(Secret("a".into()), t0(), Some(Duration::from_secs(3600)));
        assert_eq!(t.refresh_at, t0() + chrono::Duration::minutes(45));
        assert_eq!(t.usable_until, t0() + chrono::Duration::seconds(3570));
        assert!(!t.due(t0() + chrono::Duration::minutes(44)));
        assert!(t.due(t0() + chrono::Duration::minutes(45)));
        assert!(t.usable(t0() + chrono::Duration::seconds(3569)));
        assert!(!t.usable(t0() + chrono::Duration::seconds(3570)));
        assert_eq!(Token::retry_after(Some(&t)), MAX_RETRY);
    }

    #[test]
    fn a_short_token_keeps_a_tenth_as_margin_and_retries_within_its_life() {
        let t = Token::new(Secret("a".into()), t0(), Some(Duration::from_secs(20)));
        assert_eq!(t.refresh_at, t0() + chrono::Duration::seconds(15));
        assert_eq!(t.usable_until, t0() + chrono::Duration::seconds(18));
        assert_eq!(Token::retry_after(Some(&t)), Duration::from_secs(2));
        let tiny = Token::new(Secret("a".into()), t0(), Some(Duration::from_secs(4)));
        assert_eq!(Token::retry_after(Some(&tiny)), Duration::from_secs(1));
    }

    #[test]
    fn no_expires_in_means_an_hour() {
        let t = Token::new(Secret("a".into()), t0(), None);
        assert_eq!(t.expires_at, t0() + chrono::Duration::hours(1));
    }

    #[test]
    fn the_refresher_wakes_at_the_refresh_time_or_the_later_retry() {
        let t = Token::new(Secret("a".into()), t0(), Some(Duration::from_secs(100)));
        let later = t0() + chrono::Duration::seconds(80);
        assert_eq!(next_wake(Some(&t), None, t0()), t.refresh_at);
        assert_eq!(next_wake(Some(&t), Some(later), t0()), later);
        assert_eq!(next_wake(None, Some(later), t0()), later);
        assert_eq!(next_wake(None, None, t0()), t0());
    }
}
