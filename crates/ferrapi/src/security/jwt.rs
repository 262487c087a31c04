//! JSON Web Tokens (cargo feature `jwt`): [`JwtVerifier`] checks
//! `Authorization: Bearer` tokens, [`Claims<T>`] hands the verified claims to
//! handlers and dependencies, [`JwtLayer`] verifies before the rest of the
//! middleware (so that a rate limiter can count per user), [`JwtIssuer`]
//! makes tokens for the OAuth2 password flow.
//!
//! Verification is strict by construction:
//!
//! - each key is bound to one algorithm (HS256, RS256, EdDSA, …): a token
//!   whose header names another algorithm is refused, so an RSA public key
//!   can never be used as an HMAC secret (algorithm confusion), and
//!   `alg: none` is not even a known algorithm;
//! - with several keys (rotation), a token's `kid` selects the key; an
//!   unknown `kid` is refused;
//! - keys can also come from an identity provider's JSON Web Key Set
//!   (`Jwks`, feature `jwks`): fetched from its URL, cached, refetched
//!   when a token names a `kid` the cache lacks (key rotation), the last
//!   good set kept while the provider is unreachable;
//! - `exp` is required and checked, `nbf` checked when present, `iss` and
//!   `aud` when configured, all with a leeway for clock skew (default 60 s).
//!
//! A refused token is answered `401 {"detail": "Could not validate
//! credentials"}` with `WWW-Authenticate: Bearer error="invalid_token"`;
//! a missing one (when [`Claims<T>`] is required) `401 {"detail": "Not
//! authenticated"}` with `WWW-Authenticate: Bearer`.
//!
//! ```
//! use ferrapi::security::jwt::{Claims, JwtIssuer, JwtVerifier, VerifyingKey};
//! use ferrapi::prelude::*;
//!
//! #[derive(Deserialize)]
//! struct User { sub: String }
//!
//! #[get("/me")]
//! async fn me(Claims(user): Claims<User>) -> String {
//!     user.sub
//! }
//!
//! let secret = b"a secret of at least 32 bytes, really";
//! let issuer = JwtIssuer::hs256(secret).issuer("users-api");
//! let token = issuer.issue(&serde_json::json!({"sub": "42"}))?;
//! assert_eq!(token.token_type, "bearer");
//!
//! let verifier = JwtVerifier::new(VerifyingKey::hs256(secret)).issuer(["users-api"]);
//! let app = App::new().state(verifier).route(me);
//! # Ok::<(), ferrapi::security::jwt::JwtError>(())
//! ```

use crate::extract::{FromRequestParts, Rejection, RequestContext};
use crate::openapi::{DescribeInput, OperationBuilder};
use crate::response::Response;
use ferrapi_core::HttpError;
use ferrapi_core::middleware::{Flow, Hook};
use http::request::Parts;
use http::{HeaderMap, Request};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use jsonwebtoken::Algorithm;

#[cfg(feature = "jwks")]
pub use super::jwks::{
    BoxError, DEFAULT_COOLDOWN, DEFAULT_FETCH_TIMEOUT, DEFAULT_MAX_AGE_BOUNDS, DEFAULT_MAX_STALE,
    DEFAULT_TTL, Jwks, JwksError, JwksResponse,
};

/// Why a token was refused, or a key could not be read. The message is for
/// the log; the client only learns `invalid_token`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not three base64url parts, an unknown algorithm (`none` included),
    /// claims that are not JSON.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The header names an algorithm no configured key uses.
    #[error("token algorithm {0:?} is not accepted")]
    Algorithm(Algorithm),
    /// The header's `kid` names no configured key (after a refetch of the
    /// key set, when there is one).
    #[error("unknown key id `{0}`")]
    UnknownKid(String),
    /// The header has no `kid`, and several keys of the key set could
    /// verify the token.
    #[error("the token has no `kid` and several keys fit it")]
    MissingKid,
    /// The key set (JWKS) has not been fetched, or has been stale too long.
    #[error("no usable key set: {0}")]
    KeySet(String),
    /// The signature does not verify.
    #[error("invalid signature")]
    Signature,
    /// `exp` is past.
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// `iss` is not an accepted issuer.
    #[error("wrong issuer")]
    Issuer,
    /// `aud` is not an accepted audience.
    #[error("wrong audience")]
    Audience,
    /// A required claim (`exp`, …) is missing or not of its type.
    #[error("claim `{0}` is missing or invalid")]
    Claim(String),
    /// The claims do not have the shape the handler asked for.
    #[error("claims do not match: {0}")]
    Shape(String),
    /// A key that cannot be read, or one that does not fit its algorithm.
    #[error("invalid key: {0}")]
    Key(String),
    /// Signing failed (issuing).
    #[error("cannot sign token: {0}")]
    Signing(String),
}

