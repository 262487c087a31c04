//! The application's pool.

use super::config::{SqliteTarget, sqlite_target};
use super::trace::{self, Target};
use super::{Backend, DbConfig, DbError, Migrations, Query};
use crate::common::url::mask_url;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, AssertSqlSafe, Connection, Executor, Transaction};
use std::sync::Arc;
use std::time::Duration;

/// The application's database pool (application scope: register it with
/// `App::state`, clone it freely — clones share the pool).
///
/// ```no_run
/// use ferrapi_storage::db::{DbConfig, DbPool};
/// # async fn run() -> Result<(), ferrapi_storage::db::DbError> {
/// let pool = DbPool::connect(DbConfig::from_env()?).await?;
/// pool.ping().await?;
/// println!("{} connections, {} idle", pool.stats().size, pool.stats().idle);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct DbPool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: AnyPool,
    backend: Backend,
    sqlite_immediate: bool,
    acquire_timeout: Duration,
    /// The attributes of this pool's spans.
    target: Target,
}

/// The pool's numbers, for metrics and the readiness check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections open (in use or idle).
    pub size: u32,
    /// Connections open and idle.
    pub idle: u32,
    /// The most the pool opens.
    pub max: u32,
}

impl DbPool {
    /// Connects with the defaults of [`DbConfig::new`].
    pub async fn connect_url(url: &str) -> Result<Self, DbError> {
        Self::connect(DbConfig::new(url)).await
    }

