//! The cache suite, run on the in-memory backend and on Redis
//! (`TEST_REDIS_URL`).

use ferrapi_storage::cache::{Cache, CacheError, MemoryCache};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A namespace no other run or test uses.
fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("test-cache:{name}:{}:{nanos}", std::process::id())
}

#[cfg(feature = "redis")]
fn redis_url() -> Option<String> {
    let url = std::env::var("TEST_REDIS_URL").ok();
    if url.is_none() {
        println!("skipped: TEST_REDIS_URL not set");
    }
    url
}

#[cfg(feature = "redis")]
fn redis_cache(url: &str, name: &str) -> Cache {
    Cache::connect(url)
        .expect("redis url")
        .namespace(unique(name))
}

// ---------------------------------------------------------------- the suite

async fn ttl_expiry(cache: Cache) {
    cache
        .set_ttl("short", &"soon gone", Duration::from_millis(300))
        .await
        .unwrap();
    cache
        .set_ttl("long", &"still here", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        cache.get::<String>("short").await.unwrap().as_deref(),
        Some("soon gone")
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(cache.get::<String>("short").await.unwrap(), None);
    assert_eq!(
        cache.get::<String>("long").await.unwrap().as_deref(),
        Some("still here")
    );
    // The default TTL applies to `set` and `get_or_compute`.
    let cache = cache.default_ttl(Duration::from_millis(300));
    cache.set("default", &1).await.unwrap();
    let v: i32 = cache
        .get_or_compute("computed", || async { Ok::<_, CacheError>(2) })
        .await
        .unwrap();
    assert_eq!(v, 2);
    assert_eq!(cache.get::<i32>("default").await.unwrap(), Some(1));
    assert_eq!(cache.get::<i32>("computed").await.unwrap(), Some(2));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(cache.get::<i32>("default").await.unwrap(), None);
    assert_eq!(cache.get::<i32>("computed").await.unwrap(), None);
    // A zero TTL stores nothing.
    cache.set_ttl("zero", &1, Duration::ZERO).await.unwrap();
    assert_eq!(cache.get::<i32>("zero").await.unwrap(), None);
}

async fn single_flight(cache: Cache) {
    let computations = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let cache = cache.clone();
            let computations = computations.clone();
            tokio::spawn(async move {
                cache
                    .get_or_compute("user:7", || async move {
                        computations.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        Ok::<_, std::io::Error>(vec!["Ada".to_owned(), "Lovelace".to_owned()])
                    })
                    .await
            })
        })
        .collect();
    for task in tasks {
        let value = task.await.unwrap().unwrap();
        assert_eq!(value, ["Ada", "Lovelace"]);
    }
    assert_eq!(
        computations.load(Ordering::SeqCst),
        1,
        "computed more than once"
    );
    let stats = cache.stats();
    assert_eq!(stats.hits + stats.coalesced, 99, "{stats:?}");
    // The value was stored for later callers.
    let cached: Option<Vec<String>> = cache.get("user:7").await.unwrap();
    assert_eq!(cached.map(|v| v.len()), Some(2));
}

async fn failed_leader_lets_waiters_compute(cache: Cache) {
    let computations = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let cache = cache.clone();
            let computations = computations.clone();
            tokio::spawn(async move {
                cache
                    .get_or_compute("flaky", || async move {
                        let n = computations.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        if n == 0 { Err("database down") } else { Ok(n) }
                    })
                    .await
            })
        })
        .collect();
    let mut errors = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(n) => assert!(n >= 1),
            Err(e) => {
                assert_eq!(e, "database down");
                errors += 1;
            }
        }
    }
    // Only the failed computation's caller saw its error.
    assert_eq!(errors, 1);
    assert!(computations.load(Ordering::SeqCst) >= 2);
}

