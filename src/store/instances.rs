//! Running daemons and what they hold: each instance's heartbeat (`instances`), exclusive
//! roles held under a renewed lease (`leases`, e.g. the mailbox), and reading them back for
//! `folio status`.
//!
//! An instance is alive while its `alive_until` lies ahead and it recorded no stop. Whatever a
//! dead instance held is free at once, without waiting for its leases to run out: the outbox
//! claim condition ([`super::outbox`]) and [`Store::acquire_lease`] both ask whether the
//! holder is alive.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::statement::{bind_each, list_statement, ROWS_PER_STATEMENT};
use super::{parse_ts, ts, Store, StoreError};

/// The SQL condition "the instance `{holder}` is alive at `{now}`", for claims and leases.
/// `holder` and `now` are SQL expressions.
pub(super) fn alive(holder: &str, now: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM instances i WHERE i.id = {holder} AND i.stopped_at IS NULL \
         AND i.alive_until > {now})"
    )
}

/// The lease of the instance that reads the watched folder.
pub const MAILBOX_LEASE: &str = "mailbox";

/// `me`'s part of `budget` split over the instances `live`: `budget / n`, plus one for each of
/// the first `budget % n`. Instances past the budget get none. `budget` when `me` is
/// not among them.
fn share(budget: usize, live: &[String], me: &str) -> usize {
    match live.iter().position(|id| id == me) {
        Some(k) => budget / live.len() + usize::from(k < budget % live.len()),
        None => budget,
    }
}

/// A daemon as it registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInstance {
    /// Unique per process run.
    pub id: String,
    /// What operators call it (`FOLIO_INSTANCE_NAME`, else `host:pid`).
    pub name: String,
    pub host: String,
    pub pid: u32,
}

/// What an instance reports with each heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Beat {
    /// Messages in the watched folder when the mailbox's holder last looked.
    pub folder_waiting: Option<u64>,
    /// When the mailbox's holder last fetched from the folder successfully.
    pub last_fetch_at: Option<DateTime<Utc>>,
    /// The instance's latest error, and when.
    pub last_error: Option<(String, DateTime<Utc>)>,
}

/// An instance as `folio status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InstanceRow {
    pub id: String,
    pub name: String,
    pub host: String,
    pub pid: i64,
    pub started_at: Option<DateTime<Utc>>,
    pub heartbeat_at: Option<DateTime<Utc>>,
    pub alive_until: Option<DateTime<Utc>>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub folder_waiting: Option<i64>,
    pub last_fetch_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

/// Who holds a lease, until when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LeaseRow {
    pub name: String,
    pub holder: String,
    pub until: Option<DateTime<Utc>>,
    pub since: Option<DateTime<Utc>>,
}

fn time(r: &sqlx::any::AnyRow, i: usize) -> Option<DateTime<Utc>> {
    r.get::<Option<String>, _>(i).as_deref().and_then(parse_ts)
}

impl Store {
    /// The same store, whose outbox claims carry `instance` as their holder: they end as soon
    /// as that instance is dead, not only when their lease runs out.
    pub fn claiming_as(mut self, instance: &str) -> Store {
        self.instance = Some(instance.into());
        self
    }