    /// Connects: creates a SQLite file and its folder if missing and puts it
    /// in WAL mode; checks that one connection can be opened, so that a bad
    /// URL or an unreachable server is reported at startup.
    pub async fn connect(config: DbConfig) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let backend = config.backend()?;
        let masked = mask_url(&config.url);
        let mut url = config.url.clone();
        let mut max = config.max_connections.unwrap_or(10);
        let mut options = AnyPoolOptions::new()
            .min_connections(config.min_connections)
            .acquire_timeout(config.acquire_timeout)
            .idle_timeout(config.idle_timeout)
            .max_lifetime(config.max_lifetime);
        match backend {
            Backend::Sqlite => {
                match sqlite_target(&config.url)? {
                    SqliteTarget::Memory => {
                        // Each connection would open its own empty
                        // database: one connection, kept forever.
                        url = "sqlite::memory:".into();
                        max = 1;
                        options = options
                            .min_connections(1)
                            .idle_timeout(None)
                            .max_lifetime(None);
                    }
                    SqliteTarget::File(path) => {
                        max = config.max_connections.unwrap_or(8);
                        url = prepare_sqlite_file(&path, config.busy_timeout).await?;
                    }
                }
                let pragmas = format!(
                    "PRAGMA busy_timeout = {}; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                    config.busy_timeout.as_millis()
                );
                options = options.after_connect(move |conn, _meta| {
                    let pragmas = pragmas.clone();
                    Box::pin(async move {
                        conn.execute(AssertSqlSafe(pragmas)).await?;
                        Ok(())
                    })
                });
            }
            Backend::MySql => {
                // PostgreSQL's default isolation, so that the same code
                // behaves alike on both (and `FOR UPDATE SKIP LOCKED` takes
                // no gap locks that make concurrent claimers wait).
                options = options.after_connect(|conn, _meta| {
                    Box::pin(async move {
                        conn.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                            .await?;
                        Ok(())
                    })
                });
            }
            Backend::Postgres => {}
        }
        let pool = options
            .max_connections(max)
            .connect(&url)
            .await
            .map_err(|source| connect_error(backend, &masked, source))?;
        Ok(DbPool {
            inner: Arc::new(Inner {
                pool,
                backend,
                sqlite_immediate: config.sqlite_immediate,
                acquire_timeout: config.acquire_timeout,
                target: Target::new(backend, &config.url),
            }),
        })
    }

    /// The engine behind the pool.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// sqlx's pool, for what this API does not cover.
    pub fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }

    /// `sql` in the backend's placeholder style (see [`Backend::sql`]).
    pub fn sql(&self, sql: &'static str) -> &'static str {
        self.inner.backend.sql(sql)
    }

    /// A query written with `?` placeholders, ready for `.bind(…)`; run it
    /// on the pool (`.fetch_one(db_pool.pool())`) or in a transaction.
    /// `sql` is text written in the program ([`StaticSql`](super::StaticSql));
    /// SQL built at run time goes through [`query_dynamic`](Self::query_dynamic).
    pub fn query(&self, sql: impl super::StaticSql) -> Query {
        sqlx::query(self.sql(sql.text()))
    }

    /// A query built at run time (an `IN (?, ?, …)` list of variable
    /// length, a table name from configuration), rewritten for the backend
    /// at each call. Like sqlx's `AssertSqlSafe`, the caller vouches that
    /// no untrusted input was pasted into `sql`: values still go through
    /// `.bind(…)`.
    pub fn query_dynamic(&self, sql: &str) -> Query {
        sqlx::query(sqlx::AssertSqlSafe(
            self.inner.backend.rewrite(sql).into_owned(),
        ))
    }

    /// Runs `query` on a pooled connection, outside any transaction.
    pub async fn execute(&self, query: Query) -> Result<sqlx::any::AnyQueryResult, DbError> {
        let pool = &self.inner.pool;
        trace::run(&self.inner.target, query, |q| pool.execute(q)).await
    }

    /// Runs `query` and returns its rows.
    pub async fn fetch_all(&self, query: Query) -> Result<Vec<AnyRow>, DbError> {
        let pool = &self.inner.pool;
        trace::run(&self.inner.target, query, |q| pool.fetch_all(q)).await
    }

    /// Runs `query` and returns its first row, if any.
    pub async fn fetch_optional(&self, query: Query) -> Result<Option<AnyRow>, DbError> {
        let pool = &self.inner.pool;
        trace::run(&self.inner.target, query, |q| pool.fetch_optional(q)).await
    }

    /// Runs `query` and returns its first row (an error if none).
    pub async fn fetch_one(&self, query: Query) -> Result<AnyRow, DbError> {
        let pool = &self.inner.pool;
        trace::run(&self.inner.target, query, |q| pool.fetch_one(q)).await
    }

    /// The attributes of this pool's spans.
    pub(crate) fn target(&self) -> &Target {
        &self.inner.target
    }

    /// Begins a transaction (`BEGIN IMMEDIATE` on SQLite when
    /// [`DbConfig::sqlite_immediate`] is set).
    pub async fn begin(&self) -> Result<Transaction<'static, Any>, DbError> {
        let immediate = self.inner.sqlite_immediate && self.inner.backend == Backend::Sqlite;
        self.begin_in_span(immediate).await
    }

    /// Begins a transaction that holds the write lock from its start on
    /// SQLite (`BEGIN IMMEDIATE`; a plain `BEGIN` elsewhere): for
    /// read-then-write work, such as claiming a queued task.
    pub async fn begin_write(&self) -> Result<Transaction<'static, Any>, DbError> {
        self.begin_in_span(self.inner.backend == Backend::Sqlite)
            .await
    }

    /// `BEGIN` (or `BEGIN IMMEDIATE`) in a span when one is exported; the
    /// span covers the wait for a pooled connection too.
    async fn begin_in_span(&self, immediate: bool) -> Result<Transaction<'static, Any>, DbError> {
        let pool = &self.inner.pool;
        let span = self.inner.target.tx_span("BEGIN");
        if immediate {
            trace::in_span(span, pool.begin_with("BEGIN IMMEDIATE")).await
        } else {
            trace::in_span(span, pool.begin()).await
        }
    }

    /// Applies the migrations not applied yet; idempotent, and safe when
    /// several processes migrate at once (see the module docs).
    pub async fn migrate(&self, migrations: &Migrations) -> Result<(), DbError> {
        let mut migrator = migrations.migrator(self.inner.backend)?;
        match self.inner.backend {
            Backend::Sqlite => {
                // sqlx's SQLite migrator takes no lock: hold SQLite's write
                // lock for the whole run, so a concurrent migrator waits and
                // then finds the work done.
                let mut conn = self.inner.pool.acquire().await?;
                let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
                // `run_direct` is what `run` calls; called directly, the
                // future stays `Send` (sqlx's comment on it: `run`'s
                // `Acquire` bound is "not general enough" in spawned tasks).
                migrator
                    .run_direct(None, &mut *tx, false)
                    .await
                    .map_err(DbError::Migrate)?;
                tx.commit().await?;
            }
            Backend::Postgres => {
                // sqlx holds `pg_advisory_lock` for the run.
                let mut conn = self.inner.pool.acquire().await?;
                migrator
                    .run_direct(None, &mut *conn, false)
                    .await
                    .map_err(DbError::Migrate)?;
            }
            Backend::MySql => {
                // sqlx's MySQL lock is `GET_LOCK(name, -1)`, whose result it
                // ignores; MariaDB answers -1 with NULL at once instead of
                // waiting, so two migrators would run together. Take a lock
                // of our own, with a real timeout, on the same connection.
                migrator.set_locking(false);
                let mut conn = self.inner.pool.acquire().await?;
                let name = format!("ferrapi_migrate_{}", migrations.table_name());
                let name: String = name.chars().take(64).collect();
                let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, 600)")
                    .bind(&name)
                    .fetch_one(&mut *conn)
                    .await?;
                if got != Some(1) {
                    return Err(DbError::Timeout(Duration::from_secs(600)));
                }
                let result = migrator.run_direct(None, &mut *conn, false).await;
                sqlx::query("SELECT RELEASE_LOCK(?)")
                    .bind(&name)
                    .execute(&mut *conn)
                    .await?;
                result.map_err(DbError::Migrate)?;
            }
        }
        Ok(())
    }

    /// The readiness check: a `SELECT 1` answered within the acquire
    /// timeout.
    pub async fn ping(&self) -> Result<(), DbError> {
        let timeout = self.inner.acquire_timeout;
        match tokio::time::timeout(timeout, sqlx::query("SELECT 1").execute(&self.inner.pool)).await
        {
            Ok(result) => result.map(|_| ()).map_err(DbError::from),
            Err(_) => Err(DbError::Timeout(timeout)),
        }
    }

    /// The readiness check under the name the other storage handles use
    /// (`cache.health()`, `bus.health()`): [`DbPool::ping`].
    pub async fn health(&self) -> Result<(), DbError> {
        self.ping().await
    }

    /// Sets the pool's gauges in `metrics` (call it before rendering, or
    /// every few seconds): `db_pool_connections{state="in_use"|"idle"}` and
    /// `db_pool_max_connections`.
    #[cfg(feature = "metrics")]
    pub fn record_metrics(&self, metrics: &ferrapi_telemetry::metrics::Metrics) {
        let stats = self.stats();
        let backend = self.backend().name();
        metrics
            .gauge(
                "db_pool_connections",
                &[("backend", backend), ("state", "in_use")],
            )
            .set(f64::from(stats.size.saturating_sub(stats.idle)));
        metrics
            .gauge(
                "db_pool_connections",
                &[("backend", backend), ("state", "idle")],
            )
            .set(f64::from(stats.idle));
        metrics
            .gauge("db_pool_max_connections", &[("backend", backend)])
            .set(f64::from(stats.max));
    }

    /// The pool's numbers.
    pub fn stats(&self) -> PoolStats {
        let pool = &self.inner.pool;
        PoolStats {
            size: pool.size(),
            idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
            max: pool.options().get_max_connections(),
        }
    }

    /// Closes the pool: waits for connections in use to come back, then
    /// closes them all (SQLite checkpoints its WAL on the last close).
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }
}