async fn cancelled_leader_lets_waiters_compute(cache: Cache) {
    let leader = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_compute("slow", || async {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    Ok::<_, CacheError>(0)
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let waiter = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_compute("slow", || async { Ok::<_, CacheError>(42) })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    leader.abort();
    let v = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("the waiter hangs after its leader was cancelled")
        .unwrap()
        .unwrap();
    assert_eq!(v, 42);
}

async fn delete_invalidates(cache: Cache) {
    let computations = AtomicUsize::new(0);
    let compute = || async {
        let n = computations.fetch_add(1, Ordering::SeqCst);
        Ok::<_, CacheError>(format!("version {n}"))
    };
    assert_eq!(
        cache.get_or_compute("k", compute).await.unwrap(),
        "version 0"
    );
    assert_eq!(
        cache.get_or_compute("k", compute).await.unwrap(),
        "version 0"
    );
    assert!(cache.delete("k").await.unwrap());
    assert!(!cache.delete("k").await.unwrap());
    assert_eq!(cache.get::<String>("k").await.unwrap(), None);
    assert_eq!(
        cache.get_or_compute("k", compute).await.unwrap(),
        "version 1"
    );
    assert_eq!(computations.load(Ordering::SeqCst), 2);
    // Overwrite.
    cache.set("k", &"written").await.unwrap();
    assert_eq!(
        cache.get::<String>("k").await.unwrap().as_deref(),
        Some("written")
    );
}

async fn undecodable_value_is_a_miss(cache: Cache) {
    cache.set("typed", &"not a number").await.unwrap();
    assert!(matches!(
        cache.get::<i64>("typed").await,
        Err(CacheError::Decode { .. })
    ));
    let before = cache.stats().errors;
    let v: i64 = cache
        .get_or_compute("typed", || async { Ok::<_, CacheError>(5) })
        .await
        .unwrap();
    assert_eq!(v, 5);
    assert!(cache.stats().errors > before);
    // The computed value replaced the stale one.
    assert_eq!(cache.get::<i64>("typed").await.unwrap(), Some(5));
}

async fn namespaces_are_separate(cache: Cache) {
    let other = cache.clone().namespace("other");
    cache.set("shared-name", &1).await.unwrap();
    assert_eq!(other.get::<i32>("shared-name").await.unwrap(), None);
    assert!(cache.health().await.is_ok());
}

// ---------------------------------------------------------------- memory

fn memory() -> Cache {
    Cache::memory().namespace(unique("memory"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_ttl_expiry() {
    ttl_expiry(memory()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_single_flight() {
    single_flight(memory()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_failed_leader() {
    failed_leader_lets_waiters_compute(memory()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_cancelled_leader() {
    cancelled_leader_lets_waiters_compute(memory()).await;
}

#[tokio::test]
async fn memory_delete_invalidates() {
    delete_invalidates(memory()).await;
}

#[tokio::test]
async fn memory_undecodable_value_is_a_miss() {
    undecodable_value_is_a_miss(memory()).await;
}

#[tokio::test]
async fn memory_namespaces() {
    namespaces_are_separate(memory()).await;
}

#[tokio::test]
async fn memory_eviction_bound_by_entries() {
    let backend = MemoryCache::with_max_entries(100);
    let cache = Cache::new(backend.clone());
    for i in 0..1000 {
        cache.set(&format!("k{i}"), &i).await.unwrap();
    }
    backend.run_pending_tasks().await;
    assert!(
        backend.entry_count() <= 100,
        "{} entries",
        backend.entry_count()
    );
    let mut present = 0;
    for i in 0..1000 {
        if cache.get::<i32>(&format!("k{i}")).await.unwrap().is_some() {
            present += 1;
        }
    }
    assert!((1..=100).contains(&present), "{present} present");
}

#[tokio::test]
async fn memory_eviction_bound_by_bytes() {
    let backend = MemoryCache::with_max_bytes(20_000);
    let cache = Cache::new(backend.clone());
    let value = "x".repeat(1000);
    for i in 0..200 {
        cache.set(&format!("k{i}"), &value).await.unwrap();
    }
    backend.run_pending_tasks().await;
    assert!(
        backend.weighted_size() <= 20_000,
        "{} bytes",
        backend.weighted_size()
    );
    assert!(
        backend.entry_count() <= 20,
        "{} entries",
        backend.entry_count()
    );
}

// ---------------------------------------------------------------- redis

#[cfg(feature = "redis")]
mod redis {
    use super::*;
    use std::time::Instant;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn redis_ttl_expiry() {
        let Some(url) = redis_url() else { return };
        ttl_expiry(redis_cache(&url, "ttl")).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn redis_single_flight() {
        let Some(url) = redis_url() else { return };
        single_flight(redis_cache(&url, "single-flight")).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn redis_failed_leader() {
        let Some(url) = redis_url() else { return };
        failed_leader_lets_waiters_compute(redis_cache(&url, "failed-leader")).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn redis_cancelled_leader() {
        let Some(url) = redis_url() else { return };
        cancelled_leader_lets_waiters_compute(redis_cache(&url, "cancelled")).await;
    }

    #[tokio::test]
    async fn redis_delete_invalidates() {
        let Some(url) = redis_url() else { return };
        delete_invalidates(redis_cache(&url, "delete")).await;
    }

    #[tokio::test]
    async fn redis_undecodable_value_is_a_miss() {
        let Some(url) = redis_url() else { return };
        undecodable_value_is_a_miss(redis_cache(&url, "decode")).await;
    }

    #[tokio::test]
    async fn redis_namespaces() {
        let Some(url) = redis_url() else { return };
        namespaces_are_separate(redis_cache(&url, "namespaces")).await;
    }

    /// Two instances (two connections) share entries: a delete on one
    /// invalidates the other's reads.
    #[tokio::test]
    async fn redis_instances_share_entries() {
        let Some(url) = redis_url() else { return };
        let ns = unique("shared");
        let a = Cache::connect(&url).unwrap().namespace(&ns);
        let b = Cache::connect(&url).unwrap().namespace(&ns);
        a.set("user:1", &"Ada").await.unwrap();
        assert_eq!(
            b.get::<String>("user:1").await.unwrap().as_deref(),
            Some("Ada")
        );
        assert!(b.delete("user:1").await.unwrap());
        assert_eq!(a.get::<String>("user:1").await.unwrap(), None);
    }

    /// A port on 127.0.0.1 that nothing listens on.
    fn closed_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unreachable_redis_serves_from_the_source() {
        // No TEST_REDIS_URL needed: nothing is reached.
        let url = format!("redis://127.0.0.1:{}", closed_port());
        let cache = Cache::connect(&url).unwrap();
        assert!(matches!(
            cache.health().await,
            Err(CacheError::Unavailable(_))
        ));
        let computations = AtomicUsize::new(0);
        let started = Instant::now();
        for i in 0..20 {
            let v: i32 = cache
                .get_or_compute("user:1", || async {
                    computations.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, CacheError>(i)
                })
                .await
                .unwrap();
            assert_eq!(v, i, "served from the source");
        }
        assert_eq!(computations.load(Ordering::SeqCst), 20);
        // Fails fast while down: no request waits on a timeout.
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(cache.stats().errors >= 20);
        // The plain operations report the failure.
        assert!(matches!(
            cache.set("k", &1).await,
            Err(CacheError::Unavailable(_))
        ));
        assert!(matches!(
            cache.get::<i32>("k").await,
            Err(CacheError::Unavailable(_))
        ));
    }

    #[test]
    fn bad_redis_url_is_a_startup_error() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let err = Cache::connect("redis://u:secret@[::1").unwrap_err();
            assert!(matches!(err, CacheError::InvalidUrl { .. }), "{err}");
            assert!(!err.to_string().contains("secret"), "{err}");
        });
        // Outside a runtime: a clear error, not a panic.
        assert!(matches!(
            Cache::connect("redis://127.0.0.1"),
            Err(CacheError::InvalidUrl { .. })
        ));
    }

    /// A private `redis-server` on a free port, stopped and restarted
    /// mid-test: the cache serves from the source while it is down and
    /// uses the cache again once it is back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_restart_resumes_cache_use() {
        if redis_url().is_none() {
            return;
        }
        let port = closed_port();
        let Some(mut server) = PrivateRedis::start(port) else {
            println!("skipped: no redis-server binary");
            return;
        };
        let cache = Cache::connect(&format!("redis://127.0.0.1:{port}"))
            .unwrap()
            .namespace(unique("restart"));
        let computations = AtomicUsize::new(0);
        let read = || {
            cache.get_or_compute("user:1", || async {
                computations.fetch_add(1, Ordering::SeqCst);
                Ok::<_, CacheError>("Ada".to_owned())
            })
        };
        assert_eq!(read().await.unwrap(), "Ada");
        assert_eq!(read().await.unwrap(), "Ada");
        assert_eq!(computations.load(Ordering::SeqCst), 1);

        server.stop();
        for _ in 0..5 {
            assert_eq!(read().await.unwrap(), "Ada");
        }
        assert!(
            computations.load(Ordering::SeqCst) >= 5,
            "served from the source"
        );
        assert!(cache.health().await.is_err());

        let _server = PrivateRedis::start(port).expect("restart");
        // Back within a few retry windows.
        let deadline = Instant::now() + Duration::from_secs(10);
        while cache.health().await.is_err() {
            assert!(Instant::now() < deadline, "cache did not come back");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let before = computations.load(Ordering::SeqCst);
        assert_eq!(read().await.unwrap(), "Ada"); // the empty restarted server: a miss
        assert_eq!(read().await.unwrap(), "Ada"); // then a hit
        assert_eq!(computations.load(Ordering::SeqCst), before + 1);
    }

    struct PrivateRedis(Option<std::process::Child>);

    impl PrivateRedis {
        fn start(port: u16) -> Option<Self> {
            let child = std::process::Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(std::process::Stdio::null())
                .spawn()
                .ok()?;
            let deadline = Instant::now() + Duration::from_secs(5);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                if Instant::now() > deadline {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Some(Self(Some(child)))
        }

        fn stop(&mut self) {
            if let Some(mut child) = self.0.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    impl Drop for PrivateRedis {
        fn drop(&mut self) {
            self.stop();
        }
    }
}
