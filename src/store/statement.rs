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

/// A multi-row insert: [`Insert::row`] per row, then [`Insert::build`].
///
/// On SQLite it is `INSERT … VALUES (?, …), (?, …)`. On PostgreSQL each column's values go as
/// one array in one text parameter: `INSERT … SELECT * FROM unnest($1::text::bigint[], …)`.
/// A 500-ticket batch binds about 35,000 values; bound one by one through the `Any` driver, each
/// cost an allocation and a conversion in folio and a `VALUES` expression in the server, and
/// the statement's text (and so its plan) changed with the number of rows. With arrays the
/// text depends only on the columns, so it is prepared once per connection
/// (docs/benchmarks.md §8d). Rows carrying large binary values use [`Insert::with_binary`],
/// which keeps `VALUES` on both engines: in an array they would be written out in hex.
///
/// A `VALUES` statement is kept prepared only when it has `full` rows (the caller's chunk
/// size): that text recurs batch after batch, while a shorter chunk's text depends on its row
/// count and would crowd the statement cache.
pub(super) struct Insert {
    form: Form,
    rows: usize,
    /// The first value that could not be bound, reported by [`Insert::build`].
    error: Option<sqlx::error::BoxDynError>,
}

enum Form {
    /// `VALUES (?, ?), (?, ?)`, the values in order, and the rows of a full statement.
    Values {
        sql: String,
        args: AnyArguments,
        full: usize,
    },
    /// The statement up to its values, and one array literal per column (`{…}` without its
    /// braces) with its element type.
    Arrays {
        head: String,
        columns: Vec<ArrayColumn>,
        next: usize,
    },
}

struct ArrayColumn {
    ty: &'static str,
    elements: String,
}

/// One row's values, bound in column order.
pub(super) struct Row<'a> {
    insert: &'a mut Insert,
    first: bool,
}

/// A value an [`Insert`] binds: encoded by sqlx in a row of `VALUES`, or written as an
/// element of its column's PostgreSQL array.
pub(super) trait Value<'t>: Encode<'t, Any> + Type<Any> + 't {
    /// The PostgreSQL array type of its column (`bigint[]`, `text[]`).
    const ARRAY: &'static str;
    /// Writes the value as an array element: `NULL`, a number, or double-quoted text with
    /// `"` and `\` escaped.
    fn write_element(&self, out: &mut String);
}

impl Value<'_> for i64 {
    const ARRAY: &'static str = "bigint[]";
    fn write_element(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = write!(out, "{self}");
    }
}

impl<'t> Value<'t> for &'t str {
    const ARRAY: &'static str = "text[]";
    fn write_element(&self, out: &mut String) {
        quote_element(self, out);
    }
}

impl Value<'_> for String {
    const ARRAY: &'static str = "text[]";
    fn write_element(&self, out: &mut String) {
        quote_element(self, out);
    }
}

impl Value<'_> for Vec<u8> {
    const ARRAY: &'static str = "bytea[]";
    fn write_element(&self, out: &mut String) {
        use std::fmt::Write;
        // `"\\x6869"`: the array's escape makes it `\x6869`, bytea's hex form.
        out.push_str("\"\\\\x");
        for b in self {
            let _ = write!(out, "{b:02x}");
        }
        out.push('"');
    }
}

impl<'t, T: Value<'t>> Value<'t> for Option<T>
where
    Option<T>: Encode<'t, Any> + Type<Any>,
{
    const ARRAY: &'static str = T::ARRAY;
    fn write_element(&self, out: &mut String) {
        match self {
            Some(v) => v.write_element(out),
            None => out.push_str("NULL"),
        }
    }
}

/// Records an error when row `row` bound `bound` values of `columns`: a short array would
/// make `unnest` fill the row up with NULLs.
fn check_row_length(
    error: &mut Option<sqlx::error::BoxDynError>,
    row: usize,
    bound: usize,
    columns: usize,
) {
    if bound != columns {
        error.get_or_insert(format!("row {row} binds {bound} values for {columns} columns").into());
    }
}

