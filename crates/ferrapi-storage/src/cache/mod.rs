//! The cache: one typed async interface over an in-memory backend (the
//! embedded default) and Redis (feature `redis`, shared by every instance).
//!
//! [`Cache`] stores any `Serialize` value as JSON under a string key, with a
//! time to live:
//!
//! - [`get`](Cache::get), [`set`](Cache::set) / [`set_ttl`](Cache::set_ttl),
//!   [`delete`](Cache::delete): the plain operations; their errors are
//!   returned (the caller decides).
//! - [`get_or_compute`](Cache::get_or_compute): the cache-aside pattern most
//!   handlers want. A hit is returned; on a miss the closure computes the
//!   value from the source of truth (the database), and it is stored.
//!   **Single-flight**: concurrent misses of one key on one instance run the
//!   closure once and share its value (100 concurrent requests for a cold
//!   user → one query). **Cache failures never fail the request**: a cache
//!   that cannot be reached (Redis down), a value that no longer decodes
//!   (the type changed), or a failed store are logged and treated as a miss,
//!   so the value comes from the source of truth; only the closure's own
//!   error reaches the caller.
//! - [`stats`](Cache::stats): hits, misses, coalesced waits and cache
//!   failures, for metrics; [`health`](Cache::health) for the readiness
//!   endpoint.
//!
//! Backends ([`CacheBackend`]): [`MemoryCache`] (moka: bounded by entries or
//! by bytes, per-entry TTL, TinyLFU eviction) and `RedisCache` (redis-rs's
//! connection manager: one multiplexed, reconnecting connection; operations
//! time out; while Redis is down the backend fails fast instead of waiting on
//! every request, and probes again after a short back-off; see
//! `RedisConnection`). [`Cache::connect`] picks one from a URL
//! (`memory://`, `redis://…`), so `REDIS_URL` unset means in-memory.
//!
//! Coming from FastAPI (`fastapi-cache`'s `@cache(expire=60)`): the
//! decorator becomes an explicit call around the expensive part, which
//! keeps the key visible and lets writes [`delete`](Cache::delete) it:
//!
//! ```
//! use ferrapi_storage::cache::Cache;
//! use serde::{Deserialize, Serialize};
//! use std::time::Duration;
//!
//! #[derive(Clone, Serialize, Deserialize)]
//! struct User { id: i64, name: String }
//!
//! async fn load_user(id: i64) -> Result<Option<User>, std::io::Error> {
//!     Ok(Some(User { id, name: "Ada".into() }))      // the database, in real code
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let cache = Cache::memory().default_ttl(Duration::from_secs(60));
//! let key = "user:1";
//! let user = cache.get_or_compute(key, || load_user(1)).await?;   // miss: computed
//! let again: Option<User> = cache.get_or_compute(key, || load_user(1)).await?; // hit
//! assert_eq!(again.map(|u| u.name), user.map(|u| u.name));
//! cache.delete(key).await?;                                      // after an update
//! assert_eq!(cache.stats().hits, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! In handlers the cache is application state (`App::state`, then
//! `State<Cache>`); clones share everything:
//!
//! ```
//! use ferrapi::prelude::*;
//! use ferrapi_storage::cache::Cache;
//!
//! /// A square, computed once per minute at most.
//! #[get("/squares/{n}")]
//! async fn square(State(cache): State<Cache>, Path(n): Path<i64>) -> Result<Json<i64>, HttpError> {
//!     let key = format!("square:{n}");
//!     let value = cache
//!         .get_or_compute_ttl(&key, std::time::Duration::from_secs(60), || async move {
//!             Ok::<_, HttpError>(n * n)                  // the database, in real code
//!         })
//!         .await?;
//!     Ok(Json(value))
//! }
//!
//! let app = App::new().state(Cache::memory()).route(square);
//! ```
//!
//! Traces: with the `otel` feature, inside a request whose span ferrapi's
//! telemetry layer exports, each backend call is a client span, child of
//! the request's: `cache get` (with `cache.hit`), `cache set`,
//! `cache delete`, with `cache.backend`, and for Redis `db.system = redis`,
//! the command as `db.operation.name`, `server.address`, `server.port` and
//! the database number as `db.namespace` (see [`CacheBackend::server`]).
//! Keys and values are not exported (keys often carry user data).
//!
//! Choices: values are JSON (readable in `redis-cli`, stable across
//! releases of the program; a value that fails to decode is a miss, so a
//! change of type heals itself). A missing value can be cached too: compute
//! an `Option<T>` and `None` is stored as `null`. Single-flight is per
//! instance; across instances each may compute once, which keeps the design
//! free of distributed locks. When the leader of a flight fails (its closure
//! errors or its request is cancelled), the callers waiting on it compute
//! for themselves rather than inherit an error that may not be `Clone`.

