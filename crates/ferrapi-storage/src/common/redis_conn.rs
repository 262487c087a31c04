//! One Redis connection shared by the cache, the rate-limit store and the
//! bus: redis-rs's connection manager plus timeouts and a fail-fast window
//! while the server is down. Each of them converts [`RedisFailure`] and
//! [`InvalidUrl`] into its own error.

use super::CacheServer;
use super::url::mask_url;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ConnectionAddr, FromRedisValue, RedisError};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Timeouts and back-off of a [`RedisConnection`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisOptions {
    /// The longest one command may take, connecting included (default 1 s).
    pub command_timeout: Duration,
    /// The longest one connection attempt may take (default 1 s).
    pub connect_timeout: Duration,
    /// After a connection failure, commands fail at once for this long
    /// before the next one tries the server again (default 1 s).
    pub retry_after: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            command_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            retry_after: Duration::from_secs(1),
        }
    }
}

/// Why a command failed.
#[derive(Debug, Clone)]
pub(crate) enum RedisFailure {
    /// The server cannot be reached (refused, dropped, timed out, or in the
    /// fail-fast window after such a failure).
    Down(String),
    /// The server answered with an error, or the reply had another type.
    Error(String),
}

impl fmt::Display for RedisFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Down(m) | Self::Error(m) => f.write_str(m),
        }
    }
}

/// A URL the connection cannot use (or no Tokio runtime to open it in).
#[derive(Debug, Clone)]
pub(crate) struct InvalidUrl {
    /// The URL, password masked.
    pub(crate) url: String,
    /// Why.
    pub(crate) reason: String,
}

struct Inner {
    manager: ConnectionManager,
    url: String,
    /// The server, for the attributes of cache spans.
    server: CacheServer,
    options: RedisOptions,
    epoch: Instant,
    /// Milliseconds since `epoch` before which commands fail fast.
    down_until: AtomicU64,
    /// Ten-second period (since `epoch`) of the last "unreachable" log line.
    last_log: AtomicU64,
}

