//! What `folio status` reads besides the instances: the outbox's backlog and its latest
//! failures, and the quarantine's size.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{parse_ts, Store, StoreError};

/// The outbox at a glance.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct OutboxSummary {
    /// Mails waiting to be sent (due or retrying later).
    pub pending: i64,
    /// When the oldest of them was queued.
    pub oldest_pending_at: Option<DateTime<Utc>>,
    /// Mails given up on (refused, or retried past `smtp.max_age`).
    pub failed: i64,
    /// Messages kept in quarantine.
    pub quarantined: i64,
}

/// A mail that failed, latest first: to whom, why, when it was queued.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MailFailure {
    pub to: String,
    pub error: String,
    pub status: String,
    pub queued_at: Option<DateTime<Utc>>,
}

impl Store {
    /// The outbox's backlog and failures, and the quarantine's size.
    pub async fn outbox_summary(&self) -> Result<OutboxSummary, StoreError> {
        let r = sqlx::query(
            "SELECT (SELECT count(*) FROM outbox WHERE status = 'pending'),
                    (SELECT min(created_at) FROM outbox WHERE status = 'pending'),
                    (SELECT count(*) FROM outbox WHERE status = 'failed'),
                    (SELECT count(*) FROM quarantine)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(OutboxSummary {
            pending: r.get(0),
            oldest_pending_at: r.get::<Option<String>, _>(1).as_deref().and_then(parse_ts),
            failed: r.get(2),
            quarantined: r.get(3),
        })
    }

    /// The latest `limit` mails with an error: given up on, or pending a retry.
    pub async fn recent_mail_failures(&self, limit: u32) -> Result<Vec<MailFailure>, StoreError> {
        let rows = sqlx::query(
            "SELECT to_address, last_error, status, created_at FROM outbox
             WHERE last_error IS NOT NULL AND status IN ('pending', 'failed')
             ORDER BY id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| MailFailure {
                to: r.get(0),
                error: r.get(1),
                status: r.get(2),
                queued_at: r.get::<Option<String>, _>(3).as_deref().and_then(parse_ts),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::store::test_support::{now, queue, temp_store};
    use crate::store::SendResult;

    #[tokio::test]
    async fn the_summary_counts_the_backlog_and_lists_failures_latest_first() {
        let (_dir, store) = temp_store().await;
        assert_eq!(
            store.outbox_summary().await.unwrap(),
            OutboxSummary::default()
        );
        for i in 0..3 {
            queue(&store, &format!("m{i}@x"), &format!("u{i}@example.test"))
                .await
                .unwrap();
        }
        let claimed = store
            .claim_due(now(), 10, std::time::Duration::from_secs(60))
            .await
            .unwrap();
        let results = vec![
            (claimed[0].id, SendResult::Sent),
            (
                claimed[1].id,
                SendResult::Rejected {
                    error: "550 no such user".into(),
                },
            ),
            (
                claimed[2].id,
                SendResult::Failed {
                    error: "451 try later".into(),
                    retry_at: now(),
                },
            ),
        ];
        store.record_results(&results, now()).await.unwrap();
        let summary = store.outbox_summary().await.unwrap();
        assert_eq!(
            (summary.pending, summary.failed, summary.quarantined),
            (1, 1, 0)
        );
        assert!(summary.oldest_pending_at.is_some());
        let failures = store.recent_mail_failures(10).await.unwrap();
        let seen: Vec<(&str, &str)> = failures
            .iter()
            .map(|f| (f.to.as_str(), f.status.as_str()))
            .collect();
        assert_eq!(
            seen,
            vec![
                ("u2@example.test", "pending"),
                ("u1@example.test", "failed")
            ]
        );
    }
}