mod memory;
#[cfg(feature = "redis")]
mod redis_cache;
mod trace;

#[cfg(feature = "redis")]
pub use crate::common::redis_conn::{RedisConnection, RedisOptions};
pub use memory::MemoryCache;
#[cfg(feature = "redis")]
pub use redis_cache::RedisCache;
pub use trace::CacheServer;

use crate::common::url::mask_url;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use trace::Op;
use tracing::Instrument as _;

/// A cache operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The backend cannot be reached (Redis down, timed out).
    #[error("cache unavailable: {0}")]
    Unavailable(String),
    /// The backend answered with an error.
    #[error("cache backend error: {0}")]
    Backend(String),
    /// The value could not be encoded as JSON.
    #[error("cannot encode the cached value: {0}")]
    Encode(#[source] serde_json::Error),
    /// The stored value does not decode as the requested type.
    #[error("cannot decode the cached value of `{key}`: {source}")]
    Decode {
        /// The key.
        key: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The cache URL is not usable.
    #[error("invalid cache URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL (any password masked).
        url: String,
        /// Why.
        reason: String,
    },
}

/// Where cached bytes live. Implemented by [`MemoryCache`] and `RedisCache`;
/// [`Cache`] adds JSON, statistics and single-flight on top.
///
/// Keys arrive complete (with the cache's namespace). A TTL is never zero.
pub trait CacheBackend: Send + Sync + 'static {
    /// The value under `key`, if present and not expired.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, CacheError>>;
    /// Stores `value` under `key`, expiring after `ttl` (`None`: never).
    fn set<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), CacheError>>;
    /// Removes `key`; whether it was present.
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, CacheError>>;
    /// Whether the backend answers (a Redis `PING`).
    fn health(&self) -> BoxFuture<'_, Result<(), CacheError>>;
    /// A short name for logs and health reports (`memory`, `redis`).
    fn name(&self) -> &'static str;
    /// The server behind the backend, for the attributes of cache spans
    /// (`db.system`, `server.address`, …); `None` (the default) for an
    /// in-process backend.
    fn server(&self) -> Option<&CacheServer> {
        None
    }
}

/// Counters since the cache was built (shared by its clones).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Values found in the backend.
    pub hits: u64,
    /// Lookups that found nothing (or nothing decodable).
    pub misses: u64,
    /// Callers of `get_or_compute` served by another caller's computation.
    pub coalesced: u64,
    /// Backend failures (unreachable, errors, undecodable values), each
    /// logged and, in `get_or_compute`, treated as a miss.
    pub errors: u64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    coalesced: AtomicU64,
    errors: AtomicU64,
}

/// The state of one computation that other callers wait on.
#[derive(Clone)]
enum Flight {
    Pending,
    Done(Bytes),
}

type Flights = Mutex<HashMap<String, watch::Receiver<Flight>>>;

struct Inner {
    backend: Arc<dyn CacheBackend>,
    namespace: String,
    default_ttl: Option<Duration>,
    counters: Counters,
    flights: Flights,
}

/// The typed cache (cheap to clone; clones share backend, statistics and
/// flights). See the [module docs](self).
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("backend", &self.inner.backend.name())
            .field("namespace", &self.inner.namespace)
            .field("default_ttl", &self.inner.default_ttl)
            .field("stats", &self.stats())
            .finish()
    }
}

