//! The durable task queue, run identically on SQLite (always), PostgreSQL
//! (`TEST_POSTGRES_URL`), MariaDB/MySQL (`TEST_MYSQL_URL`) and NATS
//! JetStream (`TEST_NATS_URL`): no loss across workers, a killed worker's
//! task runs again after the visibility timeout, dead letters and re-drive,
//! delayed tasks, graceful stop.
#![allow(clippy::unwrap_used)]

use ferrapi_storage::db::{Db, DbPool};
use ferrapi_storage::queue::{Enqueue, Queue, QueueConfig, Task, TaskInfo};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

#[derive(Serialize, Deserialize)]
struct Item {
    n: u32,
}

impl Task for Item {
    const KIND: &'static str = "item";
}

fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos % 1_000_000_000
    )
}

/// Where a queue lives, so that tests can reach around it.
enum Place {
    Sql(DbPool),
    #[cfg(feature = "nats")]
    Nats,
}

/// A fresh queue on every backend available.
async fn queues(config: QueueConfig) -> Vec<(String, Queue, Place)> {
    let mut out = Vec::new();
    let dir = std::env::temp_dir().join(unique("ferrapi-queue"));
    let mut urls = vec![format!("sqlite://{}/queue.db", dir.display())];
    for var in ["TEST_POSTGRES_URL", "TEST_MYSQL_URL"] {
        match std::env::var(var) {
            Ok(url) if !url.is_empty() => urls.push(url),
            _ => println!("skipped: {var} not set"),
        }
    }
    for url in urls {
        let pool = DbPool::connect_url(&url).await.unwrap();
        let queue = Queue::sql(&pool, &unique("q"), config.clone())
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        out.push((pool.backend().to_string(), queue, Place::Sql(pool)));
    }
    #[cfg(feature = "nats")]
    match std::env::var("TEST_NATS_URL") {
        Ok(url) if !url.is_empty() => {
            let client = async_nats::connect(&url).await.unwrap();
            let queue = Queue::nats(client, &unique("q"), config.clone())
                .await
                .unwrap();
            out.push(("nats".into(), queue, Place::Nats));
        }
        _ => println!("skipped: TEST_NATS_URL not set"),
    }
    out
}

