//! What `folio report` reads: the tickets opened in a period and the survey answers given in
//! it, as the plain rows `desk::report` sums up. Two queries, each an index range
//! (`tickets_created`, `satisfaction_answered`: migration 0010), so a week's report reads that
//! week's rows and not every ticket ever.

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{flag, parse_ts, ts, Store, StoreError};
use crate::desk::catalog::Priority;
use crate::desk::report::{Answer, Rows, Ticket};
use crate::desk::ticket::Status;

/// The tickets opened in `[?, ?)`.
const TICKETS: &str = "SELECT folio, service, status, priority, created_at, first_response_at,
        resolved_at, closed_at, response_breached_at IS NOT NULL,
        resolution_breached_at IS NOT NULL
    FROM tickets WHERE created_at >= $1 AND created_at < $2";

/// The survey answers given in `[?, ?)`, with their ticket's folio.
const ANSWERS: &str = "SELECT t.folio, s.rating, s.comment, s.answered_at
    FROM satisfaction s JOIN tickets t ON t.id = s.ticket_id
    WHERE s.answered_at >= $1 AND s.answered_at < $2";

fn time(r: &AnyRow, i: usize) -> Option<DateTime<Utc>> {
    r.get::<Option<String>, _>(i).as_deref().and_then(parse_ts)
}

fn ticket(r: &AnyRow, fallback: DateTime<Utc>) -> Ticket {
    Ticket {
        folio: r.get(0),
        service: r.get(1),
        status: Status::parse(&r.get::<String, _>(2)),
        priority: Priority::parse(&r.get::<String, _>(3)).unwrap_or(Priority::Media),
        // The row was chosen by this very column, so it is in the period even when it does
        // not parse: counted at the period's start rather than lost.
        created_at: time(r, 4).unwrap_or(fallback),
        first_response_at: time(r, 5),
        resolved_at: time(r, 6),
        closed_at: time(r, 7),
        response_breached: flag(r, 8),
        resolution_breached: flag(r, 9),
    }
}

fn answer(r: &AnyRow, fallback: DateTime<Utc>) -> Answer {
    Answer {
        folio: r.get(0),
        // The table's CHECK keeps it within 1..=5.
        rating: u8::try_from(r.get::<i64, _>(1)).unwrap_or(0),
        comment: r.get(2),
        answered_at: time(r, 3).unwrap_or(fallback),
    }
}

