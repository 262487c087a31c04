//! JSON Web Key Sets fetched from a URL (cargo feature `jwks`), re-exported
//! by [`jwt`](super::jwt): the cache, its refresh rules and the JWK → key
//! conversion. The behaviour is documented on [`Jwks`].

use super::jwt::{Algorithm, JwtError, VerifyingKey};
use crate::client::{Client, ClientError};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use tokio::time::Instant;

/// How long a key set is cached when its answer has no `Cache-Control: max-age`.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5 * 60);
/// The least time between two fetches caused by unknown `kid`s or by failures.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(30);
/// How long past its expiry the last good key set is used while fetches fail.
pub const DEFAULT_MAX_STALE: Duration = Duration::from_secs(24 * 60 * 60);
/// The time a fetch may take, connection included.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The bounds within which a `Cache-Control: max-age` is honoured.
pub const DEFAULT_MAX_AGE_BOUNDS: (Duration, Duration) =
    (Duration::from_secs(60), Duration::from_secs(24 * 60 * 60));
/// The largest key set document read (a real one is a few KiB).
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// The error a [`Jwks::from_fn`] fetch may return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A key set could not be set up or fetched.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// The URL given to [`Jwks::from_url`] is not a plain `http://` URL.
    #[error("JWKS URL `{url}`: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The request failed (connection, timeout, body).
    #[error("fetching the JWKS failed: {0}")]
    Client(#[from] ClientError),
    /// The provider answered with an error status.
    #[error("the JWKS endpoint answered {0}")]
    Status(http::StatusCode),
    /// A [`Jwks::from_fn`] fetch took longer than the timeout.
    #[error("fetching the JWKS timed out after {0:?}")]
    Timeout(Duration),
    /// The answer is not a JSON Web Key Set (`{"keys": [...]}`).
    #[error("the JWKS document is not a key set: {0}")]
    Document(#[source] serde_json::Error),
    /// A [`Jwks::from_fn`] fetch failed.
    #[error("fetching the JWKS failed: {0}")]
    Source(#[source] BoxError),
}

/// What a [`Jwks::from_fn`] fetch brings back: the key set document and
/// the answer's `Cache-Control`, if any.
#[derive(Debug, Clone)]
pub struct JwksResponse {
    body: Bytes,
    cache_control: Option<String>,
}

impl JwksResponse {
    /// The document (`{"keys": [...]}`), as received.
    pub fn new(body: impl Into<Bytes>) -> Self {
        Self {
            body: body.into(),
            cache_control: None,
        }
    }

    /// The answer's `Cache-Control` header: its `max-age` sets how long the
    /// set is cached.
    #[must_use]
    pub fn cache_control(mut self, value: impl Into<String>) -> Self {
        self.cache_control = Some(value.into());
        self
    }
}

type FetchFn = dyn Fn() -> BoxFuture<'static, Result<JwksResponse, BoxError>> + Send + Sync;

enum Source {
    // Boxed: the client is large, and a source is built once.
    Url { client: Box<Client>, url: String },
    Fn(Box<FetchFn>),
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    ttl: Duration,
    max_age_bounds: (Duration, Duration),
    cooldown: Duration,
    max_stale: Duration,
    timeout: Duration,
}

/// The cached key set and what is known about its fetches.
struct KeySet {
    keys: Vec<Arc<VerifyingKey>>,
    /// When the last successful fetch ended; `None` before the first.
    fetched_at: Option<Instant>,
    /// How long these keys are fresh, from `fetched_at`.
    ttl: Duration,
    /// When the last fetch, successful or not, ended.
    last_attempt: Option<Instant>,
    last_failed: bool,
    /// Bumped by every fetch: a waiter that sees it changed knows that
    /// somebody else fetched meanwhile (single flight).
    generation: u64,
}

struct Shared {
    source: Source,
    state: RwLock<Arc<KeySet>>,
    fetch: tokio::sync::Mutex<()>,
}

/// A JSON Web Key Set fetched from a URL (cargo feature `jwks`): the key
/// source of a [`JwtVerifier`](super::jwt::JwtVerifier) whose tokens are
/// signed by an identity provider that publishes its public keys, and
/// rotates them, at a `jwks_uri`. Cheap to clone: clones share the cache.
/// Give it to [`JwtVerifier::from_jwks`](super::jwt::JwtVerifier::from_jwks)
/// or [`JwtVerifier::jwks`](super::jwt::JwtVerifier::jwks).
///
/// The behaviour, in the order a request meets it:
///
/// - **Lazy, cached.** Nothing is fetched until the first token needs a key
///   (or [`Jwks::refresh`] is called, say at start-up). A fetched set is
///   cached for its time to live: the `max-age` of the answer's
///   `Cache-Control`, kept within [`max_age_bounds`](Jwks::max_age_bounds)
///   (default 1 minute to 1 day), else [`ttl`](Jwks::ttl) (default
///   5 minutes). A request that finds the set expired waits for one refetch.
/// - **Rotation by `kid`.** A token whose `kid` is not in the cached set
///   triggers one refetch, at most once per [`cooldown`](Jwks::cooldown)
///   (default 30 s) so that a flood of made-up `kid`s cannot turn into a
///   flood of fetches; if the `kid` is still unknown, the token is refused
///   (401 `invalid_token`). A key the provider has removed is refused once
///   the cached set it was in has expired.
/// - **Single flight.** Concurrent requests that need a fetch share one: the
///   first fetches, the others wait for it (bounded by the fetch
///   [`timeout`](Jwks::timeout), default 5 s) and then use its result.
/// - **Stale while error.** A failed fetch (connection refused, timeout,
///   non-2xx answer, a body that is not a key set) is logged at `warn` and
///   the last good set stays in use, for at most
///   [`max_stale`](Jwks::max_stale) past its expiry (default 1 day); the
///   next attempt comes after the cooldown. Before any fetch has succeeded,
///   JWKS tokens are refused.
/// - **Strict keys.** Each JWK is bound to the algorithms its key type
///   allows — RSA (`n`, `e`): RS256/384/512 and PS256/384/512; EC P-256
///   (`x`, `y`): ES256; EC P-384: ES384; OKP Ed25519 (`x`): EdDSA — or to its
///   `alg` when it names one (and an `alg` that does not fit the key type
///   discards the key). A token must name one of its key's algorithms. Keys
///   whose `use` is not `sig`, whose `key_ops` lack `verify`, and symmetric
///   (`oct`) keys are skipped: a key set never supplies an HMAC secret, so
///   an HS256 token naming an RSA key's `kid` is refused (no algorithm
///   confusion). A token without `kid` is verified when exactly one key of
///   the set fits its algorithm, and refused when several do.
///
/// ```
/// use ferrapi::security::jwt::{Jwks, JwtLayer, JwtVerifier};
/// use ferrapi::prelude::*;
/// use std::time::Duration;
///
/// let jwks = Jwks::from_url("http://keycloak.internal:8080/realms/main/protocol/openid-connect/certs")?
///     .ttl(Duration::from_secs(600))
///     .cooldown(Duration::from_secs(60));
/// let verifier = JwtVerifier::from_jwks(jwks)
///     .issuer(["http://keycloak.internal:8080/realms/main"])
///     .audience(["users-api"]);
/// let app = App::new().layer(JwtLayer::new(verifier));
/// # Ok::<(), ferrapi::security::jwt::JwksError>(())
/// ```
///
/// [`Jwks::from_url`] fetches with ferrapi's own [client](crate::client),
/// which speaks plain `http://` only: a provider inside the cluster, or one
/// reached through a sidecar or egress proxy. For an `https://` provider,
/// [`Jwks::from_fn`] takes the fetch from any client (reqwest, …) and keeps
/// all of the above.
#[derive(Clone)]
pub struct Jwks {
    shared: Arc<Shared>,
    settings: Settings,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Jwks");
        match &self.shared.source {
            Source::Url { url, .. } => d.field("url", url),
            Source::Fn(_) => d.field("source", &"fn"),
        };
        d.field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// What the cached set says about a token's key.
pub(crate) enum Lookup {
    /// Verify with this key.
    Key(Arc<VerifyingKey>),
    /// Fetch first (after the fetch numbered by this generation), then look
    /// again without fetching.
    Refresh(u64),
    /// Refuse the token.
    Refused(JwtError),
}

impl Jwks {
    /// The key set at `url` (plain `http://`), fetched with ferrapi's
    /// [`Client`] when first needed.
    ///
    /// # Errors
    /// The URL does not parse, or is not `http://` (see [`Jwks::from_fn`]
    /// for `https://`).
    pub fn from_url(url: impl Into<String>) -> Result<Self, JwksError> {
        let url = url.into();
        let bad = |reason: &str| JwksError::Url {
            url: url.clone(),
            reason: reason.to_owned(),
        };
        let uri: http::Uri = url.parse().map_err(|_| bad("not a URL"))?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            return Err(bad(
                "only http://host/… URLs are fetched by ferrapi's client; use Jwks::from_fn for https",
            ));
        }
        let client = Client::with_settings(DEFAULT_FETCH_TIMEOUT, MAX_DOCUMENT_BYTES);
        Ok(Self::with_source(Source::Url {
            client: Box::new(client),
            url,
        }))
    }

    /// A key set fetched by `fetch`, with any HTTP client: it returns the
    /// document and the answer's `Cache-Control`. Caching, rotation, single
    /// flight and stale-while-error work as for [`Jwks::from_url`].
    ///
    /// ```
    /// use ferrapi::security::jwt::{Jwks, JwksResponse, JwtVerifier};
    ///
    /// // Here a document in memory; a real fetch calls the provider over
    /// // https with a client such as reqwest.
    /// let jwks = Jwks::from_fn(|| async {
    ///     let body = r#"{"keys": []}"#;
    ///     Ok(JwksResponse::new(body).cache_control("public, max-age=3600"))
    /// });
    /// let verifier = JwtVerifier::from_jwks(jwks);
    /// ```
    pub fn from_fn<F, Fut>(fetch: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<JwksResponse, BoxError>> + Send + 'static,
    {
        Self::with_source(Source::Fn(Box::new(move || Box::pin(fetch()))))
    }

    fn with_source(source: Source) -> Self {
        Self {
            shared: Arc::new(Shared {
                source,
                state: RwLock::new(Arc::new(KeySet {
                    keys: Vec::new(),
                    fetched_at: None,
                    ttl: Duration::ZERO,
                    last_attempt: None,
                    last_failed: false,
                    generation: 0,
                })),
                fetch: tokio::sync::Mutex::new(()),
            }),
            settings: Settings {
                ttl: DEFAULT_TTL,
                max_age_bounds: DEFAULT_MAX_AGE_BOUNDS,
                cooldown: DEFAULT_COOLDOWN,
                max_stale: DEFAULT_MAX_STALE,
                timeout: DEFAULT_FETCH_TIMEOUT,
            },
        }
    }

    /// How long a fetched set is used when the answer has no
    /// `Cache-Control: max-age` (default 5 minutes).
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.settings.ttl = ttl;
        self
    }

    /// The bounds within which an answer's `Cache-Control: max-age` is
    /// honoured (default 1 minute to 1 day); `no-cache` and `no-store` count
    /// as 0, so as the lower bound. Bounds equal to [`ttl`](Self::ttl)
    /// ignore `Cache-Control`.
    #[must_use]
    pub fn max_age_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.settings.max_age_bounds = (min, max.max(min));
        self
    }

    /// The least time between a fetch and the next one caused by an unknown
    /// `kid`, or the retry after a failed fetch (default 30 s).
    #[must_use]
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.settings.cooldown = cooldown;
        self
    }

    /// How long past its expiry the last good set stays in use while
    /// fetches fail (default 1 day); after that, tokens are refused until a
    /// fetch succeeds.
    #[must_use]
    pub fn max_stale(mut self, max_stale: Duration) -> Self {
        self.settings.max_stale = max_stale;
        self
    }

    /// The time a fetch may take, connection included (default 5 s).
    /// Requests waiting for a fetch wait at most this long.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout = timeout;
        self
    }

    /// Fetches now, whatever the cache's state (waiting for a fetch in
    /// progress first), and returns how many usable keys the set has. For a
    /// start-up hook or a readiness check; a failure keeps the last good
    /// set, as for fetches caused by tokens.
    ///
    /// # Errors
    /// Why the fetch failed.
    pub async fn refresh(&self) -> Result<usize, JwksError> {
        let _single_flight = self.shared.fetch.lock().await;
        self.fetch_and_store().await
    }

    fn current(&self) -> Arc<KeySet> {
        self.shared
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Finds the key of a token with this `kid` and `alg`. With
    /// `may_refresh`, answers [`Lookup::Refresh`] when a fetch is due (no
    /// set yet, expired, unknown `kid` after the cooldown); without, decides
    /// with what is cached.
    pub(crate) fn lookup(&self, kid: Option<&str>, alg: Algorithm, may_refresh: bool) -> Lookup {
        let set = self.current();
        let s = &self.settings;
        let now = Instant::now();
        let since_attempt = set.last_attempt.map(|t| now.saturating_duration_since(t));
        let cooled_down = since_attempt.is_none_or(|d| d >= s.cooldown);
        // After a failure, the next attempt waits for the cooldown.
        let may_retry = may_refresh && (!set.last_failed || cooled_down);
        let Some(fetched_at) = set.fetched_at else {
            if may_retry {
                return Lookup::Refresh(set.generation);
            }
            return Lookup::Refused(JwtError::KeySet(
                "no key set: the JWKS has not been fetched successfully yet".into(),
            ));
        };
        let age = now.saturating_duration_since(fetched_at);
        if age >= set.ttl {
            if may_retry {
                return Lookup::Refresh(set.generation);
            }
            if age >= set.ttl.saturating_add(s.max_stale) {
                return Lookup::Refused(JwtError::KeySet(
                    "the JWKS expired and could not be refetched".into(),
                ));
            }
            // Stale while error: the last good set.
        }
        match kid {
            Some(kid) => {
                let mut named = false;
                for key in set.keys.iter().filter(|k| k.kid.as_deref() == Some(kid)) {
                    if key.alg == alg {
                        return Lookup::Key(key.clone());
                    }
                    named = true;
                }
                if named {
                    Lookup::Refused(JwtError::Algorithm(alg))
                } else if may_refresh && cooled_down {
                    Lookup::Refresh(set.generation)
                } else {
                    Lookup::Refused(JwtError::UnknownKid(kid.to_owned()))
                }
            }
            None => {
                let mut fitting = set.keys.iter().filter(|k| k.alg == alg);
                match (fitting.next(), fitting.next()) {
                    (Some(key), None) => Lookup::Key(key.clone()),
                    (Some(_), Some(_)) => Lookup::Refused(JwtError::MissingKid),
                    (None, _) => Lookup::Refused(JwtError::Algorithm(alg)),
                }
            }
        }
    }

    /// Fetches unless another fetch ended since [`Lookup::Refresh`] named
    /// `generation` (single flight: the waiters of a burst share one fetch).
    pub(crate) async fn refresh_after(&self, generation: u64) {
        let _single_flight = self.shared.fetch.lock().await;
        if self.current().generation == generation {
            // The outcome is logged and stored; the caller looks again.
            let _ = self.fetch_and_store().await;
        }
    }

    /// One fetch; the new set, or the failure next to the last good set,
    /// becomes the cache. Called with the fetch lock held.
    async fn fetch_and_store(&self) -> Result<usize, JwksError> {
        let result = self.fetch().await;
        let now = Instant::now();
        let previous = self.current();
        let next = match &result {
            Ok(fetched) => {
                tracing::debug!(
                    jwks = self.source_name(),
                    keys = fetched.usable,
                    ttl_s = fetched.ttl.as_secs_f64(),
                    "JWKS fetched"
                );
                if fetched.usable == 0 {
                    tracing::warn!(
                        jwks = self.source_name(),
                        "the JWKS has no usable key: every JWKS token is refused"
                    );
                }
                KeySet {
                    keys: fetched.keys.clone(),
                    fetched_at: Some(now),
                    ttl: fetched.ttl,
                    last_attempt: Some(now),
                    last_failed: false,
                    generation: previous.generation + 1,
                }
            }
            Err(error) => {
                let age = previous
                    .fetched_at
                    .map(|t| now.saturating_duration_since(t).as_secs());
                tracing::warn!(
                    jwks = self.source_name(),
                    %error,
                    last_good_age_s = age,
                    "JWKS fetch failed; the last good key set stays in use"
                );
                KeySet {
                    keys: previous.keys.clone(),
                    fetched_at: previous.fetched_at,
                    ttl: previous.ttl,
                    last_attempt: Some(now),
                    last_failed: true,
                    generation: previous.generation + 1,
                }
            }
        };
        *self
            .shared
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(next);
        result.map(|fetched| fetched.usable)
    }

    /// The URL, for the log.
    fn source_name(&self) -> &str {
        match &self.shared.source {
            Source::Url { url, .. } => url,
            Source::Fn(_) => "Jwks::from_fn",
        }
    }

    async fn fetch(&self) -> Result<Fetched, JwksError> {
        let timeout = self.settings.timeout;
        let response = match &self.shared.source {
            Source::Url { client, url } => {
                let res = client
                    .get(url)
                    .header(http::header::ACCEPT, "application/json")
                    .timeout(timeout)
                    .send()
                    .await?;
                if !res.status().is_success() {
                    return Err(JwksError::Status(res.status()));
                }
                JwksResponse {
                    body: res.bytes().clone(),
                    cache_control: res.header("cache-control").map(str::to_owned),
                }
            }
            Source::Fn(fetch) => tokio::time::timeout(timeout, fetch())
                .await
                .map_err(|_| JwksError::Timeout(timeout))?
                .map_err(JwksError::Source)?,
        };
        let (keys, usable) = parse_key_set(&response.body)?;
        let ttl = match response.cache_control.as_deref().and_then(max_age) {
            Some(max_age) => {
                let (min, max) = self.settings.max_age_bounds;
                max_age.clamp(min, max)
            }
            None => self.settings.ttl,
        };
        Ok(Fetched { keys, usable, ttl })
    }
}

