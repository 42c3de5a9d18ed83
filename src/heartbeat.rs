//! Liveness of the daemon's long-running loops (the mailbox worker, the outbox sender, the
//! scheduler), for the service manager's watchdog.
//!
//! Each loop owns a [`Heartbeat`] and, before every step that could hang (an IMAP command, a
//! wait in IDLE, a round of sends, a sweep), says by when it will be back: [`Heartbeat::within`].
//! A wait that cannot hang (for a local wake-up or a cron tick) is [`Heartbeat::idle`]. The
//! watchdog pinger ([`Heartbeats::overdue`]) pings only while no loop is past its deadline, so a
//! loop stuck beyond its own bound (a hung IMAP session, a database that never answers) stops
//! the pings and the service manager restarts folio.
//!
//! Deadlines rather than "last seen" times: a loop legitimately waits up to `imap.idle_renew`
//! (25 minutes) in IDLE, and a single staleness limit would have to be that long for every loop.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use tokio::time::Instant;

/// A deadline no loop can miss: the loop is waiting for something that cannot hang.
const NEVER: u64 = u64::MAX;

/// Deadlines are kept as milliseconds since this instant, so one atomic holds them.
static BASE: LazyLock<Instant> = LazyLock::new(now);

/// The monotonic now.
// Liveness is measured on the monotonic timer, not on the injected clock: a loop is stuck
// when real time passes without it coming back, whatever the business clock says.
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

fn millis_since_base(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(*BASE).as_millis()).unwrap_or(NEVER - 1)
}

struct Beat {
    name: &'static str,
    /// Milliseconds since [`BASE`] by which the loop will beat again; [`NEVER`] while idle.
    deadline: AtomicU64,
    /// The loop has finished starting (the mailbox worker: logged in and selected its folder).
    ready: AtomicBool,
}

/// One loop's heartbeat. Clones share it.
#[derive(Clone)]
pub struct Heartbeat(Arc<Beat>);

impl Heartbeat {
    /// A heartbeat for the loop `name` (used in log lines), idle and not ready yet. Nothing
    /// watches it until it is given to [`Heartbeats::watch`].
    pub fn new(name: &'static str) -> Heartbeat {
        Heartbeat(Arc::new(Beat {
            name,
            deadline: AtomicU64::new(NEVER),
            ready: AtomicBool::new(false),
        }))
    }

    /// The loop's name.
    pub fn name(&self) -> &'static str {
        self.0.name
    }

    /// The loop will beat again within `limit` from now.
    pub fn within(&self, limit: Duration) {
        let deadline = now()
            .checked_add(limit)
            .map_or(NEVER - 1, millis_since_base);
        self.0.deadline.store(deadline, Ordering::Relaxed);
    }

    /// The loop waits for something that cannot hang (a local wake-up, a cron tick, shutdown).
    pub fn idle(&self) {
        self.0.deadline.store(NEVER, Ordering::Relaxed);
    }

    /// The loop has started: the service may report itself ready once every loop has.
    pub fn ready(&self) {
        self.0.ready.store(true, Ordering::Relaxed);
    }

    /// Whether [`Heartbeat::ready`] was called.
    pub fn is_ready(&self) -> bool {
        self.0.ready.load(Ordering::Relaxed)
    }

    /// How far past its deadline the loop is, if it is.
    pub fn overdue(&self) -> Option<Duration> {
        overdue_at(&self.0, millis_since_base(now()))
    }
}

fn overdue_at(beat: &Beat, now_ms: u64) -> Option<Duration> {
    let deadline = beat.deadline.load(Ordering::Relaxed);
    (deadline != NEVER && now_ms > deadline).then(|| Duration::from_millis(now_ms - deadline))
}

/// The heartbeats the watchdog looks at. A loop whose [`Heartbeat`] is dropped (it ended) is
/// no longer looked at. Clones share the set.
#[derive(Clone, Default)]
pub struct Heartbeats(Arc<Mutex<Vec<Weak<Beat>>>>);

impl Heartbeats {
    /// An empty set.
    pub fn new() -> Heartbeats {
        Heartbeats::default()
    }

    /// Watches every heartbeat of `beats` from now on (all at once, so [`Heartbeats::all_ready`]
    /// never sees only some of one start's loops).
    pub fn watch(&self, beats: &[&Heartbeat]) {
        let mut set = self.lock();
        set.retain(|b| b.strong_count() > 0);
        set.extend(beats.iter().map(|h| Arc::downgrade(&h.0)));
    }

    /// The loops past their deadline, each with how far past it.
    pub fn overdue(&self) -> Vec<(&'static str, Duration)> {
        let now_ms = millis_since_base(now());
        self.live()
            .iter()
            .filter_map(|b| overdue_at(b, now_ms).map(|by| (b.name, by)))
            .collect()
    }

    /// Whether at least one loop is watched and every watched loop is ready.
    pub fn all_ready(&self) -> bool {
        let live = self.live();
        !live.is_empty() && live.iter().all(|b| b.ready.load(Ordering::Relaxed))
    }

    fn live(&self) -> Vec<Arc<Beat>> {
        self.lock().iter().filter_map(Weak::upgrade).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Weak<Beat>>> {
        // A panic while holding this lock leaves a plain list behind: still usable.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sleeps on the real monotonic timer (the one the heartbeats read).
    fn pass(ms: u64) {
        std::thread::sleep(Duration::from_millis(ms));
    }

    #[test]
    fn a_loop_past_its_deadline_is_overdue_until_it_beats_again() {
        let set = Heartbeats::new();
        let mailbox = Heartbeat::new("mailbox");
        let sender = Heartbeat::new("sender");
        set.watch(&[&mailbox, &sender]);
        mailbox.within(Duration::from_millis(300));
        sender.idle();
        assert!(set.overdue().is_empty());
        pass(400);
        let overdue = set.overdue();
        assert_eq!(overdue.len(), 1, "{overdue:?}");
        assert_eq!(overdue[0].0, "mailbox");
        assert!(overdue[0].1 >= Duration::from_millis(50), "{overdue:?}");
        assert!(mailbox.overdue().is_some());
        // An idle loop is never overdue, however long it waits.
        assert_eq!(sender.overdue(), None);
        mailbox.within(Duration::from_secs(60));
        assert!(set.overdue().is_empty());
    }

    #[test]
    fn ready_once_every_watched_loop_is_and_ended_loops_are_forgotten() {
        let set = Heartbeats::new();
        assert!(!set.all_ready(), "nothing watched is not ready");
        let a = Heartbeat::new("a");
        let b = Heartbeat::new("b");
        set.watch(&[&a, &b]);
        a.ready();
        assert!(!set.all_ready());
        b.ready();
        assert!(set.all_ready());
        // A loop that ended (its heartbeat dropped) is not looked at any more.
        let stuck = Heartbeat::new("stuck");
        set.watch(&[&stuck]);
        stuck.within(Duration::ZERO);
        assert!(!set.all_ready());
        drop(stuck);
        assert!(set.all_ready());
        assert!(set.overdue().is_empty());
    }
}
