//! The rate-limit layer, its keys, and ([`store`]) the in-memory store; the
//! contract (quota, store trait, decision) is `ferrapi_core::rate_limit`.

mod store;

pub use store::MemoryStore;

use super::client_ip::{ClientIp, TrustedProxies};
use super::path_under;
use crate::response::Response;
use ferrapi_core::HttpError;
use ferrapi_core::middleware::{Flow, Hook, HookService};
use ferrapi_core::rate_limit::{Decision, Quota, RateLimitStore};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tower::Layer;

type KeyFn = dyn Fn(&Parts) -> Option<String> + Send + Sync;

/// What a request is counted under: a function of the request head. A
/// request whose key is `None` is not counted.
///
/// ```
/// use ferrapi::middleware::{RateLimitKey, TrustedProxies};
///
/// // The user id a previous layer stored, else the client address.
/// #[derive(Clone)]
/// struct UserId(i64);
/// let key = RateLimitKey::from_fn(|parts| {
///     parts.extensions.get::<UserId>().map(|u| format!("user:{}", u.0))
/// })
/// .or(RateLimitKey::client_ip(TrustedProxies::none()));
/// ```
#[derive(Clone)]
pub struct RateLimitKey(Arc<KeyFn>);

impl fmt::Debug for RateLimitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RateLimitKey(..)")
    }
}

impl RateLimitKey {
    /// Any function of the request head.
    pub fn from_fn<F>(f: F) -> Self
    where
        F: Fn(&Parts) -> Option<String> + Send + Sync + 'static,
    {
        Self(Arc::new(f))
    }

    /// The client address (`ip:<address>`): the [`ClientIp`] a
    /// [`ClientIpLayer`](super::ClientIpLayer) stored, else the peer address
    /// with `X-Forwarded-For` believed from `trusted` peers only.
    pub fn client_ip(trusted: TrustedProxies) -> Self {
        Self::from_fn(move |parts| {
            ClientIp::resolve(&parts.extensions, &parts.headers, &trusted)
                .map(|ip| format!("ip:{ip}"))
        })
    }

    /// The value of a request header, such as an API key
    /// (`<header>:<value>`); requests without it are not counted by this key.
    pub fn header(name: HeaderName) -> Self {
        Self::from_fn(move |parts| {
            parts
                .headers
                .get(&name)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty())
                .map(|v| format!("{name}:{v}"))
        })
    }

    /// One key for every request: a limit on the whole application.
    pub fn global() -> Self {
        Self::from_fn(|_| Some("global".to_owned()))
    }

    /// This key, or `other` where this one is `None`.
    #[must_use]
    pub fn or(self, other: RateLimitKey) -> Self {
        Self::from_fn(move |parts| (self.0)(parts).or_else(|| (other.0)(parts)))
    }

    fn key(&self, parts: &Parts) -> Option<String> {
        (self.0)(parts)
    }
}

/// What to do when the store fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailMode {
    /// Let requests through, without rate-limit headers (the default:
    /// availability over enforcement).
    #[default]
    Open,
    /// Answer `503 {"detail": "Service Unavailable"}`.
    Closed,
}

/// Rate limiting: a [`Quota`] (`100/1s`) per key, the key a function of the
/// request ([`RateLimitKey`]: client IP through trusted proxies, a header
/// such as an API key, the user id a previous layer verified, …), state in a
/// [`RateLimitStore`](super::RateLimitStore).
///
/// Every counted response carries `RateLimit-Limit`, `RateLimit-Remaining`
/// and `RateLimit-Reset` (whole seconds until the full quota is back, at
/// most the window) and `RateLimit-Policy` (`100;w=1`). A refused request is
/// answered `429 {"detail": "Too Many Requests"}` with `Retry-After`
/// (whole seconds, at least 1), without running the application.
///
/// Paths can be exempted (health checks, metrics) or the limit confined to
/// some paths (a stricter limit on the login route: stack two layers with
/// different [`name`](RateLimitLayer::name)s). When the store fails, the
/// layer lets requests through ([`FailMode::Open`], the default) or answers
/// `503` ([`FailMode::Closed`]); either way the failure is logged, at most
/// once a second.
///
/// ```
/// use ferrapi::middleware::{FailMode, MemoryStore, RateLimitKey, RateLimitLayer, TrustedProxies};
/// use ferrapi::prelude::*;
///
/// let limit = RateLimitLayer::new("100/1s".parse()?)
///     .key(RateLimitKey::client_ip("10.0.0.0/8".parse()?))
///     .store(MemoryStore::new().max_keys(50_000))
///     .exempt("/health")
///     .exempt("/metrics")
///     .on_store_error(FailMode::Open);
/// let app = App::new().layer(limit);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct RateLimitLayer {
    inner: Arc<Limiter>,
}

#[derive(Clone)]
/// One limiter: its quota, store, key and paths.
pub struct Limiter {
    name: String,
    quota: Quota,
    policy: HeaderValue,
    store: Arc<dyn RateLimitStore>,
    key: RateLimitKey,
    exempt: Vec<String>,
    only: Vec<String>,
    fail: FailMode,
    last_error_log: Arc<AtomicU64>,
}

