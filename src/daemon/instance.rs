//! This daemon among others on one database: it registers, beats its heartbeat every
//! [`HEARTBEAT_EVERY`], and holds the mailbox lease when it can (the only instance that reads
//! the watched folder); the others stand by and take over when the holder stops or dies.
//!
//! Timing, for "another takes over within 15 s": the holder renews its heartbeat and lease every
//! 3 s for 10 s ahead, so they run out at most 10 s after it died; a standby tries every 3 s,
//! so it holds the lease at most 13 s after, and logs in at once. A clean stop lets go of the
//! lease and records the stop, and a standby takes over at its next beat. The outbox claims of
//! a dead instance are free when its heartbeat runs out ([`crate::store`]); a restarted
//! instance on the same host frees those of a predecessor whose process is gone at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::daemon::health::{Health, Role};
use crate::outbound::sender::CATCH_UP_LEASE;
use crate::shutdown::Shutdown;
use crate::store::{Beat, NewInstance, Store, StoreError};

/// How often an instance writes its heartbeat and tries for (or renews) the mailbox lease.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(3);

/// How far ahead a heartbeat (and the lease it renews) reaches: dead this long after the last.
pub const ALIVE_FOR: Duration = Duration::from_secs(10);

/// How long a stopped instance stays in `folio status`.
const KEEP_STOPPED_DAYS: i64 = 30;

pub use crate::store::MAILBOX_LEASE;

/// This running daemon's registration, heartbeat and mailbox lease.
pub struct Instance {
    me: NewInstance,
    store: Store,
    clock: Arc<dyn Clock>,
    role: watch::Sender<Role>,
    /// Set while this process's mailbox worker catches up on a backlog
    /// (`Pipeline::ingest_busy`): each beat renews [`CATCH_UP_LEASE`] meanwhile.
    catching_up: Arc<AtomicBool>,
    /// Whether this instance took [`CATCH_UP_LEASE`] at its last beat.
    holds_catch_up: AtomicBool,
}

/// Who this process is: a fresh id, `name` (else `host:pid`), the host and pid.
pub fn identity(now: DateTime<Utc>, name: Option<String>) -> NewInstance {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    let pid = std::process::id();
    NewInstance {
        id: crate::desk::tokens::nonce(now),
        name: name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| format!("{host}:{pid}")),
        host,
        pid,
    }
}

/// Whether process `pid` on this host is a running folio (a pid reused by another program
/// does not count).
fn folio_runs_as(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|comm| comm.trim_end().starts_with("folio"))
}

impl Instance {
    /// Registers `me`, first recording as stopped the instances on this host whose process is
    /// gone (a crash): what they held is free at once instead of when their heartbeat runs out.
    pub async fn register(
        store: Store,
        clock: Arc<dyn Clock>,
        me: NewInstance,
    ) -> Result<Instance, StoreError> {
        let now = clock.now();
        let dead: Vec<String> = store
            .unstopped_on(&me.host)
            .await?
            .into_iter()
            .filter(|(id, pid)| *id != me.id && !folio_runs_as(*pid))
            .map(|(id, _)| id)
            .collect();
        if !dead.is_empty() {
            tracing::info!(instances = ?dead, "instances on this host whose process is gone: their claims are free");
            store.mark_stopped(&dead, now).await?;
        }
        store
            .forget_stopped_before(now - chrono::Duration::days(KEEP_STOPPED_DAYS))
            .await?;
        let until = now + chrono_of(ALIVE_FOR);
        store.register_instance(&me, now, until).await?;
        // The first try for the mailbox, so the role is known before the workers start (a
        // single instance is ready only once it has logged in; a standby at once).
        let first = if store
            .acquire_lease(MAILBOX_LEASE, &me.id, now, until)
            .await?
        {
            tracing::info!(instance = %me.name, "holding the mailbox");
            Role::Active
        } else {
            tracing::info!(instance = %me.name, "another instance holds the mailbox; standing by");
            Role::Standby
        };
        let (role, _) = watch::channel(first);
        Ok(Instance {
            me,
            store,
            clock,
            role,
            catching_up: Arc::new(AtomicBool::new(false)),
            holds_catch_up: AtomicBool::new(false),
        })
    }

    /// The same instance, keeping [`CATCH_UP_LEASE`] while `catching_up` is set.
    pub fn telling_catch_ups(mut self, catching_up: Arc<AtomicBool>) -> Instance {
        self.catching_up = catching_up;
        self
    }

    /// This instance's id (the holder its claims and lease carry).
    pub fn id(&self) -> &str {
        &self.me.id
    }

    /// This instance's name.
    pub fn name(&self) -> &str {
        &self.me.name
    }

    /// The role as it changes: the mailbox worker reads mail only while it is `Active` (holds
    /// the mailbox lease).
    pub fn role(&self) -> watch::Receiver<Role> {
        self.role.subscribe()
    }

