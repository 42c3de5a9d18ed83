//! Work due at a time (`due_items`): what a status change makes due is written with the change
//! ([`Batch::record_life`]); a sweep reads what is due inside its write transaction
//! ([`Batch::due_items`]), and writes each item's effects with the item marked done
//! ([`Batch::write_due`]) in that same transaction. SQLite's write lock (and on PostgreSQL,
//! `FOR UPDATE SKIP LOCKED`) makes one sweep at a time own an item; a crash before the commit
//! leaves it pending, after the commit it is done: exactly once.

use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Row, Sqlite};

use super::batch::{Batch, EventRow, OutboxRow};
use super::outbox::failing_addresses;
use super::plan::{addressing, Writing};
use super::queries::{ticket_ref, TICKET_REF_COLUMNS, TICKET_REF_LEN};
use super::statement::{bind_each, list_statement, ROWS_PER_STATEMENT};
use super::{parse_ts, ts, Store, StoreError};
use crate::desk::lifecycle::{CloseReason, Due, DueItem, DueKind, DueOutcome, LifeEffect};
use crate::desk::sla::Target;
use crate::desk::ticket::{Change, Status};

impl Batch {
    /// What `changes` and `life` do to ticket `id`'s life at `now`: a status change stamps
    /// `resolved_at`/`closed_at` (and the closing's reason) and cancels the ticket's pending
    /// work (it was due for the status the ticket just left); then each effect but the work it
    /// schedules, which the caller writes for all tickets at once ([`Batch::schedule`], after
    /// this: a cancellation must not hit the new items).
    pub async fn record_life(
        &mut self,
        id: i64,
        changes: &[Change],
        life: &[LifeEffect],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now_ts = ts(now);
        for c in changes {
            let Change::Status(s) = c else { continue };
            let sql = match s {
                Status::Resolved => "UPDATE tickets SET resolved_at = ? WHERE id = ?",
                Status::Closed => "UPDATE tickets SET closed_at = ? WHERE id = ?",
                Status::Open | Status::Pending => "UPDATE tickets SET updated_at = ? WHERE id = ?",
            };
            sqlx::query(sql)
                .bind(&now_ts)
                .bind(id)
                .execute(&mut *self.tx)
                .await?;
            if *s == Status::Closed && !life.iter().any(|e| matches!(e, LifeEffect::Closed { .. }))
            {
                self.set_close_reason(id, CloseReason::Technician).await?;
            }
            sqlx::query(
                "UPDATE due_items SET status = 'cancelled', outcome = ?, finished_at = ?
                 WHERE ticket_id = ? AND status = 'pending'",
            )
            .bind(format!("cancelled: status → {}", s.as_str()))
            .bind(&now_ts)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        }
        for effect in life {
            self.record_effect(id, effect, &now_ts).await?;
        }
        Ok(())
    }

