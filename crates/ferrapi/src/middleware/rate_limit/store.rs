//! Rate-limit state in memory: [`MemoryStore`] and the GCRA it runs.

use ferrapi_core::rate_limit::{Decision, Quota, RateLimitStore, RateLimitStoreError};
use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::Duration;

/// GCRA over integers, exactly. Time is in nanoseconds multiplied by the
/// quota's count, so that the emission interval (`window / count`) is the
/// whole number `window`: no rounding, whatever the quota.
///
/// `tat` is the stored theoretical arrival time (scaled), `now` the clock in
/// nanoseconds. Returns the decision and, when allowed, the new `tat`.
pub(crate) fn gcra(tat: Option<u128>, now: u64, quota: Quota) -> (Decision, Option<u128>) {
    let count = u128::from(quota.count());
    let window = quota.window().as_nanos().max(1);
    let now_s = u128::from(now) * count;
    let limit = window * count;
    let tat = tat.map_or(now_s, |t| t.max(now_s));
    let new_tat = tat + window;
    let diff = new_tat - now_s;
    let nanos = |scaled: u128| {
        Duration::from_nanos(u64::try_from(scaled.div_ceil(count)).unwrap_or(u64::MAX))
    };
    if diff > limit {
        let decision = Decision {
            allowed: false,
            remaining: 0,
            reset_after: nanos(tat - now_s),
            retry_after: Some(nanos(diff - limit)),
        };
        (decision, None)
    } else {
        let decision = Decision {
            allowed: true,
            remaining: u64::try_from((limit - diff) / window).unwrap_or(u64::MAX),
            reset_after: nanos(diff),
            retry_after: None,
        };
        (decision, Some(new_tat))
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Theoretical arrival time, scaled (see [`gcra`]).
    tat: u128,
    /// When the key is back to a full quota (nanoseconds): after that the
    /// entry carries no information and may go.
    expires: u64,
}

#[derive(Debug, Default)]
struct Shard {
    map: HashMap<Box<str>, Entry>,
    next_sweep: u64,
}

/// The in-memory [`RateLimitStore`]: keys spread over shards (each its own
/// lock), a bound on the number of keys, and keys dropped as soon as their
/// quota is full again.
///
/// Memory stays bounded under a flood of distinct keys (spoofed API keys,
/// many addresses): when a shard is full, keys whose quota is full again are
/// dropped first, then those closest to it (the least information lost),
/// a tenth of the shard at a time so that the cost is amortized. Each shard
/// also sweeps out expired keys every `sweep_interval` when touched.
///
/// ```
/// use ferrapi::middleware::{MemoryStore, Quota, RateLimitStore};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let store = MemoryStore::new().max_keys(10_000).shards(8);
/// let quota: Quota = "2/1s".parse().unwrap();
/// assert!(store.check("ip:192.0.2.1", quota).await.unwrap().allowed);
/// assert!(store.check("ip:192.0.2.1", quota).await.unwrap().allowed);
/// assert!(!store.check("ip:192.0.2.1", quota).await.unwrap().allowed);
/// assert!(store.check("ip:192.0.2.2", quota).await.unwrap().allowed);
/// # });
/// ```
#[derive(Debug)]
pub struct MemoryStore {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    epoch: tokio::time::Instant,
    max_keys: usize,
    sweep_interval: Duration,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// 16 shards, at most 100 000 keys, sweeps every 60 s.
    pub fn new() -> Self {
        Self::with_shards(16, 100_000, Duration::from_secs(60))
    }

    fn with_shards(shards: usize, max_keys: usize, sweep_interval: Duration) -> Self {
        let shards = shards.max(1).next_power_of_two();
        Self {
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: RandomState::new(),
            epoch: tokio::time::Instant::now(),
            max_keys: max_keys.max(1),
            sweep_interval,
        }
    }

    /// The number of shards (rounded up to a power of two).
    #[must_use]
    pub fn shards(self, shards: usize) -> Self {
        Self::with_shards(shards, self.max_keys, self.sweep_interval)
    }

    /// The most keys kept at once (spread evenly over the shards).
    #[must_use]
    pub fn max_keys(self, max_keys: usize) -> Self {
        Self::with_shards(self.shards.len(), max_keys, self.sweep_interval)
    }

    /// How often each shard drops the keys whose quota is full again.
    #[must_use]
    pub fn sweep_interval(self, interval: Duration) -> Self {
        Self::with_shards(self.shards.len(), self.max_keys, interval)
    }

    /// The number of keys held now (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).map.len())
            .sum()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn per_shard(&self) -> usize {
        self.max_keys.div_ceil(self.shards.len()).max(1)
    }

    /// The synchronous core of [`RateLimitStore::check`].
    pub fn check_now(&self, key: &str, quota: Quota) -> Decision {
        let now = self.now();
        let index = (self.hasher.hash_one(key) as usize) & (self.shards.len() - 1);
        let mut shard = self.shards[index].lock().unwrap_or_else(|p| p.into_inner());
        if now >= shard.next_sweep {
            shard.map.retain(|_, e| e.expires > now);
            shard.next_sweep = now
                .saturating_add(u64::try_from(self.sweep_interval.as_nanos()).unwrap_or(u64::MAX));
        }
        let stored = shard
            .map
            .get(key)
            .filter(|e| e.expires > now)
            .map(|e| e.tat);
        let (decision, new_tat) = gcra(stored, now, quota);
        if let Some(tat) = new_tat {
            let entry = Entry {
                tat,
                expires: now.saturating_add(
                    u64::try_from(decision.reset_after.as_nanos()).unwrap_or(u64::MAX),
                ),
            };
            if let Some(e) = shard.map.get_mut(key) {
                *e = entry;
            } else {
                let cap = self.per_shard();
                if shard.map.len() >= cap {
                    evict(&mut shard.map, now, cap);
                }
                shard.map.insert(key.into(), entry);
            }
        }
        decision
    }
}

/// Makes room in a full shard: expired keys go, then the keys closest to a
/// full quota, down to nine tenths of `cap`.
fn evict(map: &mut HashMap<Box<str>, Entry>, now: u64, cap: usize) {
    map.retain(|_, e| e.expires > now);
    let target = cap - cap.div_ceil(10);
    if map.len() <= target {
        return;
    }
    let excess = map.len() - target;
    let mut by_expiry: Vec<(u64, Box<str>)> =
        map.iter().map(|(k, e)| (e.expires, k.clone())).collect();
    by_expiry.select_nth_unstable_by_key(excess - 1, |(expires, _)| *expires);
    for (_, key) in by_expiry.into_iter().take(excess) {
        map.remove(&key);
    }
    tracing::warn!(
        kept = map.len(),
        dropped = excess,
        "rate-limit store full: dropped the keys closest to a full quota (raise max_keys?)"
    );
}

impl RateLimitStore for MemoryStore {
    fn check<'a>(
        &'a self,
        key: &'a str,
        quota: Quota,
    ) -> BoxFuture<'a, Result<Decision, RateLimitStoreError>> {
        let decision = self.check_now(key, quota);
        Box::pin(std::future::ready(Ok(decision)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn quota(s: &str) -> Quota {
        match s.parse() {
            Ok(q) => q,
            Err(e) => panic!("{e}"),
        }
    }

    /// Runs `n` requests at `now` through `gcra`, threading the state.
    fn run(tat: &mut Option<u128>, now: u64, q: Quota, n: usize) -> Vec<Decision> {
        (0..n)
            .map(|_| {
                let (d, t) = gcra(*tat, now, q);
                if t.is_some() {
                    *tat = t;
                }
                d
            })
            .collect()
    }

    #[test]
    fn burst_of_count_then_refused() {
        let q = quota("3/1s");
        let mut tat = None;
        let d = run(&mut tat, 10 * SEC, q, 4);
        assert_eq!(
            d.iter()
                .map(|d| (d.allowed, d.remaining))
                .collect::<Vec<_>>(),
            [(true, 2), (true, 1), (true, 0), (false, 0)]
        );
        // The next request is allowed one emission interval (1/3 s) later.
        let retry = d[3].retry_after.unwrap_or_default();
        assert_eq!(retry, Duration::from_nanos(SEC.div_ceil(3)));
        // After the third request the quota is full again in one window.
        assert_eq!(d[2].reset_after, Duration::from_secs(1));
        // A whole window later: the whole quota again.
        let d = run(&mut tat, 11 * SEC, q, 4);
        assert_eq!(d.iter().filter(|d| d.allowed).count(), 3);
    }

    #[test]
    fn refills_one_at_a_time() {
        let q = quota("10/5s");
        let mut tat = None;
        assert!(run(&mut tat, 0, q, 10).iter().all(|d| d.allowed));
        assert!(!run(&mut tat, 0, q, 1)[0].allowed);
        // One emission interval is 0.5 s.
        assert!(!run(&mut tat, SEC / 2 - 1, q, 1)[0].allowed);
        let d = run(&mut tat, SEC / 2, q, 2);
        assert!(d[0].allowed && !d[1].allowed);
    }

    #[test]
    fn exact_for_quotas_that_do_not_divide() {
        let q = Quota::new(7, Duration::from_nanos(10)).unwrap_or_else(|e| panic!("{e}"));
        let mut tat = None;
        let d = run(&mut tat, 1000, q, 8);
        assert_eq!(d.iter().filter(|d| d.allowed).count(), 7);
        let big = Quota::new(u32::MAX, Duration::from_secs(3600)).unwrap_or_else(|e| panic!("{e}"));
        let mut tat = None;
        assert!(
            run(&mut tat, u64::MAX / 2, big, 3)
                .iter()
                .all(|d| d.allowed)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn memory_store_resets_after_the_window() {
        let store = MemoryStore::new();
        let q = quota("2/1s");
        let allowed = |store: &MemoryStore| store.check_now("k", q).allowed;
        assert!(allowed(&store) && allowed(&store) && !allowed(&store));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(allowed(&store) && allowed(&store) && !allowed(&store));
    }

    #[tokio::test(start_paused = true)]
    async fn memory_stays_bounded() {
        let store = MemoryStore::new().shards(4).max_keys(400);
        let q = quota("5/1h");
        for i in 0..10_000 {
            store.check_now(&format!("ip:{i}"), q);
        }
        assert!(store.len() <= 400, "{} keys", store.len());
        // Expired keys are swept.
        let store = MemoryStore::new().sweep_interval(Duration::from_secs(1));
        for i in 0..100 {
            store.check_now(&format!("k{i}"), quota("5/1s"));
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        for i in 0..16 * 20 {
            store.check_now(&format!("other{i}"), quota("5/1s"));
        }
        assert!(store.len() <= 16 * 20, "{} keys", store.len());
    }
}
