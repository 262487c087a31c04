//! Password hashing with Argon2id (cargo feature `password`), the
//! algorithm OWASP recommends, with its recommended parameters (19 MiB of
//! memory, 2 passes, 1 lane) by default.
//!
//! Hashes are PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$…`) that carry
//! their own salt and parameters: a hash made with older parameters still
//! verifies, and [`PasswordHasher::needs_rehash`] tells when to replace it.
//! Hashing is CPU work of tens of milliseconds: in a handler use the
//! `_blocking` variants, which run it on tokio's blocking pool.
//!
//! Each hash holds its memory (19 MiB by default) for its whole run, so the
//! number running at once is bounded process-wide, whichever hasher or
//! caller asks: at most [`max_concurrent_hashes`] (the number of cores)
//! run at a time, and the others wait their turn. The `_blocking` variants
//! wait for a turn without holding a thread; the synchronous ones block
//! their thread until one is free. A flood of logins then costs queueing
//! time (bounded by the request timeout), not memory or threads: 64
//! concurrent logins on 2 cores hold 2 × 19 MiB, not 64 × 19 MiB.
//!
//! ```
//! use ferrapi::middleware::password::PasswordHasher;
//!
//! let hasher = PasswordHasher::new();
//! # let hasher = PasswordHasher::insecure_fast_for_tests();
//! let hash = hasher.hash("correct horse battery staple")?;
//! assert!(hash.starts_with("$argon2id$"));
//! assert!(hasher.verify("correct horse battery staple", &hash)?);
//! assert!(!hasher.verify("wrong", &hash)?);
//! # Ok::<(), ferrapi::middleware::password::PasswordError>(())
//! ```

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

/// How many Argon2 hashes (or verifications) may run at once in this
/// process: the number of cores (`std::thread::available_parallelism`), at
/// least 1. Hashing is CPU-bound, so more at once would not finish sooner;
/// it would only hold more memory.
///
/// ```
/// assert!(ferrapi::middleware::password::max_concurrent_hashes() >= 1);
/// ```
pub fn max_concurrent_hashes() -> usize {
    limiter().permits
}

/// The process-wide bound on hashes in flight.
///
/// `running` counts the hashes computing now (the bound every caller
/// obeys); `turns` lets async callers wait for a turn without occupying a
/// blocking thread, so that at most `permits` blocking tasks exist for
/// hashing at any time.
struct Limiter {
    permits: usize,
    running: Mutex<usize>,
    freed: Condvar,
    turns: Arc<tokio::sync::Semaphore>,
}

fn limiter() -> &'static Limiter {
    static LIMITER: OnceLock<Limiter> = OnceLock::new();
    LIMITER.get_or_init(|| {
        let permits = std::thread::available_parallelism().map_or(1, |n| n.get());
        Limiter {
            permits,
            running: Mutex::new(0),
            freed: Condvar::new(),
            turns: Arc::new(tokio::sync::Semaphore::new(permits)),
        }
    })
}

/// A running hash's place: given back on drop (even if hashing panics).
struct Running(&'static Limiter);

impl Drop for Running {
    fn drop(&mut self) {
        let mut running = self.0.running.lock().unwrap_or_else(|e| e.into_inner());
        *running = running.saturating_sub(1);
        drop(running);
        self.0.freed.notify_one();
    }
}

/// Runs `work` once fewer than [`max_concurrent_hashes`] hashes are
/// running, blocking the calling thread until then.
fn bounded<T>(work: impl FnOnce() -> T) -> T {
    let limiter = limiter();
    let mut running = limiter.running.lock().unwrap_or_else(|e| e.into_inner());
    while *running >= limiter.permits {
        running = limiter
            .freed
            .wait(running)
            .unwrap_or_else(|e| e.into_inner());
    }
    *running += 1;
    drop(running);
    let _place = Running(limiter);
    #[cfg(test)]
    let _probe = tests::Probe::enter();
    work()
}

/// Runs `work` (a synchronous method of [`PasswordHasher`], which takes its
/// place among the running hashes itself) on tokio's blocking pool once a
/// turn is free: waiting does not hold a thread.
async fn bounded_blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, PasswordError> {
    let turn = Arc::clone(&limiter().turns)
        .acquire_owned()
        .await
        .map_err(|e| PasswordError::Hashing(e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        let out = work();
        drop(turn);
        out
    })
    .await
    .map_err(|e| PasswordError::Hashing(e.to_string()))
}

/// Hashing or verification could not be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// The stored hash is not a PHC string of a supported algorithm.
    #[error("not a valid password hash: {0}")]
    MalformedHash(String),
    /// Parameters out of Argon2's bounds.
    #[error("invalid Argon2 parameters: {0}")]
    Params(String),
    /// Hashing failed (out of memory, no randomness for the salt).
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// Hashes and verifies passwords with Argon2id.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    params: Params,
}

