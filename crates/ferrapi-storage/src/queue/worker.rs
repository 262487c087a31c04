//! Workers: claim tasks, run their handlers, acknowledge, retry or bury.

use super::{Job, Queue, Task};
use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// What a handler knows about the task it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInfo {
    /// The task's id in its backend.
    pub id: String,
    /// This attempt's number, from 1.
    pub attempt: u32,
    /// Attempts allowed before dead-lettering.
    pub max_attempts: u32,
    /// The idempotency key given at enqueue, if any.
    pub key: Option<String>,
}

type Handler =
    Arc<dyn Fn(String, TaskInfo) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// Runs a queue's tasks: one handler per task kind, at most `concurrency`
/// at a time. Build it with [`Queue::worker`], add handlers, then
/// [`start`](Worker::start) it.
pub struct Worker {
    queue: Queue,
    handlers: HashMap<&'static str, Handler>,
    concurrency: usize,
    grace: Duration,
    purge: Option<Duration>,
}

/// How often a worker asked to purge completed tasks does it.
const PURGE_EVERY: Duration = Duration::from_secs(60);

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("queue", &self.queue.name())
            .field("kinds", &self.handlers.keys().collect::<Vec<_>>())
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

impl Worker {
    pub(crate) fn new(queue: Queue) -> Self {
        Worker {
            queue,
            handlers: HashMap::new(),
            concurrency: 4,
            grace: Duration::from_secs(30),
            purge: None,
        }
    }

    /// Deletes completed tasks finished more than `older_than` ago, when it
    /// starts and then once a minute ([`Queue::purge_completed`]; SQL backend): keeps the task
    /// table small while idempotency keys stay known for `older_than`.
    pub fn purge_completed(mut self, older_than: Duration) -> Self {
        self.purge = Some(older_than);
        self
    }

    /// How many tasks run at once (default 4).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// How long [`WorkerHandle::stop`] waits for running tasks (default
    /// 30 s); tasks still running then are abandoned and run again after
    /// their lease expires.
    pub fn grace_period(mut self, d: Duration) -> Self {
        self.grace = d;
        self
    }

    /// Runs tasks of kind `T::KIND` with `handler`. An `Err` (or a panic)
    /// is a failed attempt, retried with backoff. A payload that does not
    /// deserialize as `T` can never succeed: it is dead-lettered at once.
    pub fn handle<T, F, Fut, E>(mut self, handler: F) -> Self
    where
        T: Task,
        F: Fn(T, TaskInfo) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Display,
    {
        let handler = Arc::new(handler);
        let erased: Handler = Arc::new(move |payload: String, info: TaskInfo| {
            let handler = handler.clone();
            Box::pin(async move {
                let task: T =
                    serde_json::from_str(&payload).map_err(|e| format!("{UNDECODABLE}{e}"))?;
                handler(task, info).await.map_err(|e| e.to_string())
            })
        });
        self.handlers.insert(T::KIND, erased);
        self
    }

    /// Starts the worker on the current tokio runtime.
    pub fn start(self) -> WorkerHandle {
        let (stop_tx, stop_rx) = watch::channel(false);
        let grace = self.grace;
        let task = tokio::spawn(self.run(stop_rx));
        WorkerHandle {
            stop: stop_tx,
            task,
            grace,
        }
    }

