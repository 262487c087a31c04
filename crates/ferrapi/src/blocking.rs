//! Blocking and CPU-bound work off the async workers: [`blocking`] and
//! [`BlockingPool`].
//!
//! FastAPI runs a `def` (not `async def`) endpoint in a thread pool so that
//! it does not stall the event loop. Rust has no such split in the handler
//! signature, so the handler says where the blocking part is:
//!
//! ```
//! use ferrapi::prelude::*;
//!
//! fn expensive_report(n: u64) -> u64 {
//!     (0..n).map(|i| i * i % 7).sum()
//! }
//!
//! #[get("/report")]
//! async fn report() -> Result<Text, ferrapi::Error> {
//!     let total = ferrapi::blocking(|| expensive_report(1_000_000)).await?;
//!     Ok(Text(total.to_string()))
//! }
//!
//! let app = App::new().blocking_threads(4).route(report);
//! ```
//!
//! # The pool
//!
//! - The closure runs on tokio's blocking threads (`spawn_blocking`), behind
//!   a semaphore: at most [`size`](BlockingPool::size) closures run at once.
//!   Past that, callers wait their turn in FIFO order (the wait is an
//!   ordinary `.await`, holding no thread): saturation queues instead of
//!   spawning threads without bound.
//! - One pool per process, [`BlockingPool::global`], used by [`blocking`].
//!   Its size is the number of CPU cores unless set with
//!   [`App::blocking_threads`](crate::App::blocking_threads),
//!   [`BlockingPool::resize`], or the `FERRAPI_BLOCKING_THREADS` environment
//!   variable (read when the pool is first used). Cores is right for
//!   CPU-bound work; raise it for blocking I/O (FastAPI's pool has 40
//!   threads). Separate pools ([`BlockingPool::new`]) keep one kind of work
//!   from starving another.
//! - A slot is held until the closure returns, even when the request that
//!   started it was cancelled: the bound is on threads actually busy.
//! - A closure that panics gives [`BlockingError::Panicked`] (a logged 500
//!   through `?`), and its slot is released.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::Semaphore;

/// Why [`blocking`] gave no value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlockingError {
    /// The closure panicked (with this message).
    #[error("blocking task panicked: {0}")]
    Panicked(String),
    /// The runtime shut down before the closure ran to completion.
    #[error("blocking task cancelled: the runtime is shutting down")]
    Cancelled,
}

/// Runs `f` on the global [`BlockingPool`] and waits for its result without
/// blocking the async worker (see the [module docs](self)).
///
/// # Errors
/// [`BlockingError::Panicked`] when `f` panics; [`BlockingError::Cancelled`]
/// when the runtime shuts down first.
///
/// # Panics
/// When called outside a tokio runtime (handlers always run inside one).
pub async fn blocking<F, R>(f: F) -> Result<R, BlockingError>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    BlockingPool::global().run(f).await
}

struct Inner {
    permits: Semaphore,
    size: AtomicUsize,
    /// Permits still to take out of circulation after a shrink (they were
    /// in use when the pool shrank): swallowed as they come back.
    debt: AtomicUsize,
    resizing: Mutex<()>,
}

impl Inner {
    fn release(&self) {
        let mut debt = self.debt.load(Ordering::Acquire);
        while debt > 0 {
            match self
                .debt
                .compare_exchange(debt, debt - 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(now) => debt = now,
            }
        }
        self.permits.add_permits(1);
    }
}

/// Gives the slot back when the closure is done (or panicked).
struct Slot(Arc<Inner>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// A bounded set of threads for blocking work (see the
/// [module docs](self)). Cheap to clone; clones share the bound.
///
/// ```
/// use ferrapi::BlockingPool;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let hashing = BlockingPool::new(2);
/// let digest = hashing.run(|| 6 * 7).await.unwrap();
/// assert_eq!(digest, 42);
/// assert_eq!(hashing.available(), 2);
/// # });
/// ```
#[derive(Clone)]
pub struct BlockingPool {
    inner: Arc<Inner>,
}

impl fmt::Debug for BlockingPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingPool")
            .field("size", &self.size())
            .field("available", &self.available())
            .finish()
    }
}

/// The environment variable that sets the global pool's size.
pub const BLOCKING_THREADS_ENV: &str = "FERRAPI_BLOCKING_THREADS";

impl BlockingPool {
    /// A pool running at most `threads` closures at once (at least 1).
    pub fn new(threads: usize) -> Self {
        let threads = threads.max(1);
        Self {
            inner: Arc::new(Inner {
                permits: Semaphore::new(threads),
                size: AtomicUsize::new(threads),
                debt: AtomicUsize::new(0),
                resizing: Mutex::new(()),
            }),
        }
    }