    async fn set_close_reason(&mut self, id: i64, reason: CloseReason) -> Result<(), StoreError> {
        sqlx::query("UPDATE tickets SET close_reason = ? WHERE id = ?")
            .bind(reason.as_str())
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn record_effect(
        &mut self,
        id: i64,
        effect: &LifeEffect,
        now: &str,
    ) -> Result<(), StoreError> {
        let query = match effect {
            LifeEffect::Schedule(_) => return Ok(()),
            LifeEffect::Closed { reason } => {
                return self.set_close_reason(id, *reason).await;
            }
            LifeEffect::SurveySent => {
                sqlx::query("UPDATE tickets SET survey_sent_at = ? WHERE id = ?")
                    .bind(now)
                    .bind(id)
            }
            LifeEffect::SurveyRetried => {
                sqlx::query("UPDATE tickets SET survey_retried = 1 WHERE id = ?").bind(id)
            }
            // One answer per ticket: a second one (two replies in one batch) is a follow-up.
            LifeEffect::Satisfaction { rating, comment } => sqlx::query(
                "INSERT INTO satisfaction (ticket_id, rating, comment, answered_at) VALUES (?, ?, ?, ?)
                 ON CONFLICT (ticket_id) DO NOTHING",
            )
            .bind(id)
            .bind(*rating as i64)
            .bind(comment.clone())
            .bind(now),
            LifeEffect::FirstResponse => sqlx::query(
                "UPDATE tickets SET first_response_at = coalesce(first_response_at, ?) WHERE id = ?",
            )
            .bind(now)
            .bind(id),
            LifeEffect::SlaPaused => sqlx::query(
                "UPDATE tickets SET sla_paused_at = coalesce(sla_paused_at, ?) WHERE id = ?",
            )
            .bind(now)
            .bind(id),
            LifeEffect::SlaResumed { seconds } => sqlx::query(
                "UPDATE tickets SET sla_paused_seconds = sla_paused_seconds + ?, sla_paused_at = NULL
                 WHERE id = ?",
            )
            .bind(*seconds)
            .bind(id),
            LifeEffect::SlaBreached { target } => {
                let sql = match target {
                    Target::FirstResponse => {
                        "UPDATE tickets SET response_breached_at = coalesce(response_breached_at, ?) WHERE id = ?"
                    }
                    Target::Resolution => {
                        "UPDATE tickets SET resolution_breached_at = coalesce(resolution_breached_at, ?) WHERE id = ?"
                    }
                    // Not a target with a clock: nothing to keep.
                    Target::Assignment => return Ok(()),
                };
                sqlx::query(sql).bind(now).bind(id)
            }
            LifeEffect::SurveyOptOut { email } => sqlx::query(
                "INSERT INTO survey_opt_outs (email, created_at) VALUES (?, ?)
                 ON CONFLICT (email) DO NOTHING",
            )
            .bind(email.to_lowercase())
            .bind(now),
        };
        query.execute(&mut *self.tx).await?;
        Ok(())
    }

    /// Queues work: `(ticket id, what is due)`, one statement per chunk (a batch that opens
    /// 500 tickets schedules 2,500 items).
    pub async fn schedule(
        &mut self,
        rows: &[(i64, Due)],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = ts(now);
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut b = QueryBuilder::<Sqlite>::new(
                "INSERT INTO due_items (ticket_id, kind, due_at, created_at) ",
            );
            b.push_values(chunk, |mut v, (id, due)| {
                v.push_bind(*id)
                    .push_bind(due.kind.as_str())
                    .push_bind(ts(due.at))
                    .push_bind(now.clone());
            });
            b.build().persistent(false).execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// Up to `limit` items due at `now`, earliest first, each with its ticket as it is now.
    pub async fn due_items(
        &mut self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DueItem>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, ticket_id, kind, due_at FROM due_items
             WHERE status = 'pending' AND due_at <= ? ORDER BY due_at, id LIMIT ?",
        )
        .bind(ts(now))
        .bind(limit as i64)
        .fetch_all(&mut *self.tx)
        .await?;
        if rows.is_empty() {
            return Ok(vec![]);
        }
        let mut ticket_ids: Vec<i64> = rows.iter().map(|r| r.get(1)).collect();
        ticket_ids.sort_unstable();
        ticket_ids.dedup();
        let mut tickets = std::collections::HashMap::new();
        let mut opted_out = std::collections::HashSet::new();
        for chunk in ticket_ids.chunks(ROWS_PER_STATEMENT) {
            let q = list_statement(
                &format!(
                    "SELECT {TICKET_REF_COLUMNS},
                       EXISTS (SELECT 1 FROM survey_opt_outs o WHERE o.email = lower(t.requester_email))
                     FROM tickets t WHERE t.id IN ("
                ),
                chunk.len(),
                ")",
            );
            for r in bind_each(q, chunk).fetch_all(&mut *self.tx).await? {
                let t = ticket_ref(&r);
                if r.get::<bool, _>(TICKET_REF_LEN) {
                    opted_out.insert(t.id);
                }
                tickets.insert(t.id, t);
            }
        }
        let failing = failing_addresses(&mut *self.tx, now).await?;
        let mut items = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: i64 = r.get(0);
            let ticket_id: i64 = r.get(1);
            let kind: String = r.get(2);
            let (Some(kind), Some(ticket)) = (DueKind::parse(&kind), tickets.get(&ticket_id))
            else {
                // Marked done with the reason rather than left pending: a pending item that is
                // never done would be read again by every sweep.
                self.finish_item(id, &format!("skipped: unknown kind {kind:?}"), now)
                    .await?;
                continue;
            };
            items.push(DueItem {
                id,
                kind,
                due_at: parse_ts(&r.get::<String, _>(3)).unwrap_or(now),
                requester_opted_out: opted_out.contains(&ticket_id),
                requester_failing: failing.contains(&ticket.requester_email.to_lowercase()),
                ticket: ticket.clone(),
            });
        }
        Ok(items)
    }

    async fn finish_item(
        &mut self,
        id: i64,
        outcome: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE due_items SET status = 'done', outcome = ?, finished_at = ? WHERE id = ?",
        )
        .bind(outcome)
        .bind(ts(now))
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Writes what doing each item does (`outcomes[i]` for `items[i]`) and marks the items
    /// done, in this transaction (the caller commits).
    pub async fn write_due(
        &mut self,
        items: &[DueItem],
        outcomes: &[DueOutcome],
        how: &Writing<'_>,
    ) -> Result<(), StoreError> {
        let mut events = Vec::new();
        let mut mails = Vec::new();
        let mut due = Vec::new();
        for (item, out) in items.iter().zip(outcomes) {
            let t = &item.ticket;
            self.change_ticket(t.id, &out.changes).await?;
            self.record_life(t.id, &out.changes, &out.life, how.now)
                .await?;
            due.extend(scheduled(t.id, &out.life));
            let event = |kind: &'static str, detail: String| EventRow {
                ticket_id: Some(t.id),
                message_row: None,
                kind,
                actor: None,
                detail,
            };
            events.extend(out.events.iter().map(|e| event(e.kind, e.detail.clone())));
            events.extend(
                out.changes
                    .iter()
                    .map(|c| event("changed", super::plan::describe_change(c))),
            );
            events.push(event(
                "due",
                format!("{}: {}", item.kind.as_str(), out.outcome),
            ));
            for reply in &out.replies {
                let (message_id, reply_to) = addressing(how, reply, Some(&t.folio));
                mails.push(OutboxRow {
                    ticket_id: Some(t.id),
                    reply,
                    message_id,
                    reply_to,
                    attachments_of: None,
                    context: reply.context_json(Some(&t.folio)),
                });
            }
            self.finish_item(item.id, &out.outcome, how.now).await?;
        }
        let touched: Vec<i64> = items
            .iter()
            .zip(outcomes)
            .filter(|(_, o)| !o.changes.is_empty())
            .map(|(i, _)| i.ticket.id)
            .collect();
        self.touch_tickets(&touched, how.now).await?;
        self.schedule(&due, how.now).await?;
        self.insert_events(&events, how.now).await?;
        self.insert_outbox(&mails, how.now).await
    }
}

