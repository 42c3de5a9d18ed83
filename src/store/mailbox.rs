//! Each IMAP folder's recorded state, and the analysis attempts of inbound messages (what lets
//! a message that crashed folio twice be quarantined instead of crashing it again).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::statement::{built, list_query, ROWS_PER_STATEMENT};
use super::{parse_ts, ts, Store, StoreError};

impl Store {
    /// What is recorded about a folder: `(uidvalidity, baseline_uid, first_start_at)`.
    pub async fn mailbox_state(
        &self,
        folder: &str,
    ) -> Result<Option<(u32, u32, Option<DateTime<Utc>>)>, StoreError> {
        let row = sqlx::query(
            "SELECT uidvalidity, baseline_uid, first_start_at FROM mailbox_state WHERE folder = $1",
        )
        .bind(folder)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| {
            (
                r.get::<i64, _>(0) as u32,
                r.get::<i64, _>(1) as u32,
                r.get::<Option<String>, _>(2).as_deref().and_then(parse_ts),
            )
        }))
    }

    /// Records a folder's UIDVALIDITY and baseline; `first_start_at` is kept once set.
    pub async fn set_mailbox_state(
        &self,
        folder: &str,
        uidvalidity: u32,
        baseline_uid: u32,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO mailbox_state (folder, uidvalidity, baseline_uid, updated_at, first_start_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (folder) DO UPDATE SET uidvalidity = excluded.uidvalidity,
               baseline_uid = excluded.baseline_uid, updated_at = excluded.updated_at",
        )
        .bind(folder)
        .bind(uidvalidity as i64)
        .bind(baseline_uid as i64)
        .bind(ts(now))
        .bind(ts(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// For each source, how many attempts at its analysis started and never finished (0 for a
    /// message seen for the first time).
    pub async fn unfinished_attempts(&self, sources: &[&str]) -> Result<Vec<u32>, StoreError> {
        let mut before = HashMap::new();
        for chunk in sources.chunks(ROWS_PER_STATEMENT) {
            let rows = list_query(
                "SELECT source, attempts FROM analysis_attempts WHERE source IN (",
                chunk,
                ")",
                self.backend,
            )
            .fetch_all(&self.attempts)
            .await?;
            for r in rows {
                before.insert(r.get::<String, _>(0), r.get::<i64, _>(1));
            }
        }
        Ok(sources
            .iter()
            .map(|s| {
                before
                    .get(*s)
                    .map_or(0, |n| u32::try_from(*n).unwrap_or(u32::MAX))
            })
            .collect())
    }

    /// Records that the analysis of each source starts now. Written with `synchronous =
    /// NORMAL`: the row survives a crash of the process, which is what it is for (a power loss
    /// only forgets an attempt).
    pub async fn begin_attempts(
        &self,
        sources: &[&str],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // One row per source: PostgreSQL refuses an upsert that meets one row twice (the same
        // message delivered twice in one batch).
        let mut seen = std::collections::HashSet::with_capacity(sources.len());
        let unique: Vec<&str> = sources
            .iter()
            .copied()
            .filter(|s| seen.insert(*s))
            .collect();
        let mut tx = self.attempts.begin().await?;
        for chunk in unique.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO analysis_attempts (source, attempts, first_at, last_at) VALUES {}
                 ON CONFLICT (source) DO UPDATE SET attempts = analysis_attempts.attempts + 1, last_at = excluded.last_at",
                vec!["(?, 1, ?, ?)"; chunk.len()].join(", ")
            );
            let mut query = built(&sql, self.backend);
            for s in chunk {
                query = query.bind(*s).bind(ts(now)).bind(ts(now));
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Forgets the attempts of messages that were stored or quarantined.
    pub async fn end_attempts(&self, sources: &[&str]) -> Result<(), StoreError> {
        for chunk in sources.chunks(ROWS_PER_STATEMENT) {
            list_query(
                "DELETE FROM analysis_attempts WHERE source IN (",
                chunk,
                ")",
                self.backend,
            )
            .execute(&self.attempts)
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::store::test_support::{now, temp_store};

    #[tokio::test]
    async fn mailbox_state_round_trips_and_keeps_the_first_start() {
        let (_dir, store) = temp_store().await;
        assert_eq!(store.mailbox_state("INBOX").await.unwrap(), None);
        store
            .set_mailbox_state("INBOX", 7, 120, now())
            .await
            .unwrap();
        assert_eq!(
            store.mailbox_state("INBOX").await.unwrap(),
            Some((7, 120, Some(now())))
        );
        // A new UIDVALIDITY later: the baseline moves, the first start stays.
        let later = now() + chrono::Duration::days(3);
        store.set_mailbox_state("INBOX", 8, 5, later).await.unwrap();
        assert_eq!(
            store.mailbox_state("INBOX").await.unwrap(),
            Some((8, 5, Some(now())))
        );
        assert_eq!(store.mailbox_state("Sent").await.unwrap(), None);
    }

    /// The next batch's attempts are recorded while the batch before is being stored: on
    /// SQLite a write to the database file would wait for that batch's commit (its write
    /// lock), up to `busy_timeout` (30 s); the attempts file has a lock of its own.
    #[tokio::test]
    async fn attempts_are_recorded_while_a_batch_holds_the_write_lock() {
        let (_dir, store) = temp_store().await;
        let mut batch = store.begin().await.unwrap();
        batch
            .quarantine("imap:INBOX:7:9", "test", b"x", now())
            .await
            .unwrap();
        let recorded = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            store.begin_attempts(&["imap:INBOX:7:1"], now()),
        )
        .await;
        assert!(
            matches!(recorded, Ok(Ok(()))),
            "the attempt waited for the batch: {recorded:?}"
        );
        batch.commit().await.unwrap();
        assert_eq!(
            store
                .unfinished_attempts(&["imap:INBOX:7:1"])
                .await
                .unwrap(),
            [1]
        );
    }

    #[test]
    fn sqlites_attempts_live_beside_the_database_and_postgres_keeps_its_own() {
        use crate::store::attempts_url;
        assert_eq!(
            attempts_url("sqlite:///var/lib/folio/folio.db"),
            "sqlite:///var/lib/folio/folio.db-attempts"
        );
        assert_eq!(
            attempts_url("sqlite://folio.db?mode=rwc"),
            "sqlite://folio.db-attempts?mode=rwc"
        );
        let pg = "postgres://folio@127.0.0.1:5432/folio";
        assert_eq!(attempts_url(pg), pg);
    }

    #[tokio::test]
    async fn attempts_count_up_until_ended() {
        let (_dir, store) = temp_store().await;
        let (a, b) = ("imap:INBOX:7:1", "imap:INBOX:7:2");
        assert_eq!(store.unfinished_attempts(&[a, b]).await.unwrap(), [0, 0]);
        store.begin_attempts(&[a, b], now()).await.unwrap();
        store.begin_attempts(&[a], now()).await.unwrap();
        assert_eq!(store.unfinished_attempts(&[a, b]).await.unwrap(), [2, 1]);
        // Asked in another order, with a source never seen.
        assert_eq!(
            store
                .unfinished_attempts(&[b, "imap:INBOX:7:3", a])
                .await
                .unwrap(),
            [1, 0, 2]
        );
        store.end_attempts(&[a]).await.unwrap();
        assert_eq!(store.unfinished_attempts(&[a, b]).await.unwrap(), [0, 1]);
        // Sources in more than one statement's worth.
        let many: Vec<String> = (0..ROWS_PER_STATEMENT + 3)
            .map(|i| format!("imap:INBOX:9:{i}"))
            .collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        store.begin_attempts(&many, now()).await.unwrap();
        let counts = store.unfinished_attempts(&many).await.unwrap();
        assert!(counts.iter().all(|n| *n == 1), "{counts:?}");
        store.end_attempts(&many).await.unwrap();
        assert_eq!(
            store
                .unfinished_attempts(&many)
                .await
                .unwrap()
                .iter()
                .sum::<u32>(),
            0
        );
    }
}
