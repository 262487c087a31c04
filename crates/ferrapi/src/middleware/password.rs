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
        self.argon2()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| PasswordError::Hashing(e.to_string()))
    }

    /// Whether `password` matches `hash` (with the parameters stored in the
    /// hash, whatever this hasher's are).
    ///
    /// # Errors
    /// `hash` is not a valid PHC string.
    pub fn verify(&self, password: &str, hash: &str) -> Result<bool, PasswordError> {
        let parsed =
            PasswordHash::new(hash).map_err(|e| PasswordError::MalformedHash(e.to_string()))?;
        match self.argon2().verify_password(password.as_bytes(), &parsed) {
            Ok(()) => Ok(true),
            Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
            Err(e) => Err(PasswordError::MalformedHash(e.to_string())),
        }
    }

    /// Spends the time of a verification without a stored hash, so that an
    /// unknown user name takes as long as a wrong password (no user
    /// enumeration by timing). Always `false`.
    pub fn verify_dummy(&self, password: &str) -> bool {
        let _ = self.argon2().hash_password(password.as_bytes());
        false
    }

    /// Whether `hash` was made with other parameters or another algorithm
    /// than this hasher's (rehash it at the next successful login).
    pub fn needs_rehash(&self, hash: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(hash) else {
            return true;
        };
        let current = self.argon2();
        let Ok(expected) = current.hash_password_with_salt(b"", b"saltsaltsaltsalt") else {
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
        tokio::task::spawn_blocking(move || this.hash(&password))
            .await
            .map_err(|e| PasswordError::Hashing(e.to_string()))?
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
        tokio::task::spawn_blocking(move || this.verify(&password, &hash))
            .await
            .map_err(|e| PasswordError::Hashing(e.to_string()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
