//! The database: a SQLite pool in WAL mode and the embedded migrations.

use crate::config::Database;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{SqlSafeStr, SqlitePool};
use std::borrow::Cow;
use std::time::Duration;

/// Why the database could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The folder of the database file could not be created.
    #[error("cannot create the database folder {path}: {source}")]
    Folder {
        /// The folder.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Connecting failed.
    #[error("cannot open the database: {0}")]
    Connect(#[source] sqlx::Error),
    /// A migration failed.
    #[error("database migration failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

/// The migrations, embedded in the binary.
fn migrator() -> Migrator {
    Migrator::with_migrations(vec![Migration::new(
        1,
        Cow::Borrowed("users"),
        MigrationType::Simple,
        include_str!("../migrations/sqlite/0001_users.sql").into_sql_str(),
        false,
    )])
}

/// Opens the pool: WAL journal, `synchronous = NORMAL`, a busy timeout so
/// concurrent writers wait instead of failing, foreign keys on.
pub async fn connect(database: &Database) -> Result<SqlitePool, DbError> {
    let options = SqliteConnectOptions::new()
        .create_if_missing(true)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    let (options, max) = match database {
        Database::SqliteMemory => (options.in_memory(true).shared_cache(true), 1),
        Database::SqliteFile(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| DbError::Folder {
                    path: dir.display().to_string(),
                    source,
                })?;
            }
            (
                options
                    .filename(path)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal),
                8,
            )
        }
    };
    let memory = matches!(database, Database::SqliteMemory);
    SqlitePoolOptions::new()
        .max_connections(max)
        // An in-memory database lives as long as its one connection.
        .min_connections(u32::from(memory))
        .idle_timeout((!memory).then_some(Duration::from_secs(600)))
        .max_lifetime((!memory).then_some(Duration::from_secs(1800)))
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(DbError::Connect)
}

/// Runs the embedded migrations (idempotent; SQLite serializes concurrent
/// migrators with its own write lock).
pub async fn migrate(pool: &SqlitePool) -> Result<(), DbError> {
    migrator().run(pool).await.map_err(DbError::Migrate)
}