/// Polls `cond` every 20 ms for at most `limit`.
async fn wait_until(limit: Duration, what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !cond().await {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn fast() -> QueueConfig {
    QueueConfig::default()
        .poll_interval(Duration::from_millis(50))
        .backoff(Duration::from_millis(20), Duration::from_millis(100))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_tasks_across_four_workers_lose_nothing() {
    const N: u32 = 10_000;
    for (label, queue, place) in queues(fast()).await {
        let started = Instant::now();
        // Enqueue, with idempotency keys; on SQL in a few large
        // transactions (as a batch job would).
        match &place {
            Place::Sql(pool) => {
                for chunk in (0..N).collect::<Vec<_>>().chunks(2_000) {
                    let db = Db::begin(pool).await.unwrap();
                    for &n in chunk {
                        queue
                            .enqueue_in(&db, &Item { n }, Enqueue::new().key(format!("item-{n}")))
                            .await
                            .unwrap();
                    }
                    db.commit().await.unwrap();
                }
            }
            #[cfg(feature = "nats")]
            Place::Nats => {
                let mut pending = futures_util::stream::FuturesUnordered::new();
                for n in 0..N {
                    let queue = queue.clone();
                    pending.push(async move {
                        queue
                            .enqueue_with(&Item { n }, Enqueue::new().key(format!("item-{n}")))
                            .await
                    });
                    if pending.len() >= 256 {
                        use futures_util::StreamExt;
                        pending.next().await.unwrap().unwrap();
                    }
                }
                use futures_util::StreamExt;
                while let Some(r) = pending.next().await {
                    r.unwrap();
                }
            }
        }
        // A key already queued is not queued twice.
        let again = queue
            .enqueue_with(&Item { n: 7 }, Enqueue::new().key("item-7"))
            .await
            .unwrap();
        assert!(again.duplicate, "{label}");
        let enqueued = started.elapsed();

        let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let mut workers = Vec::new();
        for _ in 0..4 {
            let seen = seen.clone();
            workers.push(
                queue
                    .worker()
                    .concurrency(32)
                    .handle(move |item: Item, info: TaskInfo| {
                        let seen = seen.clone();
                        async move {
                            assert_eq!(
                                info.key.as_deref(),
                                Some(format!("item-{}", item.n).as_str())
                            );
                            *seen.lock().unwrap().entry(info.key.unwrap()).or_default() += 1;
                            Ok::<_, String>(())
                        }
                    })
                    .start(),
            );
        }
        wait_until(Duration::from_secs(120), "every task to run", async || {
            seen.lock().unwrap().len() == N as usize
        })
        .await;
        for w in workers {
            w.stop().await;
        }
        let seen = seen.lock().unwrap().clone();
        for n in 0..N {
            assert!(
                seen.contains_key(&format!("item-{n}")),
                "{label}: item-{n} lost"
            );
        }
        // Nothing crashed: at-least-once must not have needed a second run.
        let twice: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).collect();
        assert!(twice.is_empty(), "{label}: ran twice: {twice:?}");
        let stats = queue.stats().await.unwrap();
        assert_eq!(
            (stats.pending, stats.running, stats.dead),
            (0, 0, 0),
            "{label}: {stats:?}"
        );
        println!(
            "{label}: {N} tasks enqueued in {enqueued:?}, all run in {:?}",
            started.elapsed()
        );
        queue.purge_completed(Duration::ZERO).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_task_runs_again_after_the_visibility_timeout() {
    let visibility = Duration::from_secs(1);
    for (label, queue, _) in queues(fast().visibility_timeout(visibility)).await {
        let attempts: Arc<Mutex<Vec<(u32, Instant)>>> = Arc::default();
        let handler = {
            let attempts = attempts.clone();
            move |_: Item, info: TaskInfo| {
                let attempts = attempts.clone();
                async move {
                    attempts
                        .lock()
                        .unwrap()
                        .push((info.attempt, Instant::now()));
                    if info.attempt == 1 {
                        // Hangs: the worker dies before acknowledging.
                        std::future::pending::<()>().await;
                    }
                    Ok::<_, String>(())
                }
            }
        };
        let first = queue.worker().handle(handler.clone()).start();
        queue.enqueue(&Item { n: 1 }).await.unwrap();
        wait_until(Duration::from_secs(10), "the first attempt", async || {
            !attempts.lock().unwrap().is_empty()
        })
        .await;
        // The worker dies mid-task, acknowledging nothing.
        first.abort();
        let second = queue.worker().handle(handler).start();
        wait_until(Duration::from_secs(15), "the second attempt", async || {
            attempts.lock().unwrap().len() == 2
        })
        .await;
        let runs = attempts.lock().unwrap().clone();
        assert_eq!(runs[1].0, 2, "{label}");
        let gap = runs[1].1 - runs[0].1;
        assert!(
            gap >= visibility - Duration::from_millis(100),
            "{label}: rerun after {gap:?}"
        );
        wait_until(Duration::from_secs(10), "completion", async || {
            let s = queue.stats().await.unwrap();
            s.pending == 0 && s.running == 0
        })
        .await;
        second.stop().await;
        assert_eq!(attempts.lock().unwrap().len(), 2, "{label}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_always_failing_task_is_dead_lettered_then_redriven() {
    for (label, queue, _) in queues(fast().max_attempts(3)).await {
        let fixed = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(AtomicU32::new(0));
        let done = Arc::new(AtomicU32::new(0));
        let worker = {
            let (fixed, calls, done) = (fixed.clone(), calls.clone(), done.clone());
            queue
                .worker()
                .handle(move |item: Item, _info: TaskInfo| {
                    let (fixed, calls, done) = (fixed.clone(), calls.clone(), done.clone());
                    async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        if !fixed.load(Ordering::SeqCst) {
                            return Err(format!("item {} is broken", item.n));
                        }
                        done.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    }
                })
                .start()
        };
        queue
            .enqueue_with(&Item { n: 9 }, Enqueue::new().key("broken-9"))
            .await
            .unwrap();
        wait_until(Duration::from_secs(15), "the dead letter", async || {
            queue.stats().await.unwrap().dead == 1
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 3, "{label}: attempts");
        let dead = queue.dead_letters(10).await.unwrap();
        assert_eq!(dead.len(), 1, "{label}");
        assert_eq!(dead[0].kind, "item");
        assert_eq!(dead[0].attempts, 3, "{label}");
        assert!(
            dead[0].error.contains("item 9 is broken"),
            "{label}: {:?}",
            dead[0]
        );
        assert_eq!(dead[0].key.as_deref(), Some("broken-9"));
        // Nothing more happens to it.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 3, "{label}");

        fixed.store(true, Ordering::SeqCst);
        assert!(!queue.redrive("no-such-id").await.unwrap());
        assert!(queue.redrive(&dead[0].id).await.unwrap(), "{label}");
        wait_until(Duration::from_secs(10), "the re-driven run", async || {
            done.load(Ordering::SeqCst) == 1
        })
        .await;
        wait_until(Duration::from_secs(5), "empty stats", async || {
            let s = queue.stats().await.unwrap();
            s.dead == 0 && s.pending == 0 && s.running == 0
        })
        .await;
        assert!(queue.dead_letters(10).await.unwrap().is_empty(), "{label}");
        worker.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_tasks_run_no_earlier_than_scheduled() {
    for (label, queue, place) in queues(fast()).await {
        let ran: Arc<Mutex<HashMap<u32, SystemTime>>> = Arc::default();
        let worker = {
            let ran = ran.clone();
            queue
                .worker()
                .handle(move |item: Item, _: TaskInfo| {
                    let ran = ran.clone();
                    async move {
                        ran.lock().unwrap().insert(item.n, SystemTime::now());
                        Ok::<_, String>(())
                    }
                })
                .start()
        };
        let delay = Duration::from_millis(1500);
        let at = SystemTime::now() + delay;
        queue
            .enqueue_with(&Item { n: 1 }, Enqueue::new().at(at))
            .await
            .unwrap();
        let now = SystemTime::now();
        queue.enqueue(&Item { n: 2 }).await.unwrap();
        if matches!(place, Place::Sql(_)) {
            assert_eq!(queue.stats().await.unwrap().scheduled, Some(1), "{label}");
        }
        wait_until(Duration::from_secs(10), "both tasks", async || {
            ran.lock().unwrap().len() == 2
        })
        .await;
        let ran = ran.lock().unwrap().clone();
        assert!(ran[&1] >= at, "{label}: delayed task ran early");
        assert!(
            ran[&2].duration_since(now).unwrap() < Duration::from_secs(1),
            "{label}: the immediate task waited"
        );
        worker.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_lets_running_tasks_finish() {
    for (label, queue, _) in queues(fast()).await {
        let state = Arc::new(AtomicU32::new(0));
        let worker = {
            let state = state.clone();
            queue
                .worker()
                .handle(move |_: Item, _: TaskInfo| {
                    let state = state.clone();
                    async move {
                        state.store(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(400)).await;
                        state.store(2, Ordering::SeqCst);
                        Ok::<_, String>(())
                    }
                })
                .start()
        };
        queue.enqueue(&Item { n: 1 }).await.unwrap();
        wait_until(Duration::from_secs(10), "the task to start", async || {
            state.load(Ordering::SeqCst) == 1
        })
        .await;
        worker.stop().await;
        assert_eq!(
            state.load(Ordering::SeqCst),
            2,
            "{label}: stop did not wait"
        );
        let s = queue.stats().await.unwrap();
        assert_eq!((s.pending, s.running), (0, 0), "{label}: {s:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_in_a_transaction_is_atomic_with_it() {
    for (label, queue, place) in queues(fast()).await {
        let Place::Sql(pool) = place else {
            let db_less = DbPool::connect_url("sqlite::memory:").await.unwrap();
            let db = Db::begin(&db_less).await.unwrap();
            assert!(
                queue
                    .enqueue_in(&db, &Item { n: 1 }, Enqueue::new())
                    .await
                    .is_err()
            );
            continue;
        };
        let db = Db::begin(&pool).await.unwrap();
        queue
            .enqueue_in(&db, &Item { n: 1 }, Enqueue::new())
            .await
            .unwrap();
        db.rollback().await.unwrap();
        let db = Db::begin(&pool).await.unwrap();
        queue
            .enqueue_in(&db, &Item { n: 2 }, Enqueue::new())
            .await
            .unwrap();
        // Not visible to workers before the commit.
        assert_eq!(queue.stats().await.unwrap().pending, 0, "{label}");
        db.commit().await.unwrap();
        assert_eq!(queue.stats().await.unwrap().pending, 1, "{label}");
        let ran: Arc<Mutex<Vec<u32>>> = Arc::default();
        let worker = {
            let ran = ran.clone();
            queue
                .worker()
                .handle(move |item: Item, _: TaskInfo| {
                    let ran = ran.clone();
                    async move {
                        ran.lock().unwrap().push(item.n);
                        Ok::<_, String>(())
                    }
                })
                .start()
        };
        wait_until(Duration::from_secs(10), "the committed task", async || {
            !ran.lock().unwrap().is_empty()
        })
        .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        worker.stop().await;
        assert_eq!(*ran.lock().unwrap(), [2], "{label}");
    }
}

#[tokio::test]
async fn undecodable_payloads_and_unknown_kinds() {
    #[derive(Serialize, Deserialize)]
    struct Other {
        text: String,
    }
    impl Task for Other {
        const KIND: &'static str = "other";
    }
    // The same kind name with another shape: cannot ever decode.
    #[derive(Serialize, Deserialize)]
    struct ItemV2 {
        n: String,
    }
    impl Task for ItemV2 {
        const KIND: &'static str = "item";
    }
    for (label, queue, _) in queues(fast().max_attempts(2)).await {
        let worker = queue
            .worker()
            .handle(|_: Item, _: TaskInfo| async { Ok::<_, String>(()) })
            .start();
        queue.enqueue(&ItemV2 { n: "x".into() }).await.unwrap();
        queue.enqueue(&Other { text: "y".into() }).await.unwrap();
        wait_until(Duration::from_secs(10), "two dead letters", async || {
            queue.stats().await.unwrap().dead == 2
        })
        .await;
        let dead = queue.dead_letters(10).await.unwrap();
        let undecodable = dead.iter().find(|d| d.kind == "item").unwrap();
        assert_eq!(undecodable.attempts, 1, "{label}: dead-lettered at once");
        let unknown = dead.iter().find(|d| d.kind == "other").unwrap();
        assert!(unknown.error.contains("no handler"), "{label}: {unknown:?}");
        worker.stop().await;
    }
}
