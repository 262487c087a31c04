//! The database configuration: URL, pool size, timeouts.

use super::DbError;
use crate::common::url::mask_url;
use std::path::PathBuf;
use std::time::Duration;

/// The database engine, from the URL's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// `sqlite://…`, `sqlite::memory:`.
    Sqlite,
    /// `postgres://…`, `postgresql://…`.
    Postgres,
    /// `mysql://…`, `mariadb://…`.
    MySql,
}

impl Backend {
    /// The backend a URL names, from its scheme.
    ///
    /// ```
    /// use ferrapi_storage::db::Backend;
    /// assert_eq!(Backend::from_url("postgres://db/app").unwrap(), Backend::Postgres);
    /// assert_eq!(Backend::from_url("sqlite://data/app.db").unwrap(), Backend::Sqlite);
    /// assert!(Backend::from_url("oracle://x").is_err());
    /// ```
    pub fn from_url(url: &str) -> Result<Self, DbError> {
        let scheme = url.split(':').next().unwrap_or("").to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            "mysql" | "mariadb" => Ok(Backend::MySql),
            _ => Err(DbError::Url {
                url: mask_url(url),
                reason: "expected sqlite://…, postgres://… or mysql://…".into(),
            }),
        }
    }

    /// The backend's name: `sqlite`, `postgres` or `mysql` (also the name
    /// of the cargo feature that builds it in).
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::MySql => "mysql",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How to reach the database and size the pool.
///
/// ```
/// use ferrapi_storage::db::DbConfig;
/// use std::time::Duration;
///
/// let config = DbConfig::new("postgres://app@db/app")
///     .max_connections(20)
///     .acquire_timeout(Duration::from_secs(3));
/// assert_eq!(config.max_connections, Some(20));
/// ```
#[derive(Debug, Clone)]
pub struct DbConfig {
    /// The database URL (`DATABASE_URL`).
    pub url: String,
    /// Most connections the pool opens (`DATABASE_MAX_CONNECTIONS`);
    /// `None`: 10 for servers, 8 for a SQLite file, 1 for in-memory SQLite.
    pub max_connections: Option<u32>,
    /// Connections kept open even when idle (`DATABASE_MIN_CONNECTIONS`, default 0).
    pub min_connections: u32,
    /// How long a request waits for a free connection before failing
    /// (`DATABASE_ACQUIRE_TIMEOUT`, seconds, default 10).
    pub acquire_timeout: Duration,
    /// Idle connections are closed after this long (default 10 min).
    pub idle_timeout: Option<Duration>,
    /// Connections are replaced after this long (default 30 min).
    pub max_lifetime: Option<Duration>,
    /// SQLite: how long a writer waits for the write lock
    /// (`DATABASE_BUSY_TIMEOUT`, seconds, default 5).
    pub busy_timeout: Duration,
    /// SQLite: start request transactions with `BEGIN IMMEDIATE` (see the
    /// module docs). Ignored by other backends.
    pub sqlite_immediate: bool,
}

