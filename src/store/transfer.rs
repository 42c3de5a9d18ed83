//! `folio export` / `folio import`: a whole site as JSON lines, to move it between SQLite and
//! PostgreSQL (or to another machine). Streaming both ways: a row is read, written and
//! forgotten, so a site of any size fits in memory one message at a time.
//!
//! The format: a first line `{"folio_export": 1, "from": "sqlite", "tables": [...]}`, then
//! one line per row, `{"table": "tickets", "row": {"id": 1, "folio": "MDA-2026-000001", …}}`,
//! tables in `TABLES`'s order (each after those it refers to). Integers are JSON numbers,
//! text is a JSON string, bytes are `{"base64": "…"}`, and a NULL column is left out. Row ids
//! are kept, so references between rows, folio numbers and the site secret (the key of the
//! tokens in mail already sent) survive the move. Runtime state is not moved: which instances
//! ran and which held the mailbox (`instances`, `leases`).

use std::io::{BufRead, Write};

use base64::Engine as _;
use futures::TryStreamExt;
use serde_json::{json, Map, Value};
use sqlx::{Row, TypeInfo as _, ValueRef as _};

use super::{Backend, Store, StoreError};

/// The export format's version, in its first line.
pub const FORMAT: u64 = 1;

/// Every table moved, parents before children.
pub const TABLES: [&str; 16] = [
    "site_secret",
    "folio_counter",
    "mailbox_state",
    "tickets",
    "messages",
    "attachments",
    "participants",
    "ticket_events",
    "outbox",
    "quarantine",
    "assignment_cursor",
    "address_health",
    "satisfaction",
    "survey_opt_outs",
    "due_items",
    "scheduled_runs",
];

/// Tables earlier exports carry that are no longer moved: an import skips their rows.
/// `analysis_attempts` (analyses running or cut short by a crash) lives beside a SQLite
/// database since sqlite migration 0015 and means nothing to another process.
const NOT_MOVED: [&str; 1] = ["analysis_attempts"];

/// Tables whose `id` the database generates: after an import, the next id follows the
/// largest imported one.
const GENERATED_IDS: [&str; 7] = [
    "tickets",
    "messages",
    "attachments",
    "outbox",
    "quarantine",
    "ticket_events",
    "due_items",
];

/// Rows per transaction when importing.
const ROWS_PER_COMMIT: usize = 1_000;

/// Why an export or import stopped.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the export: {0}")]
    Write(std::io::Error),
    #[error("reading the import, line {line}: {source}")]
    Read { line: usize, source: std::io::Error },
    #[error("line {line}: {problem}")]
    Format { line: usize, problem: String },
    #[error(
        "the database already holds {tickets} ticket(s) and {messages} message(s): import only into a new, empty database"
    )]
    NotEmpty { tickets: i64, messages: i64 },
    #[error("line {line}: {source}")]
    Row { line: usize, source: StoreError },
}

/// How much moved, per table in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Moved(pub Vec<(String, u64)>);

impl std::fmt::Display for Moved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (table, n) in &self.0 {
            writeln!(f, "{n:>10}  {table}")?;
        }
        Ok(())
    }
}

/// A column's value as the export writes it (`None`: NULL).
fn value_of(row: &sqlx::any::AnyRow, i: usize) -> Result<Option<Value>, sqlx::Error> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(None);
    }
    let kind = raw.type_info().name().to_ascii_uppercase();
    Ok(Some(match kind.as_str() {
        "BLOB" => {
            json!({ "base64": base64::engine::general_purpose::STANDARD.encode(row.try_get::<Vec<u8>, _>(i)?) })
        }
        "TEXT" => Value::String(row.try_get::<String, _>(i)?),
        "BOOLEAN" => Value::from(i64::from(row.try_get::<bool, _>(i)?)),
        _ => Value::from(row.try_get::<i64, _>(i)?),
    }))
}

impl Store {
    /// Writes every table of `TABLES` to `out` as JSON lines.
    pub async fn export(&self, out: &mut impl Write) -> Result<Moved, TransferError> {
        let from = match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        let header = json!({ "folio_export": FORMAT, "from": from, "tables": TABLES });
        writeln!(out, "{header}").map_err(TransferError::Write)?;
        let mut moved = Moved::default();
        for table in TABLES {
            // Ordered, so two exports of one site are the same text.
            let order = match table {
                "participants" => "ticket_id, email",
                "scheduled_runs" => "job, period",
                // The id or the key: the first column of every other table.
                _ => "1",
            };
            let sql = format!("SELECT * FROM {table} ORDER BY {order}");
            let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(&self.pool);
            let mut n = 0;
            while let Some(row) = rows.try_next().await.map_err(StoreError::from)? {
                let mut columns = Map::new();
                for (i, c) in row.columns().iter().enumerate() {
                    use sqlx::Column as _;
                    if let Some(v) = value_of(&row, i).map_err(StoreError::from)? {
                        columns.insert(c.name().to_string(), v);
                    }
                }
                let line = json!({ "table": table, "row": columns });
                writeln!(out, "{line}").map_err(TransferError::Write)?;
                n += 1;
            }
            moved.0.push((table.to_string(), n));
        }
        out.flush().map_err(TransferError::Write)?;
        Ok(moved)
    }