/// The work `life` schedules on ticket `id`, as rows for [`Batch::schedule`].
pub(super) fn scheduled(id: i64, life: &[LifeEffect]) -> impl Iterator<Item = (i64, Due)> + '_ {
    life.iter().filter_map(move |e| match e {
        LifeEffect::Schedule(due) => Some((id, *due)),
        _ => None,
    })
}

impl Store {
    /// When the next pending item falls due, if any.
    pub async fn next_due_item(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let t: Option<String> =
            sqlx::query_scalar("SELECT min(due_at) FROM due_items WHERE status = 'pending'")
                .fetch_one(&self.pool)
                .await?;
        Ok(t.as_deref().and_then(parse_ts))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use chrono::Duration;

    use super::*;
    use crate::desk::lifecycle::{self, Due};
    use crate::desk::policy::Policy;
    use crate::desk::tokens::Tokens;
    use crate::store::test_support::{mail, new_ticket, now, open_ticket, temp_store};

    fn policy() -> Policy {
        Policy::with_defaults("helpdesk@example.test", Tokens::new(b"t".to_vec()))
    }

    fn writing(policy: &Policy, at: DateTime<Utc>) -> Writing<'_> {
        Writing {
            policy,
            bounce_suppression: std::time::Duration::from_secs(3600),
            max_attachment_bytes: 1 << 20,
            now: at,
        }
    }

    async fn ticket(store: &Store, folio: &str) -> i64 {
        let t = new_ticket("ana@example.test", "Printer", None, &[]);
        let m = mail(
            &format!("{folio}@client.test"),
            "ana@example.test",
            "Printer",
            "It jams.",
        );
        open_ticket(store, folio, &t, &m, &format!("r-{folio}@x"))
            .await
            .ticket_id
    }

