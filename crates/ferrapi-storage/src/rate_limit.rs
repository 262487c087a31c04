//! The Redis rate-limit store (feature `redis`): one limit shared by every
//! instance of the application.
//!
//! [`RedisRateLimitStore`] implements the facade's
//! [`RateLimitStore`] with the same
//! algorithm as the in-memory store (GCRA), run as one Lua script on the
//! Redis server: the read, the decision and the write are one atomic step,
//! so two instances (or two hundred concurrent requests) never both take
//! the last request of a quota, and the clock is the server's (`TIME`), so
//! instances with skewed clocks agree. Each key holds one short string and
//! expires as soon as its quota is full again: idle clients cost nothing.
//!
//! When Redis cannot be reached the store answers
//! [`RateLimitStoreError::Unavailable`] at once (the shared connection fails
//! fast while Redis is down, see
//! [`RedisConnection`]), and the layer's
//! `FailMode` decides: let requests
//! through (`Open`, the default) or answer 503 (`Closed`); the layer logs it.
//!
//! ```no_run
//! use ferrapi::middleware::{FailMode, RateLimitKey, RateLimitLayer};
//! use ferrapi::prelude::*;
//! use ferrapi_storage::cache::RedisConnection;
//! use ferrapi_storage::rate_limit::RedisRateLimitStore;
//!
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! let redis = RedisConnection::open("redis://127.0.0.1:6379")?;
//! let limit = RateLimitLayer::new("100/1s".parse()?)
//!     .key(RateLimitKey::global())
//!     .store(RedisRateLimitStore::new(redis).namespace("users-api"))
//!     .on_store_error(FailMode::Open);
//! let app = App::new().layer(limit);
//! # Ok(()) }
//! ```
//!
//! Precision: time is counted in microseconds and Lua numbers are doubles,
//! so the arithmetic is exact while `window in µs × count` stays below 2^53
//! (e.g. a count up to 2.5 million per hour, or any `u32` count per
//! second); larger quotas are refused with an error rather than rounded.

use crate::common::redis_conn::{RedisConnection, RedisFailure};
use ferrapi_core::rate_limit::{BoxFuture, Decision, Quota, RateLimitStore, RateLimitStoreError};
use std::fmt;
use std::sync::LazyLock;
use std::time::Duration;

/// GCRA with the debt kept relative to the last request, so that numbers
/// stay small: the stored value is `"<debt> <t0>"`, debt in µs × count
/// (the time until the quota is full again, scaled), `t0` the server time
/// of the last allowed request in µs. Divisions use `math.fmod`, exact on
/// integers, so that no rounding decides a request.
const SCRIPT: &str = r"
local window = tonumber(ARGV[1])
local count = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local limit = window * count
local debt = 0
local stored = redis.call('GET', KEYS[1])
if stored then
  local d, t0 = string.match(stored, '^(%d+) (%d+)$')
  if d then
    local elapsed = now - tonumber(t0)
    if elapsed < 0 then elapsed = 0 end
    debt = tonumber(d) - elapsed * count
    if debt < 0 then debt = 0 end
  end
end
local function ceil_div(a, b)
  local r = math.fmod(a, b)
  local q = (a - r) / b
  if r > 0 then q = q + 1 end
  return q
end
local new_debt = debt + window
if new_debt > limit then
  return {0, 0, ceil_div(debt, count), ceil_div(new_debt - limit, count)}
end
local ttl_ms = ceil_div(ceil_div(new_debt, count), 1000)
if ttl_ms < 1 then ttl_ms = 1 end
redis.call('SET', KEYS[1], string.format('%.0f %.0f', new_debt, now), 'PX', ttl_ms)
local left = limit - new_debt
return {1, (left - math.fmod(left, window)) / window, ceil_div(new_debt, count), 0}
";

static GCRA: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(SCRIPT));

/// The largest integer a Lua number (a double) holds exactly.
const EXACT: u128 = 1 << 53;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct StoreError(String);

impl From<RedisFailure> for RateLimitStoreError {
    fn from(e: RedisFailure) -> Self {
        match e {
            RedisFailure::Down(m) => RateLimitStoreError::Unavailable(m),
            RedisFailure::Error(m) => RateLimitStoreError::Other(Box::new(StoreError(m))),
        }
    }
}

/// The Redis [`RateLimitStore`]. See the [module docs](self).
#[derive(Clone)]
pub struct RedisRateLimitStore {
    conn: RedisConnection,
    namespace: String,
}

impl fmt::Debug for RedisRateLimitStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRateLimitStore")
            .field("url", &self.conn.url())
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl RedisRateLimitStore {
    /// A store on `conn` (share it with the cache).
    pub fn new(conn: RedisConnection) -> Self {
        Self {
            conn,
            namespace: String::new(),
        }
    }

    /// Prefixes every key with `namespace` and `:` (the layer's keys are
    /// already `<limiter name>:<key>`).
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        let mut namespace = namespace.into();
        if !namespace.is_empty() && !namespace.ends_with(':') {
            namespace.push(':');
        }
        self.namespace = namespace;
        self
    }

    /// Whether Redis answers (the health check).
    ///
    /// # Errors
    /// When it does not.
    pub async fn health(&self) -> Result<(), crate::cache::CacheError> {
        self.conn.ping().await
    }
}

impl RateLimitStore for RedisRateLimitStore {
    fn check<'a>(
        &'a self,
        key: &'a str,
        quota: Quota,
    ) -> BoxFuture<'a, Result<Decision, RateLimitStoreError>> {
        Box::pin(async move {
            let window = quota.window();
            let micros =
                window.as_micros() + u128::from(!window.subsec_nanos().is_multiple_of(1000));
            let micros = micros.max(1);
            if micros * u128::from(quota.count()) >= EXACT {
                return Err(RateLimitStoreError::Other(Box::new(StoreError(format!(
                    "quota {quota} is too large for the Redis store (window in µs × count must stay below 2^53)"
                )))));
            }
            let full_key = format!("{}{key}", self.namespace);
            let window_us = u64::try_from(micros).unwrap_or(u64::MAX);
            let count = quota.count();
            let reply: Vec<i64> = self
                .conn
                .run(|mut c| async move {
                    GCRA.key(full_key)
                        .arg(window_us)
                        .arg(count)
                        .invoke_async(&mut c)
                        .await
                })
                .await?;
            let [allowed, remaining, reset_us, retry_us] = reply[..] else {
                return Err(RateLimitStoreError::Other(Box::new(StoreError(format!(
                    "unexpected reply from the rate-limit script: {reply:?}"
                )))));
            };
            let micros = |v: i64| Duration::from_micros(u64::try_from(v).unwrap_or(0));
            Ok(Decision {
                allowed: allowed == 1,
                remaining: u64::try_from(remaining).unwrap_or(0),
                reset_after: micros(reset_us),
                retry_after: (allowed != 1).then(|| micros(retry_us)),
            })
        })
    }
}
