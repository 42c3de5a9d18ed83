//! Writing a batch's plan ([`crate::desk::plan`]) in its transaction: the tickets it opens (with
//! their folio numbers), the round-robin positions, the tickets' changes, the messages and their
//! attachments, the history, the replies into the outbox (with their Message-IDs), the
//! quarantined messages, then the commit. One multi-row statement per table.

use chrono::{DateTime, Datelike, Utc};

use super::{Batch, EventRow, MessageRow, OutboxRow, StoreError, TicketRow};
use crate::desk::analysis::Analysis;
use crate::desk::decide::{Record, Reply, TicketAction};
use crate::desk::plan::{Plan, Step};
use crate::desk::policy::Policy;
use crate::desk::ticket::Change;
use crate::desk::tokens;

/// A message of a planned batch as it was fetched.
#[derive(Debug, Clone, Copy)]
pub struct Original<'a> {
    /// Where it came from (`imap:<folder>:<uidvalidity>:<uid>`, `stdin:<hash>`).
    pub source: &'a str,
    pub bytes: &'a [u8],
    /// When folio noticed it.
    pub seen_at: DateTime<Utc>,
}

/// What writing a plan needs besides the plan: nothing here changes a decision.
#[derive(Debug, Clone, Copy)]
pub struct Writing<'a> {
    /// For folio numbers, Message-IDs and staff reply addresses.
    pub policy: &'a Policy,
    /// `limits.bounce_suppression`: how long a hard-bouncing address gets no mail.
    pub bounce_suppression: std::time::Duration,
    /// `limits.max_attachment_bytes`: larger attachments are recorded without their content.
    pub max_attachment_bytes: u64,
    pub now: DateTime<Utc>,
}

/// Where a message of the plan went.
#[derive(Debug, Clone, Default)]
pub struct Written {
    /// The folio of its ticket (opened or appended to).
    pub folio: Option<String>,
    /// A reply was queued.
    pub queued: bool,
    ticket_id: Option<i64>,
    message_row: Option<i64>,
}