/// `text` as a double-quoted array element.
fn quote_element(text: &str, out: &mut String) {
    out.reserve(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

impl Insert {
    /// `head` is the statement up to its values (e.g. `INSERT INTO t (a, b)`); `full` is how
    /// many rows the caller puts in a full statement.
    pub(super) fn new(head: &str, full: usize, backend: Backend) -> Insert {
        match backend {
            Backend::Sqlite => Insert::with_binary(head, full),
            Backend::Postgres => Insert {
                form: Form::Arrays {
                    head: head.to_string(),
                    columns: Vec::new(),
                    next: 0,
                },
                rows: 0,
                error: None,
            },
        }
    }

    /// Like [`Insert::new`], but `VALUES` on both engines: for rows with large binary values.
    pub(super) fn with_binary(head: &str, full: usize) -> Insert {
        Insert {
            form: Form::Values {
                sql: format!("{head} VALUES "),
                args: AnyArguments::default(),
                full,
            },
            rows: 0,
            error: None,
        }
    }

    /// Starts a row; its values are bound with [`Row::bind`].
    pub(super) fn row(&mut self) -> Row<'_> {
        match &mut self.form {
            Form::Values { sql, .. } => {
                if self.rows > 0 {
                    sql.push_str(", ");
                }
                sql.push('(');
            }
            Form::Arrays { columns, next, .. } => {
                if self.rows > 0 {
                    check_row_length(&mut self.error, self.rows, *next, columns.len());
                }
                *next = 0;
            }
        }
        self.rows += 1;
        Row {
            insert: self,
            first: true,
        }
    }

    /// The statement, ending with `tail` (e.g. ` RETURNING id`).
    pub(super) fn build(mut self, tail: &str, backend: Backend) -> Result<ListQuery, sqlx::Error> {
        if let Form::Arrays { columns, next, .. } = &self.form {
            check_row_length(&mut self.error, self.rows, *next, columns.len());
        }
        if let Some(e) = self.error {
            return Err(sqlx::Error::Encode(e));
        }
        match self.form {
            Form::Values { sql, args, full } => {
                let sql = numbered(&format!("{sql}{tail}"), backend);
                let full = self.rows == full;
                Ok(sqlx::query_with(sqlx::AssertSqlSafe(sql), args).persistent(full))
            }
            Form::Arrays { head, columns, .. } => {
                let arrays: Vec<String> = (1..=columns.len())
                    .zip(&columns)
                    .map(|(n, c)| format!("${n}::text::{}", c.ty))
                    .collect();
                let sql = format!("{head} SELECT * FROM unnest({}){tail}", arrays.join(", "));
                let mut args = AnyArguments::default();
                for c in columns {
                    if let Err(e) = args.add(format!("{{{}}}", c.elements)) {
                        return Err(sqlx::Error::Encode(e));
                    }
                }
                // The text is the same for every batch: prepared once per connection.
                Ok(sqlx::query_with(sqlx::AssertSqlSafe(sql), args))
            }
        }
    }
}

impl<'r> Row<'r> {
    /// Binds the row's next value.
    pub(super) fn bind<'t, T: Value<'t>>(&mut self, value: T) -> &mut Self {
        let first = std::mem::replace(&mut self.first, false);
        let insert = &mut *self.insert;
        match &mut insert.form {
            Form::Values { sql, args, .. } => {
                if !first {
                    sql.push_str(", ");
                }
                sql.push('?');
                if let Err(e) = args.add(value) {
                    insert.error.get_or_insert(e);
                }
            }
            Form::Arrays { columns, next, .. } => {
                if insert.rows == 1 {
                    columns.push(ArrayColumn {
                        ty: T::ARRAY,
                        elements: String::new(),
                    });
                }
                match columns.get_mut(*next) {
                    Some(c) if c.ty == T::ARRAY => {
                        if insert.rows > 1 {
                            c.elements.push(',');
                        }
                        value.write_element(&mut c.elements);
                    }
                    _ => {
                        insert.error.get_or_insert(
                            format!(
                                "row {} binds a {} value as column {}, which the first row did not",
                                insert.rows,
                                T::ARRAY,
                                *next + 1
                            )
                            .into(),
                        );
                    }
                }
                *next += 1;
            }
        }
        self
    }
}

impl Drop for Row<'_> {
    fn drop(&mut self) {
        if let Form::Values { sql, .. } = &mut self.insert.form {
            sql.push(')');
        }
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
        let mut insert = Insert::new("INSERT INTO t (a, b)", 2, Backend::Sqlite);
        insert.row().bind(1_i64).bind("x");
        insert.row().bind(2_i64).bind(None::<String>);
        let Form::Values { sql, args, .. } = &insert.form else {
            panic!("SQLite inserts by VALUES");
        };
        assert_eq!(sql, "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)");
        assert_eq!(args.len(), 4);
        assert_eq!(
            numbered(sql, Backend::Postgres),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)"
        );
    }

    #[test]
    fn only_a_full_values_statement_is_kept_prepared() {
        use sqlx::Execute;
        let insert = |rows: usize| {
            let mut b = Insert::with_binary("INSERT INTO t (a)", 2);
            for i in 0..rows {
                b.row().bind(i as i64);
            }
            b.build("", Backend::Sqlite).expect("built")
        };
        // A full chunk's text recurs batch after batch; a shorter one's depends on its rows.
        assert!(Execute::persistent(&insert(2)));
        assert!(!Execute::persistent(&insert(1)));
        let mut arrays = Insert::new("INSERT INTO t (a)", 2, Backend::Postgres);
        arrays.row().bind(1_i64);
        let arrays = arrays.build("", Backend::Postgres).expect("built");
        assert!(Execute::persistent(&arrays));
    }

    #[test]
    fn a_postgres_insert_binds_one_array_per_column_with_its_elements_quoted() {
        let mut insert = Insert::new("INSERT INTO t (a, b, c)", 3, Backend::Postgres);
        insert.row().bind(1_i64).bind("x").bind(Some(vec![0xAB_u8]));
        insert
            .row()
            .bind(None::<i64>)
            .bind("a \"quote\", a \\ and {braces}, NULL")
            .bind(None::<Vec<u8>>);
        insert.row().bind(-3_i64).bind(None::<&str>).bind(vec![]);
        let Form::Arrays { columns, .. } = &insert.form else {
            panic!("PostgreSQL inserts by arrays");
        };
        let shown: Vec<(&str, &str)> = columns
            .iter()
            .map(|c| (c.ty, c.elements.as_str()))
            .collect();
        assert_eq!(
            shown,
            [
                ("bigint[]", "1,NULL,-3"),
                (
                    "text[]",
                    r#""x","a \"quote\", a \\ and {braces}, NULL",NULL"#
                ),
                ("bytea[]", r#""\\xab",NULL,"\\x""#),
            ]
        );
        assert!(insert.build(" RETURNING a", Backend::Postgres).is_ok());
    }

    #[test]
    fn a_postgres_insert_refuses_rows_that_do_not_match_the_first() {
        let mut short = Insert::new("INSERT INTO t (a, b)", 2, Backend::Postgres);
        short.row().bind(1_i64).bind("x");
        short.row().bind(2_i64);
        let e = short
            .build("", Backend::Postgres)
            .err()
            .expect("a short row");
        assert!(
            e.to_string().contains("row 2 binds 1 values for 2 columns"),
            "{e}"
        );

        let mut mixed = Insert::new("INSERT INTO t (a)", 2, Backend::Postgres);
        mixed.row().bind(1_i64);
        mixed.row().bind("one");
        let e = mixed
            .build("", Backend::Postgres)
            .err()
            .expect("a mixed column");
        assert!(
            e.to_string()
                .contains("row 2 binds a text[] value as column 1"),
            "{e}"
        );
    }
}
