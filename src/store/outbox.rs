//! The sender's side of the outbox: claiming due mail under a lease, releasing it, recording
//! delivery results, the stored attachments a mail carries, and the addresses that bounce.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use sqlx::{Any, Row};

use super::instances::alive;
use super::statement::{bind_each, list_query, list_statement, ListQuery, ROWS_PER_STATEMENT};
use super::write_tx::WriteTx;
use super::{parse_ts, ts, Backend, Store, StoreError};
use crate::desk::policy::cap_key;

/// A file sent along (a stored attachment of an inbound message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileAttachment {
    pub name: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

/// A queued mail due for sending.
#[derive(Debug, Clone)]
pub struct OutboxMail {
    pub id: i64,
    pub template: String,
    pub language: String,
    pub to: String,
    pub message_id: String,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub context: serde_json::Value,
    pub auto_submitted: String,
    pub attempts: i64,
    pub created_at: DateTime<Utc>,
    /// Reply-To (a technician's tokenised address), if any.
    pub reply_to: Option<String>,
    /// The stored message whose attachments go with this mail.
    pub attachments_of: Option<i64>,
    /// The ticket it belongs to, if any.
    pub ticket_id: Option<i64>,
}

/// A mail the sender itself queues (a technician notice about a mail that could not be
/// delivered).
#[derive(Debug, Clone)]
pub struct NewMail {
    pub ticket_id: Option<i64>,
    pub template: String,
    pub language: String,
    pub to: String,
    pub message_id: String,
    pub references: Vec<String>,
    pub context: serde_json::Value,
    pub reply_to: Option<String>,
}

/// The result of one delivery attempt.
#[derive(Debug, Clone)]
pub enum SendResult {
    Sent,
    /// Temporary failure: try again at `retry_at`.
    Failed {
        error: String,
        retry_at: DateTime<Utc>,
    },
    /// Permanent failure (the server refused the mail with a 5xx): never retried.
    Rejected {
        error: String,
    },
    /// Temporary failures for longer than `smtp.max_age`: marked failed, never retried. The
    /// first time only (the row is still pending), `event` goes into its ticket's history and
    /// `notice` is queued, so a mail is reported once however often its result is recorded.
    Expired {
        error: String,
        ticket_id: Option<i64>,
        event: String,
        notice: Option<Box<NewMail>>,
    },
}

impl Store {
    /// Gives every outbox row without one its `cap_key` (the per-address cap's key): rows queued
    /// before migration 0013 and rows imported from an older export. Returns how many. A few
    /// hundred rows per transaction, so a large old outbox does not hold the write lock long.
    pub(super) async fn fill_cap_keys(&self) -> Result<u64, StoreError> {
        let mut filled = 0;
        loop {
            let mut batch = self.begin().await?;
            let rows =
                sqlx::query("SELECT id, to_address FROM outbox WHERE cap_key IS NULL LIMIT $1")
                    .bind(ROWS_PER_STATEMENT as i64)
                    .fetch_all(&mut *batch.tx)
                    .await?;
            if rows.is_empty() {
                batch.rollback().await;
                return Ok(filled);
            }
            for r in &rows {
                sqlx::query("UPDATE outbox SET cap_key = $1 WHERE id = $2")
                    .bind(cap_key(&r.get::<String, _>(1)))
                    .bind(r.get::<i64, _>(0))
                    .execute(&mut *batch.tx)
                    .await?;
            }
            filled += rows.len() as u64;
            batch.commit().await?;
        }
    }