impl Batch {
    /// Writes `plan` (one step per message of `originals`, in order) and commits. Returns
    /// where each message went.
    pub async fn write_plan(
        mut self,
        plan: &Plan<'_>,
        originals: &[Original<'_>],
        how: &Writing<'_>,
    ) -> Result<Vec<Written>, StoreError> {
        let mut written = vec![Written::default(); plan.steps.len()];
        self.open_tickets(plan, how, &mut written).await?;
        self.set_cursors(&plan.cursors).await?;
        self.change_tickets(plan, how, &mut written).await?;
        self.store_messages(plan, originals, how, &mut written)
            .await?;
        self.record_history(plan, how, &written).await?;
        self.queue_replies(plan, how, &mut written).await?;
        for (original, step) in originals.iter().zip(&plan.steps) {
            if let Step::Quarantine(reason) = step {
                self.quarantine(original.source, reason, original.bytes, how.now)
                    .await?;
            }
        }
        self.commit().await?;
        Ok(written)
    }

    /// Inserts the tickets the plan opens, numbered from folio numbers reserved in one
    /// statement.
    async fn open_tickets(
        &mut self,
        plan: &Plan<'_>,
        how: &Writing<'_>,
        written: &mut [Written],
    ) -> Result<(), StoreError> {
        let year = how.now.year();
        let opens = plan.opens();
        let mut seq = if opens > 0 {
            self.allocate_folios(year, opens).await?
        } else {
            0
        };
        let mut rows = Vec::with_capacity(opens);
        for (step, w) in plan.steps.iter().zip(written.iter_mut()) {
            if let Some(ticket) = step.new_ticket() {
                let folio = how.policy.folio_format.render(year, seq);
                seq += 1;
                w.folio = Some(folio.clone());
                rows.push(TicketRow { folio, ticket });
            }
        }
        let ids = self.insert_tickets(&rows, how.now).await?;
        for w in written.iter_mut() {
            w.ticket_id = w.folio.as_ref().and_then(|f| ids.get(f)).copied();
        }
        Ok(())
    }

    /// Applies the changes to the tickets messages are appended to, and marks the addresses
    /// that hard-bounced.
    async fn change_tickets(
        &mut self,
        plan: &Plan<'_>,
        how: &Writing<'_>,
        written: &mut [Written],
    ) -> Result<(), StoreError> {
        let mut appended = Vec::new();
        let mut due = Vec::new();
        for (i, _, r) in plan.records() {
            if let TicketAction::Append {
                ticket_id,
                folio,
                changes,
            } = &r.action
            {
                written[i].folio = Some(folio.clone());
                written[i].ticket_id = Some(*ticket_id);
                appended.push(*ticket_id);
                self.change_ticket(*ticket_id, changes).await?;
                // A status change cancels the ticket's pending work: what earlier messages of
                // the batch scheduled must be written first, as if each had been stored alone.
                if changes.iter().any(|c| matches!(c, Change::Status(_)))
                    || r.life
                        .contains(&crate::desk::lifecycle::LifeEffect::SlaCancelled)
                {
                    self.schedule(&std::mem::take(&mut due), how.now).await?;
                }
                self.record_life(*ticket_id, changes, &r.life, how.now)
                    .await?;
            }
            if let Some(id) = written[i].ticket_id {
                due.extend(super::due::scheduled(id, &r.life));
            }
            if let Some(addr) = &r.failing_address {
                let until = how.now
                    + chrono::Duration::from_std(how.bounce_suppression)
                        .unwrap_or(chrono::Duration::hours(72));
                let error = r
                    .events
                    .iter()
                    .find(|e| e.kind == "bounce")
                    .map_or("bounced", |e| e.detail.as_str());
                self.mark_failing(addr, until, error, how.now).await?;
            }
        }
        self.schedule(&due, how.now).await?;
        appended.sort_unstable();
        appended.dedup();
        self.touch_tickets(&appended, how.now).await
    }

    /// Inserts the recorded messages and their attachments.
    async fn store_messages(
        &mut self,
        plan: &Plan<'_>,
        originals: &[Original<'_>],
        how: &Writing<'_>,
        written: &mut [Written],
    ) -> Result<(), StoreError> {
        let rows: Vec<MessageRow> = plan
            .records()
            .map(|(i, a, r)| message_row(&originals[i], a, r, written[i].ticket_id))
            .collect();
        let ids = self.insert_messages(&rows, how.now).await?;
        for ((i, _, _), id) in plan.records().zip(&ids) {
            written[i].message_row = Some(*id);
        }
        let attachments: Vec<(i64, &crate::inbound::mail::Attachment)> = rows
            .iter()
            .zip(&ids)
            .flat_map(|(m, id)| m.mail.attachments.iter().map(move |a| (*id, a)))
            .collect();
        self.insert_attachments(&attachments, how.max_attachment_bytes)
            .await
    }

    /// The tickets' history: the decisions' events and each change.
    async fn record_history(
        &mut self,
        plan: &Plan<'_>,
        how: &Writing<'_>,
        written: &[Written],
    ) -> Result<(), StoreError> {
        let mut events = Vec::new();
        for (i, a, r) in plan.records() {
            let event = |kind, detail| EventRow {
                ticket_id: written[i].ticket_id,
                message_row: written[i].message_row,
                kind,
                actor: a.mail.from_email.clone(),
                detail,
            };
            events.extend(r.events.iter().map(|e| event(e.kind, e.detail.clone())));
            if let TicketAction::Append { changes, .. } = &r.action {
                events.extend(changes.iter().map(|c| event("changed", describe_change(c))));
            }
        }
        self.insert_events(&events, how.now).await
    }

    /// Queues the replies, each with its Message-ID (and a technician's reply address).
    async fn queue_replies(
        &mut self,
        plan: &Plan<'_>,
        how: &Writing<'_>,
        written: &mut [Written],
    ) -> Result<(), StoreError> {
        let mut rows = Vec::new();
        for (i, a, r) in plan.records() {
            let w = &written[i];
            let has_files = a.mail.attachments.iter().any(|x| !x.data.is_empty());
            for reply in &r.replies {
                let (message_id, reply_to) = addressing(how, reply, w.folio.as_deref());
                rows.push(OutboxRow {
                    ticket_id: w.ticket_id,
                    reply,
                    message_id,
                    reply_to,
                    attachments_of: w
                        .message_row
                        .filter(|_| reply.with_attachments && has_files),
                    context: reply.context_json(w.folio.as_deref()),
                });
            }
            written[i].queued = !r.replies.is_empty();
        }
        self.insert_outbox(&rows, how.now).await
    }
}

/// The row of a recorded message.
fn message_row<'a>(
    original: &Original<'a>,
    a: &'a Analysis,
    r: &Record,
    ticket_id: Option<i64>,
) -> MessageRow<'a> {
    MessageRow {
        ticket_id,
        source: original.source,
        raw: original.bytes,
        mail: &a.mail,
        new_content: &a.new_content,
        automatic_kind: a.verdict.kind.map(|k| k.as_str()),
        verdict_reason: &a.verdict.reason,
        decision_reason: r.reason.as_str(),
        author_role: r.author.as_str(),
        internal: r.internal,
        seen_at: original.seen_at,
    }
}

/// A reply's Message-ID (one of ours, carrying its folio's HMAC, when it has a ticket) and, for
/// a technician, their tokenised reply address for that ticket.
pub(super) fn addressing(
    how: &Writing<'_>,
    reply: &Reply,
    folio: Option<&str>,
) -> (String, Option<String>) {
    let policy = how.policy;
    let nonce = tokens::nonce(how.now);
    let domain = policy
        .helpdesk_address
        .rsplit_once('@')
        .map(|(_, d)| d)
        .unwrap_or("folio.invalid");
    match folio {
        Some(folio) => (
            policy.tokens.message_id(folio, &nonce, domain),
            reply.staff.as_ref().map(|tech| {
                policy
                    .tokens
                    .staff_address(&policy.helpdesk_address, folio, tech)
            }),
        ),
        None => (format!("{nonce}@{domain}"), None),
    }
}

/// A ticket change as the history shows it.
pub(super) fn describe_change(c: &Change) -> String {
    match c {
        Change::Status(s) => format!("status → {}", s.as_str()),
        Change::Priority(p) => format!("priority → {}", p.as_str()),
        Change::Service(s) => format!("service → {s}"),
        Change::Assignee(a) => format!("assignee → {a}"),
    }
}
