//! Work due at a time (`due_items`): what a status change makes due is written with the change
//! ([`Batch::record_life`]); a sweep reads what is due inside its write transaction
//! ([`Batch::due_items`]), and writes each item's effects with the item marked done
//! ([`Batch::write_due`]) in that same transaction. SQLite's write lock (and on PostgreSQL,
//! `FOR UPDATE SKIP LOCKED`) makes one sweep at a time own an item; a crash before the commit
//! leaves it pending, after the commit it is done: exactly once.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::batch::{Batch, EventRow, OutboxRow};
use super::outbox::failing_addresses;
use super::plan::{addressing, Writing};
use super::queries::{ticket_ref, TICKET_REF_COLUMNS, TICKET_REF_LEN};
use super::statement::{bind_each, list_statement, Insert, ROWS_PER_STATEMENT};
use super::{flag, parse_ts, ts, Store, StoreError};
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
            let sql = format!("UPDATE tickets SET {} = $1 WHERE id = $2", stamp_column(*s));
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&now_ts)
                .bind(id)
                .execute(&mut *self.tx)
                .await?;
            if *s == Status::Closed && !life.iter().any(|e| matches!(e, LifeEffect::Closed { .. }))
            {
                self.set_close_reason(id, CloseReason::Technician).await?;
            }
            sqlx::query(
                "UPDATE due_items SET status = 'cancelled', outcome = $1, finished_at = $2
                 WHERE ticket_id = $3 AND status = 'pending'",
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
        sqlx::query("UPDATE tickets SET close_reason = $1 WHERE id = $2")
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
                sqlx::query("UPDATE tickets SET survey_sent_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(id)
            }
            LifeEffect::SurveyRetried => {
                sqlx::query("UPDATE tickets SET survey_retried = 1 WHERE id = $1").bind(id)
            }
            // One answer per ticket: a second one (two replies in one batch) is a follow-up.
            LifeEffect::Satisfaction { rating, comment } => sqlx::query(
                "INSERT INTO satisfaction (ticket_id, rating, comment, answered_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (ticket_id) DO NOTHING",
            )
            .bind(id)
            .bind(*rating as i64)
            .bind(comment.clone())
            .bind(now),
            LifeEffect::FirstResponse => sqlx::query(
                "UPDATE tickets SET first_response_at = coalesce(first_response_at, $1) WHERE id = $2",
            )
            .bind(now)
            .bind(id),
            LifeEffect::SlaPaused => sqlx::query(
                "UPDATE tickets SET sla_paused_at = coalesce(sla_paused_at, $1) WHERE id = $2",
            )
            .bind(now)
            .bind(id),
            LifeEffect::SlaResumed { seconds } => sqlx::query(
                "UPDATE tickets SET sla_paused_seconds = sla_paused_seconds + $1, sla_paused_at = NULL
                 WHERE id = $2",
            )
            .bind(*seconds)
            .bind(id),
            LifeEffect::SlaCancelled => sqlx::query(
                "UPDATE due_items SET status = 'cancelled', outcome = 'cancelled: priority changed',
                   finished_at = $1
                 WHERE ticket_id = $2 AND status = 'pending' AND kind IN ($3, $4, $5, $6, $7)",
            )
            .bind(now)
            .bind(id)
            .bind(DueKind::SlaResponseWarning.as_str())
            .bind(DueKind::SlaResponseBreach.as_str())
            .bind(DueKind::SlaResolutionWarning.as_str())
            .bind(DueKind::SlaResolutionBreach.as_str())
            .bind(DueKind::Unassigned.as_str()),
            LifeEffect::SlaBreached { target } => {
                let sql = match target {
                    Target::FirstResponse => {
                        "UPDATE tickets SET response_breached_at = coalesce(response_breached_at, $1) WHERE id = $2"
                    }
                    Target::Resolution => {
                        "UPDATE tickets SET resolution_breached_at = coalesce(resolution_breached_at, $1) WHERE id = $2"
                    }
                    // Not a target with a clock: nothing to keep.
                    Target::Assignment => return Ok(()),
                };
                sqlx::query(sql).bind(now).bind(id)
            }
            LifeEffect::SurveyOptOut { email } => sqlx::query(
                "INSERT INTO survey_opt_outs (email, created_at) VALUES ($1, $2)
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
            let mut b = Insert::new(
                "INSERT INTO due_items (ticket_id, kind, due_at, created_at)",
                ROWS_PER_STATEMENT,
                self.tx.backend(),
            );
            for (id, due) in chunk {
                b.row()
                    .bind(*id)
                    .bind(due.kind.as_str())
                    .bind(ts(due.at))
                    .bind(now.clone());
            }
            b.build("", self.tx.backend())?
                .execute(&mut *self.tx)
                .await?;
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
             WHERE status = 'pending' AND due_at <= $1 ORDER BY due_at, id LIMIT $2",
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
                self.tx.backend(),
            );
            for r in bind_each(q, chunk).fetch_all(&mut *self.tx).await? {
                let t = ticket_ref(&r);
                if flag(&r, TICKET_REF_LEN) {
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
            "UPDATE due_items SET status = 'done', outcome = $1, finished_at = $2 WHERE id = $3",
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
    ///
    /// The result is what [`Batch::change_ticket`], [`Batch::record_life`] and marking the
    /// item done would write for each item in turn, but in a few statements per run of items
    /// ([`Batch::write_run`]) instead of up to six per item: every statement is a round trip to
    /// sqlx's SQLite thread, and one by one they were most of a 10,000-item sweep. A run is a
    /// stretch of items with no ticket twice; where a ticket does come again, a new run starts,
    /// so its second item sees what its first did, exactly as one by one.
    pub async fn write_due(
        &mut self,
        items: &[DueItem],
        outcomes: &[DueOutcome],
        how: &Writing<'_>,
    ) -> Result<(), StoreError> {
        let mut events = Vec::new();
        let mut mails = Vec::new();
        for (item, out) in items.iter().zip(outcomes) {
            let t = &item.ticket;
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
        }
        let mut start = 0;
        while start < items.len() {
            let mut seen = HashSet::new();
            let len = items[start..]
                .iter()
                .take_while(|i| seen.insert(i.ticket.id))
                .count();
            let end = start + len;
            self.write_run(&items[start..end], &outcomes[start..end], how.now)
                .await?;
            start = end;
        }
        let touched: Vec<i64> = items
            .iter()
            .zip(outcomes)
            .filter(|(_, o)| !o.changes.is_empty())
            .map(|(i, _)| i.ticket.id)
            .collect();
        self.touch_tickets(&touched, how.now).await?;
        self.insert_events(&events, how.now).await?;
        self.insert_outbox(&mails, how.now).await
    }

    /// [`Batch::write_due`]'s writes for `items`, no two of them on one ticket: each item's
    /// writes touch only its own ticket's rows (and `survey_opt_outs`, where a repeat does
    /// nothing), so their order across items does not matter and each kind of write is one
    /// statement over a list of tickets. The kinds go in `record_life`'s order: status and its
    /// time, close reason, the cancelling of pending work, then what is scheduled (so the
    /// cancel never hits it), and last the items marked done (after the cancel, which takes an
    /// item still pending along with the rest of its ticket's work).
    async fn write_run(
        &mut self,
        items: &[DueItem],
        outcomes: &[DueOutcome],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now_ts = ts(now);
        // Each map: the value a statement sets → the tickets (or items) it sets it on.
        let mut status: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
        let mut stamped: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
        let mut reasons: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
        let mut cancelled: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
        let mut scheduled: Vec<(i64, Due)> = Vec::new();
        let mut survey_sent = Vec::new();
        let mut survey_retried = Vec::new();
        let mut paused = Vec::new();
        let mut one_by_one: Vec<(i64, &LifeEffect)> = Vec::new();
        let mut finished: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
        for (item, out) in items.iter().zip(outcomes) {
            let id = item.ticket.id;
            let statuses: Vec<Status> = out
                .changes
                .iter()
                .filter_map(|c| match c {
                    Change::Status(s) => Some(*s),
                    _ => None,
                })
                .collect();
            // The sweep only ever changes the status; anything else is written as before.
            for c in &out.changes {
                if !matches!(c, Change::Status(_)) {
                    self.change_ticket(id, std::slice::from_ref(c)).await?;
                }
            }
            // One by one, the last status change wins, each stamps its time, and the first
            // cancels the ticket's pending work (the later ones find none left).
            if let (Some(first), Some(last)) = (statuses.first(), statuses.last()) {
                status.entry(last.as_str()).or_default().push(id);
                cancelled.entry(first.as_str()).or_default().push(id);
            }
            for s in &statuses {
                stamped.entry(stamp_column(*s)).or_default().push(id);
            }
            // A closing without its reason is a technician's; the last `Closed` effect wins.
            let mut reason = statuses
                .contains(&Status::Closed)
                .then_some(CloseReason::Technician);
            for effect in &out.life {
                match effect {
                    LifeEffect::Schedule(due) => scheduled.push((id, *due)),
                    LifeEffect::Closed { reason: r } => reason = Some(*r),
                    LifeEffect::SurveySent => survey_sent.push(id),
                    LifeEffect::SurveyRetried => survey_retried.push(id),
                    LifeEffect::SlaPaused => paused.push(id),
                    // Before this run's scheduling below, which it must not cancel (a sweep
                    // never changes a priority, so it does not come here in practice).
                    LifeEffect::SlaCancelled => self.record_effect(id, effect, &now_ts).await?,
                    // Rare in a sweep (a breach escalated, a clock resumed): one by one.
                    LifeEffect::Satisfaction { .. }
                    | LifeEffect::SurveyOptOut { .. }
                    | LifeEffect::FirstResponse
                    | LifeEffect::SlaResumed { .. }
                    | LifeEffect::SlaBreached { .. } => one_by_one.push((id, effect)),
                }
            }
            if let Some(r) = reason {
                reasons.entry(r.as_str()).or_default().push(id);
            }
            finished.entry(&out.outcome).or_default().push(item.id);
        }
        for (s, ids) in &status {
            self.update_ids("UPDATE tickets SET status = $1 WHERE id IN (", &[s], ids)
                .await?;
        }
        for (column, ids) in &stamped {
            let head = format!("UPDATE tickets SET {column} = $1 WHERE id IN (");
            self.update_ids(&head, &[&now_ts], ids).await?;
        }
        for (r, ids) in &reasons {
            self.update_ids(
                "UPDATE tickets SET close_reason = $1 WHERE id IN (",
                &[r],
                ids,
            )
            .await?;
        }
        for (s, ids) in &cancelled {
            self.update_ids(
                "UPDATE due_items SET status = 'cancelled', outcome = $1, finished_at = $2
                 WHERE status = 'pending' AND ticket_id IN (",
                &[&format!("cancelled: status → {s}"), &now_ts],
                ids,
            )
            .await?;
        }
        self.schedule(&scheduled, now).await?;
        self.update_ids(
            "UPDATE tickets SET survey_sent_at = $1 WHERE id IN (",
            &[&now_ts],
            &survey_sent,
        )
        .await?;
        self.update_ids(
            "UPDATE tickets SET survey_retried = 1 WHERE id IN (",
            &[],
            &survey_retried,
        )
        .await?;
        self.update_ids(
            "UPDATE tickets SET sla_paused_at = coalesce(sla_paused_at, $1) WHERE id IN (",
            &[&now_ts],
            &paused,
        )
        .await?;
        for (id, effect) in one_by_one {
            self.record_effect(id, effect, &now_ts).await?;
        }
        for (outcome, ids) in &finished {
            self.update_ids(
                "UPDATE due_items SET status = 'done', outcome = $1, finished_at = $2 WHERE id IN (",
                &[outcome, &now_ts],
                ids,
            )
            .await?;
        }
        Ok(())
    }

    /// `{head}?, ?, …)` with `values` bound first, then `ids`, in chunks of
    /// [`ROWS_PER_STATEMENT`]; nothing when `ids` is empty.
    async fn update_ids(
        &mut self,
        head: &str,
        values: &[&str],
        ids: &[i64],
    ) -> Result<(), StoreError> {
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let mut query = list_statement(head, chunk.len(), ")", self.tx.backend());
            for v in values {
                query = query.bind(v.to_string());
            }
            bind_each(query, chunk).execute(&mut *self.tx).await?;
        }
        Ok(())
    }
}

/// The column a change to status `s` stamps with its time (as in [`Batch::record_life`]).
fn stamp_column(s: Status) -> &'static str {
    match s {
        Status::Resolved => "resolved_at",
        Status::Closed => "closed_at",
        Status::Open | Status::Pending => "updated_at",
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

    /// Ticket HD-1, resolved, with one item of `kind` due `minutes` after [`now`].
    async fn resolved_with(store: &Store, kind: DueKind, minutes: i64) -> i64 {
        let id = ticket(store, "HD-1").await;
        life(
            store,
            id,
            &[Change::Status(Status::Resolved)],
            &[schedule(kind, minutes)],
        )
        .await;
        id
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
    async fn a_new_priority_cancels_only_the_service_level_items() {
        let (_dir, store) = temp_store().await;
        let id = ticket(&store, "HD-1").await;
        life(
            &store,
            id,
            &[],
            &[
                schedule(DueKind::SlaResponseBreach, 30),
                schedule(DueKind::Survey, 60),
            ],
        )
        .await;
        life(&store, id, &[], &[LifeEffect::SlaCancelled]).await;
        assert_eq!(
            statuses(&store).await,
            [
                ("sla_response_breach".into(), "cancelled".into()),
                ("survey".into(), "pending".into())
            ]
        );
    }

    #[tokio::test]
    async fn a_sweep_does_each_item_once_and_writes_its_effects_with_it() {
        let (_dir, store) = temp_store().await;
        let policy = policy();
        let id = resolved_with(&store, DueKind::AutoClose, 10).await;
        let at = now() + Duration::minutes(20);
        let done = sweep(&store, &policy, at).await;
        assert_eq!(done.len(), 1);
        // Closed, with the reason, the closure notice queued and the survey scheduled.
        let t = store.ticket_by_id(id).await.unwrap().unwrap();
        assert_eq!(t.status, Status::Closed);
        assert_eq!(t.life.closed_at, Some(at));
        let reason: Option<String> =
            sqlx::query_scalar("SELECT close_reason FROM tickets WHERE id = $1")
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

    /// The same items and outcomes written one by one, as `write_due` wrote them before it
    /// wrote runs of items with a few statements each.
    async fn write_one_by_one(
        store: &Store,
        items: &[DueItem],
        outcomes: &[DueOutcome],
        at: DateTime<Utc>,
    ) {
        let mut tx = store.begin().await.unwrap();
        for (item, out) in items.iter().zip(outcomes) {
            let id = item.ticket.id;
            tx.change_ticket(id, &out.changes).await.unwrap();
            tx.record_life(id, &out.changes, &out.life, at)
                .await
                .unwrap();
            let due: Vec<_> = scheduled(id, &out.life).collect();
            tx.schedule(&due, at).await.unwrap();
            tx.finish_item(item.id, &out.outcome, at).await.unwrap();
        }
        let touched: Vec<i64> = items
            .iter()
            .zip(outcomes)
            .filter(|(_, o)| !o.changes.is_empty())
            .map(|(i, _)| i.ticket.id)
            .collect();
        tx.touch_tickets(&touched, at).await.unwrap();
        tx.commit().await.unwrap();
    }

    /// Every row a sweep's life writes may touch, as text.
    async fn life_rows(store: &Store) -> Vec<String> {
        let mut rows = Vec::new();
        for sql in [
            "SELECT 'ticket ' || coalesce(CAST(id AS TEXT), 'NULL') || ' ' || coalesce(CAST(status AS TEXT), 'NULL') || ' ' || coalesce(CAST(priority AS TEXT), 'NULL') || ' '
               || coalesce(CAST(resolved_at AS TEXT), 'NULL') || ' ' || coalesce(CAST(closed_at AS TEXT), 'NULL') || ' ' || coalesce(CAST(updated_at AS TEXT), 'NULL') || ' '
               || coalesce(CAST(close_reason AS TEXT), 'NULL') || ' ' || coalesce(CAST(survey_sent_at AS TEXT), 'NULL') || ' ' || coalesce(CAST(survey_retried AS TEXT), 'NULL')
             FROM tickets ORDER BY id",
            "SELECT 'due ' || coalesce(CAST(id AS TEXT), 'NULL') || ' ' || coalesce(CAST(ticket_id AS TEXT), 'NULL') || ' ' || coalesce(CAST(kind AS TEXT), 'NULL') || ' '
               || coalesce(CAST(due_at AS TEXT), 'NULL') || ' ' || coalesce(CAST(status AS TEXT), 'NULL') || ' ' || coalesce(CAST(outcome AS TEXT), 'NULL') || ' '
               || coalesce(CAST(created_at AS TEXT), 'NULL') || ' ' || coalesce(CAST(finished_at AS TEXT), 'NULL')
             FROM due_items ORDER BY id",
            "SELECT 'rating ' || coalesce(CAST(ticket_id AS TEXT), 'NULL') || ' ' || coalesce(CAST(rating AS TEXT), 'NULL') || ' ' || coalesce(CAST(comment AS TEXT), 'NULL')
               || ' ' || coalesce(CAST(answered_at AS TEXT), 'NULL') FROM satisfaction ORDER BY ticket_id",
            "SELECT 'opt-out ' || coalesce(CAST(email AS TEXT), 'NULL') || ' ' || coalesce(CAST(created_at AS TEXT), 'NULL')
             FROM survey_opt_outs ORDER BY email",
        ] {
            let more: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_all(&store.pool)
                .await
                .unwrap();
            rows.extend(more);
        }
        rows
    }

    /// Tickets whose items meet in one sweep: two items of one ticket in either order, a
    /// closing that cancels later work, a survey and then a second item on its ticket, an item
    /// that no longer applies.
    async fn tickets_with_due_work(store: &Store) {
        let resolved = [Change::Status(Status::Resolved)];
        let one = ticket(store, "HD-1").await;
        let both = [
            schedule(DueKind::ConfirmReminder, 10),
            schedule(DueKind::AutoClose, 20),
        ];
        life(store, one, &resolved, &both).await;
        let two = ticket(store, "HD-2").await;
        let reversed = [
            schedule(DueKind::AutoClose, 5),
            schedule(DueKind::ConfirmReminder, 15),
        ];
        life(store, two, &resolved, &reversed).await;
        let three = ticket(store, "HD-3").await;
        life(
            store,
            three,
            &[Change::Status(Status::Closed)],
            &[
                LifeEffect::Closed {
                    reason: CloseReason::Confirmed,
                },
                schedule(DueKind::Survey, 25),
                schedule(DueKind::ConfirmReminder, 40),
            ],
        )
        .await;
        let four = ticket(store, "HD-4").await;
        life(store, four, &[], &[schedule(DueKind::ConfirmReminder, 30)]).await;
        let five = ticket(store, "HD-5").await;
        life(
            store,
            five,
            &resolved,
            &[
                schedule(DueKind::AutoClose, 35),
                schedule(DueKind::SurveyReminder, 60 * 24 * 30),
            ],
        )
        .await;
    }

    #[tokio::test]
    async fn writing_runs_of_items_writes_what_writing_them_one_by_one_did() {
        let policy = policy();
        let at = now() + Duration::hours(1);
        let (_a, batched) = temp_store().await;
        let (_b, one_by_one) = temp_store().await;
        tickets_with_due_work(&batched).await;
        tickets_with_due_work(&one_by_one).await;
        let mut tx = batched.begin().await.unwrap();
        let items = tx.due_items(at, 100).await.unwrap();
        tx.rollback().await;
        assert_eq!(items.len(), 8);
        let mut outcomes: Vec<_> = items
            .iter()
            .map(|i| lifecycle::on_due(i, at, &policy))
            .collect();
        // Effects and changes the sweep does not make today, so that every kind is written.
        let survey = items
            .iter()
            .position(|i| i.kind == DueKind::Survey)
            .unwrap();
        outcomes[survey].life.extend([
            LifeEffect::SurveyRetried,
            LifeEffect::Satisfaction {
                rating: 4,
                comment: Some("bien".into()),
            },
            LifeEffect::SurveyOptOut {
                email: "Ana@Example.test".into(),
            },
        ]);
        let stale = items.iter().position(|i| i.ticket.folio == "HD-4").unwrap();
        outcomes[stale].changes = vec![
            Change::Status(Status::Resolved),
            Change::Priority(crate::desk::catalog::Priority::Baja),
            Change::Status(Status::Closed),
        ];
        // HD-3 is reopened after its survey went out: that cancels the survey's reminder.
        let reopen = items
            .iter()
            .rposition(|i| i.ticket.folio == "HD-3")
            .unwrap();
        outcomes[reopen].changes = vec![Change::Status(Status::Open)];
        let mut tx = batched.begin().await.unwrap();
        tx.write_due(&items, &outcomes, &writing(&policy, at))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        write_one_by_one(&one_by_one, &items, &outcomes, at).await;
        let rows = life_rows(&batched).await;
        assert_eq!(rows, life_rows(&one_by_one).await);
        // The scenario is what it says: HD-5's later reminder cancelled by its closing, HD-3's
        // new survey reminder by its reopening, HD-4 closed by a "technician".
        assert!(rows
            .iter()
            .any(|r| r.contains(" cancelled: status → closed ")));
        assert!(rows
            .iter()
            .any(|r| r.contains(" cancelled: status → open ")));
        assert!(rows.iter().any(|r| r.contains(" technician ")));
    }

    #[tokio::test]
    async fn a_sweep_that_does_not_commit_leaves_the_item_due() {
        let (_dir, store) = temp_store().await;
        let policy = policy();
        resolved_with(&store, DueKind::ConfirmReminder, 10).await;
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
            sqlx::query_as("SELECT rating, comment FROM satisfaction WHERE ticket_id = $1")
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
