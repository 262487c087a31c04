//! The durable task queue, run identically on SQLite (always), PostgreSQL
//! (`TEST_POSTGRES_URL`), MariaDB/MySQL (`TEST_MYSQL_URL`) and NATS
//! JetStream (`TEST_NATS_URL`): no loss across workers, a killed worker's
//! task runs again after the visibility timeout, dead letters and re-drive,
//! delayed tasks, graceful stop.

use ferrapi_storage::db::{Db, DbPool};
use ferrapi_storage::queue::{Enqueue, Queue, QueueConfig, Task, TaskInfo};
use serde::{Deserialize, Serialize};
use sqlx::Row;
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
    Nats(async_nats::Client),
}

/// Removes what a test left: the queue's rows, or its streams.
async fn cleanup(queue: &Queue, place: &Place) {
    match place {
        Place::Sql(pool) => {
            pool.execute(
                pool.query("DELETE FROM ferrapi_tasks WHERE queue = ?")
                    .bind(queue.name().to_owned()),
            )
            .await
            .unwrap();
        }
        #[cfg(feature = "nats")]
        Place::Nats(client) => {
            let js = async_nats::jetstream::new(client.clone());
            for stream in ["FERRAPI_Q", "FERRAPI_DEAD"] {
                js.delete_stream(format!("{stream}_{}", queue.name()))
                    .await
                    .unwrap();
            }
        }
    }
}

/// The backends available: (`sql` or `nats`, URL).
fn backends() -> Vec<(&'static str, String)> {
    let dir = std::env::temp_dir().join(unique("ferrapi-queue"));
    let mut out = vec![("sql", format!("sqlite://{}/queue.db", dir.display()))];
    for var in ["TEST_POSTGRES_URL", "TEST_MYSQL_URL", "TEST_NATS_URL"] {
        match std::env::var(var) {
            Ok(url) if !url.is_empty() && var == "TEST_NATS_URL" => {
                if cfg!(feature = "nats") {
                    out.push(("nats", url));
                } else {
                    println!("skipped: NATS (feature `nats` off)");
                }
            }
            Ok(url) if !url.is_empty() => out.push(("sql", url)),
            _ => println!("skipped: {var} not set"),
        }
    }
    out
}

/// Opens the queue `name` on a backend.
async fn open(kind: &str, url: &str, name: &str, config: QueueConfig) -> (String, Queue, Place) {
    if kind == "sql" {
        let pool = DbPool::connect_url(url).await.unwrap();
        let queue = Queue::sql(&pool, name, config)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        return (pool.backend().to_string(), queue, Place::Sql(pool));
    }
    #[cfg(feature = "nats")]
    {
        let client = async_nats::connect(url).await.unwrap();
        let queue = Queue::nats(client.clone(), name, config).await.unwrap();
        ("nats".into(), queue, Place::Nats(client))
    }
    #[cfg(not(feature = "nats"))]
    unreachable!("backends() lists NATS only with the feature")
}