impl Store {
    /// The rows of a report on `[start, end)`: the tickets created in it and the survey answers
    /// given in it. Stored names read as the rules read them (an unknown status as open, an
    /// unknown priority as `media`). Rows are turned into plain data as they stream in: a
    /// period of 100,000 tickets never holds 100,000 database rows at once.
    pub async fn report_rows(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Rows, StoreError> {
        let (from, to) = (ts(start), ts(end));
        let mut rows = Rows::default();
        let mut tickets = sqlx::query(TICKETS).bind(&from).bind(&to).fetch(&self.pool);
        while let Some(r) = tickets.try_next().await? {
            rows.tickets.push(ticket(&r, start));
        }
        drop(tickets);
        let mut answers = sqlx::query(ANSWERS).bind(&from).bind(&to).fetch(&self.pool);
        while let Some(r) = answers.try_next().await? {
            rows.answers.push(answer(&r, start));
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use chrono::{TimeDelta, TimeZone};

    use super::*;
    use crate::desk::lifecycle::LifeEffect;
    use crate::desk::sla::Target;
    use crate::desk::ticket::Change;
    use crate::store::test_support::{new_ticket, query_plan, temp_store};
    use crate::store::{Backend, TicketRow};

    fn at(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, d, h, 0, 0).unwrap()
    }

    /// Opens ticket `folio` at `when`; returns its id.
    async fn open_at(store: &Store, folio: &str, when: DateTime<Utc>) -> i64 {
        let t = new_ticket("ana@example.test", "Impresora", None, &[]);
        let mut tx = store.begin().await.unwrap();
        let ids = tx
            .insert_tickets(
                &[TicketRow {
                    folio: folio.to_string(),
                    ticket: &t,
                }],
                when,
            )
            .await
            .unwrap();
        tx.commit().await.unwrap();
        ids[folio]
    }

    /// What a status change and its effects write at `when`, as the pipeline writes them.
    async fn change_at(
        store: &Store,
        id: i64,
        changes: &[Change],
        life: &[LifeEffect],
        when: DateTime<Utc>,
    ) {
        let mut tx = store.begin().await.unwrap();
        tx.change_ticket(id, changes).await.unwrap();
        tx.record_life(id, changes, life, when).await.unwrap();
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn report_rows_are_the_tickets_opened_and_the_answers_given_in_the_period() {
        let (_dir, store) = temp_store().await;
        let before = open_at(
            &store,
            "MDA-2026-000001",
            at(1, 12) - TimeDelta::milliseconds(1),
        )
        .await;
        let first = open_at(&store, "MDA-2026-000002", at(1, 12)).await;
        let second = open_at(&store, "MDA-2026-000003", at(3, 9)).await;
        open_at(&store, "MDA-2026-000004", at(8, 12)).await;
        change_at(
            &store,
            first,
            &[Change::Status(Status::Resolved)],
            &[
                LifeEffect::FirstResponse,
                LifeEffect::SlaBreached {
                    target: Target::Resolution,
                },
            ],
            at(2, 10),
        )
        .await;
        change_at(
            &store,
            first,
            &[Change::Status(Status::Closed)],
            &[LifeEffect::Satisfaction {
                rating: 4,
                comment: Some("Rápido".into()),
            }],
            at(4, 10),
        )
        .await;
        change_at(
            &store,
            second,
            &[Change::Priority(Priority::Critica)],
            &[LifeEffect::SlaBreached {
                target: Target::FirstResponse,
            }],
            at(3, 15),
        )
        .await;
        // A ticket opened before the period, rated in it.
        change_at(
            &store,
            before,
            &[],
            &[LifeEffect::Satisfaction {
                rating: 2,
                comment: None,
            }],
            at(5, 10),
        )
        .await;

        let rows = store.report_rows(at(1, 12), at(8, 12)).await.unwrap();
        let mut tickets = rows.tickets.clone();
        tickets.sort_by(|a, b| a.folio.cmp(&b.folio));
        assert_eq!(
            tickets,
            vec![
                Ticket {
                    folio: "MDA-2026-000002".into(),
                    service: Some("correo".into()),
                    status: Status::Closed,
                    priority: Priority::Alta,
                    created_at: at(1, 12),
                    first_response_at: Some(at(2, 10)),
                    resolved_at: Some(at(2, 10)),
                    closed_at: Some(at(4, 10)),
                    response_breached: false,
                    resolution_breached: true,
                },
                Ticket {
                    folio: "MDA-2026-000003".into(),
                    service: Some("correo".into()),
                    status: Status::Open,
                    priority: Priority::Critica,
                    created_at: at(3, 9),
                    first_response_at: None,
                    resolved_at: None,
                    closed_at: None,
                    response_breached: true,
                    resolution_breached: false,
                },
            ],
            "the start is included, the end is not"
        );
        let mut answers = rows.answers.clone();
        answers.sort_by(|a, b| a.folio.cmp(&b.folio));
        assert_eq!(
            answers,
            vec![
                Answer {
                    folio: "MDA-2026-000001".into(),
                    rating: 2,
                    comment: None,
                    answered_at: at(5, 10),
                },
                Answer {
                    folio: "MDA-2026-000002".into(),
                    rating: 4,
                    comment: Some("Rápido".into()),
                    answered_at: at(4, 10),
                },
            ]
        );
        let empty = store.report_rows(at(20, 0), at(27, 0)).await.unwrap();
        assert_eq!(empty, Rows::default());
    }

    #[tokio::test]
    async fn report_queries_read_an_index_range_not_the_whole_table() {
        let (_dir, store) = temp_store().await;
        for (sql, index) in [
            (TICKETS, "tickets_created"),
            (ANSWERS, "satisfaction_answered"),
        ] {
            let plan = query_plan(&store, sql, |q| {
                q.bind("2026-12-01T00:00:00.000Z")
                    .bind("2026-12-08T00:00:00.000Z")
            })
            .await;
            match store.backend() {
                Backend::Sqlite => {
                    assert!(
                        plan.contains(&format!("USING INDEX {index} (")),
                        "{sql}\n{plan}"
                    );
                    assert!(!plan.contains("SCAN"), "{sql}\n{plan}");
                }
                Backend::Postgres => {
                    assert!(
                        plan.contains(&format!("using {index} on"))
                            || plan.contains(&format!("Index Scan on {index}")),
                        "{sql}\n{plan}"
                    );
                    assert!(!plan.contains("Seq Scan"), "{sql}\n{plan}");
                }
            }
        }
    }
}
