//! The stall alarm's rules, pure: when mail waiting in the watched folder with nothing
//! processed counts as a stall, when to raise the alarm and when it is over, and the mail the
//! admins get. The daemon (`daemon::alarm`) keeps what the mailbox worker saw ([`Watch`]),
//! asks these functions on a timer with the clock's now, and carries the answer out (log,
//! metric, one mail through the outbox).

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::desk::decide::Reply;
use crate::desk::notice::{Notice, StallAlarm};
use crate::desk::policy::Policy;

/// What the mailbox worker last saw of the watched folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Watch {
    /// Messages waiting in it (seen on select, or found by a pass that then failed); 0 after a
    /// pass that processed everything it found.
    pub waiting: u32,
    /// When mail was first seen waiting since the folder was last seen empty.
    pub waiting_since: Option<DateTime<Utc>>,
    /// When messages last left the folder, processed or quarantined (filed away).
    pub last_filed_at: Option<DateTime<Utc>>,
    /// The oldest message seen waiting since then, by the pipeline's name for it
    /// (`imap:INBOX:<uidvalidity>:<uid>`), when known.
    pub first_waiting: Option<String>,
}

/// Since when the folder is stalled at `now`: mail waits, and nothing has left the folder for
/// `stall_after` since it began to wait (or since the last message left, if later). `None`:
/// no stall (nothing waits, or work moved recently).
pub fn stalled_since(
    watch: &Watch,
    now: DateTime<Utc>,
    stall_after: Duration,
) -> Option<DateTime<Utc>> {
    if watch.waiting == 0 {
        return None;
    }
    let waiting_since = watch.waiting_since?;
    let since = watch
        .last_filed_at
        .map_or(waiting_since, |filed| filed.max(waiting_since));
    let after = chrono::Duration::from_std(stall_after).unwrap_or(chrono::Duration::MAX);
    (now - since >= after).then_some(since)
}

/// What to do about a stall now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alarm {
    /// Nothing changed.
    Quiet,
    /// A stall that began at this instant: log it, set the metric, mail the admins once.
    Raise(DateTime<Utc>),
    /// The stall alarmed is over (mail moved again, or nothing waits).
    Clear,
}

/// Given the episode already alarmed (the instant it began) and the stall as it is now
/// ([`stalled_since`]): one alarm per episode. A stall that began later than the one alarmed
/// is a new episode (work moved in between, even if no check saw the folder unstalled).
pub fn alarm(raised: Option<DateTime<Utc>>, stalled: Option<DateTime<Utc>>) -> Alarm {
    match (raised, stalled) {
        (None, Some(since)) => Alarm::Raise(since),
        (Some(_), None) => Alarm::Clear,
        (Some(before), Some(since)) if since > before => Alarm::Raise(since),
        _ => Alarm::Quiet,
    }
}

/// The key of a stall episode in `scheduled_runs` (job `stall_alarm`), so the admins' mail is
/// queued once per episode however often it is tried: the oldest message seen waiting, which
/// a restart during the same stall finds stuck again (so a daemon restarted over and over
/// mails once); without one, the instant the stall began.
pub fn episode_key(since: DateTime<Utc>, watch: &Watch) -> String {
    match &watch.first_waiting {
        Some(source) => source.clone(),
        None => since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    }
}