    /// Claims up to `limit` pending mails due at `now` for `lease`, longest due first. A claimed mail
    /// is not handed to any other sender (in this or another process) until the lease ends, so
    /// it is sent by one sender only; a crashed sender's claims expire.
    pub async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<OutboxMail>, StoreError> {
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let free = free_to_claim();
        // Mail queued to an address that hard-bounced since is not sent (it would bounce
        // again); the row says why. Only looked for when some address is failing: the UPDATE
        // is planned from the outbox's statistics, which lag behind a fast-growing outbox, and
        // with a plan that walks the pending mail it cost ~18 ms a claim on PostgreSQL
        // (docs/benchmarks.md §8b); from the failing addresses it walks `outbox_recipient`.
        let failing: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM address_health WHERE failing_until > $1 LIMIT 1")
                .bind(ts(now))
                .fetch_optional(&self.marks)
                .await?;
        if failing.is_some() {
            sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE outbox SET status = 'failed',
               last_error = 'not sent: the address hard-bounced recently (limits.bounce_suppression)'
             WHERE status = 'pending' AND {free}
               AND to_address IN (SELECT email FROM address_health WHERE failing_until > $1)"
        )))
        .bind(ts(now))
        .bind(ts(now))
        .execute(&self.marks)
        .await?;
        }
        let rows = sqlx::query(sqlx::AssertSqlSafe(claim_statement(self.backend)))
            .bind(ts(until))
            .bind(ts(now))
            .bind(limit as i64)
            .bind(self.instance.as_deref())
            .fetch_all(&self.marks)
            .await?;
        let mut mails: Vec<OutboxMail> = rows.iter().map(outbox_mail).collect();
        mails.sort_by_key(|m| m.id);
        Ok(mails)
    }

    /// Clears the lease of claimed mails that were not started (they may be claimed at once).
    pub async fn release_claims(&self, ids: &[i64]) -> Result<(), StoreError> {
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            list_query(
                "UPDATE outbox SET lease_until = NULL, claimed_by = NULL WHERE status = 'pending' AND id IN (",
                chunk,
                ")",
                self.backend,
            )
            .execute(&self.marks)
            .await?;
        }
        Ok(())
    }

    /// When the next pending mail falls due, if any.
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        // A claim ends with its lease or, sooner, when its holder's heartbeat runs out.
        let t: Option<String> = sqlx::query_scalar(
            "SELECT min(CASE
                 WHEN o.lease_until IS NULL OR o.lease_until <= o.next_attempt_at
                   THEN o.next_attempt_at
                 WHEN o.claimed_by IS NULL THEN o.lease_until
                 WHEN i.id IS NULL OR i.stopped_at IS NOT NULL OR i.alive_until <= o.next_attempt_at
                   THEN o.next_attempt_at
                 WHEN i.alive_until < o.lease_until THEN i.alive_until
                 ELSE o.lease_until END)
             FROM outbox o LEFT JOIN instances i ON i.id = o.claimed_by
             WHERE o.status = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(t.as_deref().and_then(parse_ts))
    }

    /// Records delivery results in one transaction: the accepted ones with one statement,
    /// failures one by one.
    pub async fn record_results(
        &self,
        results: &[(i64, SendResult)],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if results.is_empty() {
            return Ok(());
        }
        let sent: Vec<i64> = results
            .iter()
            .filter(|(_, r)| matches!(r, SendResult::Sent))
            .map(|(id, _)| *id)
            .collect();
        // The common case, every mail accepted, is one statement (its own transaction).
        if sent.len() == results.len() && sent.len() <= ROWS_PER_STATEMENT {
            mark_sent(&sent, now, self.backend)
                .execute(&self.marks)
                .await?;
            return Ok(());
        }
        let mut tx = WriteTx::begin(&self.marks, self.backend).await?;
        for chunk in sent.chunks(ROWS_PER_STATEMENT) {
            mark_sent(chunk, now, self.backend)
                .execute(&mut *tx)
                .await?;
        }
        for (id, result) in results {
            record_failure(&mut tx, *id, result, now).await?;
        }
        tx.commit().await
    }

    /// Marks an address as failing until `until` (the SMTP server refused it as unknown).
    pub async fn mark_failing(
        &self,
        email: &str,
        until: DateTime<Utc>,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        upsert_failing(&self.marks, email, until, error, now).await
    }

    /// The stored attachments of a message that one mail may carry: in their order, each that
    /// still fits within `max_files` files and `max_bytes` bytes in all. Returns them and how
    /// many stored files were left out (they stay in the database; the notice lists them by
    /// name). Only the chosen files' content is read.
    pub async fn attachments_capped(
        &self,
        message_row: i64,
        max_files: usize,
        max_bytes: u64,
    ) -> Result<(Vec<FileAttachment>, usize), StoreError> {
        let sizes: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT id, length(data) FROM attachments WHERE message_row = $1 AND data IS NOT NULL ORDER BY id",
        )
        .bind(message_row)
        .fetch_all(&self.pool)
        .await?;
        let (chosen, omitted) = choose_within(&sizes, max_files, max_bytes);
        let mut files = Vec::with_capacity(chosen.len());
        for chunk in chosen.chunks(ROWS_PER_STATEMENT) {
            let rows = list_query(
                "SELECT name, content_type, data FROM attachments WHERE id IN (",
                chunk,
                ") ORDER BY id",
                self.backend,
            )
            .fetch_all(&self.pool)
            .await?;
            files.extend(rows.iter().map(|r| FileAttachment {
                name: r.get(0),
                content_type: r.get(1),
                data: r.get(2),
            }));
        }
        Ok((files, omitted))
    }
}