impl From<jsonwebtoken::errors::Error> for JwtError {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::InvalidSignature => JwtError::Signature,
            K::ExpiredSignature => JwtError::Expired,
            K::ImmatureSignature => JwtError::NotYetValid,
            K::InvalidIssuer => JwtError::Issuer,
            K::InvalidAudience => JwtError::Audience,
            K::MissingRequiredClaim(c) | K::InvalidClaimFormat(c) => JwtError::Claim(c.clone()),
            K::InvalidEcdsaKey | K::InvalidEddsaKey | K::InvalidRsaKey(_) | K::InvalidKeyFormat => {
                JwtError::Key(e.to_string())
            }
            K::RsaFailedSigning | K::Signing(_) => JwtError::Signing(e.to_string()),
            _ => JwtError::Malformed(e.to_string()),
        }
    }
}

/// A key that verifies tokens of exactly one algorithm, optionally named by
/// a key id (`kid`) for rotation.
#[derive(Clone)]
pub struct VerifyingKey {
    pub(super) alg: Algorithm,
    pub(super) kid: Option<String>,
    key: DecodingKey,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// An HMAC-SHA256 shared secret (use at least 32 random bytes).
    pub fn hs256(secret: &[u8]) -> Self {
        Self {
            alg: Algorithm::HS256,
            kid: None,
            key: DecodingKey::from_secret(secret),
        }
    }

    /// An RSA public key (PEM, `BEGIN PUBLIC KEY` or `BEGIN RSA PUBLIC
    /// KEY`) for RS256.
    ///
    /// # Errors
    /// The PEM is not an RSA public key.
    pub fn rs256_pem(pem: &[u8]) -> Result<Self, JwtError> {
        Ok(Self {
            alg: Algorithm::RS256,
            kid: None,
            key: DecodingKey::from_rsa_pem(pem)?,
        })
    }

    /// An Ed25519 public key (PEM) for EdDSA.
    ///
    /// # Errors
    /// The PEM is not an Ed25519 public key.
    pub fn eddsa_pem(pem: &[u8]) -> Result<Self, JwtError> {
        Ok(Self {
            alg: Algorithm::EdDSA,
            kid: None,
            key: DecodingKey::from_ed_pem(pem)?,
        })
    }

    /// Any `jsonwebtoken` key, bound to `alg`.
    ///
    /// # Errors
    /// The key is of another family than the algorithm (an RSA key for
    /// HS256, …).
    pub fn new(alg: Algorithm, key: DecodingKey) -> Result<Self, JwtError> {
        if key.family() != alg.family() {
            return Err(JwtError::Key(format!(
                "a {:?} key cannot verify {alg:?}",
                key.family()
            )));
        }
        Ok(Self {
            alg,
            kid: None,
            key,
        })
    }

    /// Names the key: tokens whose header carries this `kid` use it.
    #[must_use]
    pub fn kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }
}

/// Checks tokens (see the [module](super::jwt) docs). Register it as application
/// state for [`Claims<T>`], or give it to [`JwtLayer`].
#[derive(Debug, Clone)]
pub struct JwtVerifier {
    keys: Vec<VerifyingKey>,
    #[cfg(feature = "jwks")]
    jwks: Option<Jwks>,
    issuers: Vec<String>,
    audiences: Vec<String>,
    leeway: Duration,
}

impl JwtVerifier {
    /// Verifies with `key`; `exp` required; 60 s leeway; any issuer and
    /// audience.
    pub fn new(key: VerifyingKey) -> Self {
        Self {
            keys: vec![key],
            #[cfg(feature = "jwks")]
            jwks: None,
            issuers: Vec::new(),
            audiences: Vec::new(),
            leeway: Duration::from_secs(60),
        }
    }

