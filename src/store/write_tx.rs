//! The write transaction under every multi-statement write (SQLite's `BEGIN IMMEDIATE`,
//! PostgreSQL's `BEGIN`).

use sqlx::pool::PoolConnection;
use sqlx::AnyConnection;
use sqlx::{Any, AnyPool};

use super::{Backend, StoreError};

/// PostgreSQL's stand-in for `BEGIN IMMEDIATE`: a transaction-scoped advisory lock, one key
/// for every writer of this database (the bytes of "folio" as a number).
const WRITER_LOCK: &str = "SELECT pg_advisory_xact_lock(439956040047)";

/// A pooled connection inside a transaction, which goes back to the pool only in a clean
/// state: committed, or rolled back explicitly.
///
/// Why not sqlx's `Transaction`: after an error that makes SQLite roll the transaction back by
/// itself (SQLITE_FULL on a full disk, SQLITE_IOERR), sqlx's queued rollback fails ("no
/// transaction is active"), its transaction depth stays at 1, and the connection goes back to
/// the pool poisoned: every later `BEGIN` on it fails with "attempted to call begin_with at
/// non-zero transaction depth", hiding the real cause even after the disk has room again.
/// Here a failed `COMMIT` or an unfinished batch is rolled back explicitly, and a connection
/// whose rollback fails for any other reason is closed (the pool opens a fresh one; closing a
/// SQLite connection discards its open transaction).
pub(super) struct WriteTx {
    /// `None` once committed or rolled back.
    conn: Option<PoolConnection<Any>>,
    backend: Backend,
}

impl WriteTx {
    pub(super) async fn begin(pool: &AnyPool, backend: Backend) -> Result<WriteTx, StoreError> {
        let mut conn = pool.acquire().await?;
        let begin: &[&str] = match backend {
            Backend::Sqlite => &["BEGIN IMMEDIATE"],
            // One writer at a time, as on SQLite: the rules read a ticket and then write what
            // follows from it (ingest, the sweep, a command), and several instances must not
            // interleave those. The lock ends with the transaction. Claims and delivery marks
            // run outside it, row by row.
            Backend::Postgres => &["BEGIN", WRITER_LOCK],
        };
        for statement in begin {
            if let Err(e) = sqlx::query(*statement).execute(&mut *conn).await {
                rollback_or_close(conn).await;
                return Err(e.into());
            }
        }
        Ok(WriteTx {
            conn: Some(conn),
            backend,
        })
    }

    /// The engine, for the few statements whose text differs.
    pub(super) fn backend(&self) -> Backend {
        self.backend
    }

    fn conn(&mut self) -> &mut AnyConnection {
        match self.conn.as_mut() {
            Some(c) => c,
            // `commit` and `rollback` consume the WriteTx: no statement can follow them.
            None => unreachable!("statement on a finished transaction"),
        }
    }

    /// Commits; on failure the transaction is rolled back and the COMMIT's error (the real
    /// cause, e.g. "database or disk is full") returned.
    pub(super) async fn commit(mut self) -> Result<(), StoreError> {
        let Some(mut conn) = self.conn.take() else {
            return Ok(());
        };
        match sqlx::query("COMMIT").execute(&mut *conn).await {
            Ok(_) => Ok(()),
            Err(e) => {
                rollback_or_close(conn).await;
                Err(e.into())
            }
        }
    }

    /// Rolls back, waiting for it (dropping a WriteTx does the same in the background).
    pub(super) async fn rollback(mut self) {
        if let Some(conn) = self.conn.take() {
            rollback_or_close(conn).await;
        }
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        // An error (`?`) or a cancelled future left the transaction open. The connection is
        // owned by the task until it is clean, so nothing else can begin on it meanwhile.
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(rollback_or_close(conn));
            }
            Err(_) => conn.close_on_drop(),
        }
    }
}

/// Rolls a connection's transaction back; if that fails, closes the connection instead of
/// returning it to the pool.
async fn rollback_or_close(mut conn: PoolConnection<Any>) {
    match sqlx::query("ROLLBACK").execute(&mut *conn).await {
        Ok(_) => {}
        // SQLite already rolled back by itself (it does after SQLITE_FULL, SQLITE_IOERR, …):
        // the connection is clean.
        Err(sqlx::Error::Database(d)) if d.message().contains("no transaction is active") => {}
        Err(error) => {
            tracing::warn!(%error, "database: rollback failed; closing that connection");
            if let Err(error) = conn.close().await {
                tracing::warn!(%error, "database: closing the connection failed");
            }
        }
    }
}

impl std::ops::Deref for WriteTx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        match self.conn.as_ref() {
            Some(c) => c,
            None => unreachable!("statement on a finished transaction"),
        }
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        self.conn()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use crate::store::test_support::{
        apply_cap, now, page_count, queue, store_with_page_cap, temp_store,
    };
    use crate::store::{Store, StoreError};

    /// One batch's writes: a quarantined message of `size` bytes.
    async fn write_batch(store: &Store, source: &str, size: usize) -> Result<(), StoreError> {
        let mut tx = store.begin().await?;
        tx.quarantine(source, "test", &vec![b'x'; size], now())
            .await?;
        tx.commit().await
    }

    #[tokio::test]
    async fn a_dropped_batch_leaves_nothing_and_the_next_one_commits() {
        let (_dir, store) = temp_store().await;
        let mut tx = store.begin().await.unwrap();
        tx.quarantine("a", "test", b"x", now()).await.unwrap();
        drop(tx);
        queue(&store, "m1@x", "ana@example.test").await.unwrap();
        let c = store.counts().await.unwrap();
        assert_eq!((c.quarantined, c.outbox_pending), (0, 1));
    }

    #[tokio::test]
    async fn a_full_disk_leaves_a_clean_connection_and_the_retry_commits_once_space_is_freed() {
        let dir = tempfile::tempdir().unwrap();
        let pages = Arc::new(AtomicU32::new(1 << 30));
        let store = store_with_page_cap(dir.path(), pages.clone()).await;
        pages.store(page_count(&store).await + 4, Ordering::SeqCst);
        apply_cap(&store, &pages).await;

        let first = write_batch(&store, "a", 1 << 20).await.unwrap_err();
        assert!(first.to_string().contains("full"), "{first}");
        // Still full: the retry reports the real cause again, not a leftover transaction.
        let again = write_batch(&store, "a", 1 << 20).await.unwrap_err();
        assert!(again.to_string().contains("full"), "{again}");

        pages.store(1 << 30, Ordering::SeqCst);
        apply_cap(&store, &pages).await;
        write_batch(&store, "a", 1 << 20).await.unwrap();
        assert_eq!(store.counts().await.unwrap().quarantined, 1);
    }
}