/// A row of `claim_due`'s `RETURNING` list.
fn outbox_mail(r: &AnyRow) -> OutboxMail {
    OutboxMail {
        id: r.get(0),
        template: r.get(1),
        language: r.get(2),
        to: r.get(3),
        message_id: r.get(4),
        in_reply_to: r.get(5),
        references: r
            .get::<String, _>(6)
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        context: serde_json::from_str(&r.get::<String, _>(7)).unwrap_or_default(),
        auto_submitted: r.get(8),
        attempts: r.get(9),
        created_at: parse_ts(&r.get::<String, _>(10)).unwrap_or_default(),
        reply_to: r.get(11),
        attachments_of: r.get(12),
        ticket_id: r.get(13),
    }
}

/// The claim: `$1` the lease's end, `$2` now, `$3` how many, `$4` the claiming instance.
fn claim_statement(backend: Backend) -> String {
    // On PostgreSQL several instances claim at once: SKIP LOCKED passes over the rows another
    // claim is taking (re-checking the rest after it commits), so none is claimed twice.
    // SQLite runs one writer at a time.
    let lock = match backend {
        Backend::Sqlite => "",
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
    };
    format!(
        "UPDATE outbox SET lease_until = $1, claimed_by = $4
         WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= $2
                      AND {free}
                      -- the order of the outbox_due index (status, next_attempt_at, id):
                      -- LIMIT stops early instead of sorting every pending row
                      ORDER BY next_attempt_at, id LIMIT $3 {lock})
         RETURNING id, template, language, to_address, message_id, in_reply_to, references_list,
                   context, auto_submitted, attempts, created_at, reply_to, attachments_of,
                   ticket_id",
        free = free_to_claim()
    )
}

/// Free to claim: never claimed, its lease ran out (`$2` is now), or its holder is dead.
fn free_to_claim() -> String {
    format!(
        "(lease_until IS NULL OR lease_until <= $2
          OR (claimed_by IS NOT NULL AND NOT {}))",
        alive("outbox.claimed_by", "$2")
    )
}