impl Default for PasswordHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl PasswordHasher {
    /// Argon2id v19 with OWASP's parameters: m = 19 MiB, t = 2, p = 1.
    pub fn new() -> Self {
        Self {
            params: Params::DEFAULT,
        }
    }

    /// Other parameters: memory in KiB, passes, lanes.
    ///
    /// # Errors
    /// Parameters out of Argon2's bounds.
    pub fn with_params(memory_kib: u32, passes: u32, lanes: u32) -> Result<Self, PasswordError> {
        let params = Params::new(memory_kib, passes, lanes, None)
            .map_err(|e| PasswordError::Params(e.to_string()))?;
        Ok(Self { params })
    }

    /// The cheapest parameters Argon2 allows (8 KiB, one pass): for tests
    /// only, where hashing at full cost would dominate the run time.
    pub fn insecure_fast_for_tests() -> Self {
        Self {
            params: Params::new(Params::MIN_M_COST, 1, 1, None).unwrap_or(Params::DEFAULT),
        }
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Hashes `password` with a fresh random salt.
    ///
    /// # Errors
    /// Hashing failed.
    pub fn hash(&self, password: &str) -> Result<String, PasswordError> {
        bounded(|| {
            self.argon2()
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| PasswordError::Hashing(e.to_string()))
        })
    }

    /// Whether `password` matches `hash` (with the parameters stored in the
    /// hash, whatever this hasher's are).
    ///
    /// # Errors
    /// `hash` is not a valid PHC string.
    pub fn verify(&self, password: &str, hash: &str) -> Result<bool, PasswordError> {
        let parsed =
            PasswordHash::new(hash).map_err(|e| PasswordError::MalformedHash(e.to_string()))?;
        match bounded(|| self.argon2().verify_password(password.as_bytes(), &parsed)) {
            Ok(()) => Ok(true),
            Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
            Err(e) => Err(PasswordError::MalformedHash(e.to_string())),
        }
    }

    /// Spends the time of a verification without a stored hash, so that an
    /// unknown user name takes as long as a wrong password (no user
    /// enumeration by timing). Always `false`.
    pub fn verify_dummy(&self, password: &str) -> bool {
        let _ = bounded(|| self.argon2().hash_password(password.as_bytes()));
        false
    }

    /// Whether `hash` was made with other parameters or another algorithm
    /// than this hasher's (rehash it at the next successful login).
    pub fn needs_rehash(&self, hash: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(hash) else {
            return true;
        };
        let current = self.argon2();
        let Ok(expected) = bounded(|| current.hash_password_with_salt(b"", b"saltsaltsaltsalt"))
        else {
            return true;
        };
        parsed.algorithm != expected.algorithm
            || parsed.version != expected.version
            || parsed.params != expected.params
    }

    /// [`hash`](Self::hash) on tokio's blocking pool.
    ///
    /// # Errors
    /// Hashing failed, or the blocking task was cancelled.
    pub async fn hash_blocking(&self, password: String) -> Result<String, PasswordError> {
        let this = self.clone();
        bounded_blocking(move || this.hash(&password)).await?
    }