/// The mail to each of `helpdesk.admins` about a stall of `folder` (none without admins).
pub fn alarm_mails(
    folder: &str,
    watch: &Watch,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
    last_error: Option<&str>,
    policy: &Policy,
) -> Vec<Reply> {
    let notice = StallAlarm::new(folder, watch.waiting, since, now, last_error, policy);
    Reply::to_admins(Notice::StallAlarm(notice), policy)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::desk::tokens::Tokens;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 10, minute, 0).unwrap()
    }

    const FIFTEEN_MIN: Duration = Duration::from_secs(15 * 60);

    #[test]
    fn mail_waiting_with_nothing_filed_for_stall_after_is_a_stall_since_it_began_to_wait() {
        let w = Watch {
            waiting: 3,
            waiting_since: Some(at(0)),
            last_filed_at: None,
            first_waiting: None,
        };
        assert_eq!(stalled_since(&w, at(14), FIFTEEN_MIN), None);
        assert_eq!(stalled_since(&w, at(15), FIFTEEN_MIN), Some(at(0)));
        // Mail filed long before it began to wait does not make it older.
        let w = Watch {
            last_filed_at: Some(Utc.with_ymd_and_hms(2026, 11, 26, 9, 0, 0).unwrap()),
            ..w
        };
        assert_eq!(stalled_since(&w, at(14), FIFTEEN_MIN), None);
        assert_eq!(stalled_since(&w, at(20), FIFTEEN_MIN), Some(at(0)));
    }

    #[test]
    fn a_slow_backlog_that_still_moves_is_no_stall_and_an_empty_folder_never_is() {
        let moving = Watch {
            waiting: 5_000,
            waiting_since: Some(at(0)),
            last_filed_at: Some(at(40)),
            first_waiting: None,
        };
        assert_eq!(stalled_since(&moving, at(50), FIFTEEN_MIN), None);
        assert_eq!(stalled_since(&moving, at(55), FIFTEEN_MIN), Some(at(40)));
        let empty = Watch {
            waiting: 0,
            waiting_since: Some(at(0)),
            last_filed_at: None,
            first_waiting: None,
        };
        assert_eq!(stalled_since(&empty, at(59), FIFTEEN_MIN), None);
        assert_eq!(stalled_since(&Watch::default(), at(59), FIFTEEN_MIN), None);
    }

    #[test]
    fn one_alarm_per_episode_cleared_when_it_ends() {
        assert_eq!(alarm(None, None), Alarm::Quiet);
        assert_eq!(alarm(None, Some(at(0))), Alarm::Raise(at(0)));
        assert_eq!(
            alarm(Some(at(0)), Some(at(0))),
            Alarm::Quiet,
            "no second mail"
        );
        assert_eq!(alarm(Some(at(0)), None), Alarm::Clear);
        // Work moved at 20 and stopped again, unseen by any check in between: a new episode.
        assert_eq!(alarm(Some(at(0)), Some(at(20))), Alarm::Raise(at(20)));
        let mut w = Watch::default();
        assert_eq!(episode_key(at(20), &w), "2026-11-27T10:20:00.000Z");
        w.first_waiting = Some("imap:INBOX:7:42".into());
        assert_eq!(episode_key(at(20), &w), "imap:INBOX:7:42");
    }

    #[test]
    fn each_admin_gets_the_alarm_and_nobody_without_admins() {
        let mut p = Policy::with_defaults("mesa@example.test", Tokens::new(b"k".to_vec()));
        let w = Watch {
            waiting: 2,
            waiting_since: Some(at(0)),
            last_filed_at: None,
            first_waiting: None,
        };
        assert!(alarm_mails("INBOX", &w, at(0), at(30), None, &p).is_empty());
        p.admins = vec!["jefa@example.test".into(), "ops@example.test".into()];
        let error = format!("database error:\n  no such table {}", "x".repeat(600));
        let mails = alarm_mails("INBOX", &w, at(0), at(30), Some(&error), &p);
        let to: Vec<&str> = mails.iter().map(|m| m.to.as_str()).collect();
        assert_eq!(to, ["jefa@example.test", "ops@example.test"]);
        let Notice::StallAlarm(n) = &mails[0].notice else {
            panic!("{:?}", mails[0].notice)
        };
        assert_eq!(n.folder, "INBOX");
        assert_eq!(n.waiting, 2);
        assert_eq!(n.since, "2026-11-27 10:00 UTC");
        assert_eq!(n.stalled_for, "30 min");
        let e = n.last_error.as_deref().unwrap();
        assert!(e.starts_with("database error: no such table xxx"), "{e}");
        assert_eq!(e.chars().count(), 500);
        assert_eq!(mails[0].auto_submitted, "auto-generated");
    }
}
