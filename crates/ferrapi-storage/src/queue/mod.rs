//! The durable task queue: typed tasks enqueued from handlers, run by
//! workers in this process or another, at least once, with retries,
//! exponential backoff, a dead-letter store and delayed tasks — what
//! FastAPI users reach for Celery for.
//!
//! | piece | what it is |
//! |---|---|
//! | [`Task`] | a serde type with a `KIND` name: the task's arguments |
//! | [`Queue`] | a handle to a named queue: [`enqueue`](Queue::enqueue), [`enqueue_in`](Queue::enqueue_in) a request's transaction, [`stats`](Queue::stats), [`dead_letters`](Queue::dead_letters), [`redrive`](Queue::redrive) |
//! | [`Worker`] | runs tasks: a handler per kind, concurrency N, graceful [`stop`](WorkerHandle::stop) |
//! | [`QueueConfig`] | visibility timeout, max attempts, backoff, poll interval |
//!
//! ```no_run
//! use ferrapi_storage::db::DbPool;
//! use ferrapi_storage::queue::{Enqueue, Queue, QueueConfig, Task, TaskInfo};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Welcome { user_id: i64 }
//! impl Task for Welcome { const KIND: &'static str = "welcome"; }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = DbPool::connect_url("sqlite://data/app.db").await?;
//! let queue = Queue::sql(&pool, "default", QueueConfig::default()).await?;
//! let worker = queue
//!     .worker()
//!     .concurrency(4)
//!     .handle(|task: Welcome, info: TaskInfo| async move {
//!         println!("welcome {} (attempt {})", task.user_id, info.attempt);
//!         Ok::<_, std::io::Error>(())
//!     })
//!     .start();
//! queue.enqueue_with(&Welcome { user_id: 7 }, Enqueue::new().key("welcome-7")).await?;
//! // … on SIGTERM: stop taking work, let running tasks finish.
//! worker.stop().await;
//! # Ok(()) }
//! ```
//!
//! ## Guarantees
//!
//! - **At least once.** A task is removed from the queue only after its
//!   handler returned `Ok`. A worker claims a task with a *lease* (the
//!   visibility timeout) and renews it while the handler runs; a worker that
//!   dies — process killed, future dropped — stops renewing, and once the
//!   lease runs out another worker (here or in another process) takes the
//!   task again. A handler can therefore run more than once for one task:
//!   make it idempotent, for example keyed by [`TaskInfo::key`].
//! - **Durable from enqueue.** On the SQL backend [`Queue::enqueue_in`]
//!   writes the task in the request's transaction: it exists if and only if
//!   the request's writes were committed (the transactional outbox), and it
//!   survives a SIGKILL between the response and its run.
//! - **Retries** with exponential backoff and jitter
//!   (`base × 2^(attempt-1)`, capped, then a uniformly random 50–100 % of
//!   that), up to `max_attempts`; then the task goes to the **dead-letter
//!   store**, listed by [`Queue::dead_letters`] and put back by
//!   [`Queue::redrive`] (attempts reset). A task whose lease expired
//!   `max_attempts` times (a handler that kills its worker) is dead-lettered
//!   too, instead of killing workers forever.
//! - **Idempotency keys**: enqueueing a key already present in the queue
//!   (waiting, running, done or dead) is a no-op answered
//!   [`Enqueued::duplicate`]. On NATS, keys deduplicate within the stream's
//!   duplicate window (2 minutes by default), JetStream's `Nats-Msg-Id`.
//! - **Delayed tasks** run no earlier than their time.
//! - **Graceful stop**: [`WorkerHandle::stop`] stops claiming, lets running
//!   handlers finish within a grace period, then abandons the rest (their
//!   leases expire and they run again elsewhere).
//!
//! ## Backends
//!
//! - **SQL** ([`Queue::sql`]), through [`crate::db`]: one table
//!   (`ferrapi_tasks`, created by the queue's own migrations, recorded in
//!   `_ferrapi_queue_migrations`), shared by every queue name. SQLite for one
//!   machine: claims take SQLite's write lock (`BEGIN IMMEDIATE`), so
//!   workers never claim the same task. PostgreSQL and MySQL/MariaDB for
//!   many workers: claims use `SELECT … FOR UPDATE SKIP LOCKED`, so workers
//!   skip each other's rows instead of waiting. Workers poll (every
//!   `poll_interval` when idle) and are woken at once by an enqueue through
//!   the same `Queue` in this process. Completed tasks stay (state `done`,
//!   for idempotency keys) until [`Queue::purge_completed`].
//! - **NATS JetStream** (`Queue::nats`, feature `nats`): a work-queue
//!   stream per queue and a durable pull consumer shared by all workers;
//!   the lease is the consumer's `ack_wait`, renewed with `in-progress`
//!   acks; a delay is a `nak` with that delay; a retry republishes the task
//!   with its attempt count and acknowledges the old message; dead letters
//!   are a second stream.
//!
//! Times are the workers' wall clocks (epoch milliseconds): keep instances'
//! clocks in sync (NTP), as with any lease.
//!
//! ## Coming from FastAPI / Celery
//!
//! FastAPI's `BackgroundTasks` run in the process after the response and
//! are lost if it dies; this queue is the durable kind. Celery's
//! `@app.task` is a [`Task`] type plus a handler given to
//! [`Worker::handle`]; `delay()`/`apply_async(countdown=…)` are
//! [`Queue::enqueue`]/[`Enqueue::delay`]; `acks_late=True` and
//! `visibility_timeout` are the default behaviour here; `autoretry_for` with
//! `retry_backoff` is [`QueueConfig`]; a separate `celery worker` process is
//! the service's `worker` subcommand running only a [`Worker`].