impl fmt::Debug for RateLimitLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("name", &self.inner.name)
            .field("quota", &self.inner.quota)
            .field("exempt", &self.inner.exempt)
            .field("only", &self.inner.only)
            .field("fail", &self.inner.fail)
            .finish_non_exhaustive()
    }
}

impl RateLimitLayer {
    /// `quota` per client address (no proxy trusted), in a fresh
    /// [`MemoryStore`], failing open, on every path.
    pub fn new(quota: Quota) -> Self {
        Self {
            inner: Arc::new(Limiter {
                name: "ratelimit".into(),
                quota,
                policy: policy_header(quota),
                store: Arc::new(MemoryStore::new()),
                key: RateLimitKey::client_ip(TrustedProxies::none()),
                exempt: Vec::new(),
                only: Vec::new(),
                fail: FailMode::Open,
                last_error_log: Arc::new(AtomicU64::new(0)),
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Limiter)) -> Self {
        f(Arc::make_mut(&mut self.inner));
        self
    }

    /// What requests are counted under (default: the client address).
    #[must_use]
    pub fn key(self, key: RateLimitKey) -> Self {
        self.edit(|l| l.key = key)
    }

    /// Where the state lives (default: a [`MemoryStore`] of this layer's own).
    #[must_use]
    pub fn store(self, store: impl RateLimitStore) -> Self {
        self.shared_store(Arc::new(store))
    }

    /// A store shared with other layers (give each a distinct
    /// [`name`](Self::name)).
    #[must_use]
    pub fn shared_store(self, store: Arc<dyn RateLimitStore>) -> Self {
        self.edit(|l| l.store = store)
    }

    /// Prefixes this limiter's keys in the store (default `ratelimit`), so
    /// that several limiters can share one store.
    #[must_use]
    pub fn name(self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.edit(|l| l.name = name)
    }

    /// Does not count requests to `path` and the paths under it.
    #[must_use]
    pub fn exempt(self, path: impl Into<String>) -> Self {
        let path = path.into();
        self.edit(|l| l.exempt.push(path))
    }

    /// Counts only requests to `path` and the paths under it (may be given
    /// several times); by default every path is counted.
    #[must_use]
    pub fn only(self, path: impl Into<String>) -> Self {
        let path = path.into();
        self.edit(|l| l.only.push(path))
    }

    /// What to do when the store fails (default [`FailMode::Open`]).
    #[must_use]
    pub fn on_store_error(self, mode: FailMode) -> Self {
        self.edit(|l| l.fail = mode)
    }
}

impl Limiter {
    fn applies(&self, path: &str) -> bool {
        (self.only.is_empty() || self.only.iter().any(|p| path_under(path, p)))
            && !self.exempt.iter().any(|p| path_under(path, p))
    }

    /// Logs a store failure, at most once a second.
    fn log_store_error(&self, e: &super::RateLimitStoreError) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.last_error_log.swap(now, Ordering::Relaxed);
        if last != now {
            match self.fail {
                FailMode::Open => tracing::error!(
                    limiter = %self.name, error = %e,
                    "rate-limit store failed: letting requests through (fail open)"
                ),
                FailMode::Closed => tracing::error!(
                    limiter = %self.name, error = %e,
                    "rate-limit store failed: refusing requests with 503 (fail closed)"
                ),
            }
        }
    }
}

fn policy_header(q: Quota) -> HeaderValue {
    let secs = q.window().as_secs_f64().ceil().max(1.0);
    HeaderValue::from_str(&format!("{};w={secs}", q.count()))
        .unwrap_or_else(|_| HeaderValue::from_static("0"))
}

const LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
const POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// Whole seconds, rounded up, at least 1 (never "retry in 0 s").
fn whole_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn set_headers(headers: &mut HeaderMap, limiter: &Limiter, d: &Decision) {
    // With several limiters, the one with the fewest requests left speaks.
    let theirs = headers
        .get(&REMAINING)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if theirs.is_some_and(|r| r <= d.remaining) {
        return;
    }
    let window = whole_secs(limiter.quota.window()).max(1);
    let reset = whole_secs(d.reset_after).clamp(1, window);
    headers.insert(LIMIT, HeaderValue::from(limiter.quota.count()));
    headers.insert(REMAINING, HeaderValue::from(d.remaining));
    headers.insert(RESET, HeaderValue::from(reset));
    headers.insert(POLICY, limiter.policy.clone());
}

fn too_many(limiter: &Limiter, d: &Decision) -> Response {
    let mut res = crate::response::error_response(&HttpError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "Too Many Requests",
    ));
    let retry = whole_secs(d.retry_after.unwrap_or(Duration::from_secs(1))).max(1);
    res.headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from(retry));
    set_headers(res.headers_mut(), limiter, d);
    res
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimitService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        HookService::new(RateLimits(Arc::from([self.inner.clone()])), inner)
    }
}

/// Several limiters as one hook, checked in order (the first as if
/// outermost): what [`Stack`](super::Stack) installs, one service instead of
/// one per limiter. A [`RateLimitLayer`] alone is the hook of one.
#[derive(Clone)]
pub struct RateLimits(Arc<[Arc<Limiter>]>);

