//! The Redis cache backend.

use super::{CacheBackend, CacheError};
use crate::common::redis_conn::{
    InvalidUrl, RedisConnection, RedisFailure, RedisOptions, client, query,
};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use std::time::Duration;

/// Opening and probing a connection, in the cache's error type (where
/// these methods were first published).
impl RedisConnection {
    /// A connection to `url` (`redis://[user:password@]host[:port][/db]`,
    /// `rediss://` for TLS if redis-rs was built with it) with the default
    /// [`RedisOptions`]. Must be called inside a Tokio runtime.
    ///
    /// # Errors
    /// [`CacheError::InvalidUrl`] for a malformed URL or outside a runtime.
    pub fn open(url: &str) -> Result<Self, CacheError> {
        Self::open_with(url, RedisOptions::default())
    }

    /// A connection to `url` with `options`.
    ///
    /// # Errors
    /// [`CacheError::InvalidUrl`] for a malformed URL or outside a runtime.
    pub fn open_with(url: &str, options: RedisOptions) -> Result<Self, CacheError> {
        let client = client(url)?;
        Ok(Self::with_config(client, url, options, |c| c)?)
    }

    /// `PING`, bypassing the fail-fast window (a probe): the health check.
    ///
    /// # Errors
    /// [`CacheError::Unavailable`] when the server does not answer.
    pub async fn ping(&self) -> Result<(), CacheError> {
        Ok(self.probe().await?)
    }
}

impl From<RedisFailure> for CacheError {
    fn from(e: RedisFailure) -> Self {
        match e {
            RedisFailure::Down(m) => CacheError::Unavailable(m),
            RedisFailure::Error(m) => CacheError::Backend(m),
        }
    }
}

impl From<InvalidUrl> for CacheError {
    fn from(InvalidUrl { url, reason }: InvalidUrl) -> Self {
        CacheError::InvalidUrl { url, reason }
    }
}

/// The Redis [`CacheBackend`]: `GET`, `SET … PX <ttl>`, `DEL` over a
/// shared [`RedisConnection`]. Every instance using the same Redis (and
/// namespace) sees the same entries, so a `delete` after an update
/// invalidates the entry everywhere. Memory bounds and eviction are the
/// server's (`maxmemory` with an `allkeys-lru` or `volatile-ttl` policy).
///
/// ```no_run
/// use ferrapi_storage::cache::{Cache, RedisCache, RedisConnection};
/// use std::time::Duration;
///
/// # async fn f() -> Result<(), ferrapi_storage::cache::CacheError> {
/// let cache = Cache::new(RedisCache::new(RedisConnection::open("redis://127.0.0.1")?))
///     .namespace("users-api")
///     .default_ttl(Duration::from_secs(300));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RedisCache {
    conn: RedisConnection,
}

impl RedisCache {
    /// A cache backend on `conn`.
    pub fn new(conn: RedisConnection) -> Self {
        Self { conn }
    }

    /// The connection (to share with other Redis users).
    pub fn connection(&self) -> &RedisConnection {
        &self.conn
    }
}

impl CacheBackend for RedisCache {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, CacheError>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("GET");
            cmd.arg(key);
            let value: Option<Vec<u8>> = self.conn.run(|c| query(cmd, c)).await?;
            Ok(value.map(Bytes::from))
        })
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), CacheError>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("SET");
            cmd.arg(key).arg(value.as_ref());
            if let Some(ttl) = ttl {
                // Whole milliseconds, at least one (PX 0 is an error).
                let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
                cmd.arg("PX").arg(ms);
            }
            self.conn.run(|c| query::<()>(cmd, c)).await?;
            Ok(())
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, CacheError>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("DEL");
            cmd.arg(key);
            let n: u64 = self.conn.run(|c| query(cmd, c)).await?;
            Ok(n > 0)
        })
    }

    fn health(&self) -> BoxFuture<'_, Result<(), CacheError>> {
        Box::pin(self.conn.ping())
    }

    fn name(&self) -> &'static str {
        "redis"
    }

    fn server(&self) -> Option<&super::CacheServer> {
        Some(self.conn.server())
    }
}
