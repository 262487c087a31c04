//! The Redis rate-limit store (`TEST_REDIS_URL`): one limit shared by two
//! stores on two connections, exact under concurrency, keys expiring, and
//! the layer's fail mode when Redis is unreachable.

use ferrapi::middleware::{FailMode, Quota, RateLimitKey, RateLimitLayer, RateLimitStore};
use ferrapi::prelude::*;
use ferrapi::testing::TestClient;
use ferrapi_storage::cache::RedisConnection;
use ferrapi_storage::rate_limit::RedisRateLimitStore;
use std::time::{Duration, Instant};

fn redis_url() -> Option<String> {
    let url = std::env::var("TEST_REDIS_URL").ok();
    if url.is_none() {
        println!("skipped: TEST_REDIS_URL not set");
    }
    url
}

/// A key no other run or test uses.
fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("test-ratelimit:{name}:{}:{nanos}", std::process::id())
}

fn quota(s: &str) -> Quota {
    s.parse().unwrap()
}

fn store(url: &str) -> RedisRateLimitStore {
    RedisRateLimitStore::new(RedisConnection::open(url).unwrap())
}

#[tokio::test]
async fn two_stores_share_one_limit() {
    let Some(url) = redis_url() else { return };
    let (a, b) = (store(&url), store(&url));
    let key = unique("shared");
    let q = quota("5/10s");
    let mut seen = Vec::new();
    for i in 0..8 {
        let store = if i % 2 == 0 { &a } else { &b };
        let d = store.check(&key, q).await.unwrap();
        seen.push((d.allowed, d.remaining));
        if d.allowed {
            assert!(d.retry_after.is_none());
            assert!(d.reset_after <= Duration::from_secs(10), "{d:?}");
        } else {
            // One request costs 2 s of the 10: the next is allowed within 2 s.
            let retry = d.retry_after.unwrap();
            assert!(
                retry > Duration::from_millis(1500) && retry <= Duration::from_secs(2),
                "{retry:?}"
            );
            assert!(d.reset_after > Duration::from_secs(9), "{d:?}");
        }
    }
    assert_eq!(
        seen,
        [
            (true, 4),
            (true, 3),
            (true, 2),
            (true, 1),
            (true, 0),
            (false, 0),
            (false, 0),
            (false, 0)
        ]
    );
    // Another key has its own quota.
    assert!(a.check(&unique("other"), q).await.unwrap().allowed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exact_under_concurrency_across_instances() {
    let Some(url) = redis_url() else { return };
    let (a, b) = (store(&url), store(&url));
    let key = unique("concurrent");
    let q = quota("20/1m");
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            let key = key.clone();
            tokio::spawn(async move { store.check(&key, q).await.unwrap().allowed })
        })
        .collect();
    let mut allowed = 0;
    for t in tasks {
        if t.await.unwrap() {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 20);
}

#[tokio::test]
async fn quota_returns_after_the_window_and_keys_expire() {
    let Some(url) = redis_url() else { return };
    let ns = unique("ns");
    let s = store(&url).namespace(ns.clone());
    let key = "ip:192.0.2.1";
    let q = quota("2/1s");
    assert!(s.check(key, q).await.unwrap().allowed);
    assert!(s.check(key, q).await.unwrap().allowed);
    assert!(!s.check(key, q).await.unwrap().allowed);

    // The key carries an expiry no longer than the window.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let full = format!("{ns}:{key}");
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&full)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((1..=1000).contains(&pttl), "PTTL {pttl}");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let exists: i64 = redis::cmd("EXISTS")
        .arg(&full)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(exists, 0, "the key outlived its quota");
    let d = s.check(key, q).await.unwrap();
    assert!(d.allowed);
    assert_eq!(d.remaining, 1);
}

#[get("/hello")]
async fn hello() -> &'static str {
    "hello"
}

/// A port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn app_with_unreachable_redis(mode: FailMode) -> App {
    let conn = RedisConnection::open(&format!("redis://127.0.0.1:{}", closed_port())).unwrap();
    App::new().route(hello).layer(
        RateLimitLayer::new(quota("1/1h"))
            .key(RateLimitKey::global())
            .store(RedisRateLimitStore::new(conn))
            .on_store_error(mode),
    )
}

#[tokio::test]
async fn unreachable_redis_fail_open_lets_requests_through() {
    let client = TestClient::new(app_with_unreachable_redis(FailMode::Open));
    let started = Instant::now();
    for _ in 0..5 {
        let res = client.get("/hello").send().await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.text(), "hello");
        assert_eq!(res.header("ratelimit-limit"), None);
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn unreachable_redis_fail_closed_answers_503() {
    let client = TestClient::new(app_with_unreachable_redis(FailMode::Closed));
    for _ in 0..3 {
        let res = client.get("/hello").send().await;
        assert_eq!(res.status(), 503);
        assert_eq!(
            res.json::<serde_json::Value>(),
            serde_json::json!({"detail": "Service Unavailable"})
        );
    }
}

/// The same layer over the shared Redis: 429 after the quota, for every
/// instance.
#[tokio::test]
async fn two_app_instances_share_the_limit() {
    let Some(url) = redis_url() else { return };
    let ns = unique("apps");
    let app = || {
        App::new().route(hello).layer(
            RateLimitLayer::new(quota("3/1h"))
                .key(RateLimitKey::global())
                .store(store(&url).namespace(ns.clone())),
        )
    };
    let (one, two) = (TestClient::new(app()), TestClient::new(app()));
    let statuses = [
        one.get("/hello").send().await.status(),
        two.get("/hello").send().await.status(),
        one.get("/hello").send().await.status(),
        two.get("/hello").send().await.status(),
        one.get("/hello").send().await.status(),
    ];
    assert_eq!(statuses.map(|s| s.as_u16()), [200, 200, 200, 429, 429]);
    let res = two.get("/hello").send().await;
    assert_eq!(res.header("ratelimit-remaining"), Some("0"));
    assert!(res.header("retry-after").is_some());
}

/// Concurrent requests spread over two app instances: exactly the quota
/// passes; one emission interval later, exactly one more.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_app_instances_exact_under_concurrency_then_refill() {
    let Some(url) = redis_url() else { return };
    let ns = unique("apps-concurrent");
    let app = || {
        App::new().route(hello).layer(
            // One request every 2 s after the burst of 10.
            RateLimitLayer::new(quota("10/20s"))
                .key(RateLimitKey::global())
                .store(store(&url).namespace(ns.clone())),
        )
    };
    let one = std::sync::Arc::new(TestClient::new(app()));
    let two = std::sync::Arc::new(TestClient::new(app()));
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let client = if i % 2 == 0 { one.clone() } else { two.clone() };
            tokio::spawn(async move { client.get("/hello").send().await.status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        30,
        "{statuses:?}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(one.get("/hello").send().await.status(), 200);
    assert_eq!(two.get("/hello").send().await.status(), 429);
}
