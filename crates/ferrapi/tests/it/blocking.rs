//! Blocking work on a bounded pool: CPU-heavy handlers do not stall async
//! requests on a one-worker runtime, saturation queues, panics are errors.

use ferrapi::prelude::*;
use ferrapi::testing::{TestClient, TestServer};
use ferrapi::{BlockingError, BlockingPool};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The CPU time each heavy request burns.
const WORK: Duration = Duration::from_millis(500);
/// The bound stated for async requests while blocking work runs: far below
/// `WORK`, above what scheduling noise on a loaded two-core machine adds.
const BOUND: Duration = Duration::from_millis(150);

/// Spins the CPU for `d` (wall clock) and returns something computed.
fn burn(d: Duration) -> u64 {
    let start = Instant::now();
    let mut x = 1u64;
    while start.elapsed() < d {
        for i in 0..10_000u64 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i);
        }
    }
    x
}

#[get("/cpu")]
async fn cpu() -> Result<Text, ferrapi::Error> {
    let x = ferrapi::blocking(|| burn(WORK)).await?;
    Ok(Text(x.to_string()))
}

/// The same work done on the async worker: what the pool is for.
#[get("/cpu-inline")]
async fn cpu_inline() -> Text {
    Text(burn(WORK).to_string())
}

#[get("/ping")]
async fn ping() -> &'static str {
    "pong"
}

#[get("/panics")]
async fn panics() -> Result<Text, ferrapi::Error> {
    let v: u64 = ferrapi::blocking(|| {
        if WORK > Duration::ZERO {
            panic!("legacy library failed");
        }
        1
    })
    .await?;
    Ok(Text(v.to_string()))
}

/// One `GET` on a fresh connection, from a plain thread; returns the
/// status line and the time until the whole response was read.
fn get(addr: SocketAddr, path: &str) -> (String, Duration) {
    let start = Instant::now();
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    conn.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.lines().next().unwrap_or_default().to_owned();
    (status, start.elapsed())
}

/// Measured from threads of their own, so that the client is not slowed by
/// the server's one worker: the longest `/ping` while four `/cpu` requests
/// run on the pool, and one `/ping` while `/cpu-inline` holds the worker.
fn measure(addr: SocketAddr) -> (Duration, Duration) {
    assert!(get(addr, "/ping").0.contains("200"));
    let heavy: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(move || get(addr, "/cpu")))
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    let mut worst = Duration::ZERO;
    for _ in 0..15 {
        let (status, took) = get(addr, "/ping");
        assert!(status.contains("200"), "{status}");
        worst = worst.max(took);
        std::thread::sleep(Duration::from_millis(20));
    }
    for h in heavy {
        let (status, took) = h.join().unwrap();
        assert!(status.contains("200"), "{status}");
        assert!(took >= WORK, "the work was not done: {took:?}");
    }
    let inline = std::thread::spawn(move || get(addr, "/cpu-inline"));
    std::thread::sleep(Duration::from_millis(100));
    let (status, blocked) = get(addr, "/ping");
    assert!(status.contains("200"), "{status}");
    assert!(inline.join().unwrap().0.contains("200"));
    (worst, blocked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn cpu_heavy_blocking_handlers_do_not_stall_async_requests_on_one_worker() {
    let app = App::new().route(cpu).route(cpu_inline).route(ping);
    let server = TestServer::start(app).await;
    let addr = server.addr();
    let (worst, blocked) = tokio::task::spawn_blocking(move || measure(addr))
        .await
        .unwrap();
    println!("worst /ping latency with the pool: {worst:?}; with the work inline: {blocked:?}");
    assert!(
        worst < BOUND,
        "an async request took {worst:?} while blocking work ran (bound {BOUND:?})"
    );
    // The control: the same work on the worker does stall it, so the bound
    // above measures something.
    assert!(
        blocked > BOUND,
        "inline work should have delayed /ping: {blocked:?}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn saturation_queues_instead_of_spawning_more_threads() {
    let pool = BlockingPool::new(2);
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let jobs: Vec<_> = (0..6)
        .map(|i| {
            let pool = pool.clone();
            let running = running.clone();
            let most = most.clone();
            tokio::spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(100));
                    running.fetch_sub(1, Ordering::SeqCst);
                    i
                })
                .await
            })
        })
        .collect();
    let mut results = Vec::new();
    for job in jobs {
        results.push(job.await.unwrap().unwrap());
    }
    assert_eq!(results, [0, 1, 2, 3, 4, 5]);
    assert_eq!(most.load(Ordering::SeqCst), 2, "more than 2 ran at once");
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "6 jobs of 100 ms on 2 slots take 3 rounds"
    );
    assert_eq!(pool.available(), 2);
}

#[tokio::test]
async fn a_panicking_closure_is_an_error_and_frees_its_slot() {
    let pool = BlockingPool::new(1);
    let err = pool.run(|| -> u8 { panic!("boom") }).await.unwrap_err();
    assert!(
        matches!(&err, BlockingError::Panicked(m) if m == "boom"),
        "{err:?}"
    );
    assert_eq!(pool.available(), 1);
    assert_eq!(pool.run(|| 5).await.unwrap(), 5);
    // Through `?` in a handler: a 500, the server keeps serving.
    let client = TestClient::new(App::new().route(panics).route(ping));
    let res = client.get("/panics").send().await;
    assert_eq!(res.status(), 500);
    assert_eq!(client.get("/ping").send().await.text(), "pong");
}

#[test]
fn app_blocking_threads_sizes_the_global_pool() {
    let _app = App::new().blocking_threads(3);
    assert_eq!(BlockingPool::global().size(), 3);
}