/// Removes the flight when its leader finishes or is dropped; dropping the
/// sender wakes the waiters, who then compute for themselves unless a value
/// was published.
struct FlightGuard<'a> {
    flights: &'a Flights,
    key: &'a str,
    tx: watch::Sender<Flight>,
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        flights.remove(self.key);
    }
}

enum Role<'a> {
    Leader(FlightGuard<'a>),
    Waiter(watch::Receiver<Flight>),
}

impl Cache {
    /// A cache over any backend, with no default TTL and no namespace.
    pub fn new(backend: impl CacheBackend) -> Self {
        Self::from_arc(Arc::new(backend))
    }

    /// A cache over a shared backend.
    pub fn from_arc(backend: Arc<dyn CacheBackend>) -> Self {
        Self {
            inner: Arc::new(Inner {
                backend,
                namespace: String::new(),
                default_ttl: None,
                counters: Counters::default(),
                flights: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// An in-memory cache of at most 10 000 entries (see [`MemoryCache`]
    /// for other bounds).
    pub fn memory() -> Self {
        Self::new(MemoryCache::with_max_entries(10_000))
    }

    /// The backend a URL names: `memory://` (optionally
    /// `memory://?max_entries=N` or `memory://?max_bytes=N`), or
    /// `redis://…` / `rediss://…` (feature `redis`). Connecting to Redis is
    /// lazy: a bad URL fails here, an unreachable server does not (the cache
    /// then degrades to misses until Redis answers).
    ///
    /// # Errors
    /// [`CacheError::InvalidUrl`] for an unknown scheme, a malformed URL or
    /// a backend not built in.
    pub fn connect(url: &str) -> Result<Self, CacheError> {
        let invalid = |reason: &str| CacheError::InvalidUrl {
            url: mask_url(url),
            reason: reason.to_owned(),
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid("expected `memory://` or `redis://host:port`"))?;
        match scheme {
            "memory" => {
                let query = rest.trim_start_matches('/').trim_start_matches('?');
                let mut backend = MemoryCache::with_max_entries(10_000);
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                    let n: u64 = value
                        .parse()
                        .map_err(|_| invalid(&format!("`{name}` needs a whole number")))?;
                    backend = match name {
                        "max_entries" => MemoryCache::with_max_entries(n),
                        "max_bytes" => MemoryCache::with_max_bytes(n),
                        _ => return Err(invalid(&format!("unknown parameter `{name}`"))),
                    };
                }
                Ok(Self::new(backend))
            }
            #[cfg(feature = "redis")]
            "redis" | "rediss" | "redis+unix" | "unix" => {
                Ok(Self::new(RedisCache::new(RedisConnection::open(url)?)))
            }
            #[cfg(not(feature = "redis"))]
            "redis" | "rediss" | "redis+unix" | "unix" => Err(invalid(
                "this build has no Redis support (enable the `redis` feature of ferrapi-storage)",
            )),
            _ => Err(invalid("expected `memory://` or `redis://host:port`")),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Inner)) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => f(inner),
            None => {
                let old = &self.inner;
                let mut inner = Inner {
                    backend: old.backend.clone(),
                    namespace: old.namespace.clone(),
                    default_ttl: old.default_ttl,
                    counters: Counters::default(),
                    flights: Mutex::new(HashMap::new()),
                };
                f(&mut inner);
                self.inner = Arc::new(inner);
            }
        }
        self
    }

    /// The TTL of [`set`](Self::set) and [`get_or_compute`](Self::get_or_compute)
    /// (default: none, entries live until evicted or deleted).
    ///
    /// Like [`namespace`](Self::namespace), a builder step: called on a
    /// cache that has clones, it returns a new cache over the same backend
    /// with its own statistics and flights, leaving the clones unchanged.
    #[must_use]
    pub fn default_ttl(self, ttl: Duration) -> Self {
        self.edit(|i| i.default_ttl = Some(ttl))
    }

    /// Prefixes every key with `namespace` and `:` (so that several
    /// applications, or several versions of one, can share a Redis).
    #[must_use]
    pub fn namespace(self, namespace: impl Into<String>) -> Self {
        let mut namespace = namespace.into();
        if !namespace.is_empty() && !namespace.ends_with(':') {
            namespace.push(':');
        }
        self.edit(|i| i.namespace = namespace)
    }

    /// The backend's name (`memory`, `redis`).
    pub fn backend_name(&self) -> &'static str {
        self.inner.backend.name()
    }