/// A fresh queue on every backend available.
async fn queues(config: QueueConfig) -> Vec<(String, Queue, Place)> {
    let mut out = Vec::new();
    for (kind, url) in backends() {
        out.push(open(kind, &url, &unique("q"), config.clone()).await);
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
            Place::Nats(_) => {
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
        cleanup(&queue, &place).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_task_runs_again_after_the_visibility_timeout() {
    let visibility = Duration::from_secs(1);
    for (label, queue, place) in queues(fast().visibility_timeout(visibility)).await {
        let started = Arc::new(AtomicU32::new(0));
        // Worker A hangs in the task until it is killed.
        let a = {
            let started = started.clone();
            queue
                .worker()
                .handle(move |_: Item, _: TaskInfo| {
                    let started = started.clone();
                    async move {
                        started.fetch_add(1, Ordering::SeqCst);
                        std::future::pending::<()>().await;
                        Ok::<_, String>(())
                    }
                })
                .start()
        };
        queue.enqueue(&Item { n: 1 }).await.unwrap();
        wait_until(Duration::from_secs(10), "A to start the task", async || {
            started.load(Ordering::SeqCst) == 1
        })
        .await;
        // Worker B runs it, when it gets it.
        let rerun: Arc<Mutex<Vec<(u32, Instant)>>> = Arc::default();
        let b = {
            let rerun = rerun.clone();
            queue
                .worker()
                .handle(move |_: Item, info: TaskInfo| {
                    let rerun = rerun.clone();
                    async move {
                        rerun.lock().unwrap().push((info.attempt, Instant::now()));
                        Ok::<_, String>(())
                    }
                })
                .start()
        };
        // While A lives it renews its lease: B does not get the task, even
        // well past the visibility timeout.
        tokio::time::sleep(visibility * 2).await;
        assert!(
            rerun.lock().unwrap().is_empty(),
            "{label}: taken from a live worker"
        );
        assert_eq!(started.load(Ordering::SeqCst), 1, "{label}");
        // A dies mid-task, acknowledging nothing.
        a.abort();
        let killed = Instant::now();
        wait_until(Duration::from_secs(15), "the second attempt", async || {
            !rerun.lock().unwrap().is_empty()
        })
        .await;
        let (attempt, at) = rerun.lock().unwrap()[0];
        assert_eq!(attempt, 2, "{label}");
        // Not before the lease A last renewed (every third of the timeout)
        // ran out.
        let waited = at - killed;
        assert!(
            waited >= visibility / 3,
            "{label}: rerun {waited:?} after the kill"
        );
        wait_until(Duration::from_secs(10), "completion", async || {
            let s = queue.stats().await.unwrap();
            s.pending == 0 && s.running == 0
        })
        .await;
        b.stop().await;
        assert_eq!(rerun.lock().unwrap().len(), 1, "{label}");
        cleanup(&queue, &place).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_always_failing_task_is_dead_lettered_then_redriven() {
    for (label, queue, place) in queues(fast().max_attempts(3)).await {
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
        cleanup(&queue, &place).await;
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
        cleanup(&queue, &place).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_lets_running_tasks_finish() {
    for (label, queue, place) in queues(fast()).await {
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
        cleanup(&queue, &place).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_in_a_transaction_is_atomic_with_it() {
    for (label, queue, place) in queues(fast()).await {
        let Place::Sql(pool) = &place else {
            let db_less = DbPool::connect_url("sqlite::memory:").await.unwrap();
            let db = Db::begin(&db_less).await.unwrap();
            assert!(
                queue
                    .enqueue_in(&db, &Item { n: 1 }, Enqueue::new())
                    .await
                    .is_err()
            );
            cleanup(&queue, &place).await;
            continue;
        };
        let db = Db::begin(pool).await.unwrap();
        queue
            .enqueue_in(&db, &Item { n: 1 }, Enqueue::new())
            .await
            .unwrap();
        db.rollback().await.unwrap();
        let db = Db::begin(pool).await.unwrap();
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
        cleanup(&queue, &place).await;
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
    for (label, queue, place) in queues(fast().max_attempts(2)).await {
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
        cleanup(&queue, &place).await;
    }
}

/// The child process's part: work on the queue the parent names, and hang
/// in the handler until killed (bounded: exits after a minute).
async fn sigkill_child(spec: &str) {
    let mut parts = spec.splitn(4, '|');
    let (kind, name, marker, url) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap().to_owned(),
        parts.next().unwrap(),
    );
    let config = fast().visibility_timeout(Duration::from_secs(1));
    let (_, queue, _) = open(kind, url, name, config).await;
    let _worker = queue
        .worker()
        .handle(move |_: Item, _: TaskInfo| {
            let marker = marker.clone();
            async move {
                std::fs::write(&marker, b"started").unwrap();
                std::future::pending::<()>().await;
                Ok::<_, String>(())
            }
        })
        .start();
    tokio::time::sleep(Duration::from_secs(60)).await;
    std::process::exit(1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_worker_processs_task_runs_again() {
    // Started again as the child process, by the code below.
    if let Ok(spec) = std::env::var("FERRAPI_QUEUE_SIGKILL_CHILD") {
        return sigkill_child(&spec).await;
    }
    let visibility = Duration::from_secs(1);
    for (kind, url) in backends() {
        let name = unique("kill");
        let (label, queue, place) =
            open(kind, &url, &name, fast().visibility_timeout(visibility)).await;
        queue.enqueue(&Item { n: 5 }).await.unwrap();
        let marker = std::env::temp_dir().join(unique("ferrapi-queue-marker"));
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "queue::a_sigkilled_worker_processs_task_runs_again",
                "--test-threads=1",
            ])
            .env(
                "FERRAPI_QUEUE_SIGKILL_CHILD",
                format!("{kind}|{name}|{}|{url}", marker.display()),
            )
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        wait_until(
            Duration::from_secs(30),
            "the child to start the task",
            async || marker.exists(),
        )
        .await;
        // SIGKILL mid-task: no acknowledgement, no cleanup.
        child.kill().unwrap();
        child.wait().unwrap();
        let killed = Instant::now();
        let rerun: Arc<Mutex<Option<(u32, Instant)>>> = Arc::default();
        let worker = {
            let rerun = rerun.clone();
            queue
                .worker()
                .handle(move |_: Item, info: TaskInfo| {
                    let rerun = rerun.clone();
                    async move {
                        *rerun.lock().unwrap() = Some((info.attempt, Instant::now()));
                        Ok::<_, String>(())
                    }
                })
                .start()
        };
        wait_until(Duration::from_secs(15), "the rerun", async || {
            rerun.lock().unwrap().is_some()
        })
        .await;
        worker.stop().await;
        let (attempt, at) = rerun.lock().unwrap().unwrap();
        assert_eq!(attempt, 2, "{label}");
        // Not before the killed worker's lease ran out: it renewed it every
        // third of the visibility timeout while alive, so the lease outlived
        // the kill by about two thirds of it (a third, with scheduling slack).
        let waited = at - killed;
        assert!(
            waited >= visibility / 3,
            "{label}: rerun {waited:?} after the kill"
        );
        let _ = std::fs::remove_file(&marker);
        cleanup(&queue, &place).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_in_wakes_idle_workers_after_the_commit() {
    // Workers that would otherwise look for work only every 30 s.
    let config = fast().poll_interval(Duration::from_secs(30));
    for (label, queue, place) in queues(config).await {
        let Place::Sql(pool) = &place else {
            cleanup(&queue, &place).await;
            continue;
        };
        let ran = Arc::new(AtomicU32::new(0));
        let worker = {
            let ran = ran.clone();
            queue
                .worker()
                .handle(move |_: Item, _: TaskInfo| {
                    let ran = ran.clone();
                    async move {
                        ran.fetch_add(1, Ordering::SeqCst);
                        Ok::<_, String>(())
                    }
                })
                .start()
        };
        // Let it find the queue empty and go idle.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let db = Db::begin(pool).await.unwrap();
        queue
            .enqueue_in(&db, &Item { n: 1 }, Enqueue::new())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            ran.load(Ordering::SeqCst),
            0,
            "{label}: ran before the commit"
        );
        let committed = Instant::now();
        db.commit().await.unwrap();
        wait_until(Duration::from_secs(5), "the task", async || {
            ran.load(Ordering::SeqCst) == 1
        })
        .await;
        assert!(committed.elapsed() < Duration::from_secs(5), "{label}");
        worker.stop().await;
        cleanup(&queue, &place).await;
    }
}

#[cfg(feature = "metrics")]
#[tokio::test]
async fn queue_and_pool_gauges() {
    let metrics = ferrapi::metrics::Metrics::new();
    let (_, queue, place) = open(
        "sql",
        &backends()[0].1,
        &unique("gauges"),
        fast().max_attempts(1),
    )
    .await;
    queue.enqueue(&Item { n: 1 }).await.unwrap();
    queue
        .enqueue_with(
            &Item { n: 2 },
            Enqueue::new().delay(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    queue.record_metrics(&metrics).await.unwrap();
    let Place::Sql(pool) = &place else {
        unreachable!()
    };
    pool.record_metrics(&metrics);
    let text = metrics.render();
    let name = queue.name();
    for line in [
        format!("task_queue_tasks{{queue=\"{name}\",state=\"pending\"}} 2"),
        format!("task_queue_tasks{{queue=\"{name}\",state=\"scheduled\"}} 1"),
        format!("task_queue_tasks{{queue=\"{name}\",state=\"dead\"}} 0"),
        "db_pool_max_connections{backend=\"sqlite\"} 8".to_owned(),
    ] {
        assert!(text.contains(&line), "no `{line}` in:\n{text}");
    }
    pool.health().await.unwrap();
    queue.health().await.unwrap();
    cleanup(&queue, &place).await;
}

#[tokio::test]
async fn completed_tasks_are_purged_after_their_retention() {
    for (label, queue, place) in queues(fast()).await {
        if queue.backend_name() != "sql" {
            cleanup(&queue, &place).await;
            continue;
        }
        let worker = queue
            .worker()
            .handle(|_: Item, _: TaskInfo| async { Ok::<_, String>(()) })
            .start();
        queue
            .enqueue_with(&Item { n: 1 }, Enqueue::new().key("once"))
            .await
            .unwrap();
        wait_until(Duration::from_secs(10), "the task", async || {
            let s = queue.stats().await.unwrap();
            s.pending == 0 && s.running == 0
        })
        .await;
        worker.stop().await;
        // Kept while within the retention: the key is still known.
        assert_eq!(
            queue
                .purge_completed(Duration::from_secs(3600))
                .await
                .unwrap(),
            0
        );
        let again = queue
            .enqueue_with(&Item { n: 1 }, Enqueue::new().key("once"))
            .await
            .unwrap();
        assert!(again.duplicate, "{label}");
        // The duplicate was not queued: only the completed one is purged.
        assert_eq!(
            queue.purge_completed(Duration::ZERO).await.unwrap(),
            1,
            "{label}"
        );
        let fresh = queue
            .enqueue_with(&Item { n: 1 }, Enqueue::new().key("once"))
            .await
            .unwrap();
        assert!(!fresh.duplicate, "{label}");
        // A worker told to purge does it when it starts.
        let Place::Sql(pool) = &place else {
            unreachable!()
        };
        let done = async || -> i64 {
            let row = pool
                .fetch_one(
                    pool.query(
                        "SELECT COUNT(*) AS n FROM ferrapi_tasks WHERE queue = ? AND state = 2",
                    )
                    .bind(queue.name().to_owned()),
                )
                .await
                .unwrap();
            row.get("n")
        };
        let worker = queue
            .worker()
            .handle(|_: Item, _: TaskInfo| async { Ok::<_, String>(()) })
            .start();
        wait_until(Duration::from_secs(10), "the task", async || {
            done().await == 1
        })
        .await;
        worker.stop().await;
        let worker = queue.worker().purge_completed(Duration::ZERO).start();
        wait_until(Duration::from_secs(10), "the purge", async || {
            done().await == 0
        })
        .await;
        worker.stop().await;
        cleanup(&queue, &place).await;
    }
}
