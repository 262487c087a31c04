//! Why a database operation failed.

use std::time::Duration;

/// Why a database operation failed.
///
/// Converts into `ferrapi::Error` (a 500 whose detail is not shown to the
/// client), so handlers can use `?` on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// The URL is malformed or names an unknown engine.
    #[error("invalid database URL `{url}`: {reason}")]
    Url {
        /// The URL, password masked.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A configuration variable has a value that cannot be used.
    #[error("invalid {var}: {reason}")]
    Config {
        /// The variable.
        var: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The URL names a backend this build does not include.
    #[error(
        "the {backend} database backend is not built in: enable the `{backend}` feature of ferrapi-storage"
    )]
    NotBuilt {
        /// The backend's name (also the feature's).
        backend: &'static str,
    },
    /// The folder of a SQLite file could not be created.
    #[error("cannot create the database folder {path}: {source}")]
    Folder {
        /// The folder.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Connecting failed.
    #[error("cannot connect to the database {url}: {source}")]
    Connect {
        /// The URL, password masked.
        url: String,
        /// Why.
        source: sqlx::Error,
    },
    /// A migration failed.
    #[error("database migration failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A migration has no SQL text for the backend in use.
    #[error("migration {version} ({description}) has no SQL for {backend}")]
    MissingMigration {
        /// The migration's version.
        version: i64,
        /// Its description.
        description: &'static str,
        /// The backend.
        backend: &'static str,
    },
    /// No connection could be had: the pool's acquire timeout passed, or
    /// the server cannot be reached (a 503 situation, not a bug).
    #[error("the database is unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// SQLite refused the statement because another connection holds a
    /// conflicting lock and waiting would not help (`SQLITE_BUSY`, code 5,
    /// and its extended codes such as `SQLITE_BUSY_SNAPSHOT`, 517: a
    /// deferred transaction that read first and must now upgrade to write
    /// after another connection committed). Nothing was written; the same
    /// request may succeed when retried (answered 503 with `Retry-After`).
    #[error("the database is busy: {0}")]
    Busy(#[source] sqlx::Error),
    /// The database did not answer in time.
    #[error("the database did not answer within {0:?}")]
    Timeout(Duration),
    /// The request's transaction was already committed or rolled back.
    #[error("the transaction is already finished")]
    Finished,
    /// A query failed.
    #[error("database error: {0}")]
    Query(#[source] sqlx::Error),
}

/// sqlx's errors that mean "no database to talk to" (the pool's wait, a
/// broken connection, PostgreSQL shutting down or starting up) become
/// [`DbError::Unavailable`], SQLite's `SQLITE_BUSY` family
/// [`DbError::Busy`]; the others [`DbError::Query`].
impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                DbError::Unavailable(e)
            }
            sqlx::Error::Database(ref db) if is_shutdown(db.as_ref()) => DbError::Unavailable(e),
            sqlx::Error::Database(ref db) if is_sqlite_busy(db.as_ref()) => DbError::Busy(e),
            other => DbError::Query(other),
        }
    }
}

/// SQLite's `SQLITE_BUSY` (5) or one of its extended codes
/// (`SQLITE_BUSY_RECOVERY` 261, `SQLITE_BUSY_SNAPSHOT` 517,
/// `SQLITE_BUSY_TIMEOUT` 773): the primary code is the low byte.
#[cfg(feature = "sqlite")]
fn is_sqlite_busy(e: &dyn sqlx::error::DatabaseError) -> bool {
    e.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
        && e.code()
            .and_then(|c| c.parse::<u32>().ok())
            .is_some_and(|n| n & 0xff == 5)
}

#[cfg(not(feature = "sqlite"))]
fn is_sqlite_busy(_: &dyn sqlx::error::DatabaseError) -> bool {
    false
}

/// PostgreSQL telling a connection that it is going away or cannot be had
/// yet: class 08 (connection exception), `57P01` admin shutdown (also sent
/// on `pg_ctl stop -m immediate`), `57P02` crash shutdown, `57P03` cannot
/// connect now (starting up or in recovery).
#[cfg(feature = "postgres")]
fn is_shutdown(e: &dyn sqlx::error::DatabaseError) -> bool {
    e.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_some_and(|pg| is_pg_shutdown_code(pg.code()))
}

#[cfg(not(feature = "postgres"))]
fn is_shutdown(_: &dyn sqlx::error::DatabaseError) -> bool {
    false
}

#[cfg(any(feature = "postgres", test))]
fn is_pg_shutdown_code(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
}

impl DbError {
    /// True when a query broke a unique constraint (on every backend): the
    /// usual way to answer 409 for a taken e-mail address.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, DbError::Query(sqlx::Error::Database(e)) if e.is_unique_violation())
    }

    /// True when a query broke a foreign key constraint.
    pub fn is_foreign_key_violation(&self) -> bool {
        matches!(self, DbError::Query(sqlx::Error::Database(e)) if e.is_foreign_key_violation())
    }
}

impl DbError {
    /// True when the error says the database could not do the work now but
    /// may on a retry ([`DbError::Unavailable`], [`DbError::Busy`]): what
    /// is answered 503 rather than 500.
    pub fn is_transient(&self) -> bool {
        matches!(self, DbError::Unavailable(_) | DbError::Busy(_))
    }
}

/// A handler may return `Result<_, DbError>`: [`DbError::Unavailable`] is
/// answered 503 `{"detail": "Database unavailable"}`, [`DbError::Busy`]
/// 503 `{"detail": "Database busy"}` with `Retry-After: 1`; anything else
/// goes to the app's exception handlers as itself (a 500 unless one maps
/// it).
///
/// ```
/// use ferrapi::{HttpError, ResponseError as _};
/// use ferrapi_storage::db::DbError;
///
/// let err = DbError::Unavailable(sqlx::Error::PoolTimedOut).into_error();
/// let http = err.downcast_ref::<HttpError>().expect("an HttpError");
/// assert_eq!(http.status().as_u16(), 503);
/// // Anything else is the error itself: a 500 unless an exception handler maps it.
/// let err = DbError::Finished.into_error();
/// assert!(err.downcast_ref::<DbError>().is_some());
/// ```
impl ferrapi_core::response::ResponseError for DbError {
    fn into_error(self) -> ferrapi_core::response::Error {
        match self {
            DbError::Unavailable(e) => {
                tracing::error!(error = %e, "database unavailable");
                ferrapi_core::HttpError::new(
                    http::StatusCode::SERVICE_UNAVAILABLE,
                    "Database unavailable",
                )
                .into()
            }
            DbError::Busy(e) => {
                tracing::warn!(error = %e, "database busy");
                ferrapi_core::HttpError::new(http::StatusCode::SERVICE_UNAVAILABLE, "Database busy")
                    .with_header("retry-after", "1")
                    .into()
            }
            other => ferrapi_core::response::Error::new(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_shutdown_codes_are_unavailable() {
        for code in ["57P01", "57P02", "57P03", "08006", "08003"] {
            assert!(is_pg_shutdown_code(code), "{code}");
        }
        // Serialization failure, unique violation, syntax error: not.
        for code in ["40001", "23505", "42601", "57014"] {
            assert!(!is_pg_shutdown_code(code), "{code}");
        }
    }
}