    /// [`verify`](Self::verify) on tokio's blocking pool.
    ///
    /// # Errors
    /// `hash` is not valid, or the blocking task was cancelled.
    pub async fn verify_blocking(
        &self,
        password: String,
        hash: String,
    ) -> Result<bool, PasswordError> {
        let this = self.clone();
        bounded_blocking(move || this.verify(&password, &hash)).await?
    }

    /// [`verify_dummy`](Self::verify_dummy) on tokio's blocking pool.
    ///
    /// # Errors
    /// The blocking task was cancelled.
    pub async fn verify_dummy_blocking(&self, password: String) -> Result<bool, PasswordError> {
        let this = self.clone();
        bounded_blocking(move || this.verify_dummy(&password)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Hashes computing now and the most seen at once, counted apart from
    /// the limiter's own bookkeeping.
    static NOW: AtomicUsize = AtomicUsize::new(0);
    static PEAK: AtomicUsize = AtomicUsize::new(0);

    pub(super) struct Probe;

    impl Probe {
        pub(super) fn enter() -> Self {
            let now = NOW.fetch_add(1, Ordering::SeqCst) + 1;
            PEAK.fetch_max(now, Ordering::SeqCst);
            Self
        }
    }

    impl Drop for Probe {
        fn drop(&mut self) {
            NOW.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn hashes_in_flight_never_exceed_the_permits() {
        // 1 MiB, 2 passes: a few milliseconds each, long enough to overlap.
        let hasher = PasswordHasher::with_params(1024, 2, 1).unwrap_or_default();
        let limit = max_concurrent_hashes();
        let tasks: Vec<_> = (0..limit * 8 + 8)
            .map(|i| {
                let hasher = hasher.clone();
                tokio::spawn(async move {
                    if i % 3 == 0 {
                        hasher.verify_dummy_blocking(format!("pw{i}")).await
                    } else {
                        hasher.hash_blocking(format!("pw{i}")).await.map(|_| true)
                    }
                })
            })
            .collect();
        // Synchronous callers at the same time, on their own threads.
        let sync: Vec<_> = (0..4)
            .map(|i| {
                let hasher = hasher.clone();
                std::thread::spawn(move || hasher.hash(&format!("sync{i}")).is_ok())
            })
            .collect();
        let mut done = 0;
        for task in tasks {
            // Bounded: a hash waiting for a place it can never get fails
            // the test instead of hanging it.
            let out = tokio::time::timeout(std::time::Duration::from_secs(60), task).await;
            if matches!(out, Ok(Ok(Ok(_)))) {
                done += 1;
            }
        }
        for thread in sync {
            assert!(thread.join().unwrap_or(false));
        }
        assert_eq!(done, limit * 8 + 8, "every hash ran");
        let peak = PEAK.load(Ordering::SeqCst);
        assert!(
            (1..=limit).contains(&peak),
            "{peak} hashes at once, limit {limit}"
        );
    }

    #[test]
    fn hash_verify_and_rehash() {
        let fast = PasswordHasher::insecure_fast_for_tests();
        let hash = fast.hash("pw").unwrap_or_default();
        assert!(hash.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{hash}");
        assert_eq!(fast.verify("pw", &hash), Ok(true));
        assert_eq!(fast.verify("pW", &hash), Ok(false));
        assert_ne!(fast.hash("pw").unwrap_or_default(), hash, "salted");
        assert!(matches!(
            fast.verify("pw", "plain"),
            Err(PasswordError::MalformedHash(_))
        ));
        assert!(!fast.needs_rehash(&hash));
        // The default hasher verifies it (parameters come from the hash) but
        // wants it redone with its own.
        let default = PasswordHasher::new();
        assert_eq!(default.verify("pw", &hash), Ok(true));
        assert!(default.needs_rehash(&hash));
        assert!(PasswordHasher::with_params(1, 1, 1).is_err());
        assert!(!fast.verify_dummy("pw"));
    }
}
