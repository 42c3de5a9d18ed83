//! Fresh databases for tests and benchmarks: a SQLite file in a folder, or, when
//! `FOLIO_TEST_POSTGRES` names a PostgreSQL server (`scripts/postgres env`), a new database on
//! it. One switch runs every test that opens a store on either engine.

use std::path::Path;
use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Executor};

/// The environment variable naming the PostgreSQL server tests run on (any database on it:
/// each test gets a new one).
pub const TEST_POSTGRES: &str = "FOLIO_TEST_POSTGRES";

/// Where scratch databases are named from: `folio_t_…`, so `scripts/postgres clean` finds them.
const PREFIX: &str = "folio_t_";

/// The database URL of the test or benchmark working in `dir`: when [`TEST_POSTGRES`] is set, a
/// new, empty PostgreSQL database the first time, the same one afterwards (its URL is kept in
/// `dir`, so a restarted daemon finds its data); else `folio.db` in `dir`. Panics when the
/// server cannot be reached: a test asked to run on PostgreSQL must not quietly run on SQLite.
pub fn database_url(dir: &Path) -> String {
    match std::env::var(TEST_POSTGRES) {
        Ok(server) if !server.is_empty() => {
            let kept = dir.join("postgres-database-url");
            if let Ok(url) = std::fs::read_to_string(&kept) {
                return url;
            }
            let url = new_postgres_database(&server).unwrap_or_else(|e| {
                panic!("{TEST_POSTGRES}={server}: cannot create a database: {e}")
            });
            if let Err(e) = std::fs::write(&kept, &url) {
                panic!("{}: {e}", kept.display());
            }
            url
        }
        _ => format!("sqlite://{}", dir.join("folio.db").display()),
    }
}

/// Whether tests run on PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var(TEST_POSTGRES).is_ok_and(|s| !s.is_empty())
}

/// A number no other scratch database of this or another run has: std's hasher keys are
/// random per process and per `RandomState`, so no clock is read.
fn unique() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish()
}

/// Creates `folio_t_<random>` on the server `server` names and returns its URL. Runs on its own
/// thread and runtime, so sync and async callers alike can use it.
fn new_postgres_database(server: &str) -> Result<String, sqlx::Error> {
    let server = server.to_string();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(sqlx::Error::Io)?;
        rt.block_on(async move {
            let options = PgConnectOptions::from_str(&server)?;
            let name = format!("{PREFIX}{:016x}", unique());
            let mut conn = sqlx::PgConnection::connect_with(&options).await?;
            conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .await?;
            conn.close().await?;
            let (base, query) = match server.split_once('?') {
                Some((b, q)) => (b, format!("?{q}")),
                None => (server.as_str(), String::new()),
            };
            let root = match base.find("://").map(|i| i + 3) {
                Some(i) => match base[i..].find('/') {
                    Some(j) => &base[..i + j],
                    None => base,
                },
                None => base,
            };
            Ok(format!("{root}/{name}{query}"))
        })
    })
    .join()
    .unwrap_or_else(|_| Err(sqlx::Error::PoolClosed))
}