    /// Beats until `shutdown`, then lets go of the lease and records the stop. Each heartbeat
    /// carries what `health` says of the folder (for `folio status`), and the role is told to
    /// `health` too (for `/healthz`).
    pub async fn run(self, health: Arc<Health>, mut shutdown: Shutdown) {
        let first = *self.role.borrow();
        health.set_role(first);
        // Until when this instance's hold on the mailbox surely lasts (its last renewal's end):
        // the first renewal comes at once.
        let mut held_until: Option<DateTime<Utc>> =
            (first == Role::Active).then(|| self.clock.now() + chrono_of(HEARTBEAT_EVERY * 2));
        let mut interval = tokio::time::interval(HEARTBEAT_EVERY);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = shutdown.wait() => break,
            }
            held_until = self.beat(held_until, &health).await;
        }
        self.set_role(Role::Standby, &health);
        let now = self.clock.now();
        if let Err(e) = self.store.release_lease(CATCH_UP_LEASE, &self.me.id).await {
            tracing::warn!(error = %e, "could not let go of the catch-up lease; it runs out by itself");
        }
        if let Err(e) = self.store.release_lease(MAILBOX_LEASE, &self.me.id).await {
            tracing::warn!(error = %e, "could not let go of the mailbox lease; it runs out by itself");
        }
        if let Err(e) = self
            .store
            .mark_stopped(std::slice::from_ref(&self.me.id), now)
            .await
        {
            tracing::warn!(error = %e, "could not record this instance's stop; its heartbeat runs out by itself");
        }
    }

    /// One beat: the heartbeat, then the lease. Returns until when the lease is surely held.
    async fn beat(
        &self,
        held_until: Option<DateTime<Utc>>,
        health: &Health,
    ) -> Option<DateTime<Utc>> {
        let now = self.clock.now();
        let until = now + chrono_of(ALIVE_FOR);
        let seen = health.seen();
        let beat = Beat {
            folder_waiting: Some(u64::from(seen.watch.waiting)),
            last_fetch_at: seen.last_fetch_at,
            // Health keeps the error, not its time: the heartbeat that first carries it dates it.
            last_error: seen.last_error.map(|e| (e, now)),
        };
        let alive = match self.store.heartbeat(&self.me.id, now, until, &beat).await {
            Ok(alive) => alive,
            Err(e) => {
                tracing::warn!(error = %e, "heartbeat: database error");
                return self.keep_while_sure(held_until, now, health);
            }
        };
        if !alive {
            // Declared dead meanwhile (a stall longer than the heartbeat's reach): others may
            // hold what this instance held. Come back as alive, but without the mailbox until
            // the lease is won again.
            tracing::error!(instance = %self.me.name, "this instance was taken for dead; registering again");
            self.set_role(Role::Standby, health);
            if let Err(e) = self.store.register_instance(&self.me, now, until).await {
                tracing::warn!(error = %e, "could not register again");
            }
            return None;
        }
        match self
            .store
            .acquire_lease(MAILBOX_LEASE, &self.me.id, now, until)
            .await
        {
            Ok(true) => {
                if held_until.is_none() {
                    tracing::info!(instance = %self.me.name, "holding the mailbox");
                }
                self.set_role(Role::Active, health);
                self.renew_catch_up(now, until, true).await;
                Some(until)
            }
            Ok(false) => {
                if held_until.is_some() {
                    tracing::warn!(instance = %self.me.name, "another instance holds the mailbox now; standing by");
                }
                self.set_role(Role::Standby, health);
                self.renew_catch_up(now, until, false).await;
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "mailbox lease: database error");
                self.keep_while_sure(held_until, now, health)
            }
        }
    }

    /// Keeps [`CATCH_UP_LEASE`] until `until` while this instance holds the mailbox (`holder`)
    /// and its worker catches up, and lets go of it otherwise (the worker lets go at the end of
    /// a catch-up itself; this covers one that ended in an error or lost the mailbox).
    async fn renew_catch_up(&self, now: DateTime<Utc>, until: DateTime<Utc>, holder: bool) {
        let result = if holder && self.catching_up.load(Ordering::SeqCst) {
            self.store
                .acquire_lease(CATCH_UP_LEASE, &self.me.id, now, until)
                .await
                .map(|held| self.holds_catch_up.store(held, Ordering::SeqCst))
        } else if self.holds_catch_up.swap(false, Ordering::SeqCst) {
            self.store.release_lease(CATCH_UP_LEASE, &self.me.id).await
        } else {
            Ok(())
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "catch-up lease: database error");
        }
    }

    /// Without word from the database, the hold lasts only as long as the last renewal (less a
    /// beat, so the worker stops before another instance can start).
    fn keep_while_sure(
        &self,
        held_until: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        health: &Health,
    ) -> Option<DateTime<Utc>> {
        match held_until {
            Some(t) if now + chrono_of(HEARTBEAT_EVERY) < t => Some(t),
            Some(_) => {
                tracing::warn!("the mailbox lease could not be renewed in time; standing by");
                self.set_role(Role::Standby, health);
                None
            }
            None => None,
        }
    }

    fn set_role(&self, role: Role, health: &Health) {
        health.set_role(role);
        self.role.send_if_modified(|r| {
            let changed = *r != role;
            *r = role;
            changed
        });
    }
}

fn chrono_of(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}