mod sql;
mod worker;

#[cfg(feature = "nats")]
mod nats;

pub use worker::{TaskInfo, Worker, WorkerHandle};

use crate::db::{Db, DbError, DbPool};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;

/// A task's arguments: serialized as JSON into the queue, deserialized by
/// the worker's handler for `KIND`.
///
/// ```
/// use ferrapi_storage::queue::Task;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct SendEmail { to: String, template: String }
///
/// impl Task for SendEmail {
///     const KIND: &'static str = "send-email";
/// }
/// ```
pub trait Task: Serialize + DeserializeOwned + Send + 'static {
    /// The name the task is stored and routed under: keep it stable across
    /// releases (tasks may wait in the queue during a deploy).
    const KIND: &'static str;
}

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The SQL backend's database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The task could not be serialized.
    #[error("cannot serialize the task: {0}")]
    Serialize(#[from] serde_json::Error),
    /// NATS failed.
    #[error("NATS: {0}")]
    Nats(String),
    /// The operation needs a backend that this queue is not on.
    #[error("{0} is not supported by the {1} queue backend")]
    Unsupported(&'static str, &'static str),
    /// The backend failed in a way that has no more precise type.
    #[error("task queue: {0}")]
    Backend(String),
    /// A task kind or idempotency key cannot be used.
    #[error("{0}")]
    Invalid(&'static str),
    /// The queue's name cannot be used.
    #[error("invalid queue name `{0}`: use 1 to 64 ASCII letters, digits, `-` or `_`")]
    Name(String),
}

impl From<sqlx::Error> for QueueError {
    fn from(e: sqlx::Error) -> Self {
        QueueError::Db(DbError::from(e))
    }
}

/// How a queue's tasks are retried and leased.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// How long a claimed task stays invisible to other workers without
    /// its lease being renewed (renewed every third of it while the handler
    /// runs). Default 30 s.
    pub visibility_timeout: Duration,
    /// Attempts before a task is dead-lettered (default 5; per task with
    /// [`Enqueue::max_attempts`]).
    pub max_attempts: u32,
    /// The first retry's delay (default 1 s), doubled at each attempt.
    pub backoff_base: Duration,
    /// The longest retry delay (default 5 min).
    pub backoff_max: Duration,
    /// How often an idle worker looks for work (default 250 ms).
    pub poll_interval: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            visibility_timeout: Duration::from_secs(30),
            max_attempts: 5,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            poll_interval: Duration::from_millis(250),
        }
    }
}