    fn schedule(kind: DueKind, minutes: i64) -> LifeEffect {
        LifeEffect::Schedule(Due {
            kind,
            at: now() + Duration::minutes(minutes),
        })
    }

    async fn life(store: &Store, id: i64, changes: &[Change], effects: &[LifeEffect]) {
        let mut tx = store.begin().await.unwrap();
        tx.change_ticket(id, changes).await.unwrap();
        tx.record_life(id, changes, effects, now()).await.unwrap();
        let due: Vec<_> = scheduled(id, effects).collect();
        tx.schedule(&due, now()).await.unwrap();
        tx.commit().await.unwrap();
    }

    async fn statuses(store: &Store) -> Vec<(String, String)> {
        sqlx::query_as("SELECT kind, status FROM due_items ORDER BY id")
            .fetch_all(&store.pool)
            .await
            .unwrap()
    }

    /// One sweep as the daemon's scheduler runs it: due items → `on_due` → written, committed.
    async fn sweep(store: &Store, policy: &Policy, at: DateTime<Utc>) -> Vec<DueItem> {
        let mut tx = store.begin().await.unwrap();
        let items = tx.due_items(at, 100).await.unwrap();
        let outcomes: Vec<_> = items
            .iter()
            .map(|i| lifecycle::on_due(i, at, policy))
            .collect();
        tx.write_due(&items, &outcomes, &writing(policy, at))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        items
    }