fn connect_error(backend: Backend, masked: &str, source: sqlx::Error) -> DbError {
    // sqlx's Any driver answers an unknown scheme with a configuration
    // error: the backend's sqlx feature is off in this build.
    if let sqlx::Error::Configuration(e) = &source
        && e.to_string().contains("no driver found")
    {
        return DbError::NotBuilt {
            backend: backend.name(),
        };
    }
    DbError::Connect {
        url: masked.to_owned(),
        source,
    }
}

/// Without the `sqlite` feature: the backend is not built in.
#[cfg(not(feature = "sqlite"))]
async fn prepare_sqlite_file(_: &std::path::Path, _: Duration) -> Result<String, DbError> {
    Err(DbError::NotBuilt { backend: "sqlite" })
}

/// Creates the file's folder, puts the database in WAL mode (a persistent
/// setting, done once here because switching needs an exclusive lock that
/// the busy timeout does not wait for) and returns the URL to open it with.
#[cfg(feature = "sqlite")]
async fn prepare_sqlite_file(path: &std::path::Path, busy: Duration) -> Result<String, DbError> {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| DbError::Folder {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let absolute = std::path::absolute(path).map_err(|source| DbError::Folder {
        path: path.display().to_string(),
        source,
    })?;
    let options = SqliteConnectOptions::new()
        .filename(&absolute)
        .create_if_missing(true)
        .busy_timeout(busy)
        .journal_mode(SqliteJournalMode::Wal);
    // Another process may hold the lock at this instant (it is switching
    // the mode itself, or migrating): retry a few times, briefly.
    let mut attempt = 0;
    loop {
        match sqlx::SqliteConnection::connect_with(&options).await {
            Ok(conn) => {
                conn.close().await.ok();
                break;
            }
            Err(e) if attempt < 20 => {
                attempt += 1;
                tracing::debug!(error = %e, attempt, "setting SQLite WAL mode, retrying");
                tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
            }
            Err(source) => {
                return Err(DbError::Connect {
                    url: absolute.display().to_string(),
                    source,
                });
            }
        }
    }
    let path: Vec<String> = absolute
        .to_string_lossy()
        .split('/')
        .map(percent_encode_segment)
        .collect();
    let url = format!("sqlite://{}?mode=rwc", path.join("/"));
    Ok(url)
}

/// Percent-encodes what a URL path segment cannot carry as is.
#[cfg(feature = "sqlite")]
fn percent_encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