    /// The process-wide pool [`blocking`] uses. Its first use sizes it from
    /// `FERRAPI_BLOCKING_THREADS`, else the number of CPU cores; a value
    /// that is not a positive integer is ignored with a warning.
    pub fn global() -> &'static BlockingPool {
        static GLOBAL: OnceLock<BlockingPool> = OnceLock::new();
        GLOBAL.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            let threads = match std::env::var(BLOCKING_THREADS_ENV) {
                Ok(v) => match v.trim().parse::<usize>() {
                    Ok(n) if n > 0 => n,
                    _ => {
                        tracing::warn!(
                            value = %v,
                            "{BLOCKING_THREADS_ENV} is not a positive integer; using {cores}"
                        );
                        cores
                    }
                },
                Err(_) => cores,
            };
            BlockingPool::new(threads)
        })
    }

    /// The most closures that run at once.
    pub fn size(&self) -> usize {
        self.inner.size.load(Ordering::Acquire)
    }

    /// How many more closures could start now without waiting.
    pub fn available(&self) -> usize {
        self.inner.permits.available_permits()
    }

    /// Changes the bound. Growing takes effect at once; shrinking takes
    /// idle slots away at once and busy ones as they finish.
    pub fn resize(&self, threads: usize) {
        let threads = threads.max(1);
        let _guard = match self.inner.resizing.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let old = self.inner.size.swap(threads, Ordering::AcqRel);
        if threads > old {
            let mut grow = threads - old;
            // Cancel what a shrink still owes first.
            let mut debt = self.inner.debt.load(Ordering::Acquire);
            while debt > 0 && grow > 0 {
                let cancel = debt.min(grow);
                match self.inner.debt.compare_exchange(
                    debt,
                    debt - cancel,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        grow -= cancel;
                        break;
                    }
                    Err(now) => debt = now,
                }
            }
            self.inner.permits.add_permits(grow);
        } else if threads < old {
            let shrink = old - threads;
            let taken = self.inner.permits.forget_permits(shrink);
            self.inner.debt.fetch_add(shrink - taken, Ordering::AcqRel);
        }
    }

    /// Runs `f` on a blocking thread once a slot is free, and waits for its
    /// result without blocking the async worker.
    ///
    /// # Errors
    /// [`BlockingError::Panicked`] when `f` panics;
    /// [`BlockingError::Cancelled`] when the runtime shuts down first.
    ///
    /// # Panics
    /// When called outside a tokio runtime.
    pub async fn run<F, R>(&self, f: F) -> Result<R, BlockingError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        // The semaphore is never closed; a closed one would mean no slot.
        let permit = self
            .inner
            .permits
            .acquire()
            .await
            .map_err(|_| BlockingError::Cancelled)?;
        // The slot travels with the closure: it is released when the work
        // ends, not when this future is dropped.
        permit.forget();
        let slot = Slot(self.inner.clone());
        let handle = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            f()
        });
        match handle.await {
            Ok(value) => Ok(value),
            Err(e) if e.is_panic() => {
                let panic = e.into_panic();
                let message = if let Some(s) = panic.downcast_ref::<&'static str>() {
                    (*s).to_owned()
                } else if let Some(s) = panic.downcast_ref::<String>() {
                    s.clone()
                } else {
                    "(non-string panic payload)".to_owned()
                };
                Err(BlockingError::Panicked(message))
            }
            Err(_) => Err(BlockingError::Cancelled),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Starts a closure on `pool` that holds its slot until the returned
    /// sender is used; returns once it runs.
    async fn hold(
        pool: &BlockingPool,
    ) -> (
        std::sync::mpsc::Sender<()>,
        tokio::task::JoinHandle<Result<(), BlockingError>>,
    ) {
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let pool = pool.clone();
        let task = tokio::spawn(async move {
            pool.run(move || {
                started_tx.send(()).expect("test channel");
                release_rx
                    .recv_timeout(Duration::from_secs(10))
                    .expect("released");
            })
            .await
        });
        tokio::task::spawn_blocking(move || started_rx.recv_timeout(Duration::from_secs(10)))
            .await
            .expect("joined")
            .expect("started");
        (release_tx, task)
    }

    #[tokio::test]
    async fn shrinking_with_busy_slots_takes_them_as_they_return() {
        let pool = BlockingPool::new(2);
        let (release, busy) = hold(&pool).await;
        assert_eq!(pool.available(), 1);
        pool.resize(1);
        assert_eq!(pool.size(), 1);
        assert_eq!(pool.available(), 0, "the idle slot goes at once");
        release.send(()).expect("test channel");
        busy.await.expect("joined").expect("ran");
        assert_eq!(pool.available(), 1);
        pool.resize(3);
        assert_eq!(pool.available(), 3);
    }

    #[tokio::test]
    async fn growing_cancels_what_a_shrink_still_owes() {
        let pool = BlockingPool::new(2);
        let (release_a, a) = hold(&pool).await;
        let (release_b, b) = hold(&pool).await;
        pool.resize(1); // both busy: one slot owed
        assert_eq!(pool.available(), 0);
        pool.resize(2); // cancels the debt instead of adding a slot
        assert_eq!(pool.available(), 0);
        release_a.send(()).expect("test channel");
        a.await.expect("joined").expect("ran");
        release_b.send(()).expect("test channel");
        b.await.expect("joined").expect("ran");
        assert_eq!(pool.available(), 2);
        assert_eq!(pool.size(), 2);
    }
}
