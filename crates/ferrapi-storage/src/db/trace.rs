//! Database spans: one client span per query run through [`Db`](super::Db)
//! or [`DbPool`](super::DbPool)'s helpers, and per `BEGIN`, `COMMIT` and
//! `ROLLBACK`, with OpenTelemetry's database semantic conventions.
//!
//! Why at the helpers and not inside sqlx: sqlx's `Executor` is a generic
//! trait implemented for connections, pools and transactions, and wrapping
//! it would mean a wrapper type for each; every query of this crate's API
//! already goes through the eight helpers, so a span there covers them all.
//! Queries run on a raw connection (`Db::conn`, `DbPool::pool`) get the
//! span of the transaction's `BEGIN` only.
//!
//! Spans are opened only inside an exported span (see
//! [`crate::telemetry`]). Their attributes:
//!
//! | attribute | value |
//! |---|---|
//! | span name | `SELECT users`: the operation and, for simple statements, the table (low cardinality: never values) |
//! | `db.system`, `db.system.name` | `sqlite`, `postgresql`, `mysql` |
//! | `db.operation.name` | `SELECT`, `INSERT`, … `BEGIN`, `COMMIT`, `ROLLBACK` |
//! | `db.collection.name` | the table, when the statement names one plainly |
//! | `db.query.text` | the SQL as sent, with its placeholders: bound values are never exported |
//! | `db.namespace` | the database name (PostgreSQL, MySQL) |
//! | `server.address`, `server.port` | from the URL (PostgreSQL, MySQL) |
//! | `db.response.returned_rows` | rows returned by `fetch_*` |
//! | `db.response.status_code`, `error.type` | on failure: the SQLSTATE (or SQLite code) and the kind of error |

use super::{Backend, DbError, Query};
use sqlx::any::{AnyArguments, AnyQueryResult, AnyRow, AnyStatement};
use sqlx::error::BoxDynError;
use sqlx::{Any, Execute, SqlStr};
use std::borrow::Cow;
use std::future::Future;
use tracing::Instrument as _;
use tracing::Span;
use tracing::field::Empty;

/// What every span of one pool carries: the engine and the server.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    system: &'static str,
    address: Option<String>,
    port: Option<i64>,
    namespace: Option<String>,
}

impl Target {
    /// The attributes for `backend` at `url` (user and password are never
    /// kept).
    pub(crate) fn new(backend: Backend, url: &str) -> Self {
        let system = match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgresql",
            Backend::MySql => "mysql",
        };
        let mut target = Target {
            system,
            address: None,
            port: None,
            namespace: None,
        };
        if backend == Backend::Sqlite {
            return target;
        }
        let Some((_, rest)) = url.split_once("://") else {
            return target;
        };
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
            match v6.split_once(']') {
                Some((host, after)) => (host, after.strip_prefix(':')),
                None => (host_port, None),
            }
        } else {
            match host_port.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (host_port, None),
            }
        };
        if !host.is_empty() {
            target.address = Some(host.to_owned());
            let default = if backend == Backend::Postgres {
                5432
            } else {
                3306
            };
            target.port = Some(port.and_then(|p| p.parse().ok()).unwrap_or(default));
        }
        let database = tail
            .strip_prefix('/')
            .map(|t| t.split('?').next().unwrap_or(""))
            .filter(|d| !d.is_empty());
        target.namespace = database.map(str::to_owned);
        target
    }

    /// A span for `operation` (a statement's or `BEGIN`/`COMMIT`/`ROLLBACK`),
    /// named `name`; `Span::none()` when nothing is exported.
    fn span(
        &self,
        name: &str,
        operation: &str,
        collection: Option<&str>,
        text: Option<&str>,
    ) -> Span {
        tracing::info_span!(
            "db",
            otel.name = name,
            otel.kind = "client",
            db.system = self.system,
            db.system.name = self.system,
            db.operation.name = operation,
            db.collection.name = collection,
            db.query.text = text,
            db.namespace = self.namespace.as_deref(),
            server.address = self.address.as_deref(),
            server.port = self.port,
            db.response.returned_rows = Empty,
            db.response.status_code = Empty,
            error.type = Empty,
            otel.status_code = Empty,
        )
    }

    /// The span of a transaction statement (`BEGIN`, `COMMIT`, `ROLLBACK`).
    pub(crate) fn tx_span(&self, operation: &'static str) -> Span {
        if !crate::telemetry::exporting() {
            return Span::none();
        }
        self.span(operation, operation, None, None)
    }
}

