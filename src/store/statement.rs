//! Statements over a list of values (`… IN (?, ?, …)`), one statement per chunk of
//! [`ROWS_PER_STATEMENT`] values.

use sqlx::query::Query;
use sqlx::sqlite::SqliteArguments;
use sqlx::{Encode, Sqlite, Type};

/// Rows per multi-row statement: keeps the bound parameters far below SQLite's limit (32,766).
pub(super) const ROWS_PER_STATEMENT: usize = 500;

/// A statement built for one list of values.
pub(super) type ListQuery = Query<'static, Sqlite, SqliteArguments>;

/// `?, ?, …`: `n` placeholders.
pub(super) fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 3);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('?');
    }
    s
}

/// The statement `{head}?, ?, …{tail}` with `n` placeholders, not bound yet. Not kept in the
/// statement cache: its text changes with `n`.
pub(super) fn list_statement(head: &str, n: usize, tail: &str) -> ListQuery {
    let sql = format!("{head}{}{tail}", placeholders(n));
    sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false)
}

/// Binds `values` in order.
pub(super) fn bind_each<'v, V>(mut query: ListQuery, values: &'v [V]) -> ListQuery
where
    &'v V: Encode<'v, Sqlite> + Type<Sqlite>,
{
    for v in values {
        query = query.bind(v);
    }
    query
}

/// `{head}?, ?, …{tail}` with `values` bound: one chunk's statement.
pub(super) fn list_query<'v, V>(head: &str, values: &'v [V], tail: &str) -> ListQuery
where
    &'v V: Encode<'v, Sqlite> + Type<Sqlite>,
{
    bind_each(list_statement(head, values.len(), tail), values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_comma_separated() {
        assert_eq!(placeholders(0), "");
        assert_eq!(placeholders(1), "?");
        assert_eq!(placeholders(3), "?, ?, ?");
    }
}
