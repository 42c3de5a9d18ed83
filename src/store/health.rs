//! Read-only queries for the daemon's health and metrics (`/healthz`, `/metrics`): how much mail
//! waits in the outbox and since when. Cheap (one aggregate over the `outbox_due` index's
//! `status`), so it runs on every scrape, and doubles as the check that the database answers.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{parse_ts, Store, StoreError};

/// The outbox as a health check sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxHealth {
    /// Mails waiting to be sent (pending, including those waiting for a retry).
    pub depth: i64,
    /// When the oldest of them was queued; `None` when none waits.
    pub oldest_queued_at: Option<DateTime<Utc>>,
}

impl Store {
    /// How many mails wait in the outbox, and since when the oldest.
    pub async fn outbox_health(&self) -> Result<OutboxHealth, StoreError> {
        let r =
            sqlx::query("SELECT count(*), min(created_at) FROM outbox WHERE status = 'pending'")
                .fetch_one(&self.pool)
                .await?;
        Ok(OutboxHealth {
            depth: r.get(0),
            oldest_queued_at: r.get::<Option<String>, _>(1).as_deref().and_then(parse_ts),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::test_support::{now, queue, temp_store};
    use crate::store::SendResult;

    #[tokio::test]
    async fn the_outbox_depth_counts_pending_mail_and_its_oldest_queue_time() {
        let (_dir, store) = temp_store().await;
        assert_eq!(
            store.outbox_health().await.unwrap(),
            OutboxHealth::default()
        );
        queue(&store, "<a@x>", "ana@example.test").await.unwrap();
        queue(&store, "<b@x>", "bob@example.test").await.unwrap();
        let h = store.outbox_health().await.unwrap();
        assert_eq!(h.depth, 2);
        assert_eq!(h.oldest_queued_at, Some(now()));
        // A sent mail no longer waits.
        let claimed = store
            .claim_due(now(), 1, std::time::Duration::from_secs(300))
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        store
            .record_results(&[(claimed[0].id, SendResult::Sent)], now())
            .await
            .unwrap();
        assert_eq!(store.outbox_health().await.unwrap().depth, 1);
    }
}
