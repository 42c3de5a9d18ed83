//! [`Batch::lookup`]: what the rules need to know about a batch of inbound messages, read in a
//! few `IN (…)` queries inside the batch's transaction.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{Any, Encode, Row, Type};

use super::batch::Batch;
use super::outbox::failing_addresses;
use super::queries::{ticket_ref, TICKET_REF_COLUMNS, TICKET_REF_LEN};
use super::statement::{bind_each, built, list_query, placeholders, ROWS_PER_STATEMENT};
use super::{ts, Backend, StoreError};
use crate::desk::known::{Known, Lookup, SentMail};
use crate::desk::policy::cap_key;
use crate::desk::routing::Workload;
use crate::desk::ticket::TicketRef;

/// How many active tickets of one sender a batch looks up (`mis folios` lists them).
const TICKETS_PER_SENDER: usize = 50;

impl Batch {
    /// Looks up, in a few queries, everything `decide` needs for a batch.
    pub async fn lookup(&mut self, q: &Lookup<'_>) -> Result<Known, StoreError> {
        let mut known = Known {
            now: q.now,
            dedup_keys: self.known_dedup_keys(&q.dedup_keys).await?,
            sent: self.sent_mails(&q.parent_ids).await?,
            ..Known::default()
        };
        let replied_tickets: Vec<i64> = known.sent.values().filter_map(|m| m.ticket_id).collect();
        self.referred_tickets(&q.folios, &replied_tickets, &mut known)
            .await?;
        self.add_cc_participants(&mut known).await?;
        known.sender_tickets = self.sender_tickets(&q.senders).await?;
        known.recent_mails = self.recent_mails(&q.addresses, q.since).await?;
        (known.recent_domains, known.recent_total) = self.recent_by_domain(q.hour_ago).await?;
        known.failing = failing_addresses(&mut *self.tx, q.now).await?;
        known.workload = self.workload().await?;
        Ok(known)
    }

