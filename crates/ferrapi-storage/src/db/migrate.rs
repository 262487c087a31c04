//! Embedded migrations: one SQL text per backend.

use super::{Backend, DbError};
use sqlx::SqlSafeStr;
use sqlx::migrate::{MigrationType, Migrator};
use std::borrow::Cow;

/// One migration: a version, a description, and its SQL for each backend
/// (usually `include_str!` of a file in `migrations/<backend>/`).
///
/// ```
/// use ferrapi_storage::db::{Migration, Migrations};
///
/// static MIGRATIONS: Migrations = Migrations::new(&[
///     Migration::new(1, "users")
///         .sqlite("CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL UNIQUE)")
///         .postgres("CREATE TABLE users (id BIGSERIAL PRIMARY KEY, email TEXT NOT NULL UNIQUE)")
///         .mysql("CREATE TABLE users (id BIGINT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(320) NOT NULL UNIQUE)"),
/// ]);
/// assert_eq!(MIGRATIONS.len(), 1);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// The version: applied in increasing order, recorded once applied.
    pub version: i64,
    /// What it does (recorded with the version).
    pub description: &'static str,
    /// The SQLite text.
    pub sqlite: Option<&'static str>,
    /// The PostgreSQL text.
    pub postgres: Option<&'static str>,
    /// The MySQL/MariaDB text.
    pub mysql: Option<&'static str>,
}

impl Migration {
    /// A migration with no SQL yet.
    pub const fn new(version: i64, description: &'static str) -> Self {
        Migration {
            version,
            description,
            sqlite: None,
            postgres: None,
            mysql: None,
        }
    }

    /// Its SQLite text.
    pub const fn sqlite(mut self, sql: &'static str) -> Self {
        self.sqlite = Some(sql);
        self
    }

    /// Its PostgreSQL text.
    pub const fn postgres(mut self, sql: &'static str) -> Self {
        self.postgres = Some(sql);
        self
    }

    /// Its MySQL/MariaDB text.
    pub const fn mysql(mut self, sql: &'static str) -> Self {
        self.mysql = Some(sql);
        self
    }

    /// The same text for every backend (portable DDL).
    pub const fn all(self, sql: &'static str) -> Self {
        self.sqlite(sql).postgres(sql).mysql(sql)
    }

    /// The text for `backend`.
    pub fn sql_for(&self, backend: Backend) -> Option<&'static str> {
        match backend {
            Backend::Sqlite => self.sqlite,
            Backend::Postgres => self.postgres,
            Backend::MySql => self.mysql,
        }
    }
}

/// A list of migrations and the table that records which were applied
/// (`_sqlx_migrations` unless set: give each independent set — a library's
/// own tables, the application's — its own table, so versions don't mix).
#[derive(Debug, Clone, Copy)]
pub struct Migrations {
    list: &'static [Migration],
    table: &'static str,
}

impl Migrations {
    /// The migrations, recorded in `_sqlx_migrations`.
    pub const fn new(list: &'static [Migration]) -> Self {
        Migrations {
            list,
            table: "_sqlx_migrations",
        }
    }

    /// Records them in `table` instead.
    pub const fn table(mut self, table: &'static str) -> Self {
        self.table = table;
        self
    }

    /// How many migrations there are.
    pub const fn len(&self) -> usize {
        self.list.len()
    }

    /// True when there are none.
    pub const fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The migrations.
    pub fn iter(&self) -> impl Iterator<Item = &'static Migration> {
        self.list.iter()
    }

    /// The record table's name.
    pub fn table_name(&self) -> &'static str {
        self.table
    }

    /// sqlx's migrator for `backend`; an error names a migration lacking
    /// that backend's SQL.
    pub(crate) fn migrator(&self, backend: Backend) -> Result<Migrator, DbError> {
        let mut list = Vec::with_capacity(self.list.len());
        for m in self.list {
            let sql = m.sql_for(backend).ok_or(DbError::MissingMigration {
                version: m.version,
                description: m.description,
                backend: backend.name(),
            })?;
            list.push(sqlx::migrate::Migration::new(
                m.version,
                Cow::Borrowed(m.description),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            ));
        }
        let mut migrator = Migrator::with_migrations(list);
        migrator.dangerous_set_table_name(self.table);
        Ok(migrator)
    }
}