    /// Verifies with the keys of an identity provider's key set (see
    /// [`Jwks`]); otherwise as [`new`](Self::new). Static keys added with
    /// [`key`](Self::key) are tried first.
    #[cfg(feature = "jwks")]
    pub fn from_jwks(jwks: Jwks) -> Self {
        Self {
            keys: Vec::new(),
            jwks: Some(jwks),
            issuers: Vec::new(),
            audiences: Vec::new(),
            leeway: Duration::from_secs(60),
        }
    }

    /// Also verifies with the keys of `jwks` (replacing an earlier one),
    /// for the tokens no static key verifies: a token whose `kid` names
    /// no static key, or without `kid` and of an algorithm no static key
    /// uses.
    #[cfg(feature = "jwks")]
    #[must_use]
    pub fn jwks(mut self, jwks: Jwks) -> Self {
        self.jwks = Some(jwks);
        self
    }

    /// Another key (key rotation: give each a [`kid`](VerifyingKey::kid)).
    #[must_use]
    pub fn key(mut self, key: VerifyingKey) -> Self {
        self.keys.push(key);
        self
    }

    /// Accepts only tokens whose `iss` is one of these.
    #[must_use]
    pub fn issuer<I: IntoIterator<Item = S>, S: Into<String>>(mut self, issuers: I) -> Self {
        self.issuers = issuers.into_iter().map(Into::into).collect();
        self
    }

    /// Accepts only tokens whose `aud` names one of these.
    #[must_use]
    pub fn audience<I: IntoIterator<Item = S>, S: Into<String>>(mut self, audiences: I) -> Self {
        self.audiences = audiences.into_iter().map(Into::into).collect();
        self
    }

    /// Tolerance on `exp` and `nbf` for clock skew (default 60 s).
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Verifies `token` and returns its claims, with the keys at hand: a
    /// key set (`Jwks`) is not fetched, its cached keys are used (also
    /// past their time to live, within its `max_stale`), and before its
    /// first fetch its tokens are refused. [`verify_async`](Self::verify_async)
    /// fetches when needed; [`JwtLayer`] and [`Claims<T>`] use it.
    ///
    /// # Errors
    /// Why the token is refused.
    pub fn verify<T: DeserializeOwned>(&self, token: &str) -> Result<T, JwtError> {
        match self.step(token, false) {
            Step::Done(result) => result,
            // `step` without fetching never asks for one; refuse if it did.
            #[cfg(feature = "jwks")]
            Step::Refresh(_) => Err(JwtError::KeySet("a refetch is needed".into())),
        }
    }

    /// Verifies `token` and returns its claims, fetching the key set
    /// (`Jwks`) first when that is due: none fetched yet, expired, or the
    /// token's `kid` unknown (at most once per cool-down). Without a key
    /// set, the same as [`verify`](Self::verify).
    ///
    /// # Errors
    /// Why the token is refused.
    pub async fn verify_async<T: DeserializeOwned>(&self, token: &str) -> Result<T, JwtError> {
        match self.step(token, true) {
            Step::Done(result) => result,
            #[cfg(feature = "jwks")]
            Step::Refresh(generation) => {
                if let Some(jwks) = &self.jwks {
                    jwks.refresh_after(generation).await;
                }
                self.verify(token)
            }
        }
    }