impl QueueConfig {
    /// Sets [`QueueConfig::visibility_timeout`].
    pub fn visibility_timeout(mut self, d: Duration) -> Self {
        self.visibility_timeout = d;
        self
    }
    /// Sets [`QueueConfig::max_attempts`] (at least 1).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }
    /// Sets [`QueueConfig::backoff_base`] and [`QueueConfig::backoff_max`].
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_max = max.max(base);
        self
    }
    /// Sets [`QueueConfig::poll_interval`].
    pub fn poll_interval(mut self, d: Duration) -> Self {
        self.poll_interval = d;
        self
    }

    /// The delay before the retry that follows failed attempt `attempt`
    /// (1-based): exponential, capped, with jitter (50–100 %).
    pub fn retry_delay(&self, attempt: u32) -> Duration {
        let exp = self
            .backoff_base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let capped = exp.min(self.backoff_max);
        capped.mul_f64(0.5 + 0.5 * random_unit())
    }
}

/// Options of one enqueue.
///
/// ```
/// use ferrapi_storage::queue::Enqueue;
/// use std::time::Duration;
/// let options = Enqueue::new().key("welcome-42").delay(Duration::from_secs(60)).max_attempts(10);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Enqueue {
    key: Option<String>,
    run_at: Option<SystemTime>,
    max_attempts: Option<u32>,
}

impl Enqueue {
    /// No key, no delay, the queue's max attempts.
    pub fn new() -> Self {
        Self::default()
    }
    /// An idempotency key: a second enqueue with the same key is a no-op.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
    /// Runs no earlier than `delay` from now.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.run_at = Some(SystemTime::now() + delay);
        self
    }
    /// Runs no earlier than `at`.
    pub fn at(mut self, at: SystemTime) -> Self {
        self.run_at = Some(at);
        self
    }
    /// Attempts before dead-lettering, for this task.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n.max(1));
        self
    }
}

/// The result of an enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    /// The task's id in its backend.
    pub id: String,
    /// True when the idempotency key was already there: nothing was added,
    /// `id` is the existing task's.
    pub duplicate: bool,
}

/// A queue's numbers, for metrics and dashboards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// Tasks waiting to run (due now, delayed, or waiting for a retry).
    pub pending: u64,
    /// Of `pending`, those not due yet (delayed or backing off); `None`
    /// when the backend cannot tell (NATS).
    pub scheduled: Option<u64>,
    /// Of `pending`, those that failed at least once and wait for a retry;
    /// `None` when the backend cannot tell (NATS).
    pub retrying: Option<u64>,
    /// Tasks claimed by a worker right now.
    pub running: u64,
    /// Tasks in the dead-letter store.
    pub dead: u64,
}

/// A task in the dead-letter store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadTask {
    /// Its id (give it to [`Queue::redrive`]).
    pub id: String,
    /// Its kind.
    pub kind: String,
    /// Its arguments, as JSON.
    pub payload: String,
    /// Its idempotency key.
    pub key: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// The last failure.
    pub error: String,
    /// When it was dead-lettered (epoch milliseconds).
    pub died_at_ms: i64,
}

/// A task to store.
pub(crate) struct NewTask {
    pub kind: &'static str,
    pub payload: String,
    pub key: Option<String>,
    pub run_at_ms: i64,
    pub max_attempts: u32,
}

/// A claimed task, as a worker holds it.
pub(crate) struct Job {
    pub id: String,
    pub kind: String,
    pub payload: String,
    pub key: Option<String>,
    /// This attempt's number, 1-based.
    pub attempt: u32,
    pub max_attempts: u32,
    pub receipt: Receipt,
}