/// A key set as fetched.
struct Fetched {
    /// One key per JWK and algorithm it may verify.
    keys: Vec<Arc<VerifyingKey>>,
    /// How many JWKs were usable.
    usable: usize,
    ttl: Duration,
}

/// The `max-age` of a `Cache-Control` value; `no-cache` and `no-store` are 0.
fn max_age(cache_control: &str) -> Option<Duration> {
    let mut found = None;
    for directive in cache_control.split(',') {
        let (name, value) = directive
            .split_once('=')
            .map_or((directive, None), |(n, v)| (n, Some(v)));
        let name = name.trim();
        if name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store") {
            return Some(Duration::ZERO);
        }
        if name.eq_ignore_ascii_case("max-age") {
            found = value
                .map(|v| v.trim().trim_matches('"'))
                .and_then(|v| v.parse::<u64>().ok())
                .map(Duration::from_secs);
        }
    }
    found
}

/// The keys of a JWKS document and how many JWKs gave them; unusable JWKs
/// are skipped and logged.
fn parse_key_set(body: &[u8]) -> Result<(Vec<Arc<VerifyingKey>>, usize), JwksError> {
    #[derive(serde::Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let document: Document = serde_json::from_slice(body).map_err(JwksError::Document)?;
    let (mut keys, mut usable) = (Vec::new(), 0);
    for (index, value) in document.keys.into_iter().enumerate() {
        let kid = value.get("kid").and_then(|k| k.as_str()).map(str::to_owned);
        let jwk = match serde_json::from_value::<Jwk>(value) {
            Ok(jwk) => jwk,
            Err(e) => {
                tracing::warn!(index, ?kid, reason = %e, "JWKS key skipped: not a JWK");
                continue;
            }
        };
        match verifying_keys(&jwk) {
            Ok(fitting) => {
                keys.extend(fitting.into_iter().map(Arc::new));
                usable += 1;
            }
            Err(Skip::NotForSignatures) => {
                tracing::debug!(index, ?kid, "JWKS key skipped: not a signature key");
            }
            Err(Skip::Unusable(reason)) => {
                tracing::warn!(index, ?kid, %reason, "JWKS key skipped");
            }
        }
    }
    Ok((keys, usable))
}

