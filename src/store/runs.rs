//! Reports sent on a schedule (`scheduled_runs`): a run of a job for a period (the digest of
//! 2026-12-07) is claimed in the transaction that queues its mail, so it happens once.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::batch::{Batch, OutboxRow};
use super::plan::{addressing, Writing};
use super::queries::{ticket_ref, TICKET_REF_COLUMNS, TICKET_REF_LEN};
use super::{parse_ts, ts, Store, StoreError};
use crate::desk::decide::Reply;
use crate::desk::digest::OpenTicket;

impl Batch {
    /// Claims the run of `job` for `period`; `false` when it was done already (then the
    /// caller queues nothing).
    pub async fn claim_run(
        &mut self,
        job: &str,
        period: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO scheduled_runs (job, period, done_at) VALUES ($1, $2, $3)
             ON CONFLICT (job, period) DO NOTHING",
        )
        .bind(job)
        .bind(period)
        .bind(ts(now))
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Queues mails about no single ticket (reports), each with its own Message-ID.
    pub async fn queue_reports(
        &mut self,
        replies: &[Reply],
        how: &Writing<'_>,
    ) -> Result<(), StoreError> {
        let rows: Vec<OutboxRow> = replies
            .iter()
            .map(|reply| {
                let (message_id, reply_to) = addressing(how, reply, None);
                OutboxRow {
                    ticket_id: None,
                    reply,
                    message_id,
                    reply_to,
                    attachments_of: None,
                    context: reply.context_json(None),
                }
            })
            .collect();
        self.insert_outbox(&rows, how.now).await
    }
}

impl Store {
    /// Whether the run of `job` for `period` was done (a cheap look before building it).
    pub async fn run_done(&self, job: &str, period: &str) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM scheduled_runs WHERE job = $1 AND period = $2",
        )
        .bind(job)
        .bind(period)
        .fetch_one(&self.pool)
        .await?
            > 0)
    }

    /// Every open or waiting ticket with an assignee, with when its next service-level
    /// breach falls due.
    pub async fn open_tickets(&self) -> Result<Vec<OpenTicket>, StoreError> {
        let sql = format!(
            "SELECT {TICKET_REF_COLUMNS},
               (SELECT min(d.due_at) FROM due_items d
                WHERE d.ticket_id = t.id AND d.status = 'pending'
                  AND d.kind IN ('sla_response_breach', 'sla_resolution_breach'))
             FROM tickets t WHERE t.status IN ('open', 'pending') AND t.assignee IS NOT NULL"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| OpenTicket {
                ticket: ticket_ref(r),
                next_breach: r
                    .get::<Option<String>, _>(TICKET_REF_LEN)
                    .as_deref()
                    .and_then(parse_ts),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use crate::store::test_support::{mail, new_ticket, now, open_ticket, temp_store};

    #[tokio::test]
    async fn a_run_is_claimed_once_per_period() {
        let (_dir, store) = temp_store().await;
        let mut tx = store.begin().await.unwrap();
        assert!(tx
            .claim_run("technician_digest", "2026-12-07", now())
            .await
            .unwrap());
        assert!(!tx
            .claim_run("technician_digest", "2026-12-07", now())
            .await
            .unwrap());
        assert!(tx
            .claim_run("technician_digest", "2026-12-08", now())
            .await
            .unwrap());
        assert!(tx
            .claim_run("weekly_summary", "2026-12-07", now())
            .await
            .unwrap());
        tx.commit().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        assert!(!tx
            .claim_run("technician_digest", "2026-12-08", now())
            .await
            .unwrap());
        tx.rollback().await;
    }

    #[tokio::test]
    async fn open_tickets_are_the_assigned_active_ones() {
        let (_dir, store) = temp_store().await;
        let assigned = new_ticket(
            "ana@example.test",
            "Printer",
            Some("tech1@example.test"),
            &[],
        );
        let unassigned = new_ticket("bob@example.test", "Scanner", None, &[]);
        let m1 = mail("a@x.test", "ana@example.test", "Printer", "x");
        let m2 = mail("b@x.test", "bob@example.test", "Scanner", "y");
        let a = open_ticket(&store, "HD-1", &assigned, &m1, "r1@x").await;
        open_ticket(&store, "HD-2", &unassigned, &m2, "r2@x").await;
        let open = store.open_tickets().await.unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].ticket.id, a.ticket_id);
        assert_eq!(open[0].next_breach, None);
    }
}