/// What the backend needs to acknowledge a claimed task.
pub(crate) enum Receipt {
    Sql {
        lease: i64,
    },
    #[cfg(feature = "nats")]
    Nats(Box<async_nats::jetstream::Message>),
}

enum Backend {
    Sql(sql::SqlQueue),
    #[cfg(feature = "nats")]
    Nats(Box<nats::NatsQueue>),
}

struct Inner {
    name: String,
    config: QueueConfig,
    backend: Backend,
    /// Wakes this process's idle workers after an enqueue.
    wake: Notify,
}

/// A handle to one named queue. Cheap to clone; register it with
/// `App::state` and enqueue from handlers.
#[derive(Clone)]
pub struct Queue {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.inner.name)
            .field("backend", &self.backend_name())
            .finish()
    }
}

fn check_name(name: &str) -> Result<(), QueueError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(QueueError::Name(name.to_owned()))
    }
}

impl Queue {
    /// The queue `name` in the database of `pool` (its table is created by
    /// the queue's own migrations, safe to run from every instance).
    pub async fn sql(pool: &DbPool, name: &str, config: QueueConfig) -> Result<Queue, QueueError> {
        check_name(name)?;
        let backend = sql::SqlQueue::open(pool, name).await?;
        Ok(Self::with(name, config, Backend::Sql(backend)))
    }

    /// The queue `name` on NATS JetStream (streams and consumer created if
    /// missing).
    #[cfg(feature = "nats")]
    pub async fn nats(
        client: async_nats::Client,
        name: &str,
        config: QueueConfig,
    ) -> Result<Queue, QueueError> {
        check_name(name)?;
        let backend = nats::NatsQueue::open(client, name, &config).await?;
        Ok(Self::with(name, config, Backend::Nats(Box::new(backend))))
    }

