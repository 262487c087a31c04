//! The in-memory cache backend (moka).

use super::{CacheBackend, CacheError};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use moka::Expiry;
use std::fmt;
use std::time::{Duration, Instant};

#[derive(Clone)]
struct Entry {
    value: Bytes,
    ttl: Option<Duration>,
}

/// Each entry expires after its own TTL, counted from its last write.
struct PerEntryTtl;

impl Expiry<String, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _key: &String, value: &Entry, _at: Instant) -> Option<Duration> {
        value.ttl
    }

    fn expire_after_update(
        &self,
        _key: &String,
        value: &Entry,
        _at: Instant,
        _remaining: Option<Duration>,
    ) -> Option<Duration> {
        value.ttl
    }
}

/// The in-process [`CacheBackend`]: a concurrent map bounded by a number of
/// entries or a number of bytes (keys and values counted), with per-entry
/// TTL and TinyLFU eviction (frequently used entries survive a scan of
/// one-off keys). It is moka's `future::Cache`; entries are JSON bytes, so
/// a bound in bytes is a bound on memory.
///
/// Eviction and expiry run as housekeeping shortly after writes; an
/// expired entry is never returned, even before it is swept.
///
/// ```
/// use ferrapi_storage::cache::{Cache, MemoryCache};
///
/// let by_count = Cache::new(MemoryCache::with_max_entries(50_000));
/// let by_size = Cache::new(MemoryCache::with_max_bytes(64 * 1024 * 1024));
/// ```
#[derive(Clone)]
pub struct MemoryCache {
    inner: moka::future::Cache<String, Entry>,
}

impl fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryCache")
            .field("entries", &self.inner.entry_count())
            .field("weighted_size", &self.inner.weighted_size())
            .finish()
    }
}

impl MemoryCache {
    /// At most `max` entries.
    pub fn with_max_entries(max: u64) -> Self {
        Self {
            inner: moka::future::Cache::builder()
                .max_capacity(max)
                .expire_after(PerEntryTtl)
                .build(),
        }
    }

    /// At most `max` bytes of keys and values (an entry larger than the
    /// whole bound is not kept).
    pub fn with_max_bytes(max: u64) -> Self {
        Self {
            inner: moka::future::Cache::builder()
                .max_capacity(max)
                .weigher(|k: &String, v: &Entry| {
                    u32::try_from(k.len() + v.value.len()).unwrap_or(u32::MAX)
                })
                .expire_after(PerEntryTtl)
                .build(),
        }
    }

    /// Entries held (approximate until [`run_pending_tasks`](Self::run_pending_tasks)).
    pub fn entry_count(&self) -> u64 {
        self.inner.entry_count()
    }

    /// Bytes held when bounded by bytes, else entries (approximate until
    /// [`run_pending_tasks`](Self::run_pending_tasks)).
    pub fn weighted_size(&self) -> u64 {
        self.inner.weighted_size()
    }

    /// Runs the pending eviction and expiry work now (it otherwise runs
    /// shortly after writes).
    pub async fn run_pending_tasks(&self) {
        self.inner.run_pending_tasks().await;
    }
}

impl CacheBackend for MemoryCache {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, CacheError>> {
        Box::pin(async move { Ok(self.inner.get(key).await.map(|e| e.value)) })
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), CacheError>> {
        Box::pin(async move {
            self.inner
                .insert(key.to_owned(), Entry { value, ttl })
                .await;
            Ok(())
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, CacheError>> {
        Box::pin(async move { Ok(self.inner.remove(key).await.is_some()) })
    }

    fn health(&self) -> BoxFuture<'_, Result<(), CacheError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}