impl DbConfig {
    /// The defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        DbConfig {
            url: url.into(),
            max_connections: None,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(10),
            idle_timeout: Some(Duration::from_secs(600)),
            max_lifetime: Some(Duration::from_secs(1800)),
            busy_timeout: Duration::from_secs(5),
            sqlite_immediate: false,
        }
    }

    /// Reads `DATABASE_URL` (default `sqlite://data/app.db`),
    /// `DATABASE_MAX_CONNECTIONS`, `DATABASE_MIN_CONNECTIONS`,
    /// `DATABASE_ACQUIRE_TIMEOUT` and `DATABASE_BUSY_TIMEOUT` (seconds).
    /// A malformed value is an error naming the variable.
    pub fn from_env() -> Result<Self, DbError> {
        fn var(name: &str) -> Option<String> {
            std::env::var(name).ok().filter(|v| !v.trim().is_empty())
        }
        fn number<T: std::str::FromStr>(name: &'static str) -> Result<Option<T>, DbError> {
            match var(name) {
                None => Ok(None),
                Some(v) => v.trim().parse().map(Some).map_err(|_| DbError::Config {
                    var: name,
                    reason: format!("`{v}` is not a non-negative number"),
                }),
            }
        }
        let url = var("DATABASE_URL").unwrap_or_else(|| "sqlite://data/app.db".into());
        Backend::from_url(&url)?;
        let mut config = DbConfig::new(url);
        if let Some(n) = number::<u32>("DATABASE_MAX_CONNECTIONS")? {
            if n == 0 {
                return Err(DbError::Config {
                    var: "DATABASE_MAX_CONNECTIONS",
                    reason: "must be at least 1".into(),
                });
            }
            config.max_connections = Some(n);
        }
        if let Some(n) = number::<u32>("DATABASE_MIN_CONNECTIONS")? {
            config.min_connections = n;
        }
        if let Some(s) = number::<f64>("DATABASE_ACQUIRE_TIMEOUT")? {
            config.acquire_timeout = seconds("DATABASE_ACQUIRE_TIMEOUT", s)?;
        }
        if let Some(s) = number::<f64>("DATABASE_BUSY_TIMEOUT")? {
            config.busy_timeout = seconds("DATABASE_BUSY_TIMEOUT", s)?;
        }
        Ok(config)
    }

    /// Sets [`DbConfig::max_connections`].
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = Some(n);
        self
    }

    /// Sets [`DbConfig::min_connections`].
    pub fn min_connections(mut self, n: u32) -> Self {
        self.min_connections = n;
        self
    }

    /// Sets [`DbConfig::acquire_timeout`].
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// Sets [`DbConfig::idle_timeout`].
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Sets [`DbConfig::max_lifetime`].
    pub fn max_lifetime(mut self, lifetime: Option<Duration>) -> Self {
        self.max_lifetime = lifetime;
        self
    }

    /// Sets [`DbConfig::busy_timeout`].
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Sets [`DbConfig::sqlite_immediate`].
    pub fn sqlite_immediate(mut self, on: bool) -> Self {
        self.sqlite_immediate = on;
        self
    }

    /// The backend the URL names.
    pub fn backend(&self) -> Result<Backend, DbError> {
        Backend::from_url(&self.url)
    }
}

fn seconds(var: &'static str, s: f64) -> Result<Duration, DbError> {
    Duration::try_from_secs_f64(s).map_err(|_| DbError::Config {
        var,
        reason: format!("`{s}` is not a duration in seconds"),
    })
}

/// Where a SQLite URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SqliteTarget {
    /// One in-memory database.
    Memory,
    /// A file (relative to the working directory, or absolute).
    File(PathBuf),
}

/// Parses `sqlite://rel/path.db`, `sqlite:///abs/path.db`, `sqlite:path.db`
/// and `sqlite::memory:` (a query string is ignored).
pub(crate) fn sqlite_target(url: &str) -> Result<SqliteTarget, DbError> {
    let bad = |reason: &str| DbError::Url {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| bad("not a sqlite URL"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    if path == ":memory:" || (path.is_empty() && rest.contains("mode=memory")) {
        return Ok(SqliteTarget::Memory);
    }
    if path.is_empty() {
        return Err(bad("names no database file"));
    }
    Ok(SqliteTarget::File(PathBuf::from(path)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls() {
        assert_eq!(
            sqlite_target("sqlite://data/app.db").unwrap(),
            SqliteTarget::File("data/app.db".into())
        );
        assert_eq!(
            sqlite_target("sqlite:///var/app.db?mode=rwc").unwrap(),
            SqliteTarget::File("/var/app.db".into())
        );
        assert_eq!(
            sqlite_target("sqlite:app.db").unwrap(),
            SqliteTarget::File("app.db".into())
        );
        assert_eq!(
            sqlite_target("sqlite::memory:").unwrap(),
            SqliteTarget::Memory
        );
        assert_eq!(
            sqlite_target("sqlite://:memory:").unwrap(),
            SqliteTarget::Memory
        );
        assert!(sqlite_target("sqlite://").is_err());
    }

    #[test]
    fn backends() {
        assert_eq!(Backend::from_url("mariadb://x/y").unwrap(), Backend::MySql);
        assert_eq!(
            Backend::from_url("POSTGRESQL://x/y").unwrap(),
            Backend::Postgres
        );
        assert!(matches!(
            Backend::from_url("redis://x"),
            Err(DbError::Url { .. })
        ));
    }
}