enum Skip {
    NotForSignatures,
    Unusable(String),
}

/// The keys a JWK gives: one per algorithm it may verify, each named by the
/// JWK's `kid`.
fn verifying_keys(jwk: &Jwk) -> Result<Vec<VerifyingKey>, Skip> {
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != PublicKeyUse::Signature)
    {
        return Err(Skip::NotForSignatures);
    }
    if jwk
        .common
        .key_operations
        .as_ref()
        .is_some_and(|ops| !ops.contains(&KeyOperations::Verify))
    {
        return Err(Skip::NotForSignatures);
    }
    let by_type: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => &[
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => &[Algorithm::ES256],
            EllipticCurve::P384 => &[Algorithm::ES384],
            _ => return Err(Skip::Unusable(format!("unsupported curve {:?}", p.curve))),
        },
        AlgorithmParameters::OctetKeyPair(p) => match p.curve {
            EllipticCurve::Ed25519 => &[Algorithm::EdDSA],
            _ => return Err(Skip::Unusable(format!("unsupported curve {:?}", p.curve))),
        },
        AlgorithmParameters::OctetKey(_) => {
            return Err(Skip::Unusable(
                "a symmetric (oct) key: a key set never supplies HMAC secrets".into(),
            ));
        }
        _ => return Err(Skip::Unusable("unsupported key type".into())),
    };
    let algorithms = match jwk.common.key_algorithm {
        None => by_type.to_vec(),
        Some(named) => match Algorithm::try_from(named) {
            Ok(alg) if by_type.contains(&alg) => vec![alg],
            _ => {
                return Err(Skip::Unusable(format!(
                    "`alg` {named} does not fit the key type"
                )));
            }
        },
    };
    let key = DecodingKey::from_jwk(jwk).map_err(|e| Skip::Unusable(e.to_string()))?;
    let kid = jwk.common.key_id.clone();
    algorithms
        .into_iter()
        .map(|alg| {
            let key =
                VerifyingKey::new(alg, key.clone()).map_err(|e| Skip::Unusable(e.to_string()))?;
            Ok(match &kid {
                Some(kid) => key.kid(kid.clone()),
                None => key,
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const RSA_JWK: &str = r#"{"kty":"RSA","kid":"r1","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB"}"#;
    const EC_JWK: &str = r#"{"kty":"EC","kid":"e1","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
    const OKP_JWK: &str = r#"{"kty":"OKP","kid":"o1","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;

    fn algs(jwk: &str) -> Result<Vec<Algorithm>, String> {
        let jwk: Jwk = serde_json::from_str(jwk).unwrap();
        verifying_keys(&jwk)
            .map(|keys| keys.iter().map(|k| k.alg).collect())
            .map_err(|e| match e {
                Skip::NotForSignatures => "not for signatures".to_owned(),
                Skip::Unusable(r) => r,
            })
    }

    fn with(jwk: &str, field: &str, value: serde_json::Value) -> String {
        let mut v: serde_json::Value = serde_json::from_str(jwk).unwrap();
        v[field] = value;
        v.to_string()
    }

    #[test]
    fn each_key_type_is_bound_to_its_algorithms() {
        assert_eq!(algs(RSA_JWK).unwrap().len(), 6);
        assert!(!algs(RSA_JWK).unwrap().contains(&Algorithm::HS256));
        assert_eq!(algs(EC_JWK).unwrap(), [Algorithm::ES256]);
        assert_eq!(algs(OKP_JWK).unwrap(), [Algorithm::EdDSA]);
        // `alg` narrows to itself; one that does not fit discards the key.
        let rs256 = with(RSA_JWK, "alg", "RS256".into());
        assert_eq!(algs(&rs256).unwrap(), [Algorithm::RS256]);
        assert!(algs(&with(RSA_JWK, "alg", "HS256".into())).is_err());
        assert!(algs(&with(RSA_JWK, "alg", "ES256".into())).is_err());
        assert!(algs(&with(EC_JWK, "alg", "ES384".into())).is_err());
        assert!(algs(&with(RSA_JWK, "alg", "RSA-OAEP".into())).is_err());
        // Encryption keys and keys not for `verify` are skipped.
        assert_eq!(
            algs(&with(RSA_JWK, "use", "enc".into())),
            Err("not for signatures".to_owned())
        );
        assert!(algs(&with(RSA_JWK, "use", "sig".into())).is_ok());
        assert!(algs(&with(RSA_JWK, "key_ops", serde_json::json!(["encrypt"]))).is_err());
        assert!(algs(&with(RSA_JWK, "key_ops", serde_json::json!(["verify"]))).is_ok());
        // Symmetric keys never come from a key set.
        let oct = r#"{"kty":"oct","kid":"h1","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA","alg":"HS256"}"#;
        assert!(algs(oct).unwrap_err().contains("oct"));
    }

    #[test]
    fn a_bad_key_does_not_spoil_the_set() {
        let doc = format!(
            r#"{{"keys": [{RSA_JWK}, {{"kty":"X"}}, {{"kty":"OKP","crv":"X25519","x":"AA"}}, 42, {EC_JWK}]}}"#
        );
        let (keys, usable) = parse_key_set(doc.as_bytes()).unwrap();
        assert_eq!(usable, 2);
        let kids: Vec<_> = keys.iter().filter_map(|k| k.kid.clone()).collect();
        assert_eq!(kids.iter().filter(|k| *k == "r1").count(), 6);
        assert_eq!(kids.iter().filter(|k| *k == "e1").count(), 1);
        assert_eq!(kids.len(), 7);
        assert!(matches!(
            parse_key_set(b"<html>"),
            Err(JwksError::Document(_))
        ));
        assert!(matches!(
            parse_key_set(br#"{"kid": "r1"}"#),
            Err(JwksError::Document(_))
        ));
    }

    #[test]
    fn cache_control_max_age() {
        assert_eq!(
            max_age("public, max-age=600"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(max_age("Max-Age = \"60\""), Some(Duration::from_secs(60)));
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("max-age=600, no-cache"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=soon"), None);
        assert_eq!(max_age("s-maxage=60"), None);
    }

    #[test]
    fn only_plain_http_urls() {
        assert!(Jwks::from_url("http://127.0.0.1:9/jwks.json").is_ok());
        for bad in [
            "https://idp.example.com/jwks",
            "idp/jwks",
            "file:///etc/jwks",
            "",
        ] {
            assert!(
                matches!(Jwks::from_url(bad), Err(JwksError::Url { .. })),
                "{bad}"
            );
        }
    }

    /// A source whose document the test sets and whose fetches it counts.
    fn counted(doc: Arc<RwLock<Option<String>>>, fetches: Arc<AtomicUsize>) -> Jwks {
        Jwks::from_fn(move || {
            let doc = doc.read().unwrap().clone();
            fetches.fetch_add(1, Ordering::SeqCst);
            async move {
                match doc {
                    Some(body) => Ok(JwksResponse::new(body)),
                    None => Err("provider down".into()),
                }
            }
        })
    }

    fn kid_of(lookup: &Lookup) -> Option<&str> {
        match lookup {
            Lookup::Key(k) => k.kid.as_deref(),
            _ => None,
        }
    }

    /// The cache's decisions with the clock under the test's control.
    #[tokio::test(start_paused = true)]
    async fn ttl_cooldown_and_stale_while_error() {
        let doc = Arc::new(RwLock::new(Some(format!(r#"{{"keys": [{OKP_JWK}]}}"#))));
        let fetches = Arc::new(AtomicUsize::new(0));
        let jwks = counted(doc.clone(), fetches.clone())
            .ttl(Duration::from_secs(300))
            .cooldown(Duration::from_secs(30))
            .max_stale(Duration::from_secs(3600));
        let look = |kid: &str, may_refresh| jwks.lookup(Some(kid), Algorithm::EdDSA, may_refresh);

        // Cold: without fetching, refused; with, a fetch is due.
        assert!(matches!(
            look("o1", false),
            Lookup::Refused(JwtError::KeySet(_))
        ));
        let Lookup::Refresh(generation) = look("o1", true) else {
            panic!("cold set")
        };
        jwks.refresh_after(generation).await;
        assert_eq!(kid_of(&look("o1", true)), Some("o1"));
        // A second waiter of the same fetch does not fetch again.
        jwks.refresh_after(generation).await;
        assert_eq!(fetches.load(Ordering::SeqCst), 1);

        // Unknown kid: refused within the cooldown, refetch due after it.
        assert!(matches!(
            look("o2", true),
            Lookup::Refused(JwtError::UnknownKid(_))
        ));
        tokio::time::advance(Duration::from_secs(31)).await;
        let Lookup::Refresh(generation) = look("o2", true) else {
            panic!("cooled down")
        };
        jwks.refresh_after(generation).await;
        assert!(matches!(
            look("o2", true),
            Lookup::Refused(JwtError::UnknownKid(_))
        ));
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
        // The wrong algorithm for a known kid is no reason to fetch.
        assert!(matches!(
            jwks.lookup(Some("o1"), Algorithm::RS256, true),
            Lookup::Refused(JwtError::Algorithm(Algorithm::RS256))
        ));

        // Expired, provider down: one attempt, then the last good set.
        *doc.write().unwrap() = None;
        tokio::time::advance(Duration::from_secs(301)).await;
        let Lookup::Refresh(generation) = look("o1", true) else {
            panic!("expired")
        };
        jwks.refresh_after(generation).await;
        assert_eq!(fetches.load(Ordering::SeqCst), 3);
        assert_eq!(kid_of(&look("o1", true)), Some("o1"), "stale while error");
        // Retried after the cooldown, not before.
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(matches!(look("o1", true), Lookup::Refresh(_)));
        assert_eq!(kid_of(&look("o1", false)), Some("o1"));
        // Past max_stale, refused.
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert!(matches!(
            look("o1", false),
            Lookup::Refused(JwtError::KeySet(_))
        ));
        // The provider is back: the explicit refresh reports the usable
        // JWKs (the RSA one verifies six algorithms, and counts once).
        *doc.write().unwrap() = Some(format!(
            r#"{{"keys": [{OKP_JWK}, {EC_JWK}, {RSA_JWK}, {{"kty": "oct", "k": "AA"}}]}}"#
        ));
        assert_eq!(jwks.refresh().await.unwrap(), 3);
        assert_eq!(kid_of(&look("o1", false)), Some("o1"));
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_without_kid_need_exactly_one_fitting_key() {
        let second = OKP_JWK.replace("\"o1\"", "\"o2\"");
        let doc = Arc::new(RwLock::new(Some(format!(
            r#"{{"keys": [{OKP_JWK}, {EC_JWK}]}}"#
        ))));
        let jwks = counted(doc.clone(), Arc::new(AtomicUsize::new(0)));
        jwks.refresh().await.unwrap();
        assert_eq!(
            kid_of(&jwks.lookup(None, Algorithm::EdDSA, true)),
            Some("o1")
        );
        assert!(matches!(
            jwks.lookup(None, Algorithm::RS256, true),
            Lookup::Refused(JwtError::Algorithm(_))
        ));
        *doc.write().unwrap() = Some(format!(r#"{{"keys": [{OKP_JWK}, {second}]}}"#));
        jwks.refresh().await.unwrap();
        assert!(matches!(
            jwks.lookup(None, Algorithm::EdDSA, true),
            Lookup::Refused(JwtError::MissingKid)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn cache_control_sets_the_ttl_within_bounds() {
        let fetched = |cache_control: &'static str| {
            Jwks::from_fn(move || async move {
                Ok(JwksResponse::new(r#"{"keys": []}"#).cache_control(cache_control))
            })
            .ttl(Duration::from_secs(300))
            .max_age_bounds(Duration::from_secs(60), Duration::from_secs(3600))
        };
        for (header, ttl) in [
            ("max-age=600", 600),
            ("max-age=5", 60),
            ("max-age=86400", 3600),
            ("no-store", 60),
            ("public", 300),
        ] {
            let jwks = fetched(header);
            jwks.refresh().await.unwrap();
            assert_eq!(jwks.current().ttl, Duration::from_secs(ttl), "{header}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_fetch_times_out() {
        let jwks = Jwks::from_fn(std::future::pending).timeout(Duration::from_secs(2));
        assert!(matches!(jwks.refresh().await, Err(JwksError::Timeout(_))));
    }
}
