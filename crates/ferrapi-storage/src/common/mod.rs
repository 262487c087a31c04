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
//! `cache::RedisOptions`, where it was first documented, and its public
//! methods answer [`CacheError`](crate::cache::CacheError): both are kept
//! for compatibility.

#[cfg(feature = "redis")]
pub(crate) mod redis_conn;
pub(crate) mod url;