/// Runs `fut` (a transaction statement) in `span`, recording its failure.
pub(crate) async fn in_span<T>(
    span: Span,
    fut: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, DbError> {
    let result = fut.instrument(span.clone()).await;
    if let Err(e) = &result {
        record_failure(&span, e);
    }
    result.map_err(DbError::from)
}

/// Runs `query` through `exec` (one of sqlx's `Executor` methods on a
/// connection or the pool), in a span when one is exported.
pub(crate) async fn run<R, F, Fut>(target: &Target, query: Query, exec: F) -> Result<R, DbError>
where
    R: Returned,
    F: FnOnce(Statement) -> Fut,
    Fut: Future<Output = Result<R, sqlx::Error>>,
{
    let statement = Statement::from_query(query)?;
    if !crate::telemetry::exporting() {
        return exec(statement).await.map_err(DbError::from);
    }
    let span = {
        let text = statement.sql.as_str();
        let (operation, collection) = summary(text);
        let name = match collection {
            Some(table) => format!("{operation} {table}"),
            None => operation.clone().into_owned(),
        };
        target.span(&name, &operation, collection, Some(text))
    };
    let result = exec(statement).instrument(span.clone()).await;
    match &result {
        Ok(returned) => {
            if let Some(rows) = returned.rows() {
                span.record(
                    "db.response.returned_rows",
                    i64::try_from(rows).unwrap_or(i64::MAX),
                );
            }
        }
        Err(e) => record_failure(&span, e),
    }
    result.map_err(DbError::from)
}

fn record_failure(span: &Span, error: &sqlx::Error) {
    let kind = match error {
        sqlx::Error::Database(e) => {
            if let Some(code) = e.code() {
                span.record("db.response.status_code", &*code);
            }
            "database"
        }
        sqlx::Error::RowNotFound => "row_not_found",
        sqlx::Error::PoolTimedOut => "pool_timeout",
        sqlx::Error::PoolClosed => "pool_closed",
        sqlx::Error::Io(_) => "io",
        sqlx::Error::Tls(_) => "tls",
        sqlx::Error::Protocol(_) => "protocol",
        sqlx::Error::Encode(_) => "encode",
        sqlx::Error::Decode(_) | sqlx::Error::ColumnDecode { .. } => "decode",
        sqlx::Error::ColumnNotFound(_) | sqlx::Error::ColumnIndexOutOfBounds { .. } => "column",
        _ => "other",
    };
    crate::telemetry::record_error(span, kind);
}

/// How many rows a result returned (`db.response.returned_rows`).
pub(crate) trait Returned {
    /// `None`: not a row-returning call.
    fn rows(&self) -> Option<usize>;
}

impl Returned for AnyQueryResult {
    fn rows(&self) -> Option<usize> {
        None
    }
}

impl Returned for Vec<AnyRow> {
    fn rows(&self) -> Option<usize> {
        Some(self.len())
    }
}

impl Returned for Option<AnyRow> {
    fn rows(&self) -> Option<usize> {
        Some(usize::from(self.is_some()))
    }
}

impl Returned for AnyRow {
    fn rows(&self) -> Option<usize> {
        Some(1)
    }
}

/// A [`Query`] taken apart, so that its SQL text can be read before it is
/// run (sqlx's `Query` hands its text out only by consuming itself). Runs
/// exactly as the query would: same text, arguments, prepared statement
/// and caching flag.
pub(crate) struct Statement {
    sql: SqlStr,
    arguments: Option<AnyArguments>,
    prepared: Option<AnyStatement>,
    persistent: bool,
}

impl Statement {
    fn from_query(mut query: Query) -> Result<Self, DbError> {
        // A bind that failed to encode: the error sqlx itself reports when
        // it takes the arguments to run the query.
        let arguments = query
            .take_arguments()
            .map_err(|e: BoxDynError| DbError::Query(sqlx::Error::Encode(e)))?;
        let prepared = Execute::<Any>::statement(&query).cloned();
        let persistent = Execute::<Any>::persistent(&query);
        Ok(Statement {
            sql: Execute::<Any>::sql(query),
            arguments,
            prepared,
            persistent,
        })
    }
}

impl Execute<'_, Any> for Statement {
    fn sql(self) -> SqlStr {
        self.sql
    }

    fn statement(&self) -> Option<&AnyStatement> {
        self.prepared.as_ref()
    }

    fn take_arguments(&mut self) -> Result<Option<AnyArguments>, BoxDynError> {
        Ok(self.arguments.take())
    }

    fn persistent(&self) -> bool {
        self.persistent
    }
}

/// The operation (`SELECT`, …) and, for a plain statement, its table: the
/// span's low-cardinality name. Looks at keywords outside parentheses,
/// string literals and comments; anything it does not recognize gives the
/// first keyword alone.
fn summary(sql: &str) -> (Cow<'_, str>, Option<&str>) {
    let words = Words::new(sql);
    let mut words = words.filter(|w| w.depth == 0);
    let Some(first) = words.next() else {
        return (Cow::Borrowed("SQL"), None);
    };
    let operation = if first.text.bytes().all(|b| b.is_ascii_uppercase()) {
        Cow::Borrowed(first.text)
    } else {
        Cow::Owned(first.text.to_ascii_uppercase())
    };
    fn after<'a>(keyword: &str, mut words: impl Iterator<Item = Word<'a>>) -> Option<&'a str> {
        words.find(|w| w.text.eq_ignore_ascii_case(keyword))?;
        words.next().map(|w| w.text)
    }
    let table = match &*operation {
        "SELECT" | "DELETE" => after("FROM", &mut words),
        "INSERT" | "REPLACE" => after("INTO", &mut words),
        "UPDATE" => words.next().map(|w| w.text),
        _ => None,
    };
    let table = table.filter(|t| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
    });
    (operation, table)
}

