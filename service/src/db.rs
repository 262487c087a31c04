//! The database: ferrapi-storage's pool (SQLite by default, PostgreSQL or
//! MySQL/MariaDB by `DATABASE_URL`) and the service's embedded migrations,
//! one SQL text per backend.

use ferrapi_storage::db::{DbConfig, DbError, DbPool, Migration, Migrations};

/// The service's migrations (the SQLite text of version 1 is unchanged
/// since the first release, so existing files keep their checksum).
pub static MIGRATIONS: Migrations = Migrations::new(&[
    Migration::new(1, "users")
        .sqlite(include_str!("../migrations/sqlite/0001_users.sql"))
        .postgres(include_str!("../migrations/postgres/0001_users.sql"))
        .mysql(include_str!("../migrations/mysql/0001_users.sql")),
    Migration::new(2, "notifications and avatars")
        .sqlite(include_str!("../migrations/sqlite/0002_notifications.sql"))
        .postgres(include_str!(
            "../migrations/postgres/0002_notifications.sql"
        ))
        .mysql(include_str!("../migrations/mysql/0002_notifications.sql")),
]);

/// Opens the pool for `url` (the SQLite file and its folder are created).
/// A request waits at most 3 s for a connection: while the database is
/// down, requests that need it fail fast with 503 instead of piling up.
pub async fn connect(url: &str) -> Result<DbPool, DbError> {
    DbPool::connect(DbConfig::new(url).acquire_timeout(std::time::Duration::from_secs(3))).await
}

/// Runs the embedded migrations (idempotent, safe with several instances
/// starting at once).
pub async fn migrate(pool: &DbPool) -> Result<(), DbError> {
    pool.migrate(&MIGRATIONS).await
}
