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
//! The memory itself is reused while hashes keep coming: each running hash
//! borrows one of at most [`max_concurrent_hashes`] buffers, kept for the
//! next one (up to 64 MiB each). When a hash ends and no other is running
//! or waiting, the buffers are freed, so an idle process holds no hash
//! memory. Each buffer reserves at least 32 MiB of address space (only
//! the hash's memory cost is ever touched): glibc serves blocks that large
//! with `mmap` whatever its dynamic threshold, so freeing one gives its
//! pages back. Allocating 19 MiB per hash left the process's RSS to the
//! allocator: once glibc's threshold rises above that size, such blocks
//! come from per-thread arenas, which keep them, so a login flood spread
//! over the blocking pool's threads grew the process by hundreds of MiB at
//! random. The argon2 crate computes into the buffer we give it
//! (`hash_password_into_with_memory`); only the PHC string around the
//! result is assembled here, with the `phc` types.
//!
//! ```
//! use ferrapi::security::password::PasswordHasher;
//!
//! let hasher = PasswordHasher::new();
//! # let hasher = PasswordHasher::insecure_fast_for_tests();
//! let hash = hasher.hash("correct horse battery staple")?;
//! assert!(hash.starts_with("$argon2id$"));
//! assert!(hasher.verify("correct horse battery staple", &hash)?);
//! assert!(!hasher.verify("wrong", &hash)?);
//! # Ok::<(), ferrapi::security::password::PasswordError>(())
//! ```

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

/// The largest Argon2 memory buffer kept for reuse, in 1 KiB blocks
/// (64 MiB): a hash stored with a larger memory cost still verifies, with
/// memory of its own, freed afterwards.
const KEEP_BLOCKS: usize = 64 * 1024;

/// The least address space a buffer reserves, in 1 KiB blocks: just over
/// glibc's largest dynamic mmap threshold (32 MiB), so that the buffer is
/// always its own mapping, unmapped when freed. Pages past the hash's
/// memory cost are never touched and cost no memory.
const MAPPED_BLOCKS: usize = 32 * 1024 + 1;

/// How many Argon2 hashes (or verifications) may run at once in this
/// process: the number of cores (`std::thread::available_parallelism`), at
/// least 1. Hashing is CPU-bound, so more at once would not finish sooner;
/// it would only hold more memory.
///
/// ```
/// assert!(ferrapi::security::password::max_concurrent_hashes() >= 1);
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
    /// Argon2 memory of finished hashes, for the next ones: never more
    /// buffers than `permits`, as no more hashes run at once.
    memory: Mutex<Vec<Vec<Block>>>,
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
            memory: Mutex::new(Vec::new()),
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

/// Computes Argon2 of `password` and `salt` into `out`, once fewer than
/// [`max_concurrent_hashes`] hashes are running, in a reused buffer.
fn argon2_into(
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), PasswordError> {
    let hashing = |e: argon2::Error| PasswordError::Hashing(e.to_string());
    bounded(|| {
        let limiter = limiter();
        let needed = argon2.params().block_count();
        let mut memory = limiter
            .memory
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default();
        if memory.len() < needed {
            #[cfg(test)]
            tests::GROWN.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            memory
                .try_reserve_exact(needed.max(MAPPED_BLOCKS) - memory.len())
                .map_err(|_| hashing(argon2::Error::OutOfMemory))?;
            memory.resize(needed, Block::default());
        }
        let blocks = memory.get_mut(..needed).unwrap_or_default();
        let result = argon2
            .hash_password_into_with_memory(password, salt, out, blocks)
            .map_err(hashing);
        let mut pool = limiter.memory.lock().unwrap_or_else(|e| e.into_inner());
        // Nothing else hashing or waiting: no memory held while idle. An
        // async caller holds a turn while it hashes, and a free turn is
        // handed to a waiter at once, so more than one free turn besides
        // this hash's means no async caller waits.
        let running = *limiter.running.lock().unwrap_or_else(|e| e.into_inner());
        if running == 1 && limiter.turns.available_permits() + 1 >= limiter.permits {
            #[cfg(test)]
            tests::RELEASED.fetch_add(pool.len() + 1, std::sync::atomic::Ordering::SeqCst);
            pool.clear();
        } else if memory.len() <= KEEP_BLOCKS {
            pool.push(memory);
        }
        result
    })
}