    /// Verifies with the key the header selects, unless the key set must be
    /// fetched first (only when `may_refresh`).
    fn step<T: DeserializeOwned>(&self, token: &str, may_refresh: bool) -> Step<T> {
        let header = match jsonwebtoken::decode_header(token) {
            Ok(header) => header,
            Err(e) => return Step::Done(Err(e.into())),
        };
        let fixed = match &header.kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid.as_str())),
            None => self.keys.iter().find(|k| k.alg == header.alg),
        };
        if let Some(key) = fixed {
            if key.alg != header.alg {
                return Step::Done(Err(JwtError::Algorithm(header.alg)));
            }
            return Step::Done(self.decode(token, key));
        }
        #[cfg(feature = "jwks")]
        if let Some(jwks) = &self.jwks {
            use super::jwks::Lookup;
            return match jwks.lookup(header.kid.as_deref(), header.alg, may_refresh) {
                Lookup::Key(key) => Step::Done(self.decode(token, &key)),
                Lookup::Refresh(generation) => Step::Refresh(generation),
                Lookup::Refused(e) => Step::Done(Err(e)),
            };
        }
        #[cfg(not(feature = "jwks"))]
        let _ = may_refresh;
        Step::Done(Err(match header.kid {
            Some(kid) => JwtError::UnknownKid(kid),
            None => JwtError::Algorithm(header.alg),
        }))
    }

    /// The signature and the claims, with `key` (of the token's algorithm).
    fn decode<T: DeserializeOwned>(&self, token: &str, key: &VerifyingKey) -> Result<T, JwtError> {
        let mut validation = Validation::new(key.alg);
        validation.algorithms = vec![key.alg];
        validation.leeway = self.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp"]);
        if self.issuers.is_empty() {
            validation.iss = None;
        } else {
            validation.set_issuer(&self.issuers);
        }
        if self.audiences.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&self.audiences);
        }
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key.key, &validation)?;
        serde_json::from_value(data.claims).map_err(|e| JwtError::Shape(e.to_string()))
    }
}

/// The outcome of [`JwtVerifier::step`].
enum Step<T> {
    Done(Result<T, JwtError>),
    /// Fetch the key set (after this generation's fetch), then verify
    /// without fetching.
    #[cfg(feature = "jwks")]
    Refresh(u64),
}

/// A token made by [`JwtIssuer::issue`]: the body of an OAuth2 token
/// response (`{"access_token": …, "token_type": "bearer", "expires_in": 3600}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct IssuedToken {
    /// The token.
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

/// Makes signed tokens with `iat`, `exp` (and `iss`, `aud` when set).
#[derive(Clone)]
pub struct JwtIssuer {
    alg: Algorithm,
    kid: Option<String>,
    key: EncodingKey,
    ttl: Duration,
    issuer: Option<String>,
    audience: Option<String>,
}

impl std::fmt::Debug for JwtIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtIssuer")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl JwtIssuer {
    /// HS256 with a shared secret; tokens live one hour.
    pub fn hs256(secret: &[u8]) -> Self {
        Self::with_key(Algorithm::HS256, EncodingKey::from_secret(secret))
    }

    /// RS256 with an RSA private key (PEM).
    ///
    /// # Errors
    /// The PEM is not an RSA private key.
    pub fn rs256_pem(pem: &[u8]) -> Result<Self, JwtError> {
        Ok(Self::with_key(
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(pem)?,
        ))
    }

    /// EdDSA with an Ed25519 private key (PEM, PKCS#8).
    ///
    /// # Errors
    /// The PEM is not an Ed25519 private key.
    pub fn eddsa_pem(pem: &[u8]) -> Result<Self, JwtError> {
        Ok(Self::with_key(
            Algorithm::EdDSA,
            EncodingKey::from_ed_pem(pem)?,
        ))
    }

    fn with_key(alg: Algorithm, key: EncodingKey) -> Self {
        Self {
            alg,
            kid: None,
            key,
            ttl: Duration::from_secs(3600),
            issuer: None,
            audience: None,
        }
    }

    /// How long tokens live (default one hour; `ACCESS_TOKEN_TTL`).
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The `kid` put in the header.
    #[must_use]
    pub fn kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The `iss` claim.
    #[must_use]
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The `aud` claim.
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Signs `claims` (a struct or map; usually with `sub`), adding `iat`
    /// and `exp`, and `iss`/`aud` when configured and not given.
    ///
    /// # Errors
    /// The claims are not a JSON object, or signing failed.
    pub fn issue<C: Serialize>(&self, claims: &C) -> Result<IssuedToken, JwtError> {
        let mut value = serde_json::to_value(claims).map_err(|e| JwtError::Shape(e.to_string()))?;
        let Some(map) = value.as_object_mut() else {
            return Err(JwtError::Shape("claims must be a JSON object".into()));
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let ttl = self.ttl.as_secs();
        map.insert("iat".into(), now.into());
        map.insert("exp".into(), (now + ttl).into());
        if let Some(iss) = &self.issuer {
            map.entry("iss").or_insert_with(|| iss.clone().into());
        }
        if let Some(aud) = &self.audience {
            map.entry("aud").or_insert_with(|| aud.clone().into());
        }
        let mut header = Header::new(self.alg);
        header.kid = self.kid.clone();
        let access_token = jsonwebtoken::encode(&header, &value, &self.key)?;
        Ok(IssuedToken {
            access_token,
            token_type: "bearer".into(),
            expires_in: ttl,
        })
    }
}

