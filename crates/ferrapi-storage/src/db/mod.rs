//! Databases: SQLite (the embedded default), PostgreSQL and MySQL/MariaDB,
//! chosen by the URL's scheme, behind one API so that a handler writes each
//! query once.
//!
//! | piece | what it is |
//! |---|---|
//! | [`DbConfig`] | the URL, pool size and timeouts (from code or `DATABASE_*` variables) |
//! | [`DbPool`] | the application's pool: `connect`, `migrate`, `ping`, `stats` (register it with `App::state`) |
//! | [`Db`] | the request's transaction, a dependency: committed when the handler succeeds, rolled back on error, panic or client disconnect |
//! | [`Migrations`] | embedded migrations, one SQL text per backend (a folder per backend) |
//! | [`Backend`] | which engine, and its dialect (`?` placeholders rewritten to `$1` for PostgreSQL) |
//!
//! ```no_run
//! use ferrapi::prelude::*;
//! use ferrapi_storage::db::{Db, DbError, DbPool, Migration, Migrations};
//! use sqlx::Row;
//!
//! static MIGRATIONS: Migrations = Migrations::new(&[Migration::new(1, "notes")
//!     .sqlite("CREATE TABLE notes (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)")
//!     .postgres("CREATE TABLE notes (id BIGSERIAL PRIMARY KEY, body TEXT NOT NULL)")
//!     .mysql("CREATE TABLE notes (id BIGINT AUTO_INCREMENT PRIMARY KEY, body TEXT NOT NULL)")]);
//!
//! /// Store a note; the transaction commits only if this returns `Ok`.
//! #[post("/notes/{body}", status = 201)]
//! async fn add(Depends(db): Depends<Db>, Path(body): Path<String>) -> Result<Json<i64>, ferrapi::Error> {
//!     let row = db
//!         .fetch_one(db.query("INSERT INTO notes (body) VALUES (?) RETURNING id").bind(body))
//!         .await?;
//!     Ok(Json(row.try_get::<i64, _>("id")?))
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = DbPool::connect_url("sqlite://data/app.db").await?; // or postgres://…, mysql://…
//! pool.migrate(&MIGRATIONS).await?;
//! App::new().state(pool).route(add).serve().await?;
//! # Ok(()) }
//! ```
//!
//! ## Why sqlx's `Any` driver, with a dialect helper
//!
//! An application must be able to run the same queries on SQLite, PostgreSQL
//! and MySQL. Two designs were weighed:
//!
//! - **An enum of typed pools** (`SqlitePool | PgPool | MySqlPool`): every
//!   type sqlx knows per backend, but a handler either matches on the enum
//!   and writes its query three times, or is generic over `sqlx::Database`
//!   with a dozen `for<'q> T: Encode<'q, DB> + Type<DB>` bounds. Neither is
//!   "write the query once".
//! - **sqlx's `Any` driver** (chosen): one pool type, one `Transaction`
//!   type, one row type, and the backend picked at run time from the URL.
//!   Its limits are known and small: it carries `bool`, integers, floats,
//!   strings and bytes only (no chrono, uuid or json types) and does not
//!   translate SQL dialects. We fill the gap that matters —
//!   placeholders: queries are written with `?` and [`Backend::sql`]
//!   rewrites them to `$1, $2, …` for PostgreSQL, once per query text
//!   (memoized) — and document portable column types below. Migrations,
//!   where dialects really differ, have one SQL text per backend.
//!
//! Portable column types, for queries that run everywhere:
//!
//! | Rust | SQLite | PostgreSQL | MySQL | note |
//! |---|---|---|---|---|
//! | `i64` | `INTEGER` | `BIGINT` | `BIGINT` | ids: `INTEGER PRIMARY KEY AUTOINCREMENT` / `BIGSERIAL` / `BIGINT AUTO_INCREMENT` |
//! | `String` | `TEXT` | `TEXT` | `TEXT` / `VARCHAR(n)` | |
//! | `f64` | `REAL` | `DOUBLE PRECISION` | `DOUBLE` | |
//! | `Vec<u8>` | `BLOB` | `BYTEA` | `BLOB` | |
//! | timestamps | `INTEGER` | `BIGINT` | `BIGINT` | epoch seconds or milliseconds; RFC 3339 `TEXT` also works (sorts correctly in UTC) |
//! | `bool` | `INTEGER` | `SMALLINT` | `SMALLINT` | store 0/1 and decode an `i64`: SQLite has no boolean type, so `Any` cannot decode one there |
//! | uuid, json | `TEXT` | `TEXT` | `TEXT` | serialize in Rust |
//!
//! `INSERT … RETURNING` works on SQLite (3.35+), PostgreSQL and MariaDB
//! (10.5+), not on MySQL 8: there, use `execute(…).last_insert_id()`.
//! Unique violations are recognized on every backend with
//! [`DbError::is_unique_violation`].
//!
//! ## SQLite
//!
//! `sqlite://data/app.db` is relative to the working directory,
//! `sqlite:///var/lib/app/app.db` absolute; the file and its folder are
//! created. The database is put in WAL mode once (a persistent setting)
//! and every connection gets `synchronous = NORMAL` (safe with WAL: a power
//! loss can lose the last commits, never corrupt), `foreign_keys = ON` and
//! a `busy_timeout` (default 5 s) so that concurrent writers wait their turn
//! instead of failing. `sqlite::memory:` is one in-memory database on one
//! connection (tests).
//!
//! SQLite has one writer at a time. A deferred transaction (the default)
//! that reads and *then* writes can fail with `database is locked` when
//! another writer committed in between — SQLite cannot wait there, because
//! the reader's snapshot is stale. Handlers that write first (an `INSERT`,
//! an `UPDATE … WHERE`) never hit it; for read-then-write handlers set
//! [`DbConfig::sqlite_immediate`], which starts request transactions with
//! `BEGIN IMMEDIATE` (writers queue at the start; reads then queue behind
//! writers too).
//!
//! ## MySQL / MariaDB
//!
//! Connections run at `READ COMMITTED`, PostgreSQL's default (MySQL's is
//! `REPEATABLE READ`), so that the same handler sees the same thing on both,
//! and so that `SELECT … FOR UPDATE SKIP LOCKED` takes no gap locks.
//!
//! ## Migrations
//!
//! [`DbPool::migrate`] runs sqlx's migrator over the embedded list:
//! idempotent (applied versions are recorded in `_sqlx_migrations` with a
//! checksum; an edited applied migration is an error, not a silent skip),
//! and safe when several processes migrate at once: PostgreSQL and MySQL
//! serialize migrators with sqlx's advisory lock (`pg_advisory_lock`,
//! `GET_LOCK`); sqlx's SQLite migrator takes no lock, so on SQLite the whole
//! run happens in one `BEGIN IMMEDIATE` transaction — the second process
//! waits for the first to commit, then finds nothing to do.
//!
//! ## Traces
//!
//! With the `otel` feature, inside a request whose span ferrapi's telemetry
//! layer exports, every query run through [`Db`] or [`DbPool`]'s helpers
//! (`execute`, `fetch_*`) and every `BEGIN`, `COMMIT` and `ROLLBACK` is a
//! client span, child of the request's: named by operation and table
//! (`SELECT users`), with OpenTelemetry's database attributes —
//! `db.system` (`sqlite`, `postgresql`, `mysql`), `db.operation.name`,
//! `db.collection.name`, `db.query.text` (the SQL with its placeholders:
//! bound values are never exported), `db.namespace`, `server.address`,
//! `server.port`, `db.response.returned_rows`, and on failure `error.type`
//! and `db.response.status_code` (the SQLSTATE). `BEGIN`'s span includes
//! the wait for a pooled connection. Outside an exported span (no
//! collector, a worker's poll) no span is opened and nothing is paid but a
//! look-up of the current span. Queries run on a raw connection
//! ([`Db::conn`], [`DbPool::pool`]) are not traced one by one.
//!
//! ## Coming from FastAPI / axum
//!
//! FastAPI's `get_db` dependency that yields a session and commits or rolls
//! back after the response is [`Db`] here; SQLAlchemy's engine is
//! [`DbPool`]. Alembic's revision scripts are [`Migration`]s, embedded in
//! the binary; `alembic upgrade head` is [`DbPool::migrate`] (the service's
//! `migrate` subcommand). axum users who pass a `PgPool` in `State` can keep
//! doing that with [`DbPool::pool`].

mod config;
mod dialect;
mod error;
mod migrate;
mod pool;
mod request;
mod sql;
mod trace;

pub use config::{Backend, DbConfig};
pub use error::DbError;
pub use migrate::{Migration, Migrations};
pub use pool::{DbPool, PoolStats};
pub use request::{Db, DbConn};
pub use sql::StaticSql;

/// sqlx's `Any` types the API hands out, re-exported so that users need not
/// name sqlx's module paths.
pub use sqlx::any::{Any, AnyArguments, AnyQueryResult, AnyRow};

/// A query on the portable driver, as built by [`Db::query`] or
/// [`DbPool::query`].
pub type Query = sqlx::query::Query<'static, Any, AnyArguments>;