    /// Rows of `sql` (which ends in `IN (`) for `values`, in chunks.
    async fn rows_in<'v, V>(
        &mut self,
        sql: &str,
        tail: &str,
        values: &'v [V],
    ) -> Result<Vec<AnyRow>, StoreError>
    where
        V: Sync,
        &'v V: Encode<'v, Any> + Type<Any>,
    {
        let mut out = Vec::new();
        for chunk in values.chunks(ROWS_PER_STATEMENT) {
            let tail = format!("){tail}");
            out.extend(
                list_query(sql, chunk, &tail, self.tx.backend())
                    .fetch_all(&mut *self.tx)
                    .await?,
            );
        }
        Ok(out)
    }

    /// Which of these messages are stored already.
    async fn known_dedup_keys(&mut self, keys: &[&str]) -> Result<HashSet<String>, StoreError> {
        let rows = self
            .rows_in(
                "SELECT dedup_key FROM messages WHERE dedup_key IN (",
                "",
                keys,
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// The mails we sent among these Message-IDs.
    async fn sent_mails(
        &mut self,
        message_ids: &[&str],
    ) -> Result<HashMap<String, SentMail>, StoreError> {
        let rows = self
            .rows_in(
                "SELECT message_id, id, to_address, ticket_id, template FROM outbox WHERE message_id IN (",
                "",
                message_ids,
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let sent = SentMail {
                    outbox_id: r.get(1),
                    to: r.get(2),
                    ticket_id: r.get(3),
                    template: r.get(4),
                };
                (r.get(0), sent)
            })
            .collect())
    }

    /// The tickets with these folios or ids, into `known.tickets` and `known.folio_of`.
    async fn referred_tickets(
        &mut self,
        folios: &[String],
        ids: &[i64],
        known: &mut Known,
    ) -> Result<(), StoreError> {
        let mut rows = self
            .rows_in(
                &format!("SELECT {TICKET_REF_COLUMNS} FROM tickets t WHERE t.folio IN ("),
                "",
                folios,
            )
            .await?;
        rows.extend(
            self.rows_in(
                &format!("SELECT {TICKET_REF_COLUMNS} FROM tickets t WHERE t.id IN ("),
                "",
                ids,
            )
            .await?,
        );
        for r in &rows {
            let t = ticket_ref(r);
            known.folio_of.insert(t.id, t.folio.clone());
            known.tickets.insert(t.folio.clone(), t);
        }
        Ok(())
    }

    /// The CC'd participants of every ticket in `known.tickets`.
    async fn add_cc_participants(&mut self, known: &mut Known) -> Result<(), StoreError> {
        let ids: Vec<i64> = known.folio_of.keys().copied().collect();
        for r in self
            .rows_in(
                "SELECT ticket_id, email FROM participants WHERE role = 'cc' AND ticket_id IN (",
                " ORDER BY email",
                &ids,
            )
            .await?
        {
            let id: i64 = r.get(0);
            if let Some(t) = known
                .folio_of
                .get(&id)
                .cloned()
                .and_then(|f| known.tickets.get_mut(&f))
            {
                t.participants.push(r.get(1));
            }
        }
        Ok(())
    }

    /// Each sender's active tickets (as requester or participant), newest first.
    async fn sender_tickets(
        &mut self,
        senders: &[&str],
    ) -> Result<HashMap<String, Vec<TicketRef>>, StoreError> {
        let rows = self
            .rows_in(
                &format!(
                    "SELECT {TICKET_REF_COLUMNS}, p.email FROM tickets t JOIN participants p ON p.ticket_id = t.id
                     WHERE t.status IN ('open', 'pending') AND p.email IN ("
                ),
                " ORDER BY t.id DESC",
                senders,
            )
            .await?;
        let mut by_sender: HashMap<String, Vec<TicketRef>> = HashMap::new();
        for r in &rows {
            let list = by_sender.entry(r.get(TICKET_REF_LEN)).or_default();
            if list.len() < TICKETS_PER_SENDER {
                list.push(ticket_ref(r));
            }
        }
        Ok(by_sender)
    }

    /// Mails queued since `since` to each of `addresses`, per [`cap_key`]: what the
    /// per-address cap counts (the sweep holds its own mail to it too).
    pub async fn recent_mail_counts(
        &mut self,
        addresses: &[&str],
        since: DateTime<Utc>,
    ) -> Result<HashMap<String, u32>, StoreError> {
        self.recent_mails(addresses, since).await
    }

    /// Mails queued since `since` per address ([`cap_key`]), for the per-address cap: one
    /// indexed `IN (…)` over the stored key (`outbox.cap_key`, migration 0013), which counts
    /// bob@x together with Bob+1@x, bob+2@x, ….
    async fn recent_mails(
        &mut self,
        addresses: &[&str],
        since: DateTime<Utc>,
    ) -> Result<HashMap<String, u32>, StoreError> {
        let since = ts(since);
        let mut keys: Vec<String> = addresses
            .iter()
            .map(|a| cap_key(a))
            .filter(|a| a.contains('@'))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let mut recent: HashMap<String, u32> = HashMap::new();
        for chunk in keys.chunks(ROWS_PER_STATEMENT) {
            let query = built(
                &format!(
                    "SELECT cap_key, count(*) FROM outbox WHERE created_at >= ? AND cap_key IN ({})
                 GROUP BY cap_key",
                    placeholders(chunk.len())
                ),
                self.tx.backend(),
            )
            .bind(since.clone());
            for r in bind_each(query, chunk).fetch_all(&mut *self.tx).await? {
                recent.insert(r.get(0), r.get::<i64, _>(1) as u32);
            }
        }
        Ok(recent)
    }

    /// The hourly caps: mails queued since `hour_ago` per recipient domain, and in all.
    async fn recent_by_domain(
        &mut self,
        hour_ago: DateTime<Utc>,
    ) -> Result<(HashMap<String, u32>, u32), StoreError> {
        let mut domains = HashMap::new();
        let mut total = 0;
        let sql = match self.tx.backend() {
            Backend::Sqlite => {
                "SELECT lower(substr(to_address, instr(to_address, '@') + 1)), count(*) FROM outbox
                 WHERE created_at >= $1 GROUP BY 1"
            }
            Backend::Postgres => {
                "SELECT lower(substr(to_address, strpos(to_address, '@') + 1)), count(*) FROM outbox
                 WHERE created_at >= $1 GROUP BY 1"
            }
        };
        for r in sqlx::query(sql)
            .bind(ts(hour_ago))
            .fetch_all(&mut *self.tx)
            .await?
        {
            let n = r.get::<i64, _>(1) as u32;
            total += n;
            domains.insert(r.get(0), n);
        }
        Ok((domains, total))
    }

    /// The technicians' open tickets and each group's round-robin position.
    async fn workload(&mut self) -> Result<Workload, StoreError> {
        let mut workload = Workload::default();
        for r in sqlx::query(
            "SELECT assignee, count(*) FROM tickets WHERE assignee IS NOT NULL
             AND status IN ('open', 'pending') GROUP BY assignee",
        )
        .fetch_all(&mut *self.tx)
        .await?
        {
            workload.open.insert(r.get(0), r.get::<i64, _>(1) as u32);
        }
        for r in sqlx::query("SELECT group_id, technician FROM assignment_cursor")
            .fetch_all(&mut *self.tx)
            .await?
        {
            workload.last_assigned.insert(r.get(0), r.get(1));
        }
        Ok(workload)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::store::test_support::{mail, new_ticket, now, open_ticket, queue, temp_store};
    use crate::store::Store;

    fn lookup<'a>() -> Lookup<'a> {
        Lookup {
            since: now() - chrono::Duration::days(1),
            hour_ago: now() - chrono::Duration::hours(1),
            now: now(),
            ..Lookup::default()
        }
    }

    async fn look(store: &Store, q: &Lookup<'_>) -> Known {
        let mut tx = store.begin().await.unwrap();
        let known = tx.lookup(q).await.unwrap();
        tx.rollback().await;
        known
    }

    /// Two tickets: ana's (CC carl, assigned to tech1; our confirmation r1@x) and bob's (r2@x).
    async fn two_tickets(store: &Store) -> (i64, i64) {
        let t1 = new_ticket(
            "ana@example.test",
            "Printer",
            Some("tech1@example.test"),
            &["carl@example.test"],
        );
        let t2 = new_ticket("bob@example.test", "VPN", None, &[]);
        let m1 = mail("a@example.test", "ana@example.test", "Printer", "It jams.");
        let m2 = mail("b@example.test", "bob@example.test", "VPN", "No tunnel.");
        let a = open_ticket(store, "HD-1", &t1, &m1, "r1@x").await;
        let b = open_ticket(store, "HD-2", &t2, &m2, "r2@x").await;
        (a.ticket_id, b.ticket_id)
    }

    #[tokio::test]
    async fn finds_tickets_by_folio_and_by_the_message_id_of_our_mail() {
        let (_dir, store) = temp_store().await;
        let (ana, bob) = two_tickets(&store).await;
        let q = Lookup {
            folios: vec!["HD-1".into(), "HD-404".into()],
            parent_ids: vec!["r2@x", "someone-else@x"],
            ..lookup()
        };
        let known = look(&store, &q).await;
        let sent = &known.sent["r2@x"];
        assert_eq!(
            (sent.to.as_str(), sent.ticket_id),
            ("bob@example.test", Some(bob))
        );
        assert_eq!(known.sent.len(), 1);
        let mut folios: Vec<&String> = known.tickets.keys().collect();
        folios.sort();
        assert_eq!(folios, ["HD-1", "HD-2"]);
        assert_eq!(known.ticket_by_id(bob).unwrap().folio, "HD-2");
        assert_eq!(known.folio_of[&ana], "HD-1");
        // CC'd participants come along; the requester is not one of them.
        assert_eq!(known.tickets["HD-1"].participants, ["carl@example.test"]);
        assert!(known.tickets["HD-2"].participants.is_empty());
        assert_eq!(
            known.tickets["HD-1"].opening_message_id.as_deref(),
            Some("a@example.test")
        );
    }

    #[tokio::test]
    async fn finds_stored_messages_by_dedup_key_in_any_number() {
        let (_dir, store) = temp_store().await;
        two_tickets(&store).await;
        // More keys than one statement takes.
        let mut keys: Vec<String> = (0..ROWS_PER_STATEMENT + 10)
            .map(|i| format!("mid:new{i}@x"))
            .collect();
        keys.push("mid:b@example.test".into());
        let q = Lookup {
            dedup_keys: keys.iter().map(String::as_str).collect(),
            ..lookup()
        };
        let known = look(&store, &q).await;
        assert_eq!(
            known.dedup_keys,
            HashSet::from(["mid:b@example.test".to_string()])
        );
    }

    #[tokio::test]
    async fn finds_each_senders_active_tickets_newest_first() {
        let (_dir, store) = temp_store().await;
        let (ana, _) = two_tickets(&store).await;
        let t3 = new_ticket("ana@example.test", "Scanner", None, &[]);
        let m3 = mail("c@example.test", "ana@example.test", "Scanner", "Dead.");
        let third = open_ticket(&store, "HD-3", &t3, &m3, "r3@x").await;
        let q = Lookup {
            senders: vec!["ana@example.test", "carl@example.test", "zoe@example.test"],
            ..lookup()
        };
        let known = look(&store, &q).await;
        let ids = |s: &str| -> Vec<i64> { known.sender_tickets[s].iter().map(|t| t.id).collect() };
        assert_eq!(ids("ana@example.test"), [third.ticket_id, ana]);
        assert_eq!(ids("carl@example.test"), [ana]);
        assert!(!known.sender_tickets.contains_key("zoe@example.test"));
    }

    #[tokio::test]
    async fn counts_recent_mail_per_address_with_its_tags_per_domain_and_in_all() {
        let (_dir, store) = temp_store().await;
        two_tickets(&store).await;
        for (id, to) in [
            ("d1@x", "dan@example.test"),
            ("d2@x", "dan+1@example.test"),
            ("d3@x", "dan+2@example.test"),
            ("d4@x", "dan+9@other.test"),
            ("d5@x", "danny@example.test"),
            ("d6@x", "DAN+Urgent@Example.TEST"),
        ] {
            queue(&store, id, to).await.unwrap();
        }
        let q = Lookup {
            addresses: vec!["Dan+7@example.test", "not-an-address"],
            ..lookup()
        };
        let known = look(&store, &q).await;
        assert_eq!(
            known.recent_mails,
            HashMap::from([("dan@example.test".to_string(), 4)])
        );
        assert_eq!(
            known.recent_domains,
            HashMap::from([
                ("example.test".to_string(), 7),
                ("other.test".to_string(), 1)
            ])
        );
        assert_eq!(known.recent_total, 8);
        // Outside the windows nothing counts.
        let later = Lookup {
            since: now() + chrono::Duration::seconds(1),
            hour_ago: now() + chrono::Duration::seconds(1),
            ..q
        };
        let known = look(&store, &later).await;
        assert!(known.recent_mails.is_empty());
        assert_eq!(known.recent_total, 0);
    }

    #[tokio::test]
    async fn mail_queued_before_the_cap_key_existed_counts_once_the_store_opens() {
        let (dir, store) = temp_store().await;
        for (id, to) in [("d1@x", "dan+1@example.test"), ("d2@x", "Dan@Example.test")] {
            queue(&store, id, to).await.unwrap();
        }
        // As a row of a database migrated from before 0013 (or imported from an older export).
        sqlx::query("UPDATE outbox SET cap_key = NULL")
            .execute(&store.pool)
            .await
            .unwrap();
        let q = Lookup {
            addresses: vec!["dan@example.test"],
            ..lookup()
        };
        assert!(look(&store, &q).await.recent_mails.is_empty());
        store.pool.close().await;
        let reopened = Store::open(&crate::store::scratch::database_url(dir.path()))
            .await
            .unwrap();
        assert_eq!(
            look(&reopened, &q).await.recent_mails,
            HashMap::from([("dan@example.test".to_string(), 2)])
        );
    }

    #[tokio::test]
    async fn reads_the_workload_the_turns_and_the_failing_addresses() {
        let (_dir, store) = temp_store().await;
        two_tickets(&store).await;
        let mut tx = store.begin().await.unwrap();
        tx.set_cursors(&HashMap::from([(
            "soporte".to_string(),
            "tech1@example.test".to_string(),
        )]))
        .await
        .unwrap();
        tx.mark_failing(
            "gone@example.test",
            now() + chrono::Duration::days(1),
            "550",
            now(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let known = look(&store, &lookup()).await;
        assert_eq!(
            known.workload.open,
            HashMap::from([("tech1@example.test".to_string(), 1)])
        );
        assert_eq!(
            known.workload.last_assigned["soporte"],
            "tech1@example.test"
        );
        assert_eq!(
            known.failing,
            HashSet::from(["gone@example.test".to_string()])
        );
    }
}