    fn with(name: &str, config: QueueConfig, backend: Backend) -> Queue {
        Queue {
            inner: Arc::new(Inner {
                name: name.to_owned(),
                config,
                backend,
                wake: Notify::new(),
            }),
        }
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// `sql` or `nats`.
    pub fn backend_name(&self) -> &'static str {
        match &self.inner.backend {
            Backend::Sql(_) => "sql",
            #[cfg(feature = "nats")]
            Backend::Nats(_) => "nats",
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &QueueConfig {
        &self.inner.config
    }

    fn new_task<T: Task>(&self, task: &T, options: Enqueue) -> Result<NewTask, QueueError> {
        if T::KIND.is_empty() || T::KIND.len() > 200 {
            return Err(QueueError::Invalid("a task kind must have 1 to 200 bytes"));
        }
        if options
            .key
            .as_ref()
            .is_some_and(|k| k.is_empty() || k.len() > 255)
        {
            return Err(QueueError::Invalid(
                "an idempotency key must have 1 to 255 bytes",
            ));
        }
        Ok(NewTask {
            kind: T::KIND,
            payload: serde_json::to_string(task)?,
            key: options.key,
            run_at_ms: options.run_at.map(epoch_ms).unwrap_or_else(now_ms),
            max_attempts: options
                .max_attempts
                .unwrap_or(self.inner.config.max_attempts),
        })
    }

    /// Enqueues `task` to run as soon as a worker is free.
    pub async fn enqueue<T: Task>(&self, task: &T) -> Result<Enqueued, QueueError> {
        self.enqueue_with(task, Enqueue::new()).await
    }

    /// Enqueues `task` with options (key, delay, max attempts).
    pub async fn enqueue_with<T: Task>(
        &self,
        task: &T,
        options: Enqueue,
    ) -> Result<Enqueued, QueueError> {
        let new = self.new_task(task, options)?;
        let done = match &self.inner.backend {
            Backend::Sql(q) => q.enqueue(None, new).await?,
            #[cfg(feature = "nats")]
            Backend::Nats(q) => q.enqueue(new).await?,
        };
        self.inner.wake.notify_waiters();
        Ok(done)
    }

    /// Enqueues `task` inside `db`'s transaction (SQL backend, same
    /// database): the task is stored if and only if the transaction
    /// commits, and this process's idle workers are woken after the commit
    /// (other processes' at their next poll).
    pub async fn enqueue_in<T: Task>(
        &self,
        db: &Db,
        task: &T,
        options: Enqueue,
    ) -> Result<Enqueued, QueueError> {
        let new = self.new_task(task, options)?;
        match &self.inner.backend {
            Backend::Sql(q) => {
                let done = q.enqueue(Some(db), new).await?;
                // Idle workers of this process start it right after the
                // commit, instead of at their next poll.
                let inner = self.inner.clone();
                db.after_commit(move || inner.wake.notify_waiters());
                Ok(done)
            }
            #[cfg(feature = "nats")]
            Backend::Nats(_) => Err(QueueError::Unsupported(
                "enqueueing in a database transaction",
                "nats",
            )),
        }
    }

    /// The queue's numbers.
    pub async fn stats(&self) -> Result<QueueStats, QueueError> {
        match &self.inner.backend {
            Backend::Sql(q) => q.stats().await,
            #[cfg(feature = "nats")]
            Backend::Nats(q) => q.stats().await,
        }
    }

    /// Up to `limit` dead-lettered tasks, oldest first.
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadTask>, QueueError> {
        match &self.inner.backend {
            Backend::Sql(q) => q.dead_letters(limit).await,
            #[cfg(feature = "nats")]
            Backend::Nats(q) => q.dead_letters(limit).await,
        }
    }

    /// Puts a dead-lettered task back in the queue with its attempts reset;
    /// false if no dead task has that id.
    pub async fn redrive(&self, id: &str) -> Result<bool, QueueError> {
        let done = match &self.inner.backend {
            Backend::Sql(q) => q.redrive(Some(id)).await? > 0,
            #[cfg(feature = "nats")]
            Backend::Nats(q) => q.redrive(Some(id)).await? > 0,
        };
        self.inner.wake.notify_waiters();
        Ok(done)
    }

    /// Puts every dead-lettered task back; returns how many.
    pub async fn redrive_all(&self) -> Result<u64, QueueError> {
        let n = match &self.inner.backend {
            Backend::Sql(q) => q.redrive(None).await?,
            #[cfg(feature = "nats")]
            Backend::Nats(q) => q.redrive(None).await?,
        };
        self.inner.wake.notify_waiters();
        Ok(n)
    }

    /// Deletes completed tasks finished more than `older_than` ago (SQL
    /// backend; NATS removes acknowledged tasks by itself). Their
    /// idempotency keys can then be used again.
    pub async fn purge_completed(&self, older_than: Duration) -> Result<u64, QueueError> {
        match &self.inner.backend {
            Backend::Sql(q) => q.purge_completed(older_than).await,
            #[cfg(feature = "nats")]
            Backend::Nats(_) => Ok(0),
        }
    }

    /// The readiness check: the backend answers.
    pub async fn ping(&self) -> Result<(), QueueError> {
        self.stats().await.map(|_| ())
    }

    /// [`Queue::ping`], under the name the other storage handles use.
    pub async fn health(&self) -> Result<(), QueueError> {
        self.ping().await
    }

    /// Sets the queue's gauges in `metrics` from [`Queue::stats`]:
    /// `task_queue_tasks{queue, state="pending"|"scheduled"|"retrying"|"running"|"dead"}`
    /// (the states the backend can tell).
    #[cfg(feature = "metrics")]
    pub async fn record_metrics(
        &self,
        metrics: &ferrapi_telemetry::metrics::Metrics,
    ) -> Result<(), QueueError> {
        let stats = self.stats().await?;
        let name = self.name();
        let set = |state: &str, n: u64| {
            metrics
                .gauge("task_queue_tasks", &[("queue", name), ("state", state)])
                .set(n as f64);
        };
        set("pending", stats.pending);
        set("running", stats.running);
        set("dead", stats.dead);
        if let Some(n) = stats.scheduled {
            set("scheduled", n);
        }
        if let Some(n) = stats.retrying {
            set("retrying", n);
        }
        Ok(())
    }

    /// A worker for this queue (add handlers, then start it).
    pub fn worker(&self) -> Worker {
        Worker::new(self.clone())
    }

    // ---- what workers call ----

    pub(crate) async fn claim(&self, max: usize) -> Result<Vec<Job>, QueueError> {
        let lease = self.inner.config.visibility_timeout;
        match &self.inner.backend {
            Backend::Sql(q) => q.claim(max, lease).await,
            #[cfg(feature = "nats")]
            Backend::Nats(q) => q.claim(max).await,
        }
    }

    pub(crate) async fn extend(&self, job: &Job) -> Result<bool, QueueError> {
        let lease = self.inner.config.visibility_timeout;
        match &self.inner.backend {
            Backend::Sql(q) => q.extend(job, lease).await,
            #[cfg(feature = "nats")]
            Backend::Nats(q) => q.extend(job).await,
        }
    }

    pub(crate) async fn complete(&self, job: Job) -> Result<(), QueueError> {
        match &self.inner.backend {
            Backend::Sql(q) => q.complete(&job).await,
            #[cfg(feature = "nats")]
            Backend::Nats(q) => q.complete(job).await,
        }
    }

    /// A failed attempt: retried after the backoff, or dead-lettered when
    /// it was the last.
    pub(crate) async fn fail(&self, job: Job, error: &str) -> Result<(), QueueError> {
        if job.attempt >= job.max_attempts {
            tracing::warn!(queue = %self.inner.name, id = %job.id, kind = %job.kind,
                attempts = job.attempt, error, "task dead-lettered");
            return self.bury(job, error).await;
        }
        let delay = self.inner.config.retry_delay(job.attempt);
        tracing::info!(queue = %self.inner.name, id = %job.id, kind = %job.kind,
            attempt = job.attempt, retry_in_ms = delay.as_millis() as u64, error, "task failed, will retry");
        let at = now_ms() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
        match &self.inner.backend {
            Backend::Sql(q) => q.retry(&job, at, error).await,
            #[cfg(feature = "nats")]
            Backend::Nats(q) => q.retry(job, at, error).await,
        }
    }

    pub(crate) async fn bury(&self, job: Job, error: &str) -> Result<(), QueueError> {
        match &self.inner.backend {
            Backend::Sql(q) => q.bury(&job, error).await,
            #[cfg(feature = "nats")]
            Backend::Nats(q) => q.bury(job, error).await,
        }
    }

    pub(crate) async fn idle(&self) {
        let wake = self.inner.wake.notified();
        let _ = tokio::time::timeout(self.inner.config.poll_interval, wake).await;
    }
}

pub(crate) fn epoch_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

pub(crate) fn now_ms() -> i64 {
    epoch_ms(SystemTime::now())
}

/// A random number in [0, 1) (std's randomly keyed hasher; no rand crate
/// for jitter and lease tokens).
pub(crate) fn random_unit() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let c = QueueConfig::default().backoff(Duration::from_millis(100), Duration::from_secs(1));
        for _ in 0..50 {
            let d1 = c.retry_delay(1);
            assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
            let d3 = c.retry_delay(3);
            assert!(d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400));
            let d30 = c.retry_delay(30);
            assert!(d30 >= Duration::from_millis(500) && d30 <= Duration::from_secs(1));
        }
        let samples: std::collections::HashSet<u128> =
            (0..20).map(|_| c.retry_delay(2).as_micros()).collect();
        assert!(samples.len() > 1, "no jitter");
    }

    #[test]
    fn names() {
        assert!(check_name("emails_v2-x").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
    }
}