/// A shared, reconnecting connection to one Redis server (cheap to clone).
///
/// It is redis-rs's `ConnectionManager`: one multiplexed connection that
/// pipelines the commands of every task (no pool to size: Redis serves one
/// connection's commands in order anyway), created lazily and re-established
/// after an I/O error. Around it:
///
/// - every command has a timeout ([`RedisOptions::command_timeout`]), so a
///   hung server cannot hang requests;
/// - after a connection failure the connection is *down* for
///   [`RedisOptions::retry_after`]: commands fail at once (callers degrade:
///   the cache computes from the source, the rate limiter applies its fail
///   mode) instead of each waiting for a timeout; the first command after
///   the window tries the server again, so use resumes by itself once Redis
///   is back;
/// - "Redis unreachable" is logged at most once every 10 s.
///
/// Opening never connects: a malformed URL fails at once, an unreachable
/// server only makes commands fail. Share one connection between the cache,
/// the rate-limit store and the bus publisher with `clone`.
///
/// ```no_run
/// use ferrapi_storage::cache::{Cache, RedisCache, RedisConnection};
///
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// let redis = RedisConnection::open("redis://127.0.0.1:6379")?;
/// let cache = Cache::new(RedisCache::new(redis.clone()));
/// redis.ping().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisConnection {
    inner: Arc<Inner>,
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConnection")
            .field("url", &self.inner.url)
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl RedisConnection {
    /// A connection configured further (the bus's subscriber uses RESP3 and
    /// a push sender).
    pub(crate) fn with_config(
        client: Client,
        url: &str,
        options: RedisOptions,
        configure: impl FnOnce(ConnectionManagerConfig) -> ConnectionManagerConfig,
    ) -> Result<Self, InvalidUrl> {
        let masked = mask_url(url);
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(InvalidUrl {
                url: masked,
                reason: "a Redis connection must be opened inside a Tokio runtime".into(),
            });
        }
        let server = server_of(&client);
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.command_timeout))
            // One attempt per command after a failure: the fail-fast window
            // is the back-off, so that no command waits on retries.
            .set_number_of_retries(0);
        let manager =
            ConnectionManager::new_lazy_with_config(client, configure(config)).map_err(|e| {
                InvalidUrl {
                    url: masked.clone(),
                    reason: e.to_string(),
                }
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                manager,
                url: masked,
                server,
                options,
                epoch: Instant::now(),
                down_until: AtomicU64::new(0),
                last_log: AtomicU64::new(u64::MAX),
            }),
        })
    }

    /// The URL, password masked.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The options in force.
    pub fn options(&self) -> RedisOptions {
        self.inner.options
    }

    /// The server, as the spans of cache operations describe it
    /// (`db.system = "redis"`, host, port, database number).
    pub fn server(&self) -> &CacheServer {
        &self.inner.server
    }

    /// `ping` (in `cache`), failing with a [`RedisFailure`] (for the
    /// health checks and keep-alive of the other Redis users).
    pub(crate) async fn probe(&self) -> Result<(), RedisFailure> {
        let mut conn = self.inner.manager.clone();
        self.guarded(async move { redis::cmd("PING").query_async::<String>(&mut conn).await })
            .await
            .map(drop)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.inner.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Runs `f` on the shared connection unless the server is known to be
    /// down.
    pub(crate) async fn run<T, F, Fut>(&self, f: F) -> Result<T, RedisFailure>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        if self.now_ms() < self.inner.down_until.load(Ordering::Relaxed) {
            return Err(RedisFailure::Down(format!(
                "Redis at {} is unreachable (retrying shortly)",
                self.inner.url
            )));
        }
        self.guarded(f(self.inner.manager.clone())).await
    }

    /// Runs a command with the timeout, classifying the failure.
    async fn guarded<T>(
        &self,
        fut: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, RedisFailure> {
        let timeout = self.inner.options.command_timeout + self.inner.options.connect_timeout;
        match tokio::time::timeout(timeout, fut).await {
            Ok(Ok(v)) => {
                self.inner.down_until.store(0, Ordering::Relaxed);
                Ok(v)
            }
            Ok(Err(e))
                if e.is_io_error()
                    || e.is_timeout()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || e.is_unrecoverable_error() =>
            {
                Err(self.mark_down(&e.to_string()))
            }
            Ok(Err(e)) => Err(RedisFailure::Error(e.to_string())),
            Err(_) => Err(self.mark_down("timed out")),
        }
    }

    fn mark_down(&self, why: &str) -> RedisFailure {
        let now = self.now_ms();
        let retry = u64::try_from(self.inner.options.retry_after.as_millis()).unwrap_or(u64::MAX);
        self.inner
            .down_until
            .store(now.saturating_add(retry), Ordering::Relaxed);
        let period = now / 10_000;
        if self.inner.last_log.swap(period, Ordering::Relaxed) != period {
            tracing::error!(redis = %self.inner.url, error = %why,
                "Redis unreachable: callers degrade until it answers again");
        }
        RedisFailure::Down(format!("Redis at {}: {why}", self.inner.url))
    }
}

/// A client for `url`, with a clear error for a malformed one.
pub(crate) fn client(url: &str) -> Result<Client, InvalidUrl> {
    Client::open(url).map_err(|e| InvalidUrl {
        url: mask_url(url),
        reason: e.to_string(),
    })
}

/// The span attributes of the server `client` talks to.
fn server_of(client: &Client) -> CacheServer {
    let info = client.get_connection_info();
    let (address, port) = match info.addr() {
        ConnectionAddr::Tcp(host, port) => (host.clone(), Some(*port)),
        ConnectionAddr::TcpTls { host, port, .. } => (host.clone(), Some(*port)),
        ConnectionAddr::Unix(path) => (path.display().to_string(), None),
        _ => ("unknown".to_owned(), None),
    };
    CacheServer {
        system: "redis",
        address,
        port,
        namespace: Some(info.redis_settings().db().to_string()),
        commands: ["GET", "SET", "DEL"],
    }
}

/// Reads a command's reply as `T` (a helper for callers' closures).
pub(crate) async fn query<T: FromRedisValue>(
    cmd: redis::Cmd,
    mut conn: ConnectionManager,
) -> Result<T, RedisError> {
    cmd.query_async(&mut conn).await
}
