//! Mails to `helpdesk.admins` about folio itself: today, the OAuth2 token endpoint the mailbox
//! logins depend on failing (once per failure episode; the daemon claims each episode so a
//! repeat queues nothing). Pure: the facts and the policy in, mails out.

use chrono::{DateTime, Utc};

use crate::desk::decide::Reply;
use crate::desk::notice::{HelpdeskView, Notice, OAuthFailure};
use crate::desk::policy::Policy;

/// The `oauth_failure` notice of an episode that started at `since`, to each admin (none
/// without admins).
pub fn oauth_failure(
    token_url: &str,
    error: &str,
    since: DateTime<Utc>,
    token_expires_at: Option<DateTime<Utc>>,
    policy: &Policy,
) -> Vec<Reply> {
    let notice = OAuthFailure::new(
        token_url,
        error,
        since,
        token_expires_at,
        HelpdeskView::of(policy),
    );
    Reply::to_admins(Notice::OAuthFailure(notice), policy)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::desk::tokens::Tokens;

    #[test]
    fn each_admin_is_told_and_nobody_without_admins() {
        let mut p = Policy::with_defaults("helpdesk@example.test", Tokens::new(b"t".to_vec()));
        let since = Utc.with_ymd_and_hms(2026, 12, 4, 11, 0, 0).unwrap();
        let url = "https://login.example.test/token";
        assert!(oauth_failure(url, "x", since, None, &p).is_empty());
        p.admins = vec!["jefa@example.test".into(), "mesa@example.test".into()];
        let mails = oauth_failure(url, "invalid_grant\n(expired)", since, Some(since), &p);
        assert_eq!(mails.len(), 2);
        assert_eq!(mails[1].to, "mesa@example.test");
        let Notice::OAuthFailure(n) = &mails[0].notice else {
            panic!("{:?}", mails[0].notice)
        };
        assert_eq!(n.since, "2026-12-04 11:00 UTC");
        assert_eq!(n.token_expires_at, "2026-12-04 11:00 UTC");
        assert!(!n.error.contains('\n'), "{}", n.error);
        assert!(mails[0].context_json(None).contains(url));
    }
}