    async fn run(self, mut stop: watch::Receiver<bool>) {
        let permits = Arc::new(Semaphore::new(self.concurrency));
        let handlers = Arc::new(self.handlers);
        let mut running = JoinSet::new();
        let mut failures = 0u32;
        let mut purged: Option<tokio::time::Instant> = None;
        loop {
            if *stop.borrow() {
                break;
            }
            if let Some(older_than) = self.purge
                && purged.is_none_or(|at| at.elapsed() >= PURGE_EVERY)
            {
                purged = Some(tokio::time::Instant::now());
                match self.queue.purge_completed(older_than).await {
                    Ok(n) => {
                        tracing::debug!(queue = %self.queue.name(), n, "completed tasks purged")
                    }
                    Err(e) => {
                        tracing::warn!(queue = %self.queue.name(), error = %e, "cannot purge completed tasks")
                    }
                }
            }
            // Reap finished tasks (their results were handled inside).
            while running.try_join_next().is_some() {}
            let free = permits.available_permits();
            // Busy: wait until half the slots are free, so that a claim
            // (a transaction, a commit) fetches a batch rather than one task.
            if free == 0 || (free < self.concurrency / 2 && !running.is_empty()) {
                tokio::select! {
                    _ = running.join_next() => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            let jobs = match self.queue.claim(free).await {
                Ok(jobs) => {
                    failures = 0;
                    jobs
                }
                Err(e) => {
                    // The backend is down: back off, bounded, and retry.
                    failures = failures.saturating_add(1);
                    let wait = Duration::from_millis(100 * u64::from(failures.min(50)));
                    tracing::warn!(queue = %self.queue.name(), error = %e, "cannot claim tasks");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.changed() => {}
                    }
                    continue;
                }
            };
            if jobs.is_empty() {
                tokio::select! {
                    _ = self.queue.idle() => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            for job in jobs {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    break;
                };
                let queue = self.queue.clone();
                let handlers = handlers.clone();
                running.spawn(async move {
                    execute(&queue, &handlers, job).await;
                    drop(permit);
                });
            }
        }
        // Graceful stop: claim nothing more, let running tasks finish.
        while running.join_next().await.is_some() {}
    }
}

/// The prefix of a handler error that means "cannot ever succeed".
const UNDECODABLE: &str = "cannot decode the task's arguments: ";

async fn execute(queue: &Queue, handlers: &HashMap<&'static str, Handler>, job: Job) {
    let info = TaskInfo {
        id: job.id.clone(),
        attempt: job.attempt,
        max_attempts: job.max_attempts,
        key: job.key.clone(),
    };
    let Some(handler) = handlers.get(job.kind.as_str()) else {
        let error = format!("no handler for task kind `{}`", job.kind);
        report(queue.fail(job, &error).await);
        return;
    };
    // On its own task, so that a panic is a failed attempt, not a dead
    // worker.
    let mut run = AbortOnDrop(tokio::spawn(handler(job.payload.clone(), info)));
    let renew_every = queue.config().visibility_timeout / 3;
    let result = loop {
        tokio::select! {
            result = &mut run.0 => break result,
            _ = tokio::time::sleep(renew_every) => {
                match queue.extend(&job).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(queue = %queue.name(), id = %job.id,
                        "lease lost while the task ran; it may run twice"),
                    Err(e) => tracing::warn!(queue = %queue.name(), id = %job.id, error = %e,
                        "cannot renew the task's lease"),
                }
            }
        }
    };
    let outcome = match result {
        Ok(Ok(())) => queue.complete(job).await,
        Ok(Err(error)) if error.starts_with(UNDECODABLE) => queue.bury(job, &error).await,
        Ok(Err(error)) => queue.fail(job, &error).await,
        Err(e) if e.is_panic() => queue.fail(job, "the handler panicked").await,
        Err(_) => return, // cancelled: the worker is going away; the lease will expire
    };
    report(outcome);
}

/// Aborts the handler's task when the worker drops it (an aborted worker:
/// its handlers stop too, as in a crash).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn report(result: Result<(), super::QueueError>) {
    if let Err(e) = result {
        // The task stays leased; it runs again once the lease expires.
        tracing::error!(error = %e, "cannot record a task's outcome");
    }
}

/// A running worker. Dropping the handle leaves the worker running until
/// the runtime shuts down; [`stop`](WorkerHandle::stop) it on SIGTERM.
#[derive(Debug)]
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    grace: Duration,
}

impl WorkerHandle {
    /// Graceful stop: claims nothing more, waits up to the grace period for
    /// running tasks to finish, then abandons the rest (they run again
    /// after their lease expires).
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(self.grace, &mut self.task)
            .await
            .is_err()
        {
            tracing::warn!("worker grace period over: abandoning running tasks");
            self.task.abort();
        }
    }

    /// Stops at once, abandoning running tasks without acknowledging them,
    /// as a crash would: they run again after their lease expires.
    pub fn abort(self) {
        self.task.abort();
    }

    /// True once the worker has stopped.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}