/// The verified claims of the request's bearer token, as `T`.
///
/// Verified by the [`JwtLayer`] when installed, else with the
/// [`JwtVerifier`] registered as application state. Documented in OpenAPI
/// as the `HTTPBearer` security scheme.
#[derive(Debug, Clone)]
pub struct Claims<T>(pub T);

impl<T> std::ops::Deref for Claims<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Claims verified by [`JwtLayer`], in the request's extensions.
#[derive(Debug, Clone)]
pub struct VerifiedClaims(pub Arc<serde_json::Value>);

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The 401 of a refused token.
fn invalid_token(e: &JwtError) -> HttpError {
    tracing::info!(reason = %e, "bearer token refused");
    HttpError::unauthorized("Could not validate credentials")
        .with_header("www-authenticate", "Bearer error=\"invalid_token\"")
}

impl<T: DeserializeOwned + Send> FromRequestParts for Claims<T> {
    async fn from_request_parts(parts: &mut Parts, cx: &RequestContext) -> Result<Self, Rejection> {
        if let Some(VerifiedClaims(value)) = parts.extensions.get::<VerifiedClaims>() {
            return T::deserialize(&**value)
                .map(Claims)
                .map_err(|e| invalid_token(&JwtError::Shape(e.to_string())).into());
        }
        let Some(token) = bearer(&parts.headers) else {
            return Err(HttpError::unauthorized("Not authenticated")
                .with_header("www-authenticate", "Bearer")
                .into());
        };
        let verifier = parts
            .extensions
            .get::<Arc<JwtVerifier>>()
            .map(|v| &**v)
            .or_else(|| cx.state::<JwtVerifier>());
        match verifier {
            Some(v) => v
                .verify_async(token)
                .await
                .map(Claims)
                .map_err(|e| invalid_token(&e).into()),
            None => Err(crate::middleware::MissingLayer {
                extractor: "Claims",
                layer: "JwtLayer or a JwtVerifier in App::state",
            }
            .into()),
        }
    }
}

impl<T> DescribeInput for Claims<T> {
    fn describe(op: &mut OperationBuilder<'_>) {
        op.security(
            "HTTPBearer",
            serde_json::json!({"type": "http", "scheme": "bearer"}),
            &[],
        );
    }
}

/// Verifies the bearer token of every request that has one, before the
/// layers inside it run: a refused token is answered 401 at once, a valid
/// one's claims go in the extensions ([`VerifiedClaims`], read by
/// [`Claims<T>`] and by a rate-limit key). Requests without a token pass;
/// routes that need one say so by taking [`Claims<T>`].
///
/// With [`reject_invalid(false)`](Self::reject_invalid) a refused token
/// passes too, without claims, as in FastAPI where only the routes that
/// depend on the token look at it: a public route serves the request,
/// and [`Claims<T>`] answers the 401. A valid token is still verified once
/// per request, here.
///
/// ```
/// use ferrapi::security::jwt::{JwtLayer, JwtVerifier, VerifiedClaims, VerifyingKey};
/// use ferrapi::middleware::{RateLimitKey, RateLimitLayer, TrustedProxies};
/// use ferrapi::prelude::*;
///
/// let verifier = JwtVerifier::new(VerifyingKey::hs256(b"0123456789abcdef0123456789abcdef"));
/// // Per user when authenticated, else per address.
/// let key = RateLimitKey::from_fn(|parts| {
///     let claims = parts.extensions.get::<VerifiedClaims>()?;
///     Some(format!("user:{}", claims.0.get("sub")?.as_str()?))
/// })
/// .or(RateLimitKey::client_ip(TrustedProxies::none()));
/// let app = App::new()
///     .layer(RateLimitLayer::new("100/1s".parse().unwrap()).key(key))
///     .layer(JwtLayer::new(verifier)); // outer: runs before the limiter
/// ```
#[derive(Debug, Clone)]
pub struct JwtLayer {
    verifier: Arc<JwtVerifier>,
    reject_invalid: bool,
}

