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

/// sqlx's errors that mean "no database to talk to" become
/// [`DbError::Unavailable`]; the others [`DbError::Query`].
impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                DbError::Unavailable(e)
            }
            other => DbError::Query(other),
        }
    }
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

/// A handler may return `Result<_, DbError>`: [`DbError::Unavailable`] is
/// answered 503 `{"detail": "Database unavailable"}`, anything else goes to
/// the app's exception handlers as itself (a 500 unless one maps it).
impl ferrapi::ResponseError for DbError {
    fn into_error(self) -> ferrapi::Error {
        match self {
            DbError::Unavailable(e) => {
                tracing::error!(error = %e, "database unavailable");
                ferrapi::HttpError::new(
                    ferrapi::http::StatusCode::SERVICE_UNAVAILABLE,
                    "Database unavailable",
                )
                .into()
            }
            other => ferrapi::Error::new(other),
        }
    }
}