    #[tokio::test]
    async fn items_come_due_in_order_with_their_ticket_as_it_is_now() {
        let (_dir, store) = temp_store().await;
        let id = ticket(&store, "HD-1").await;
        life(
            &store,
            id,
            &[Change::Status(Status::Resolved)],
            &[
                schedule(DueKind::AutoClose, 60),
                schedule(DueKind::ConfirmReminder, 30),
            ],
        )
        .await;
        let mut tx = store.begin().await.unwrap();
        assert!(tx.due_items(now(), 10).await.unwrap().is_empty());
        let due = tx
            .due_items(now() + Duration::minutes(45), 10)
            .await
            .unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].kind, DueKind::ConfirmReminder);
        assert_eq!(due[0].ticket.status, Status::Resolved);
        assert_eq!(due[0].ticket.life.resolved_at, Some(now()));
        assert!(!due[0].requester_opted_out && !due[0].requester_failing);
        let both = tx.due_items(now() + Duration::hours(2), 10).await.unwrap();
        assert_eq!(
            both.iter().map(|i| i.kind).collect::<Vec<_>>(),
            [DueKind::ConfirmReminder, DueKind::AutoClose]
        );
        tx.rollback().await;
        assert_eq!(
            store.next_due_item().await.unwrap(),
            Some(now() + Duration::minutes(30))
        );
    }

    #[tokio::test]
    async fn a_status_change_cancels_the_work_due_for_the_status_it_left() {
        let (_dir, store) = temp_store().await;
        let id = ticket(&store, "HD-1").await;
        let other = ticket(&store, "HD-2").await;
        for t in [id, other] {
            life(
                &store,
                t,
                &[Change::Status(Status::Resolved)],
                &[schedule(DueKind::ConfirmReminder, 30)],
            )
            .await;
        }
        // The requester answers HD-1 before the reminder: reopened, its reminder cancelled.
        life(&store, id, &[Change::Status(Status::Open)], &[]).await;
        assert_eq!(
            statuses(&store).await,
            [
                ("confirm_reminder".into(), "cancelled".into()),
                ("confirm_reminder".into(), "pending".into())
            ]
        );
        // A change that is not a status change cancels nothing.
        life(
            &store,
            other,
            &[Change::Priority(crate::desk::catalog::Priority::Alta)],
            &[],
        )
        .await;
        assert_eq!(statuses(&store).await[1].1, "pending");
    }

    #[tokio::test]
    async fn a_sweep_does_each_item_once_and_writes_its_effects_with_it() {
        let (_dir, store) = temp_store().await;
        let policy = policy();
        let id = ticket(&store, "HD-1").await;
        life(
            &store,
            id,
            &[Change::Status(Status::Resolved)],
            &[schedule(DueKind::AutoClose, 10)],
        )
        .await;
        let at = now() + Duration::minutes(20);
        let done = sweep(&store, &policy, at).await;
        assert_eq!(done.len(), 1);
        // Closed, with the reason, the closure notice queued and the survey scheduled.
        let t = store.ticket_by_id(id).await.unwrap().unwrap();
        assert_eq!(t.status, Status::Closed);
        assert_eq!(t.life.closed_at, Some(at));
        let reason: Option<String> =
            sqlx::query_scalar("SELECT close_reason FROM tickets WHERE id = ?")
                .bind(id)
                .fetch_one(&store.pool)
                .await
                .unwrap();
        assert_eq!(reason.as_deref(), Some("no_answer"));
        let d = store.ticket("HD-1").await.unwrap().unwrap();
        assert!(d.outgoing.iter().any(|m| m.template == "closure"));
        assert_eq!(
            statuses(&store).await,
            [
                ("auto_close".into(), "done".into()),
                ("survey".into(), "pending".into())
            ]
        );
        assert!(d.events.iter().any(|e| e.kind == "auto_closed"));
        // The same sweep again finds nothing: done once.
        assert!(sweep(&store, &policy, at).await.is_empty());
        let closures = store
            .ticket("HD-1")
            .await
            .unwrap()
            .unwrap()
            .outgoing
            .iter()
            .filter(|m| m.template == "closure")
            .count();
        assert_eq!(closures, 1);
    }

    #[tokio::test]
    async fn a_sweep_that_does_not_commit_leaves_the_item_due() {
        let (_dir, store) = temp_store().await;
        let policy = policy();
        let id = ticket(&store, "HD-1").await;
        life(
            &store,
            id,
            &[Change::Status(Status::Resolved)],
            &[schedule(DueKind::ConfirmReminder, 10)],
        )
        .await;
        let at = now() + Duration::minutes(20);
        // As a crash between the write and the commit does.
        let mut tx = store.begin().await.unwrap();
        let items = tx.due_items(at, 10).await.unwrap();
        let outcomes: Vec<_> = items
            .iter()
            .map(|i| lifecycle::on_due(i, at, &policy))
            .collect();
        tx.write_due(&items, &outcomes, &writing(&policy, at))
            .await
            .unwrap();
        tx.rollback().await;
        assert_eq!(statuses(&store).await[0].1, "pending");
        assert_eq!(sweep(&store, &policy, at).await.len(), 1);
        assert_eq!(statuses(&store).await[0].1, "done");
    }

    #[tokio::test]
    async fn survey_answers_opt_outs_and_the_retry_are_kept() {
        let (_dir, store) = temp_store().await;
        let id = ticket(&store, "HD-1").await;
        life(
            &store,
            id,
            &[],
            &[
                LifeEffect::SurveySent,
                LifeEffect::SurveyRetried,
                LifeEffect::Satisfaction {
                    rating: 5,
                    comment: Some("excelente".into()),
                },
                // A second answer in the same batch does not replace the first.
                LifeEffect::Satisfaction {
                    rating: 1,
                    comment: None,
                },
                LifeEffect::SurveyOptOut {
                    email: "Ana@Example.test".into(),
                },
            ],
        )
        .await;
        let t = store.ticket_by_id(id).await.unwrap().unwrap();
        assert_eq!(t.life.survey_sent_at, Some(now()));
        assert!(t.life.survey_retried && t.life.survey_answered);
        let (rating, comment): (i64, Option<String>) =
            sqlx::query_as("SELECT rating, comment FROM satisfaction WHERE ticket_id = ?")
                .bind(id)
                .fetch_one(&store.pool)
                .await
                .unwrap();
        assert_eq!((rating, comment.as_deref()), (5, Some("excelente")));
        // The opt-out shows on the ticket's next due item.
        life(&store, id, &[], &[schedule(DueKind::SurveyReminder, 5)]).await;
        let mut tx = store.begin().await.unwrap();
        let due = tx.due_items(now() + Duration::hours(1), 10).await.unwrap();
        assert!(due[0].requester_opted_out);
        tx.rollback().await;
    }
}
