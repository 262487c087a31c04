//! The rate limiter's contract: a [`Quota`], the store that keeps the
//! state ([`RateLimitStore`]) and its [`Decision`]. The facade's
//! `RateLimitLayer` counts requests through a store; `MemoryStore` (in the
//! facade) and the Redis store (in `ferrapi-storage`) implement it.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A boxed future, as [`RateLimitStore::check`] returns it.
pub use futures_util::future::BoxFuture;

/// `count` requests per `window`.
///
/// Parsed from `<count>/<n><unit>` with unit `s`, `m` or `h` (the
/// `RATE_LIMIT` variable):
///
/// ```
/// use ferrapi_core::rate_limit::Quota;
/// use std::time::Duration;
///
/// let q: Quota = "100/1s".parse().unwrap();
/// assert_eq!((q.count(), q.window()), (100, Duration::from_secs(1)));
/// assert_eq!("10/5s".parse::<Quota>().unwrap().window(), Duration::from_secs(5));
/// assert_eq!("1000/1h".parse::<Quota>().unwrap().window(), Duration::from_secs(3600));
/// assert_eq!(
///     "lots".parse::<Quota>().unwrap_err().to_string(),
///     "`lots` is not a rate limit: expected `<count>/<n><unit>` with unit s, m or h (e.g. `100/1s`)"
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    count: u32,
    window: Duration,
}

/// A rate limit that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaError {
    /// Not of the form `<count>/<n><unit>`.
    #[error(
        "`{0}` is not a rate limit: expected `<count>/<n><unit>` with unit s, m or h (e.g. `100/1s`)"
    )]
    Malformed(String),
    /// A count of zero: nothing would ever be allowed.
    #[error("a rate limit must allow at least one request")]
    ZeroCount,
    /// A window of zero length.
    #[error("a rate limit's window must be longer than zero")]
    ZeroWindow,
}

impl Quota {
    /// `count` requests per `window`.
    ///
    /// # Errors
    /// A zero count or window.
    pub fn new(count: u32, window: Duration) -> Result<Self, QuotaError> {
        if count == 0 {
            return Err(QuotaError::ZeroCount);
        }
        if window.is_zero() {
            return Err(QuotaError::ZeroWindow);
        }
        Ok(Self { count, window })
    }

    /// Requests allowed per window (and at once).
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The window.
    pub fn window(&self) -> Duration {
        self.window
    }
}

impl FromStr for Quota {
    type Err = QuotaError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let malformed = || QuotaError::Malformed(s.to_owned());
        let (count, period) = s.trim().split_once('/').ok_or_else(malformed)?;
        let count: u32 = digits(count.trim()).ok_or_else(malformed)?;
        let period = period.trim();
        let unit_at = period
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(malformed)?;
        let (n, unit) = period.split_at(unit_at);
        let n: u64 = digits(n).ok_or_else(malformed)?;
        let unit_secs = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            _ => return Err(malformed()),
        };
        let secs = n.checked_mul(unit_secs).ok_or_else(malformed)?;
        Quota::new(count, Duration::from_secs(secs))
    }
}

/// Only ASCII digits (`u32::from_str` also takes a leading `+`).
fn digits<T: FromStr>(s: &str) -> Option<T> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.window.as_secs();
        if u128::from(secs) * 1_000_000_000 != self.window.as_nanos() {
            write!(f, "{}/{}ms", self.count, self.window.as_millis())
        } else if secs.is_multiple_of(3600) {
            write!(f, "{}/{}h", self.count, secs / 3600)
        } else if secs.is_multiple_of(60) {
            write!(f, "{}/{}m", self.count, secs / 60)
        } else {
            write!(f, "{}/{}s", self.count, secs)
        }
    }
}

/// The verdict on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may go through.
    pub allowed: bool,
    /// Requests still allowed right now after this one.
    pub remaining: u64,
    /// Time until the full quota is available again.
    pub reset_after: Duration,
    /// When refused: time until the next request would be allowed.
    pub retry_after: Option<Duration>,
}

/// The store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum RateLimitStoreError {
    /// The store cannot be reached (a Redis connection down).
    #[error("rate-limit store unavailable: {0}")]
    Unavailable(String),
    /// Any other failure of the store.
    #[error("rate-limit store failed: {0}")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Where rate-limit state lives (`MemoryStore` is the in-process
/// implementation).
///
/// The algorithm is GCRA (the generic cell rate algorithm, a token bucket
/// kept as one timestamp per key): a quota of `count` requests per `window`
/// lets `count` requests through at once, then one every `window / count`;
/// after a whole `window` without requests the full quota is back. One
/// number per key, updated atomically, makes it a good fit for a shared
/// store: a Redis implementation runs the same arithmetic as one server-side
/// script over the key's stored time, with the server's clock, so that every
/// instance sees one limit.
///
/// Rate-limit state shared by the requests of one or more application
/// instances.
///
/// `check` counts one request against `key` under `quota` and returns the
/// [`Decision`], atomically: two concurrent calls never both take the last
/// request of a quota. The store keeps the clock (in a shared store, the
/// server's), so that instances with skewed clocks agree.
///
/// ```
/// use ferrapi_core::rate_limit::{BoxFuture, Decision, Quota, RateLimitStore, RateLimitStoreError};
///
/// /// Lets everything through (for tests of other things).
/// struct Unlimited;
///
/// impl RateLimitStore for Unlimited {
///     fn check<'a>(&'a self, _key: &'a str, quota: Quota)
///         -> BoxFuture<'a, Result<Decision, RateLimitStoreError>>
///     {
///         Box::pin(async move {
///             Ok(Decision {
///                 allowed: true,
///                 remaining: u64::from(quota.count()),
///                 reset_after: std::time::Duration::ZERO,
///                 retry_after: None,
///             })
///         })
///     }
/// }
/// ```
pub trait RateLimitStore: Send + Sync + 'static {
    /// Counts one request against `key` and decides.
    fn check<'a>(
        &'a self,
        key: &'a str,
        quota: Quota,
    ) -> BoxFuture<'a, Result<Decision, RateLimitStoreError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let q = |s: &str| {
            s.parse::<Quota>()
                .map(|q| (q.count(), q.window().as_secs()))
        };
        assert_eq!(q("100/1s"), Ok((100, 1)));
        assert_eq!(q("10/5s"), Ok((10, 5)));
        assert_eq!(q("1000/1h"), Ok((1000, 3600)));
        assert_eq!(q("60/2m"), Ok((60, 120)));
        assert_eq!(q(" 5/1s "), Ok((5, 1)));
        for bad in [
            "lots",
            "",
            "100",
            "100/",
            "100/s",
            "/1s",
            "100/1d",
            "100/1sec",
            "-1/1s",
            "+1/1s",
            "1.5/1s",
            "100/ 1 s",
            "99999999999/1s",
            "1/99999999999999999999h",
        ] {
            assert!(matches!(q(bad), Err(QuotaError::Malformed(_))), "{bad:?}");
        }
        assert_eq!(q("0/1s"), Err(QuotaError::ZeroCount));
        assert_eq!(q("1/0s"), Err(QuotaError::ZeroWindow));
    }

    #[test]
    fn display_round_trips() {
        for s in ["100/1s", "10/5s", "1000/1h", "7/2m"] {
            assert_eq!(s.parse::<Quota>().map(|q| q.to_string()).as_deref(), Ok(s));
        }
    }
}