/// Argon2 of `password` and `salt`, of `argon2`'s output length.
fn output(argon2: &Argon2<'_>, password: &[u8], salt: &[u8]) -> Result<Output, PasswordError> {
    let mut buffer = [0u8; Output::MAX_LENGTH];
    let len = argon2
        .params()
        .output_len()
        .unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let out = buffer
        .get_mut(..len)
        .ok_or_else(|| PasswordError::Params(format!("output length {len}")))?;
    argon2_into(argon2, password, salt, out)?;
    Output::new(out).map_err(|e| PasswordError::Hashing(e.to_string()))
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

/// The algorithm of new hashes: Argon2id.
const ALGORITHM: Algorithm = Algorithm::Argon2id;
/// The version of new hashes: 0x13 (19).
const VERSION: Version = Version::V0x13;

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
        Argon2::new(ALGORITHM, VERSION, self.params.clone())
    }

    /// The PHC string of `password` hashed with `salt` by this hasher.
    fn phc_hash(&self, password: &[u8], salt: &[u8]) -> Result<PasswordHash, PasswordError> {
        Ok(PasswordHash {
            algorithm: ALGORITHM.ident(),
            version: Some(VERSION.into()),
            params: ParamsString::try_from(&self.params)
                .map_err(|e| PasswordError::Params(e.to_string()))?,
            salt: Some(Salt::new(salt).map_err(|e| PasswordError::Hashing(e.to_string()))?),
            hash: Some(output(&self.argon2(), password, salt)?),
        })
    }

    /// Hashes `password` with a fresh random salt.
    ///
    /// # Errors
    /// Hashing failed.
    pub fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let salt = argon2::password_hash::try_generate_salt()
            .map_err(|e| PasswordError::Hashing(e.to_string()))?;
        self.phc_hash(password.as_bytes(), &salt)
            .map(|h| h.to_string())
    }

    /// Whether `password` matches `hash` (with the parameters stored in the
    /// hash, whatever this hasher's are).
    ///
    /// # Errors
    /// `hash` is not a valid PHC string.
    pub fn verify(&self, password: &str, hash: &str) -> Result<bool, PasswordError> {
        let malformed = |e: String| PasswordError::MalformedHash(e);
        let parsed = PasswordHash::new(hash).map_err(|e| malformed(e.to_string()))?;
        let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
            return Err(malformed("no salt or no hash".into()));
        };
        let algorithm =
            Algorithm::try_from(parsed.algorithm.as_str()).map_err(|e| malformed(e.to_string()))?;
        let version = match parsed.version {
            Some(v) => Version::try_from(v).map_err(|e| malformed(e.to_string()))?,
            None => Version::default(),
        };
        let params = Params::try_from(&parsed).map_err(|e| malformed(e.to_string()))?;
        let argon2 = Argon2::new(algorithm, version, params);
        let computed = output(&argon2, password.as_bytes(), salt.as_ref())
            .map_err(|e| malformed(e.to_string()))?;
        // `Output`'s equality is constant-time.
        Ok(&computed == expected)
    }

    /// Spends the time of a verification without a stored hash, so that an
    /// unknown user name takes as long as a wrong password (no user
    /// enumeration by timing). Always `false`.
    pub fn verify_dummy(&self, password: &str) -> bool {
        let _ = output(&self.argon2(), password.as_bytes(), b"saltsaltsaltsalt");
        false
    }

    /// Whether `hash` was made with other parameters or another algorithm
    /// than this hasher's (rehash it at the next successful login).
    pub fn needs_rehash(&self, hash: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(hash) else {
            return true;
        };
        let Ok(params) = ParamsString::try_from(&self.params) else {
            return true;
        };
        parsed.algorithm != ALGORITHM.ident()
            || parsed.version != Some(VERSION.into())
            || parsed.params != params
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
    /// Argon2 buffers allocated or grown.
    pub(super) static GROWN: AtomicUsize = AtomicUsize::new(0);
    /// Argon2 buffers freed when the hasher fell idle.
    pub(super) static RELEASED: AtomicUsize = AtomicUsize::new(0);

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

    /// The tests that hash run one at a time: whether the limiter is idle,
    /// and the process's RSS, depend on what else hashes.
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn hashes_in_flight_never_exceed_the_permits() {
        let _serial = SERIAL.lock().await;
        let (grown_before, released_before) = (
            GROWN.load(Ordering::SeqCst),
            RELEASED.load(Ordering::SeqCst),
        );
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
        assert_eq!(
            hasher.verify("sync0", &hasher.hash("sync0").unwrap_or_default()),
            Ok(true)
        );
        let peak = PEAK.load(Ordering::SeqCst);
        assert!(
            (1..=limit).contains(&peak),
            "{peak} hashes at once, limit {limit}"
        );
        // The memory was reused: a buffer is allocated only for a free place
        // or after the buffers were freed (the hasher fell idle between
        // two hashes); without reuse, once per hash.
        let hashes = limit * 8 + 12;
        let grown = GROWN.load(Ordering::SeqCst) - grown_before;
        let released = RELEASED.load(Ordering::SeqCst) - released_before;
        assert!(
            grown <= limit + released && grown < hashes / 2,
            "{grown} Argon2 buffers allocated for {hashes} hashes ({released} freed), limit {limit}"
        );
        assert!(released >= 1, "the buffers were never freed");
        // Idle now: the buffers were freed.
        let kept = limiter()
            .memory
            .lock()
            .map(|m| m.len())
            .unwrap_or(usize::MAX);
        assert_eq!(kept, 0, "buffers kept while idle");
    }

    /// Resident memory of this process, from `/proc/self/statm`.
    #[cfg(target_os = "linux")]
    fn rss_bytes() -> usize {
        std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
            .map_or(0, |pages| pages * 4096)
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn an_idle_hasher_gives_its_memory_back() {
        let _serial = SERIAL.blocking_lock();
        // 32 MiB: far above what anything else in these tests holds.
        let hasher = PasswordHasher::with_params(32 * 1024, 1, 1).unwrap_or_default();
        let released = RELEASED.load(Ordering::SeqCst);
        let before = rss_bytes();
        assert!(hasher.hash("pw").is_ok());
        let after = rss_bytes();
        assert!(
            RELEASED.load(Ordering::SeqCst) > released,
            "no buffer released"
        );
        assert!(
            after < before + (16 << 20),
            "RSS {} -> {} MiB after one 32 MiB hash",
            before >> 20,
            after >> 20
        );
        // The buffer is kept (virtual), and serves again.
        let hash = hasher.hash("pw").unwrap_or_default();
        assert_eq!(hasher.verify("pw", &hash), Ok(true));
    }

    #[test]
    fn hashes_agree_with_the_argon2_crate() {
        let _serial = SERIAL.blocking_lock();
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let hasher = PasswordHasher::with_params(64, 2, 1).unwrap_or_default();
        let theirs = hasher
            .argon2()
            .hash_password_with_salt(b"pw", b"saltsaltsaltsalt")
            .map(|h| h.to_string())
            .unwrap_or_default();
        let ours = hasher
            .phc_hash(b"pw", b"saltsaltsaltsalt")
            .map(|h| h.to_string())
            .unwrap_or_default();
        assert_eq!(ours, theirs);
        assert!(ours.starts_with("$argon2id$v=19$m=64,t=2,p=1$"), "{ours}");
        // A random salt verifies both ways, and other variants verify too.
        let ours = hasher.hash("pw").unwrap_or_default();
        let parsed = PasswordHash::new(&ours);
        assert!(parsed.is_ok_and(|p| hasher.argon2().verify_password(b"pw", &p).is_ok()));
        for algorithm in [Algorithm::Argon2i, Algorithm::Argon2d, Algorithm::Argon2id] {
            for version in [Version::V0x10, Version::V0x13] {
                let theirs = Argon2::new(algorithm, version, hasher.params.clone())
                    .hash_password_with_salt(b"pw", b"0123456789abcdef")
                    .map(|h| h.to_string())
                    .unwrap_or_default();
                assert_eq!(hasher.verify("pw", &theirs), Ok(true), "{theirs}");
                assert_eq!(hasher.verify("pv", &theirs), Ok(false), "{theirs}");
            }
        }
        assert!(matches!(
            hasher.verify("pw", "$argon2id$v=19$m=64,t=2,p=1"),
            Err(PasswordError::MalformedHash(_))
        ));
        assert!(matches!(
            hasher.verify(
                "pw",
                "$scrypt$v=19$m=64,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$AAAA"
            ),
            Err(PasswordError::MalformedHash(_))
        ));
    }

    #[test]
    fn hash_verify_and_rehash() {
        let _serial = SERIAL.blocking_lock();
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