    /// Reads an export from `input` into this database, which must hold no ticket and no
    /// message yet (a new database, just migrated). All or nothing per `ROWS_PER_COMMIT`
    /// rows; on an error the database should be dropped and the import run again.
    pub async fn import(&self, input: impl BufRead) -> Result<Moved, TransferError> {
        let counts = self.counts().await?;
        if counts.tickets > 0 || counts.messages > 0 {
            return Err(TransferError::NotEmpty {
                tickets: counts.tickets,
                messages: counts.messages,
            });
        }
        let mut lines = input.lines().enumerate();
        let format_err = |line: usize, problem: String| TransferError::Format { line, problem };
        let header: Value = match lines.next() {
            Some((_, Ok(text))) => serde_json::from_str(&text)
                .map_err(|e| format_err(1, format!("not a folio export header: {e}")))?,
            Some((_, Err(source))) => return Err(TransferError::Read { line: 1, source }),
            None => return Err(format_err(1, "empty input: not a folio export".into())),
        };
        if header["folio_export"].as_u64() != Some(FORMAT) {
            return Err(format_err(
                1,
                format!("not a folio export of format {FORMAT}: {header}"),
            ));
        }
        let mut tx = self.begin().await?;
        // The migrations made a secret of their own: the site's replaces it.
        sqlx::query("DELETE FROM site_secret")
            .execute(&mut *tx.tx)
            .await
            .map_err(StoreError::from)?;
        let mut moved: Vec<(String, u64)> = TABLES.iter().map(|t| (t.to_string(), 0)).collect();
        let mut since_commit = 0;
        for (i, line) in lines {
            let number = i + 1;
            let text = line.map_err(|source| TransferError::Read {
                line: number,
                source,
            })?;
            if text.trim().is_empty() {
                continue;
            }
            let item: Value = serde_json::from_str(&text)
                .map_err(|e| format_err(number, format!("not JSON: {e}")))?;
            let table = item["table"].as_str().unwrap_or_default();
            if NOT_MOVED.contains(&table) {
                continue;
            }
            let Some(slot) = moved.iter_mut().find(|(t, _)| t == table) else {
                return Err(format_err(number, format!("unknown table {table:?}")));
            };
            let Some(row) = item["row"].as_object() else {
                return Err(format_err(number, "no \"row\" object".into()));
            };
            let mut names = Vec::with_capacity(row.len());
            for name in row.keys() {
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                    return Err(format_err(number, format!("bad column name {name:?}")));
                }
                names.push(name.as_str());
            }
            let sql = format!(
                "INSERT INTO {table} ({}) VALUES ({})",
                names.join(", "),
                (1..=names.len())
                    .map(|n| format!("${n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for name in &names {
                query = match &row[*name] {
                    Value::Number(n) => match n.as_i64() {
                        Some(n) => query.bind(n),
                        None => return Err(format_err(number, format!("{name}: not an integer"))),
                    },
                    Value::String(s) => query.bind(s.clone()),
                    Value::Object(o) => match o.get("base64").and_then(Value::as_str) {
                        Some(b) => query.bind(
                            base64::engine::general_purpose::STANDARD
                                .decode(b)
                                .map_err(|e| format_err(number, format!("{name}: {e}")))?,
                        ),
                        None => return Err(format_err(number, format!("{name}: unknown value"))),
                    },
                    other => return Err(format_err(number, format!("{name}: unexpected {other}"))),
                };
            }
            query
                .execute(&mut *tx.tx)
                .await
                .map_err(|e| TransferError::Row {
                    line: number,
                    source: e.into(),
                })?;
            slot.1 += 1;
            since_commit += 1;
            if since_commit == ROWS_PER_COMMIT {
                tx.commit().await?;
                tx = self.begin().await?;
                since_commit = 0;
            }
        }
        if self.backend == Backend::Postgres {
            for table in GENERATED_IDS {
                let sql = format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                                   coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut *tx.tx)
                    .await
                    .map_err(StoreError::from)?;
            }
        }
        tx.commit().await?;
        // An export from before the cap key (migration 0013) has none.
        self.fill_cap_keys().await?;
        Ok(Moved(moved))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::store::test_support::{now, open_ticket, queue, temp_store};

    /// The export without its header line (which names the engine it came from).
    async fn rows(store: &Store) -> Vec<String> {
        let mut out = Vec::new();
        store.export(&mut out).await.unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .skip(1)
            .map(str::to_string)
            .collect()
    }

    #[tokio::test]
    async fn a_site_moves_from_sqlite_to_the_test_engine_and_back_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = Store::open(&format!("sqlite://{}", dir.path().join("a.db").display()))
            .await
            .unwrap();
        for i in 0..3 {
            open_ticket(
                &sqlite,
                &format!("MDA-2026-00000{i}"),
                &crate::store::test_support::new_ticket(
                    &format!("ana{i}@example.test"),
                    "Sin red",
                    Some("tech1@example.test"),
                    &["cc@example.test"],
                ),
                &crate::store::test_support::mail(
                    &format!("m{i}@x"),
                    "ana@example.test",
                    "Sin red",
                    "Ñandú \u{1F600} 'quoted' \"double\"",
                ),
                &format!("r{i}@x"),
            )
            .await;
        }
        queue(&sqlite, "q@x", "bob@example.test").await.unwrap();
        let mut tx = sqlite.begin().await.unwrap();
        tx.quarantine("imap:INBOX:1:9", "broken", &[0, 159, 255, 10], now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let secret = sqlite.site_secret().await.unwrap();
        let original = rows(&sqlite).await;
        assert!(original.len() > 10, "{original:?}");

        // Into the engine the tests run on (PostgreSQL in CI's second pass), and back.
        let there = tempfile::tempdir().unwrap();
        let target = temp_store_in(there.path()).await;
        let mut export = Vec::new();
        sqlite.export(&mut export).await.unwrap();
        let moved = target.import(export.as_slice()).await.unwrap();
        assert_eq!(moved.0.iter().find(|(t, _)| t == "tickets").unwrap().1, 3);
        assert_eq!(rows(&target).await, original);
        assert_eq!(target.site_secret().await.unwrap(), secret);
        // The next ids follow the imported ones.
        queue(&target, "q2@x", "bob@example.test").await.unwrap();

        let back = Store::open(&format!("sqlite://{}", dir.path().join("b.db").display()))
            .await
            .unwrap();
        let mut export = Vec::new();
        target.export(&mut export).await.unwrap();
        back.import(export.as_slice()).await.unwrap();
        let round_trip = rows(&back).await;
        assert_eq!(round_trip.len(), original.len() + 1);
        assert_eq!(&round_trip[..], &rows(&target).await[..]);

        // Never into a database that holds a site already.
        let mut export = Vec::new();
        sqlite.export(&mut export).await.unwrap();
        let refused = back.import(export.as_slice()).await.unwrap_err();
        assert!(refused.to_string().contains("empty database"), "{refused}");
    }

    #[tokio::test]
    async fn an_older_export_imports_without_its_analysis_attempts() {
        let (_dir, store) = temp_store().await;
        let export = "{\"folio_export\": 1}\n\
            {\"table\": \"analysis_attempts\", \"row\": {\"source\": \"imap:INBOX:7:1\", \"attempts\": 1, \"first_at\": \"2026-01-01T00:00:00.000Z\", \"last_at\": \"2026-01-01T00:00:00.000Z\"}}\n\
            {\"table\": \"quarantine\", \"row\": {\"id\": 1, \"source\": \"imap:INBOX:7:2\", \"reason\": \"broken\", \"raw\": {\"base64\": \"eA==\"}, \"created_at\": \"2026-01-01T00:00:00.000Z\"}}\n";
        let moved = store.import(export.as_bytes()).await.unwrap();
        assert!(
            moved.0.iter().all(|(t, _)| t != "analysis_attempts"),
            "{moved:?}"
        );
        assert_eq!(
            moved.0.iter().find(|(t, _)| t == "quarantine").unwrap().1,
            1
        );
        assert_eq!(
            store
                .unfinished_attempts(&["imap:INBOX:7:1"])
                .await
                .unwrap(),
            [0]
        );
    }

    async fn temp_store_in(dir: &std::path::Path) -> Store {
        Store::open(&crate::store::scratch::database_url(dir))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_broken_export_is_refused_with_its_line() {
        let (_dir, store) = temp_store().await;
        for (input, says) in [
            ("", "empty input"),
            ("{\"folio_export\": 9}\n", "format 1"),
            (
                "{\"folio_export\": 1}\n{\"table\": \"users; DROP TABLE tickets\", \"row\": {}}\n",
                "line 2: unknown table",
            ),
            (
                "{\"folio_export\": 1}\n{\"table\": \"tickets\", \"row\": {\"id) VALUES (1); --\": 1}}\n",
                "line 2: bad column name",
            ),
        ] {
            let e = store.import(input.as_bytes()).await.unwrap_err();
            assert!(e.to_string().contains(says), "{input}: {e}");
        }
    }
}
