//! What more than one backend family needs, kept out of any one family.
//!
//! The database, cache, bus and rate-limit modules each name a server by
//! URL, and each must keep the password out of its errors and logs: they
//! share one [`url::mask_url`] rather than a copy each. The Redis cache,
//! the Redis bus and the Redis rate-limit store share one connection type
//! ([`redis_conn::RedisConnection`]: timeouts, fail-fast window while the
//! server is down, rate-limited "unreachable" log line); it lives here, not
//! in `cache`, so that `bus` and `rate_limit` do not reach into the cache's
//! internals for it. Each family turns the connection's failures
//! ([`redis_conn::RedisFailure`], [`redis_conn::InvalidUrl`]) into its own
//! error type.
//!
//! The connection is published as `cache::RedisConnection` and
//! `cache::RedisOptions`, where it was first documented; its methods that
//! answer the cache's error type (`open`, `open_with`, `ping`) are defined
//! in `cache`, so that this module depends on no backend family. The
//! server description of spans ([`CacheServer`]) is here for the same
//! reason.

#[cfg(feature = "redis")]
pub(crate) mod redis_conn;
pub(crate) mod url;

/// The server behind a cache backend or a Redis connection, for the
/// attributes of its spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheServer {
    /// `db.system`: `redis` for Redis.
    pub system: &'static str,
    /// `server.address`: the host name or IP address (or a socket path).
    pub address: String,
    /// `server.port`, when the server listens on TCP.
    pub port: Option<u16>,
    /// `db.namespace`: the server's database (Redis's database number).
    pub namespace: Option<String>,
    /// `db.operation.name` of each call: the server's commands for
    /// get, set and delete (`GET`, `SET`, `DEL`).
    pub commands: [&'static str; 3],
}