/// A word of SQL: letters, digits, `_`, `.` and quoted identifiers (quotes
/// stripped), with its parenthesis depth.
#[derive(Debug, Clone, Copy)]
struct Word<'a> {
    text: &'a str,
    depth: u32,
}

struct Words<'a> {
    sql: &'a str,
    at: usize,
    depth: u32,
}

impl<'a> Words<'a> {
    fn new(sql: &'a str) -> Self {
        Words {
            sql,
            at: 0,
            depth: 0,
        }
    }
}

impl<'a> Iterator for Words<'a> {
    type Item = Word<'a>;

    fn next(&mut self) -> Option<Word<'a>> {
        let bytes = self.sql.as_bytes();
        // Each step moves `at` forward: the loop ends at the text's end.
        while self.at < bytes.len() {
            let b = bytes[self.at];
            let rest = &self.sql[self.at..];
            if rest.starts_with("--") {
                self.at += rest.find('\n').unwrap_or(rest.len());
            } else if let Some(comment) = rest.strip_prefix("/*") {
                self.at += comment.find("*/").map_or(rest.len(), |i| i + 4);
            } else if b == b'\'' {
                // A string literal ('' inside is two literals in a row).
                self.at += rest[1..].find('\'').map_or(rest.len(), |i| i + 2);
            } else if b == b'(' {
                self.depth += 1;
                self.at += 1;
            } else if b == b')' {
                self.depth = self.depth.saturating_sub(1);
                self.at += 1;
            } else if matches!(b, b'"' | b'`' | b'[') {
                let close = match b {
                    b'[' => ']',
                    other => char::from(other),
                };
                let end = rest[1..].find(close).map_or(rest.len(), |i| i + 1);
                let word = Word {
                    text: &rest[1..end.max(1)],
                    depth: self.depth,
                };
                self.at += (end + 1).min(rest.len());
                return Some(word);
            } else if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' {
                let len = rest
                    .bytes()
                    .position(|c| !(c.is_ascii_alphanumeric() || c == b'_' || c == b'.'))
                    .unwrap_or(rest.len());
                self.at += len;
                return Some(Word {
                    text: &rest[..len],
                    depth: self.depth,
                });
            } else {
                // Any other character (spaces, operators, non-ASCII): one
                // UTF-8 character forward.
                self.at += rest.chars().next().map_or(1, char::len_utf8);
            }
        }
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn name(sql: &str) -> String {
        match summary(sql) {
            (op, Some(table)) => format!("{op} {table}"),
            (op, None) => op.into_owned(),
        }
    }

    #[test]
    fn statements_are_named_by_operation_and_table() {
        assert_eq!(
            name("SELECT id, name FROM users WHERE id = ?"),
            "SELECT users"
        );
        assert_eq!(name("select * from public.users"), "SELECT public.users");
        assert_eq!(
            name("INSERT INTO users (name) VALUES ($1) RETURNING id"),
            "INSERT users"
        );
        assert_eq!(name("UPDATE \"users\" SET name = ?"), "UPDATE users");
        assert_eq!(
            name("DELETE FROM `notes` WHERE user_id = ?"),
            "DELETE notes"
        );
        // The FROM of a subquery in the select list is not the table.
        assert_eq!(
            name("SELECT (SELECT COUNT(*) FROM notes) AS n, id FROM users"),
            "SELECT users"
        );
        // Keywords inside literals and comments are not read.
        assert_eq!(
            name("-- FROM nowhere\nSELECT 'x FROM y' AS a /* FROM z */ FROM t"),
            "SELECT t"
        );
        assert_eq!(name("SELECT 1"), "SELECT");
        assert_eq!(name("WITH x AS (SELECT 1) SELECT * FROM x"), "WITH");
        assert_eq!(name("  "), "SQL");
        assert_eq!(name("SELECT é FROM ü"), "SELECT");
    }

    #[test]
    fn the_target_keeps_the_server_not_the_credentials() {
        let t = Target::new(
            Backend::Postgres,
            "postgres://app:secret@db.internal:6543/users?sslmode=require",
        );
        assert_eq!(t.system, "postgresql");
        assert_eq!(t.address.as_deref(), Some("db.internal"));
        assert_eq!(t.port, Some(6543));
        assert_eq!(t.namespace.as_deref(), Some("users"));
        assert!(!format!("{t:?}").contains("secret"));
        let t = Target::new(Backend::MySql, "mysql://root@[::1]/app");
        assert_eq!(t.address.as_deref(), Some("::1"));
        assert_eq!(t.port, Some(3306));
        let t = Target::new(Backend::Postgres, "postgres://localhost");
        assert_eq!(t.port, Some(5432));
        assert_eq!(t.namespace, None);
        let t = Target::new(Backend::Sqlite, "sqlite://data/app.db");
        assert_eq!((t.system, t.address, t.port), ("sqlite", None, None));
    }
}