impl JwtLayer {
    /// Verifies with `verifier`; a refused token is answered 401.
    pub fn new(verifier: JwtVerifier) -> Self {
        Self {
            verifier: Arc::new(verifier),
            reject_invalid: true,
        }
    }

    /// Whether a refused token is answered 401 by the layer (the default),
    /// or passes without claims, left to the routes that need a token.
    ///
    /// ```
    /// use ferrapi::security::jwt::{JwtLayer, JwtVerifier, VerifyingKey};
    ///
    /// let verifier = JwtVerifier::new(VerifyingKey::hs256(b"0123456789abcdef0123456789abcdef"));
    /// let layer = JwtLayer::new(verifier).reject_invalid(false);
    /// ```
    #[must_use]
    pub fn reject_invalid(mut self, reject: bool) -> Self {
        self.reject_invalid = reject;
        self
    }
}

crate::middleware::hook_layer!(JwtLayer, JwtService);

/// What a wait for the key set found, for the request's extensions.
#[derive(Debug)]
pub struct Verified {
    claims: Option<VerifiedClaims>,
    verifier: Arc<JwtVerifier>,
}

/// A request half only. The token is verified at once, or after a fetch
/// of the key set ([`Flow::Wait`], boxed: only when the `Jwks` cache is
/// cold, expired or lacks the token's `kid`).
impl Hook for JwtLayer {
    /// Set only after a wait, until [`resumed`](Hook::resumed) puts it on
    /// the request.
    type State = Option<Verified>;
    type Wait = futures_util::future::BoxFuture<'static, Result<Option<Verified>, Response>>;

    fn begin<B>(&self, req: &mut Request<B>) -> Flow<Option<Verified>, Self::Wait> {
        if let Some(token) = bearer(req.headers()) {
            match self.verifier.step::<serde_json::Value>(token, true) {
                Step::Done(Ok(claims)) => {
                    req.extensions_mut()
                        .insert(VerifiedClaims(Arc::new(claims)));
                }
                Step::Done(Err(e)) if self.reject_invalid => {
                    return Flow::Answer(crate::response::error_response(&invalid_token(&e)));
                }
                // Left to the routes that need a token.
                Step::Done(Err(_)) => {}
                #[cfg(feature = "jwks")]
                Step::Refresh(generation) => {
                    return Flow::Wait(Box::pin(verify_later(
                        self.verifier.clone(),
                        generation,
                        token.to_owned(),
                        self.reject_invalid,
                    )));
                }
            }
        }
        req.extensions_mut().insert(self.verifier.clone());
        Flow::Continue(None)
    }

    fn resumed<B>(state: &mut Option<Verified>, req: &mut Request<B>) {
        if let Some(Verified { claims, verifier }) = state.take() {
            if let Some(claims) = claims {
                req.extensions_mut().insert(claims);
            }
            req.extensions_mut().insert(verifier);
        }
    }

    #[inline]
    fn finish(_: Option<Verified>, res: Response) -> Response {
        res
    }
}

/// [`JwtLayer`]'s slow path: fetch the key set, verify.
#[cfg(feature = "jwks")]
async fn verify_later(
    verifier: Arc<JwtVerifier>,
    generation: u64,
    token: String,
    reject_invalid: bool,
) -> Result<Option<Verified>, Response> {
    if let Some(jwks) = &verifier.jwks {
        jwks.refresh_after(generation).await;
    }
    match verifier.verify::<serde_json::Value>(&token) {
        Err(e) if reject_invalid => Err(crate::response::error_response(&invalid_token(&e))),
        verified => Ok(Some(Verified {
            claims: verified.ok().map(|claims| VerifiedClaims(Arc::new(claims))),
            verifier,
        })),
    }
}