    /// Records a starting instance, alive until `alive_until`.
    pub async fn register_instance(
        &self,
        me: &NewInstance,
        now: DateTime<Utc>,
        alive_until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO instances (id, name, host, pid, started_at, heartbeat_at, alive_until)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&me.id)
        .bind(&me.name)
        .bind(&me.host)
        .bind(i64::from(me.pid))
        .bind(ts(now))
        .bind(ts(now))
        .bind(ts(alive_until))
        .execute(&self.marks)
        .await?;
        Ok(())
    }

    /// The heartbeat: `id` is alive until `alive_until`, and reports `beat`. False when the
    /// instance was declared dead meanwhile (its row says stopped): it must stop acting as
    /// alive, since others may have taken over what it held.
    pub async fn heartbeat(
        &self,
        id: &str,
        now: DateTime<Utc>,
        alive_until: DateTime<Utc>,
        beat: &Beat,
    ) -> Result<bool, StoreError> {
        let (error, error_at) = match &beat.last_error {
            Some((e, at)) => (Some(e.clone()), Some(ts(*at))),
            None => (None, None),
        };
        let done = sqlx::query(
            "UPDATE instances SET heartbeat_at = $1, alive_until = $2, folder_waiting = $3,
               last_fetch_at = $4, last_error = $5, last_error_at = $6
             WHERE id = $7 AND stopped_at IS NULL",
        )
        .bind(ts(now))
        .bind(ts(alive_until))
        .bind(beat.folder_waiting.map(|n| n as i64))
        .bind(beat.last_fetch_at.map(ts))
        .bind(error)
        .bind(error_at)
        .bind(id)
        .execute(&self.marks)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records that instances stopped (a clean stop, or found dead): what they held is free.
    pub async fn mark_stopped(&self, ids: &[String], now: DateTime<Utc>) -> Result<(), StoreError> {
        let now = ts(now);
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let query = list_statement(
                "UPDATE instances SET stopped_at = ? WHERE stopped_at IS NULL AND id IN (",
                chunk.len(),
                ")",
                self.backend,
            )
            .bind(now.clone());
            bind_each(query, chunk).execute(&self.marks).await?;
        }
        Ok(())
    }

    /// Forgets the instances that stopped before `before` (`folio status` shows the latest).
    pub async fn forget_stopped_before(&self, before: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM instances WHERE stopped_at IS NOT NULL AND stopped_at < $1")
            .bind(ts(before))
            .execute(&self.marks)
            .await?;
        Ok(())
    }

    /// Instances on `host` that have not stopped (alive or not): the daemon asks the system
    /// which of their processes still exist.
    pub async fn unstopped_on(&self, host: &str) -> Result<Vec<(String, i64)>, StoreError> {
        let rows =
            sqlx::query("SELECT id, pid FROM instances WHERE host = $1 AND stopped_at IS NULL")
                .bind(host)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Takes or renews the lease `name` for `holder` until `until`: granted when the lease is
    /// free, ran out, is `holder`'s already, or its holder is dead. True when `holder` holds
    /// it now.
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "INSERT INTO leases (name, holder, until, since) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until,
               since = CASE WHEN leases.holder = excluded.holder THEN leases.since
                            ELSE excluded.since END
             WHERE leases.holder = excluded.holder OR leases.until <= excluded.since
                OR NOT {}
             RETURNING holder",
            alive("leases.holder", "excluded.since")
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .bind(holder)
            .bind(ts(until))
            .bind(ts(now))
            .fetch_optional(&self.marks)
            .await?;
        Ok(row.is_some())
    }

    /// [`Store::acquire_lease`] for the instance this store claims as ([`Store::claiming_as`]);
    /// false, and nothing written, when it claims as nobody.
    pub async fn take_lease(
        &self,
        name: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        match self.instance.as_deref() {
            Some(me) => self.acquire_lease(name, me, now, until).await,
            None => Ok(false),
        }
    }

    /// This instance's part of a connection budget shared by every live instance
    /// (`smtp.concurrency`): the budget split evenly, so the parts add up to the budget, the
    /// remainder to the first by id, except that the holder of the lease `busy` comes last.
    /// `busy` is the mailbox's: its holder reads mail besides sending, and in benchmark 8 its
    /// connections sent 15 % fewer mails each than those of the standbys (docs/benchmarks.md
    /// §8f). The whole budget when this store claims as no instance or its instance is not
    /// among the live ones (a CLI command; a heartbeat not written yet).
    pub async fn share_of(
        &self,
        budget: usize,
        busy: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let Some(me) = self.instance.as_deref() else {
            return Ok(budget);
        };
        let live: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM instances WHERE stopped_at IS NULL AND alive_until > $1
             ORDER BY (SELECT count(*) FROM leases l
                       WHERE l.name = $2 AND l.holder = instances.id AND l.until > $1), id",
        )
        .bind(ts(now))
        .bind(busy)
        .fetch_all(&self.pool)
        .await?;
        Ok(share(budget, &live, me))
    }

    /// [`Store::release_lease`] for the instance this store claims as, if any.
    pub async fn let_go(&self, name: &str) -> Result<(), StoreError> {
        match self.instance.as_deref() {
            Some(me) => self.release_lease(name, me).await,
            None => Ok(()),
        }
    }

    /// Whether a live instance other than the one this store claims as
    /// ([`Store::claiming_as`]) holds the lease `name` at `now` (any live holder, when this
    /// store claims as nobody).
    pub async fn held_by_another(
        &self,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "SELECT 1 FROM leases WHERE name = $1 AND until > $2 AND holder <> $3 AND {}",
            alive("leases.holder", "$2")
        );
        let row: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .bind(ts(now))
            .bind(self.instance.as_deref().unwrap_or(""))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Gives the lease `name` up, if `holder` holds it (a clean stop: a standby takes over at
    /// its next heartbeat).
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.marks)
            .await?;
        Ok(())
    }

    /// Every instance that ran, latest start first (at most `limit`).
    pub async fn instances(&self, limit: u32) -> Result<Vec<InstanceRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, host, pid, started_at, heartbeat_at, alive_until, stopped_at,
                    folder_waiting, last_fetch_at, last_error, last_error_at
             FROM instances ORDER BY started_at DESC, id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| InstanceRow {
                id: r.get(0),
                name: r.get(1),
                host: r.get(2),
                pid: r.get(3),
                started_at: time(r, 4),
                heartbeat_at: time(r, 5),
                alive_until: time(r, 6),
                stopped_at: time(r, 7),
                folder_waiting: r.get(8),
                last_fetch_at: time(r, 9),
                last_error: r.get(10),
                last_error_at: time(r, 11),
            })
            .collect())
    }

    /// Every lease and its holder.
    pub async fn leases(&self) -> Result<Vec<LeaseRow>, StoreError> {
        let rows = sqlx::query("SELECT name, holder, until, since FROM leases ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| LeaseRow {
                name: r.get(0),
                holder: r.get(1),
                until: time(r, 2),
                since: time(r, 3),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use chrono::TimeDelta;

    use super::*;
    use crate::store::test_support::{now, queue, temp_store};

    fn instance(id: &str) -> NewInstance {
        NewInstance {
            id: id.into(),
            name: format!("host-a:{id}"),
            host: "host-a".into(),
            pid: 4242,
        }
    }

    fn secs(n: i64) -> TimeDelta {
        TimeDelta::seconds(n)
    }

    /// Whether `who` gets (or keeps) the mailbox lease when it asks `at` seconds after `now()`,
    /// for 10 s.
    async fn takes(store: &Store, who: &str, at: i64) -> bool {
        let t = now() + secs(at);
        store
            .acquire_lease("mailbox", who, t, t + secs(10))
            .await
            .unwrap()
    }

    /// Instances "a" and "b", registered at `t`, alive for 10 s.
    async fn register_a_and_b(store: &Store, t: DateTime<Utc>) {
        for id in ["a", "b"] {
            store
                .register_instance(&instance(id), t, t + secs(10))
                .await
                .unwrap();
        }
    }

    /// `who`'s heartbeat `at` seconds after `now()`, alive for `alive` more seconds.
    async fn beat(store: &Store, who: &str, at: i64, alive: i64) -> bool {
        let t = now() + secs(at);
        store
            .heartbeat(who, t, t + secs(alive), &Beat::default())
            .await
            .unwrap()
    }

    #[test]
    fn a_budget_splits_over_the_live_instances_and_adds_up() {
        let ids = |n: usize| -> Vec<String> { (0..n).map(|k| format!("i{k}")).collect() };
        for budget in 1..=9 {
            for n in 1..=5 {
                let live = ids(n);
                let parts: Vec<usize> = live.iter().map(|me| share(budget, &live, me)).collect();
                assert_eq!(
                    parts.iter().sum::<usize>(),
                    budget,
                    "{budget} over {n}: {parts:?}"
                );
                let (lo, hi) = (parts.iter().min().unwrap(), parts.iter().max().unwrap());
                assert!(hi - lo <= 1, "even: {parts:?}");
            }
        }
        assert_eq!(share(4, &ids(3), "i0"), 2);
        assert_eq!(share(4, &ids(3), "i2"), 1);
        assert_eq!(share(3, &ids(4), "i3"), 0, "past the budget: none");
        assert_eq!(
            share(4, &ids(3), "unknown"),
            4,
            "not live yet: the whole budget"
        );
    }

    #[tokio::test]
    async fn the_share_counts_only_live_instances() {
        let (_dir, store) = temp_store().await;
        let t = now();
        register_a_and_b(&store, t).await;
        let (a, b) = (
            store.clone().claiming_as("a"),
            store.clone().claiming_as("b"),
        );
        let mailbox = MAILBOX_LEASE;
        assert_eq!(a.share_of(3, mailbox, t).await.unwrap(), 2);
        assert_eq!(b.share_of(3, mailbox, t).await.unwrap(), 1);
        assert_eq!(
            store.share_of(4, mailbox, t).await.unwrap(),
            4,
            "no instance: all"
        );
        // The mailbox's holder takes the remainder last; then another lease, or none held.
        assert!(a.acquire_lease(mailbox, "a", t, t + secs(5)).await.unwrap());
        assert_eq!(a.share_of(3, mailbox, t).await.unwrap(), 1);
        assert_eq!(b.share_of(3, mailbox, t).await.unwrap(), 2);
        assert_eq!(a.share_of(3, "catch-up", t).await.unwrap(), 2);
        assert_eq!(
            a.share_of(3, mailbox, t + secs(6)).await.unwrap(),
            2,
            "lease over"
        );
        assert_eq!(a.share_of(4, mailbox, t).await.unwrap(), 2, "even");
        // b's heartbeat runs out: a has the whole budget.
        assert_eq!(a.share_of(4, mailbox, t + secs(11)).await.unwrap(), 4);
        store.mark_stopped(&["b".to_string()], t).await.unwrap();
        assert_eq!(a.share_of(4, mailbox, t).await.unwrap(), 4);
    }

    #[tokio::test]
    async fn a_lease_is_held_by_another_only_while_its_live_holder_keeps_it() {
        let (_dir, store) = temp_store().await;
        let t = now();
        register_a_and_b(&store, t).await;
        let (a, b) = (
            store.clone().claiming_as("a"),
            store.clone().claiming_as("b"),
        );
        assert!(
            !b.held_by_another("catch-up", t).await.unwrap(),
            "nobody holds it"
        );
        assert!(a
            .acquire_lease("catch-up", "a", t, t + secs(10))
            .await
            .unwrap());
        assert!(b.held_by_another("catch-up", t).await.unwrap());
        assert!(
            store.held_by_another("catch-up", t).await.unwrap(),
            "seen from no instance"
        );
        assert!(
            !a.held_by_another("catch-up", t).await.unwrap(),
            "not by itself"
        );
        assert!(
            !b.held_by_another("mailbox", t).await.unwrap(),
            "another lease"
        );
        // Its lease ran out, or its holder died (heartbeat out at t + 10 s), or let go.
        assert!(!b.held_by_another("catch-up", t + secs(10)).await.unwrap());
        assert!(a
            .acquire_lease("catch-up", "a", t, t + secs(60))
            .await
            .unwrap());
        assert!(b.held_by_another("catch-up", t + secs(9)).await.unwrap());
        assert!(!b.held_by_another("catch-up", t + secs(11)).await.unwrap());
        a.release_lease("catch-up", "a").await.unwrap();
        assert!(!b.held_by_another("catch-up", t).await.unwrap());
    }

    #[tokio::test]
    async fn one_live_instance_holds_a_lease_until_it_dies_or_lets_go() {
        let (_dir, store) = temp_store().await;
        let t = now();
        register_a_and_b(&store, t).await;
        assert!(takes(&store, "a", 0).await);
        // b is refused while a is alive and renews; a renews as often as it likes.
        assert!(!takes(&store, "b", 1).await);
        assert!(takes(&store, "a", 3).await);
        assert!(beat(&store, "a", 3, 10).await);
        assert!(beat(&store, "b", 3, 17).await);
        assert!(!takes(&store, "b", 12).await);
        // a's heartbeat stops: once its alive_until (t+13) passes, b takes over.
        assert!(takes(&store, "b", 13).await);
        assert!(!takes(&store, "a", 14).await);
        let leases = store.leases().await.unwrap();
        assert_eq!(leases.len(), 1);
        assert_eq!(
            (leases[0].holder.as_str(), leases[0].since),
            ("b", Some(t + secs(13)))
        );
        // A clean stop: b lets go and records its stop; a newcomer takes over at once.
        store.release_lease("mailbox", "b").await.unwrap();
        store
            .mark_stopped(&["b".into()], t + secs(15))
            .await
            .unwrap();
        store
            .register_instance(&instance("c"), t + secs(15), t + secs(25))
            .await
            .unwrap();
        assert!(takes(&store, "c", 15).await);
        // A stopped instance's heartbeat is refused: it must not act as alive.
        assert!(!beat(&store, "b", 16, 10).await);
    }

    #[tokio::test]
    async fn a_stopped_holder_loses_its_lease_before_it_runs_out() {
        let (_dir, store) = temp_store().await;
        let t = now();
        store
            .register_instance(&instance("a"), t, t + secs(10))
            .await
            .unwrap();
        store
            .register_instance(&instance("b"), t, t + secs(10))
            .await
            .unwrap();
        assert!(store
            .acquire_lease("mailbox", "a", t, t + secs(10))
            .await
            .unwrap());
        store
            .mark_stopped(&["a".into()], t + secs(1))
            .await
            .unwrap();
        assert!(store
            .acquire_lease("mailbox", "b", t + secs(1), t + secs(11))
            .await
            .unwrap());
        assert_eq!(
            store.unstopped_on("host-a").await.unwrap(),
            vec![("b".to_string(), 4242)]
        );
        // Stopped instances are forgotten after a while; running ones never.
        store.forget_stopped_before(t + secs(2)).await.unwrap();
        let left: Vec<String> = store
            .instances(10)
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(left, vec!["b".to_string()]);
    }

    #[tokio::test]
    async fn a_dead_holders_claims_are_free_at_once_and_a_live_ones_are_not() {
        let (_dir, store) = temp_store().await;
        let t = now();
        let a = store.clone().claiming_as("a");
        let b = store.clone().claiming_as("b");
        a.register_instance(&instance("a"), t, t + secs(10))
            .await
            .unwrap();
        b.register_instance(&instance("b"), t, t + secs(30))
            .await
            .unwrap();
        for i in 0..3 {
            queue(&store, &format!("m{i}@x"), "ana@example.test")
                .await
                .unwrap();
        }
        let lease = Duration::from_secs(125);
        assert_eq!(a.claim_due(t, 2, lease).await.unwrap().len(), 2);
        // b finds only the third while a lives (and would until the lease ends at t+125).
        assert_eq!(b.claim_due(t + secs(5), 10, lease).await.unwrap().len(), 1);
        assert!(b
            .claim_due(t + secs(9), 10, lease)
            .await
            .unwrap()
            .is_empty());
        // The sender wakes when a's claims end, at a's alive_until, not at their lease's end.
        assert_eq!(store.next_due().await.unwrap(), Some(t + secs(10)));
        // a's heartbeat ran out at t+10: its two claims are b's at once.
        let taken = b.claim_due(t + secs(10), 10, lease).await.unwrap();
        assert_eq!(taken.len(), 2);
        // A claim without a holder (a process without heartbeat) keeps its lease.
        let anonymous = store.clone();
        queue(&store, "m9@x", "ana@example.test").await.unwrap();
        assert_eq!(
            anonymous
                .claim_due(t + secs(10), 10, lease)
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(b
            .claim_due(t + secs(20), 10, lease)
            .await
            .unwrap()
            .is_empty());
        // Every lease has run out by t+136 (the anonymous one and b's own).
        assert_eq!(
            b.claim_due(t + secs(136), 10, lease).await.unwrap().len(),
            4
        );
    }
}