    /// Hits, misses, coalesced waits and failures so far.
    pub fn stats(&self) -> CacheStats {
        let c = &self.inner.counters;
        CacheStats {
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            coalesced: c.coalesced.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
        }
    }

    /// Whether the backend answers.
    ///
    /// # Errors
    /// The backend's failure ([`CacheError::Unavailable`] when Redis is down).
    pub async fn health(&self) -> Result<(), CacheError> {
        self.inner.backend.health().await
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.inner.namespace)
    }

    fn count(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The value under `key`, decoded as `T`.
    ///
    /// # Errors
    /// The backend failed, or the value does not decode as `T`.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, CacheError> {
        self.fetch(&self.full_key(key), key).await
    }

    /// Reads and decodes the value under `full` (errors name `key`),
    /// counting a hit, a miss or a failure, in a span when one is exported.
    async fn fetch<T: DeserializeOwned>(
        &self,
        full: &str,
        key: &str,
    ) -> Result<Option<T>, CacheError> {
        let c = &self.inner.counters;
        let span = trace::span(&*self.inner.backend, Op::Get);
        let result = match self.inner.backend.get(full).instrument(span.clone()).await {
            Ok(Some(bytes)) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|source| CacheError::Decode {
                        key: key.to_owned(),
                        source,
                    })
            }
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        self.count(match &result {
            Ok(Some(_)) => &c.hits,
            Ok(None) => &c.misses,
            Err(_) => &c.errors,
        });
        trace::record(&span, &result, Some(matches!(result, Ok(Some(_)))));
        result
    }

    /// Stores `value` under `key` with the default TTL.
    ///
    /// # Errors
    /// The value does not encode, or the backend failed.
    pub async fn set<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), CacheError> {
        self.set_inner(key, value, self.inner.default_ttl).await
    }

    /// Stores `value` under `key` for `ttl` (a zero TTL removes the key:
    /// the value would be expired at once).
    ///
    /// # Errors
    /// The value does not encode, or the backend failed.
    pub async fn set_ttl<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        self.set_inner(key, value, Some(ttl)).await
    }

    async fn set_inner<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
    ) -> Result<(), CacheError> {
        let bytes = Bytes::from(serde_json::to_vec(value).map_err(CacheError::Encode)?);
        self.store(&self.full_key(key), bytes, ttl).await
    }

    async fn store(
        &self,
        full: &str,
        bytes: Bytes,
        ttl: Option<Duration>,
    ) -> Result<(), CacheError> {
        let backend = &*self.inner.backend;
        let result = if ttl.is_some_and(|t| t.is_zero()) {
            let span = trace::span(backend, Op::Delete);
            let result = backend.delete(full).instrument(span.clone()).await;
            trace::record(&span, &result, None);
            result.map(drop)
        } else {
            let span = trace::span(backend, Op::Set);
            let result = backend.set(full, bytes, ttl).instrument(span.clone()).await;
            trace::record(&span, &result, None);
            result
        };
        if result.is_err() {
            self.count(&self.inner.counters.errors);
        }
        result
    }

    /// Removes `key` (to invalidate it after a write); whether it was
    /// present.
    ///
    /// # Errors
    /// The backend failed. Callers that must not fail can log it: the entry
    /// then lives until its TTL, which is why cached entries should have
    /// one.
    pub async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        let span = trace::span(&*self.inner.backend, Op::Delete);
        let result = self
            .inner
            .backend
            .delete(&self.full_key(key))
            .instrument(span.clone())
            .await;
        trace::record(&span, &result, None);
        if result.is_err() {
            self.count(&self.inner.counters.errors);
        }
        result
    }

    /// The cached value of `key`, else `compute()`'s value, stored with the
    /// default TTL. See [`get_or_compute_ttl`](Self::get_or_compute_ttl).
    ///
    /// # Errors
    /// Only `compute`'s error: cache failures are logged and treated as a
    /// miss.
    pub async fn get_or_compute<T, E, F, Fut>(&self, key: &str, compute: F) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.get_or_compute_inner(key, self.inner.default_ttl, compute)
            .await
    }

    /// The cached value of `key`, else `compute()`'s value, stored for
    /// `ttl`. Concurrent misses of `key` on this cache (and its clones) run
    /// one `compute`; the others wait for its value.
    ///
    /// # Errors
    /// Only `compute`'s error: cache failures are logged and treated as a
    /// miss.
    pub async fn get_or_compute_ttl<T, E, F, Fut>(
        &self,
        key: &str,
        ttl: Duration,
        compute: F,
    ) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.get_or_compute_inner(key, Some(ttl), compute).await
    }

    /// A lookup that never fails: errors and undecodable values are logged,
    /// counted and reported as a miss.
    async fn lookup<T: DeserializeOwned>(&self, full: &str) -> Option<T> {
        match self.fetch(full, full).await {
            Ok(v) => v,
            Err(CacheError::Decode { source, .. }) => {
                tracing::warn!(key = %full, error = %source,
                    "cached value does not decode: treated as a miss");
                None
            }
            Err(e) => {
                tracing::warn!(key = %full, backend = self.inner.backend.name(), error = %e,
                    "cache lookup failed: computing from the source");
                None
            }
        }
    }

    fn join<'a>(&'a self, full: &'a str) -> Role<'a> {
        let mut flights = self.inner.flights.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rx) = flights.get(full) {
            return Role::Waiter(rx.clone());
        }
        let (tx, rx) = watch::channel(Flight::Pending);
        flights.insert(full.to_owned(), rx);
        Role::Leader(FlightGuard {
            flights: &self.inner.flights,
            key: full,
            tx,
        })
    }

    async fn get_or_compute_inner<T, E, F, Fut>(
        &self,
        key: &str,
        ttl: Option<Duration>,
        compute: F,
    ) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let full = self.full_key(key);
        if let Some(v) = self.lookup(&full).await {
            return Ok(v);
        }
        let guard = match self.join(&full) {
            Role::Leader(guard) => Some(guard),
            Role::Waiter(mut rx) => {
                // Err: the leader went away without a value (its closure
                // failed, or it was cancelled): compute for ourselves.
                let done = rx
                    .wait_for(|f| matches!(f, Flight::Done(_)))
                    .await
                    .ok()
                    .and_then(|f| match &*f {
                        Flight::Done(bytes) => Some(bytes.clone()),
                        Flight::Pending => None,
                    });
                if let Some(v) = done.and_then(|b| serde_json::from_slice(&b).ok()) {
                    self.count(&self.inner.counters.coalesced);
                    return Ok(v);
                }
                None
            }
        };
        if guard.is_some() {
            // A flight that ended between our lookup and our joining has
            // stored its value: look again before computing.
            if let Some(v) = self.lookup(&full).await {
                return Ok(v);
            }
        }
        let value = compute().await?;
        match serde_json::to_vec(&value) {
            Ok(bytes) => {
                let bytes = Bytes::from(bytes);
                // Store before publishing, so that a caller arriving after
                // the flight ends finds the value in the cache.
                if let Err(e) = self.store(&full, bytes.clone(), ttl).await {
                    tracing::warn!(key = %full, backend = self.inner.backend.name(), error = %e,
                        "cache store failed: value served uncached");
                }
                if let Some(guard) = &guard {
                    guard.tx.send_replace(Flight::Done(bytes));
                }
            }
            Err(e) => {
                self.count(&self.inner.counters.errors);
                tracing::warn!(key = %full, error = %e, "value does not encode: not cached");
            }
        }
        drop(guard);
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(Cache::connect("memory://").is_ok());
        assert!(Cache::connect("memory://?max_entries=5").is_ok());
        assert!(Cache::connect("memory://?max_bytes=5000").is_ok());
        for bad in [
            "memory://?max_entries=x",
            "memory://?colour=5",
            "ftp://x",
            "nothing",
        ] {
            assert!(
                matches!(Cache::connect(bad), Err(CacheError::InvalidUrl { .. })),
                "{bad}"
            );
        }
    }
}