/// Marks the mails `ids` as sent at `now`.
fn mark_sent(ids: &[i64], now: DateTime<Utc>, backend: Backend) -> ListQuery {
    let query = list_statement(
        "UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent_at = $1, last_error = NULL
         WHERE id IN (",
        ids.len(),
        ")",
        backend,
    )
    .bind(ts(now));
    bind_each(query, ids)
}

/// Records one result other than [`SendResult::Sent`] (those are marked together).
async fn record_failure(
    conn: &mut AnyConnection,
    id: i64,
    result: &SendResult,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    match result {
        SendResult::Sent => {}
        SendResult::Rejected { error } => {
            sqlx::query(
                "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = $1 WHERE id = $2",
            )
            .bind(error)
            .bind(id)
            .execute(&mut *conn)
            .await?;
        }
        SendResult::Failed { error, retry_at } => {
            sqlx::query(
                "UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2,
                 lease_until = NULL WHERE id = $3",
            )
            .bind(error)
            .bind(ts(*retry_at))
            .bind(id)
            .execute(&mut *conn)
            .await?;
        }
        SendResult::Expired {
            error,
            ticket_id,
            event,
            notice,
        } => {
            let changed = sqlx::query(
                "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = $1,
                 lease_until = NULL WHERE id = $2 AND status = 'pending'",
            )
            .bind(format!("gave up (smtp.max_age): {error}"))
            .bind(id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if changed > 0 {
                report_given_up(conn, *ticket_id, event, notice.as_deref(), now).await?;
            }
        }
    }
    Ok(())
}

/// The first time a mail is given up on: `event` into its ticket's history, `notice` queued.
async fn report_given_up(
    conn: &mut AnyConnection,
    ticket_id: Option<i64>,
    event: &str,
    notice: Option<&NewMail>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO ticket_events (ticket_id, message_row, kind, actor, detail, created_at)
         VALUES ($1, NULL, 'delivery_failed', NULL, $2, $3)",
    )
    .bind(ticket_id)
    .bind(event)
    .bind(ts(now))
    .execute(&mut *conn)
    .await?;
    if let Some(n) = notice {
        sqlx::query(
            "INSERT INTO outbox (ticket_id, template, language, to_address, message_id,
               in_reply_to, references_list, context, auto_submitted, status,
               next_attempt_at, created_at, reply_to, cap_key)
             VALUES ($1, $2, $3, $4, $5, NULL, $6, $7, 'auto-generated', 'pending', $8, $9, $10,
               $11)",
        )
        .bind(n.ticket_id)
        .bind(&n.template)
        .bind(&n.language)
        .bind(&n.to)
        .bind(&n.message_id)
        .bind(n.references.join(" "))
        .bind(n.context.to_string())
        .bind(ts(now))
        .bind(ts(now))
        .bind(&n.reply_to)
        .bind(cap_key(&n.to))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Records a hard bounce of `email`: not to be mailed until `until`. The one upsert behind
/// [`Store::mark_failing`] (the sender) and [`Batch::mark_failing`](super::Batch::mark_failing)
/// (a bounce read in the mailbox).
pub(super) async fn upsert_failing<'c, E>(
    db: E,
    email: &str,
    until: DateTime<Utc>,
    error: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError>
where
    E: sqlx::Executor<'c, Database = Any>,
{
    sqlx::query(
        "INSERT INTO address_health (email, failing_until, bounces, last_error, updated_at)
         VALUES ($1, $2, 1, $3, $4)
         ON CONFLICT (email) DO UPDATE SET failing_until = excluded.failing_until,
           bounces = address_health.bounces + 1, last_error = excluded.last_error, updated_at = excluded.updated_at",
    )
    .bind(email)
    .bind(ts(until))
    .bind(error)
    .bind(ts(now))
    .execute(db)
    .await?;
    Ok(())
}

/// The addresses not to mail at `now` (they bounced).
pub(super) async fn failing_addresses<'c, E>(
    db: E,
    now: DateTime<Utc>,
) -> Result<HashSet<String>, StoreError>
where
    E: sqlx::Executor<'c, Database = Any>,
{
    let emails: Vec<String> =
        sqlx::query_scalar("SELECT email FROM address_health WHERE failing_until > $1")
            .bind(ts(now))
            .fetch_all(db)
            .await?;
    Ok(emails.into_iter().collect())
}

/// Of `(id, size)` in order, the ids of those that fit within `max_files` and `max_bytes` in
/// all (a file too large to fit is skipped, smaller ones after it may still go), and how many
/// were left out.
fn choose_within(sizes: &[(i64, i64)], max_files: usize, max_bytes: u64) -> (Vec<i64>, usize) {
    let mut chosen = Vec::new();
    let mut bytes = 0u64;
    for &(id, size) in sizes {
        let size = size.max(0) as u64;
        if chosen.len() < max_files && bytes.saturating_add(size) <= max_bytes {
            bytes += size;
            chosen.push(id);
        }
    }
    let omitted = sizes.len() - chosen.len();
    (chosen, omitted)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::inbound::mail::Attachment;
    use crate::store::test_support::{
        apply_cap, mail, now, open_ticket, page_count, query_plan, queue, store_with_page_cap,
        temp_store,
    };

    const LEASE: Duration = Duration::from_secs(60);

    /// `(message_id, status, attempts, last_error)` of every outbox row, in id order.
    async fn outbox_rows(store: &Store) -> Vec<(String, String, i64, Option<String>)> {
        sqlx::query_as("SELECT message_id, status, attempts, last_error FROM outbox ORDER BY id")
            .fetch_all(&store.pool)
            .await
            .unwrap()
    }

    fn ids(mails: &[OutboxMail]) -> Vec<String> {
        mails.iter().map(|m| m.message_id.clone()).collect()
    }

    /// Giving up on a mail after "451 try later": `event` for its history, a notice to tech1
    /// with `context`.
    fn given_up(event: &str, context: serde_json::Value) -> SendResult {
        SendResult::Expired {
            error: "451 try later".into(),
            ticket_id: None,
            event: event.into(),
            notice: Some(Box::new(NewMail {
                ticket_id: None,
                template: "delivery_failed".into(),
                language: "es".into(),
                to: "tech1@example.test".into(),
                message_id: "n1@x".into(),
                references: vec!["m1@x".into()],
                context,
                reply_to: None,
            })),
        }
    }

    #[test]
    fn notice_files_stop_at_either_cap() {
        let sizes = [(1, 400), (2, 700), (3, 100), (4, 0), (5, 50)];
        // Bytes: 700 does not fit after 400 (cap 1000); the smaller ones after it do.
        assert_eq!(choose_within(&sizes, 10, 1000), (vec![1, 3, 4, 5], 1));
        // Files: two at most.
        assert_eq!(choose_within(&sizes, 2, u64::MAX), (vec![1, 2], 3));
        assert_eq!(choose_within(&[], 2, 10), (vec![], 0));
    }

    #[tokio::test]
    async fn a_claimed_mail_is_not_claimed_again_until_its_lease_ends() {
        let (_dir, store) = temp_store().await;
        for id in ["m1@x", "m2@x", "m3@x"] {
            queue(&store, id, "ana@example.test").await.unwrap();
        }
        let first = store.claim_due(now(), 2, LEASE).await.unwrap();
        assert_eq!(ids(&first), ["m1@x", "m2@x"]);
        assert_eq!(first[0].to, "ana@example.test");
        assert_eq!(first[0].references, ["in@example.test"]);
        assert_eq!(first[0].created_at, now());
        let second = store.claim_due(now(), 10, LEASE).await.unwrap();
        assert_eq!(ids(&second), ["m3@x"]);
        assert!(store.claim_due(now(), 10, LEASE).await.unwrap().is_empty());
        // A crashed sender's claims expire with the lease.
        let later = now() + chrono::Duration::seconds(61);
        assert_eq!(
            ids(&store.claim_due(later, 10, LEASE).await.unwrap()),
            ["m1@x", "m2@x", "m3@x"]
        );
    }

    #[tokio::test]
    async fn mail_to_an_address_that_bounced_since_it_was_queued_fails_at_the_claim() {
        let (_dir, store) = temp_store().await;
        queue(&store, "m1@x", "ana@example.test").await.unwrap();
        queue(&store, "m2@x", "bob@example.test").await.unwrap();
        // Nothing fails while no address does.
        let first = store.claim_due(now(), 1, LEASE).await.unwrap();
        assert_eq!(ids(&first), ["m1@x"]);
        store
            .mark_failing(
                "bob@example.test",
                now() + chrono::Duration::days(1),
                "550",
                now(),
            )
            .await
            .unwrap();
        assert!(store.claim_due(now(), 10, LEASE).await.unwrap().is_empty());
        let (status, error): (String, String) =
            sqlx::query_as("SELECT status, last_error FROM outbox WHERE message_id = 'm2@x'")
                .fetch_one(&store.pool)
                .await
                .unwrap();
        assert_eq!(status, "failed");
        assert!(error.contains("hard-bounced"), "{error}");
    }

    #[tokio::test]
    async fn released_claims_can_be_claimed_at_once() {
        let (_dir, store) = temp_store().await;
        queue(&store, "m1@x", "ana@example.test").await.unwrap();
        queue(&store, "m2@x", "ana@example.test").await.unwrap();
        let claimed = store.claim_due(now(), 10, LEASE).await.unwrap();
        store.release_claims(&[claimed[1].id]).await.unwrap();
        assert_eq!(
            ids(&store.claim_due(now(), 10, LEASE).await.unwrap()),
            ["m2@x"]
        );
    }

    #[tokio::test]
    async fn next_due_is_the_earliest_pending_mail_or_its_lease_end() {
        let (_dir, store) = temp_store().await;
        assert_eq!(store.next_due().await.unwrap(), None);
        queue(&store, "m1@x", "ana@example.test").await.unwrap();
        assert_eq!(store.next_due().await.unwrap(), Some(now()));
        store.claim_due(now(), 10, LEASE).await.unwrap();
        assert_eq!(
            store.next_due().await.unwrap(),
            Some(now() + chrono::Duration::seconds(60))
        );
    }

    #[tokio::test]
    async fn results_mark_mail_sent_retried_with_backoff_or_failed() {
        let (_dir, store) = temp_store().await;
        for id in ["sent@x", "retry@x", "refused@x"] {
            queue(&store, id, "ana@example.test").await.unwrap();
        }
        let claimed = store.claim_due(now(), 10, LEASE).await.unwrap();
        let retry_at = now() + chrono::Duration::minutes(5);
        let results = [
            (claimed[0].id, SendResult::Sent),
            (
                claimed[1].id,
                SendResult::Failed {
                    error: "451 busy".into(),
                    retry_at,
                },
            ),
            (
                claimed[2].id,
                SendResult::Rejected {
                    error: "550 no such user".into(),
                },
            ),
        ];
        store.record_results(&results, now()).await.unwrap();
        assert_eq!(
            outbox_rows(&store).await,
            [
                ("sent@x".into(), "sent".into(), 1, None),
                (
                    "retry@x".into(),
                    "pending".into(),
                    1,
                    Some("451 busy".into())
                ),
                (
                    "refused@x".into(),
                    "failed".into(),
                    1,
                    Some("550 no such user".into())
                ),
            ]
        );
        // The retry waits for its time, its lease cleared.
        assert_eq!(store.next_due().await.unwrap(), Some(retry_at));
        assert!(store.claim_due(now(), 10, LEASE).await.unwrap().is_empty());
        let again = store.claim_due(retry_at, 10, LEASE).await.unwrap();
        assert_eq!(ids(&again), ["retry@x"]);
        assert_eq!(again[0].attempts, 1);
        // All accepted: the one-statement path.
        store
            .record_results(&[(again[0].id, SendResult::Sent)], retry_at)
            .await
            .unwrap();
        assert_eq!(
            outbox_rows(&store).await[1],
            ("retry@x".into(), "sent".into(), 2, None)
        );
        let sent_at: Option<String> =
            sqlx::query_scalar("SELECT sent_at FROM outbox WHERE message_id = 'retry@x'")
                .fetch_one(&store.pool)
                .await
                .unwrap();
        assert_eq!(sent_at, Some(ts(retry_at)));
    }

    #[tokio::test]
    async fn a_given_up_mail_is_reported_once() {
        let (_dir, store) = temp_store().await;
        queue(&store, "m1@x", "ana@example.test").await.unwrap();
        let expired = given_up("gave up on m1@x", serde_json::json!({}));
        let results = [(1, expired)];
        store.record_results(&results, now()).await.unwrap();
        store.record_results(&results, now()).await.unwrap();
        assert_eq!(
            outbox_rows(&store).await,
            [
                (
                    "m1@x".into(),
                    "failed".into(),
                    1,
                    Some("gave up (smtp.max_age): 451 try later".into())
                ),
                ("n1@x".into(), "pending".into(), 0, None),
            ]
        );
        let events: Vec<(String, String)> =
            sqlx::query_as("SELECT kind, detail FROM ticket_events")
                .fetch_all(&store.pool)
                .await
                .unwrap();
        assert_eq!(
            events,
            [("delivery_failed".into(), "gave up on m1@x".into())]
        );
    }

    #[tokio::test]
    async fn a_failing_address_counts_its_bounces_and_its_mail_is_not_sent() {
        let (_dir, store) = temp_store().await;
        queue(&store, "m1@x", "gone@example.test").await.unwrap();
        queue(&store, "m2@x", "ana@example.test").await.unwrap();
        let until = now() + chrono::Duration::days(1);
        store
            .mark_failing("gone@example.test", until, "550 unknown", now())
            .await
            .unwrap();
        // The same upsert from a batch (a bounce read in the mailbox) counts up.
        let mut tx = store.begin().await.unwrap();
        tx.mark_failing("gone@example.test", until, "550 still unknown", now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let health: (String, i64, String) = sqlx::query_as(
            "SELECT failing_until, bounces, last_error FROM address_health WHERE email = 'gone@example.test'",
        )
        .fetch_one(&store.pool)
        .await
        .unwrap();
        assert_eq!(health, (ts(until), 2, "550 still unknown".into()));
        assert_eq!(
            failing_addresses(&store.pool, now()).await.unwrap(),
            HashSet::from(["gone@example.test".to_string()])
        );
        assert!(failing_addresses(&store.pool, until)
            .await
            .unwrap()
            .is_empty());

        let claimed = store.claim_due(now(), 10, LEASE).await.unwrap();
        assert_eq!(ids(&claimed), ["m2@x"]);
        let rows = outbox_rows(&store).await;
        assert_eq!(rows[0].1, "failed");
        assert!(
            rows[0].3.as_deref().unwrap().contains("hard-bounced"),
            "{rows:?}"
        );
    }

    #[tokio::test]
    async fn attachments_go_in_order_within_the_caps() {
        let (_dir, store) = temp_store().await;
        let m = mail("in@example.test", "ana@example.test", "Printer", "It jams.");
        let opened = open_ticket(
            &store,
            "2026-000001",
            &crate::store::test_support::new_ticket("ana@example.test", "Printer", None, &[]),
            &m,
            "r1@x",
        )
        .await;
        let file = |name: &str, size: usize| Attachment {
            name: name.into(),
            content_type: "application/octet-stream".into(),
            size: size as u64,
            data: vec![b'a'; size],
        };
        let (a, b, c, huge) = (
            file("a", 10),
            file("b", 30),
            file("c", 5),
            file("huge", 100),
        );
        let row = opened.message_row;
        let mut tx = store.begin().await.unwrap();
        // `huge` is over the stored size: kept by name only, never sent.
        tx.insert_attachments(&[(row, &a), (row, &huge), (row, &b), (row, &c)], 50)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let (files, omitted) = store.attachments_capped(row, 10, 20).await.unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a", "c"]);
        assert_eq!(files[0].data, vec![b'a'; 10]);
        assert_eq!(omitted, 1);
        let (files, omitted) = store.attachments_capped(row, 1, u64::MAX).await.unwrap();
        assert_eq!((files.len(), files[0].name.as_str(), omitted), (1, "a", 2));
    }

    #[tokio::test]
    async fn a_full_disk_while_recording_results_reports_the_cause_and_the_retry_records_once() {
        let dir = tempfile::tempdir().unwrap();
        let pages = Arc::new(AtomicU32::new(1 << 30));
        let store = store_with_page_cap(dir.path(), pages.clone()).await;
        sqlx::query(
            "INSERT INTO outbox (template, language, to_address, message_id, references_list, context,
               auto_submitted, status, next_attempt_at, created_at)
             VALUES ('confirmation', 'es', 'ana@example.test', 'm1@x', '', '{}', 'auto-replied',
               'pending', '2026-11-20T00:00:00.000Z', '2026-11-20T00:00:00.000Z')",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        pages.store(page_count(&store).await + 4, Ordering::SeqCst);
        apply_cap(&store, &pages).await;
        // Giving up on the mail queues a notice: too big for the space left.
        let expired = given_up(
            "gave up",
            serde_json::json!({ "error": "x".repeat(1 << 20) }),
        );
        let results = [(1, expired)];
        for _ in 0..2 {
            let e = store.record_results(&results, now()).await.unwrap_err();
            assert!(e.to_string().contains("full"), "{e}");
        }
        pages.store(1 << 30, Ordering::SeqCst);
        apply_cap(&store, &pages).await;
        store.record_results(&results, now()).await.unwrap();
        // Recorded again (a retry after an unknown outcome): nothing is added twice.
        store.record_results(&results, now()).await.unwrap();
        let statuses: Vec<(String, String)> =
            sqlx::query_as("SELECT message_id, status FROM outbox ORDER BY id")
                .fetch_all(&store.pool)
                .await
                .unwrap();
        assert_eq!(
            statuses,
            [
                ("m1@x".to_string(), "failed".to_string()),
                ("n1@x".to_string(), "pending".to_string())
            ]
        );
        let events: i64 = sqlx::query_scalar("SELECT count(*) FROM ticket_events")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(events, 1);
    }

    #[tokio::test]
    async fn a_claim_reads_the_due_index_in_order_and_sorts_nothing() {
        // LIMIT must stop after the rows it takes: a claim that sorts every pending row costs
        // ~15 ms at 10,000 pending on PostgreSQL (docs/benchmarks.md §8b).
        let (_dir, store) = temp_store().await;
        let plan = query_plan(&store, &claim_statement(store.backend()), |q| {
            q.bind("2026-12-01T00:02:05.000Z")
                .bind("2026-12-01T00:00:00.000Z")
                .bind(64_i64)
                .bind("instance-1")
        })
        .await;
        assert!(plan.contains("outbox_due"), "{plan}");
        match store.backend() {
            Backend::Sqlite => assert!(!plan.contains("TEMP B-TREE"), "{plan}"),
            // With sorting disabled, a plan that still needs one shows it at a huge cost.
            Backend::Postgres => assert!(!plan.contains("Sort"), "{plan}"),
        }
    }
}