impl RateLimits {
    pub(crate) fn new(layers: Vec<RateLimitLayer>) -> Self {
        Self(layers.into_iter().map(|l| l.inner).collect())
    }
}

impl fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|l| l.name.as_str()).collect();
        f.debug_struct("RateLimits")
            .field("limiters", &names)
            .finish()
    }
}

impl<S> Layer<S> for RateLimits {
    type Service = RateLimitService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        HookService::new(self.clone(), inner)
    }
}

/// The service of [`RateLimitLayer`]: the generic hook service.
pub type RateLimitService<S> = HookService<RateLimits, S>;

/// The allowed limiters' decisions, for the response's headers.
type Decisions = Vec<(Arc<Limiter>, Decision)>;

/// The request half: no wait when no limiter applies to the path (or
/// none finds a key); else the store's checks, in order, answering 429
/// (or 503 when a store fails closed). The response half sets the
/// `RateLimit-*` headers.
impl Hook for RateLimits {
    type State = Decisions;
    type Wait = futures_util::future::BoxFuture<'static, Result<Decisions, Response>>;

    fn begin<B>(&self, req: &mut Request<B>) -> Flow<Decisions, Self::Wait> {
        let path = req.uri().path();
        if !self.0.iter().any(|l| l.applies(path)) {
            return Flow::Continue(Vec::new());
        }
        let counted: Vec<(Arc<Limiter>, String)> = with_parts(req, |parts| {
            self.0
                .iter()
                .filter(|l| l.applies(parts.uri.path()))
                .filter_map(|l| Some((l.clone(), format!("{}:{}", l.name, l.key.key(parts)?))))
                .collect()
        });
        if counted.is_empty() {
            return Flow::Continue(Vec::new());
        }
        Flow::Wait(Box::pin(async move {
            let mut decisions = Vec::with_capacity(counted.len());
            for (limiter, key) in counted {
                match limiter.store.check(&key, limiter.quota).await {
                    Ok(d) if d.allowed => decisions.push((limiter, d)),
                    Ok(d) => {
                        tracing::debug!(limiter = %limiter.name, %key, "rate limit exceeded");
                        return Err(too_many(&limiter, &d));
                    }
                    Err(e) => {
                        limiter.log_store_error(&e);
                        if limiter.fail == FailMode::Closed {
                            return Err(crate::response::error_response(&HttpError::new(
                                StatusCode::SERVICE_UNAVAILABLE,
                                "Service Unavailable",
                            )));
                        }
                    }
                }
            }
            Ok(decisions)
        }))
    }

    fn finish(decisions: Decisions, mut res: Response) -> Response {
        for (limiter, d) in &decisions {
            set_headers(res.headers_mut(), limiter, d);
        }
        res
    }
}

/// `f` over the request's head as [`Parts`] (what [`RateLimitKey`]
/// functions take), without taking the request apart: its fields are
/// moved into empty parts and back (no allocation).
fn with_parts<B, T>(req: &mut Request<B>, f: impl FnOnce(&Parts) -> T) -> T {
    let (mut parts, ()) = Request::new(()).into_parts();
    std::mem::swap(&mut parts.method, req.method_mut());
    std::mem::swap(&mut parts.uri, req.uri_mut());
    std::mem::swap(&mut parts.version, req.version_mut());
    std::mem::swap(&mut parts.headers, req.headers_mut());
    std::mem::swap(&mut parts.extensions, req.extensions_mut());
    let out = f(&parts);
    std::mem::swap(&mut parts.method, req.method_mut());
    std::mem::swap(&mut parts.uri, req.uri_mut());
    std::mem::swap(&mut parts.version, req.version_mut());
    std::mem::swap(&mut parts.headers, req.headers_mut());
    std::mem::swap(&mut parts.extensions, req.extensions_mut());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_see_the_request_head_which_stays_whole() {
        let mut req = Request::builder()
            .method("POST")
            .uri("/a?b=1")
            .header("x-user", "ann")
            .body(7u8)
            .unwrap_or_default();
        req.extensions_mut().insert(5u32);
        let seen = with_parts(&mut req, |p| {
            format!(
                "{} {} {:?} {:?}",
                p.method,
                p.uri,
                p.headers.get("x-user"),
                p.extensions.get::<u32>()
            )
        });
        assert_eq!(seen, r#"POST /a?b=1 Some("ann") Some(5)"#);
        assert_eq!(req.method(), "POST");
        assert_eq!(req.uri(), "/a?b=1");
        assert_eq!(
            req.headers().get("x-user").map(|v| v.as_bytes()),
            Some(&b"ann"[..])
        );
        assert_eq!(req.extensions().get::<u32>(), Some(&5));
        assert_eq!(*req.body(), 7);
    }

    #[test]
    fn whole_seconds_round_up() {
        assert_eq!(whole_secs(Duration::from_millis(1)), 1);
        assert_eq!(whole_secs(Duration::from_secs(2)), 2);
        assert_eq!(whole_secs(Duration::from_millis(2001)), 3);
    }
}
