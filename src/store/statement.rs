//! Statements whose text is built at run time: over a list of values (`… IN ($1, $2, …)`), one
//! statement per chunk of [`ROWS_PER_STATEMENT`] values, and multi-row inserts ([`Insert`]).
//!
//! Built text is written with `?` and its placeholders put in each engine's form by
//! [`numbered`], in the order the values are bound: `$1`, `$2`, … for PostgreSQL (which rejects
//! `?`; sqlx's `QueryBuilder` writes `?` for the `Any` driver), and plain `?` for SQLite. To
//! SQLite `$N` is a *named* parameter: it looks each name up among those before it, and sqlx
//! asks each one's name back, both by linear search, so a 7,000-value insert spent ~70 % of
//! an SQLite ingest in `strncmp` and `sqlite3_bind_parameter_name` (docs/benchmarks.md §8).

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, Arguments, Encode, Type};

use super::Backend;

/// Rows per multi-row statement: keeps the bound parameters far below SQLite's limit (32,766)
/// and PostgreSQL's (65,535).
pub(super) const ROWS_PER_STATEMENT: usize = 500;

/// A statement built for one list of values.
pub(super) type ListQuery = Query<'static, Any, AnyArguments>;

/// `sql` with every placeholder (`?` or `$N`) outside quoted text in `backend`'s form: numbered
/// `$1`, `$2`, … in the order it appears (PostgreSQL), or `?` (SQLite); either way the values
/// are bound in that order.
pub(super) fn numbered(sql: &str, backend: Backend) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    let mut quoted = false;
    let mut placeholder = |out: &mut String| match backend {
        Backend::Postgres => {
            n += 1;
            out.push_str(&format!("${n}"));
        }
        Backend::Sqlite => out.push('?'),
    };
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => placeholder(&mut out),
            '$' if !quoted && chars.peek().is_some_and(char::is_ascii_digit) => {
                while chars.peek().is_some_and(char::is_ascii_digit) {
                    chars.next();
                }
                placeholder(&mut out);
            }
            _ => out.push(c),
        }
    }
    out
}

/// `?, ?, …`: `n` placeholders, numbered when the statement is.
pub(super) fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// A statement whose text was built at run time: numbered, and not kept in the statement
/// cache (its text changes with the number of values).
pub(super) fn built(sql: &str, backend: Backend) -> ListQuery {
    sqlx::query(sqlx::AssertSqlSafe(numbered(sql, backend))).persistent(false)
}

/// The statement `{head}?, ?, …{tail}` with `n` placeholders, not bound yet.
pub(super) fn list_statement(head: &str, n: usize, tail: &str, backend: Backend) -> ListQuery {
    built(&format!("{head}{}{tail}", placeholders(n)), backend)
}

/// Binds `values` in order.
pub(super) fn bind_each<'v, V>(mut query: ListQuery, values: &'v [V]) -> ListQuery
where
    &'v V: Encode<'v, Any> + Type<Any>,
{
    for v in values {
        query = query.bind(v);
    }
    query
}

/// `{head}?, ?, …{tail}` with `values` bound: one chunk's statement.
pub(super) fn list_query<'v, V>(
    head: &str,
    values: &'v [V],
    tail: &str,
    backend: Backend,
) -> ListQuery
where
    &'v V: Encode<'v, Any> + Type<Any>,
{
    bind_each(list_statement(head, values.len(), tail, backend), values)
}

/// A multi-row `INSERT … VALUES (…), (…)`: [`Insert::row`] per row, then [`Insert::build`].
pub(super) struct Insert {
    sql: String,
    args: AnyArguments,
    rows: usize,
    /// The first value that could not be bound, reported by [`Insert::build`].
    error: Option<sqlx::error::BoxDynError>,
}

/// One row's values, bound in column order.
pub(super) struct Row<'a> {
    insert: &'a mut Insert,
    first: bool,
}

impl Insert {
    /// `head` is the statement up to `VALUES` (e.g. `INSERT INTO t (a, b) `).
    pub(super) fn new(head: &str) -> Insert {
        Insert {
            sql: format!("{head} VALUES "),
            args: AnyArguments::default(),
            rows: 0,
            error: None,
        }
    }

    /// Starts a row; its values are bound with [`Row::bind`].
    pub(super) fn row(&mut self) -> Row<'_> {
        if self.rows > 0 {
            self.sql.push_str(", ");
        }
        self.rows += 1;
        self.sql.push('(');
        Row {
            insert: self,
            first: true,
        }
    }

    /// The statement, ending with `tail` (e.g. ` RETURNING id`).
    pub(super) fn build(self, tail: &str, backend: Backend) -> Result<ListQuery, sqlx::Error> {
        if let Some(e) = self.error {
            return Err(sqlx::Error::Encode(e));
        }
        let sql = numbered(&format!("{}{tail}", self.sql), backend);
        Ok(sqlx::query_with(sqlx::AssertSqlSafe(sql), self.args).persistent(false))
    }
}

impl Row<'_> {
    /// Binds the row's next value.
    pub(super) fn bind<'t, T>(&mut self, value: T) -> &mut Self
    where
        T: Encode<'t, Any> + Type<Any> + 't,
    {
        if !self.first {
            self.insert.sql.push_str(", ");
        }
        self.first = false;
        self.insert.sql.push('?');
        if let Err(e) = self.insert.args.add(value) {
            self.insert.error.get_or_insert(e);
        }
        self
    }
}

impl Drop for Row<'_> {
    fn drop(&mut self) {
        self.insert.sql.push(')');
    }
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

    #[test]
    fn placeholders_take_each_engines_form_in_order_outside_quoted_text() {
        let sql = "UPDATE t SET a = $1 WHERE s = '?$1' AND id IN (?, ?) AND b = ?";
        assert_eq!(
            numbered(sql, Backend::Postgres),
            "UPDATE t SET a = $1 WHERE s = '?$1' AND id IN ($2, $3) AND b = $4"
        );
        assert_eq!(
            numbered(sql, Backend::Sqlite),
            "UPDATE t SET a = ? WHERE s = '?$1' AND id IN (?, ?) AND b = ?"
        );
        assert_eq!(
            numbered("x = $1 OR x = $1", Backend::Postgres),
            "x = $1 OR x = $2"
        );
        assert_eq!(
            numbered("x = $1 OR x = $12", Backend::Sqlite),
            "x = ? OR x = ?"
        );
    }

    #[test]
    fn an_insert_numbers_its_rows_values() {
        let mut insert = Insert::new("INSERT INTO t (a, b)");
        insert.row().bind(1_i64).bind("x");
        insert.row().bind(2_i64).bind(None::<String>);
        assert_eq!(insert.sql, "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)");
        assert_eq!(insert.args.len(), 4);
        let built = numbered(&insert.sql, Backend::Postgres);
        assert_eq!(built, "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)");
    }
}
