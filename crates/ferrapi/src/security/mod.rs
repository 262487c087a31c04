//! Security schemes as extractors, as FastAPI's `fastapi.security`: each
//! reads its credential, answers 401 when it is missing or malformed, and
//! documents itself as a security scheme on every operation that uses it
//! (directly or through a dependency).
//!
//! Verifying the credential (a JWT, a database lookup) is the application's
//! part: wrap one of these in a [`Dependency`](crate::extract::Dependency)
//! such as `CurrentUser`.
//!
//! The rest of the credential side lives here too, each behind its cargo
//! feature:
//!
//! | module | feature | what it does |
//! |---|---|---|
//! | `jwt` | `jwt` | verifies `Authorization: Bearer` JSON Web Tokens (`JwtVerifier`, `JwtLayer`, `Claims<T>`) and issues them (`JwtIssuer`) |
//! | `jwks` | `jwks` | keys from an identity provider's JSON Web Key Set URL (`Jwks`, also re-exported by `jwt`) |
//! | `password` | `password` | Argon2id password hashing (`PasswordHasher`) |
//!
//! `ferrapi::middleware::jwt` and `ferrapi::middleware::password`, where
//! they used to live, are kept as re-exports.

use crate::extract::{FromRequestParts, Rejection, RequestContext};
use crate::openapi::{DescribeInput, OperationBuilder};
use base64::Engine as _;
use ferrapi_core::HttpError;
use http::header::AUTHORIZATION;
use http::request::Parts;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use std::marker::PhantomData;

#[cfg(feature = "jwks")]
pub mod jwks;
#[cfg(feature = "jwt")]
pub mod jwt;
#[cfg(feature = "password")]
pub mod password;

fn not_authenticated(scheme: &str) -> Rejection {
    HttpError::unauthorized("Not authenticated")
        .with_header("www-authenticate", scheme)
        .into()
}

/// The credentials of `Authorization: <scheme> <credentials>`, if the scheme
/// matches (case-insensitively).
fn authorization<'a>(parts: &'a Parts, scheme: &str) -> Option<&'a str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (given, credentials) = value.split_once(' ')?;
    given
        .eq_ignore_ascii_case(scheme)
        .then(|| credentials.trim())
        .filter(|c| !c.is_empty())
}

/// A bearer token from `Authorization: Bearer <token>` (FastAPI's
/// `HTTPBearer`); documented as scheme `HTTPBearer`.
///
/// ```
/// use ferrapi::prelude::*;
/// use ferrapi::security::HttpBearer;
///
/// #[get("/secret")]
/// async fn secret(HttpBearer(token): HttpBearer) -> String {
///     format!("{} characters of token", token.len())
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpBearer(pub String);

impl FromRequestParts for HttpBearer {
    async fn from_request_parts(
        parts: &mut Parts,
        _cx: &RequestContext,
    ) -> Result<Self, Rejection> {
        authorization(parts, "Bearer")
            .map(|t| HttpBearer(t.to_owned()))
            .ok_or_else(|| not_authenticated("Bearer"))
    }
}

impl DescribeInput for HttpBearer {
    fn describe(op: &mut OperationBuilder<'_>) {
        op.security(
            "HTTPBearer",
            json!({"type": "http", "scheme": "bearer"}),
            &[],
        );
    }
}

/// An OAuth2 password flow: where clients get tokens, and its scopes.
pub trait OAuth2PasswordFlow: Send + Sync + 'static {
    /// The token endpoint (`/api/v1/auth/token`).
    const TOKEN_URL: &'static str;
    /// Scopes and their descriptions.
    const SCOPES: &'static [(&'static str, &'static str)] = &[];
    /// The scheme's name in the document.
    const SCHEME_NAME: &'static str = "OAuth2PasswordBearer";
}

/// A bearer token of an OAuth2 password flow `F` (FastAPI's
/// `OAuth2PasswordBearer(tokenUrl=…)`): read from `Authorization: Bearer`,
/// documented with the flow's token URL so that Swagger UI's "Authorize"
/// button logs in.
///
/// ```
/// use ferrapi::prelude::*;
/// use ferrapi::security::{OAuth2PasswordFlow, OAuth2Token};
///
/// struct Login;
/// impl OAuth2PasswordFlow for Login {
///     const TOKEN_URL: &'static str = "/auth/token";
/// }
///
/// #[get("/me")]
/// async fn me(token: OAuth2Token<Login>) -> String {
///     token.token().to_owned()
/// }
/// ```
pub struct OAuth2Token<F> {
    token: String,
    flow: PhantomData<fn() -> F>,
}

impl<F> std::fmt::Debug for OAuth2Token<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OAuth2Token(..)")
    }
}

impl<F> Clone for OAuth2Token<F> {
    fn clone(&self) -> Self {
        Self {
            token: self.token.clone(),
            flow: PhantomData,
        }
    }
}

impl<F> OAuth2Token<F> {
    /// The token.
    pub fn token(&self) -> &str {
        &self.token
    }
}

impl<F: OAuth2PasswordFlow> FromRequestParts for OAuth2Token<F> {
    async fn from_request_parts(
        parts: &mut Parts,
        _cx: &RequestContext,
    ) -> Result<Self, Rejection> {
        authorization(parts, "Bearer")
            .map(|t| OAuth2Token {
                token: t.to_owned(),
                flow: PhantomData,
            })
            .ok_or_else(|| not_authenticated("Bearer"))
    }
}

impl<F: OAuth2PasswordFlow> DescribeInput for OAuth2Token<F> {
    fn describe(op: &mut OperationBuilder<'_>) {
        let scopes: serde_json::Map<String, serde_json::Value> = F::SCOPES
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        op.security(
            F::SCHEME_NAME,
            json!({"type": "oauth2", "flows": {"password": {"scopes": scopes, "tokenUrl": F::TOKEN_URL}}}),
            &[],
        );
    }
}

/// The form of an OAuth2 password-flow token request (FastAPI's
/// `OAuth2PasswordRequestForm`), read with `Form<OAuth2PasswordRequestForm>`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct OAuth2PasswordRequestForm {
    /// `password` when given.
    #[serde(default)]
    pub grant_type: Option<String>,
    /// The user's name: whatever identifies the user to your application
    /// (a login, an e-mail address).
    pub username: String,
    /// The password.
    pub password: String,
    /// Space-separated scopes.
    #[serde(default)]
    pub scope: String,
    /// Client id, if the client sends one.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Client secret, if the client sends one.
    #[serde(default)]
    pub client_secret: Option<String>,
}

/// No rules of its own: the schema's (required fields) are checked by the
/// schema walk.
impl ferrapi_core::validation::Validate for OAuth2PasswordRequestForm {
    fn validate_into(&self, _: &mut dyn FnMut() -> garde::Path, _: &mut garde::Report) {}
}

impl OAuth2PasswordRequestForm {
    /// The requested scopes.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split_whitespace()
    }
}

/// HTTP Basic credentials (FastAPI's `HTTPBasic`), documented as scheme
/// `HTTPBasic`; missing or malformed → 401 with `WWW-Authenticate: Basic`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpBasic {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

impl FromRequestParts for HttpBasic {
    async fn from_request_parts(
        parts: &mut Parts,
        _cx: &RequestContext,
    ) -> Result<Self, Rejection> {
        let decoded = authorization(parts, "Basic")
            .and_then(|c| base64::engine::general_purpose::STANDARD.decode(c).ok())
            .and_then(|b| String::from_utf8(b).ok());
        match decoded.as_deref().and_then(|s| s.split_once(':')) {
            Some((user, password)) => Ok(HttpBasic {
                username: user.to_owned(),
                password: password.to_owned(),
            }),
            None => Err(not_authenticated("Basic")),
        }
    }
}

impl DescribeInput for HttpBasic {
    fn describe(op: &mut OperationBuilder<'_>) {
        op.security("HTTPBasic", json!({"type": "http", "scheme": "basic"}), &[]);
    }
}

/// Where an API key is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKeyIn {
    /// A request header.
    Header,
    /// A query parameter.
    Query,
    /// A cookie.
    Cookie,
}

/// An API key's name and place (FastAPI's `APIKeyHeader(name=…)` and friends).
pub trait ApiKeySpec: Send + Sync + 'static {
    /// The header, query parameter or cookie name.
    const NAME: &'static str;
    /// Where it is sent.
    const LOCATION: ApiKeyIn;
    /// The scheme's name in the document.
    const SCHEME_NAME: &'static str;
}

/// An API key as `S` says where to find it; missing → 401.
///
/// ```
/// use ferrapi::prelude::*;
/// use ferrapi::security::{ApiKey, ApiKeyIn, ApiKeySpec};
///
/// struct InternalToken;
/// impl ApiKeySpec for InternalToken {
///     const NAME: &'static str = "X-Internal-Token";
///     const LOCATION: ApiKeyIn = ApiKeyIn::Header;
///     const SCHEME_NAME: &'static str = "InternalToken";
/// }
///
/// #[get("/internal/config")]
/// async fn config(key: ApiKey<InternalToken>) -> String {
///     format!("{} bytes of key", key.key().len())
/// }
/// ```
pub struct ApiKey<S> {
    key: String,
    spec: PhantomData<fn() -> S>,
}

impl<S> std::fmt::Debug for ApiKey<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(..)")
    }
}

impl<S> ApiKey<S> {
    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl<S: ApiKeySpec> FromRequestParts for ApiKey<S> {
    async fn from_request_parts(
        parts: &mut Parts,
        _cx: &RequestContext,
    ) -> Result<Self, Rejection> {
        let found: Option<String> = match S::LOCATION {
            ApiKeyIn::Header => parts
                .headers
                .get(S::NAME)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            ApiKeyIn::Query => parts.uri.query().and_then(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .filter(|(k, _)| k == S::NAME)
                    .map(|(_, v)| v.into_owned())
                    .last()
            }),
            ApiKeyIn::Cookie => crate::extract::cookie_pairs(parts)
                .into_iter()
                .rfind(|(k, _)| k == S::NAME)
                .map(|(_, v)| v.into_owned()),
        };
        match found.filter(|k| !k.is_empty()) {
            Some(key) => Ok(ApiKey {
                key,
                spec: PhantomData,
            }),
            None => Err(HttpError::unauthorized("Not authenticated").into()),
        }
    }
}

impl<S: ApiKeySpec> DescribeInput for ApiKey<S> {
    fn describe(op: &mut OperationBuilder<'_>) {
        let location = match S::LOCATION {
            ApiKeyIn::Header => "header",
            ApiKeyIn::Query => "query",
            ApiKeyIn::Cookie => "cookie",
        };
        op.security(
            S::SCHEME_NAME,
            json!({"type": "apiKey", "name": S::NAME, "in": location}),
            &[],
        );
    }
}

/// A set of OAuth2 scopes a route requires, as a type (what FastAPI writes
/// `scopes=["items"]`): declare one with [`scopes!`](crate::scopes).
pub trait Scopes: Send + Sync + 'static {
    /// The scopes, each required.
    const SCOPES: &'static [&'static str];
}

/// Declares a [`Scopes`] type: `scopes!(pub ReadItems = ["items"]);`.
///
/// ```
/// use ferrapi::security::Scopes;
///
/// ferrapi::scopes!(pub ReadItems = ["items"]);
/// ferrapi::scopes!(Me = ["me", "items"]);
/// assert_eq!(ReadItems::SCOPES, ["items"]);
/// assert_eq!(Me::SCOPES, ["me", "items"]);
/// ```
#[macro_export]
macro_rules! scopes {
    ($vis:vis $name:ident = [$($scope:literal),* $(,)?]) => {
        #[doc = concat!("The OAuth2 scopes ", $("`", $scope, "` ",)* "(see `ferrapi::security::Scopes`).")]
        #[derive(Debug, Clone, Copy, Default)]
        $vis struct $name;
        impl $crate::security::Scopes for $name {
            const SCOPES: &'static [&'static str] = &[$($scope),*];
        }
    };
}

/// What a principal (the current user, a verified token) was granted: what
/// [`Security`] checks a route's [`Scopes`] against. Implement it on the
/// dependency that authenticates, reading the token's `scope` claim.
pub trait HasScopes {
    /// Whether `scope` was granted.
    fn has_scope(&self, scope: &str) -> bool;
}

/// The scopes required of the request, gathered from every [`Security`]
/// of the route and its dependencies (FastAPI's `SecurityScopes`): a
/// dependency reads it to build its own `WWW-Authenticate` header or to
/// check more than [`HasScopes`] says. Empty when no `Security` applies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityScopes {
    /// The scopes, each once, in the order they were required.
    pub scopes: Vec<&'static str>,
}

impl SecurityScopes {
    /// The scopes separated by spaces (FastAPI's `scope_str`).
    pub fn scope_str(&self) -> String {
        self.scopes.join(" ")
    }

    fn add(&mut self, scopes: &[&'static str]) {
        for s in scopes {
            if !self.scopes.contains(s) {
                self.scopes.push(s);
            }
        }
    }
}

impl FromRequestParts for SecurityScopes {
    async fn from_request_parts(
        parts: &mut Parts,
        _cx: &RequestContext,
    ) -> Result<Self, Rejection> {
        Ok(parts
            .extensions
            .get::<SecurityScopes>()
            .cloned()
            .unwrap_or_default())
    }
}

impl DescribeInput for SecurityScopes {}

/// Dependency `D` (the authenticated principal) with OAuth2 scopes `S`
/// required (FastAPI's `Security(get_current_user, scopes=[…])`).
///
/// At request time `D` is resolved as with [`Depends`](crate::extract::Depends)
/// (cached per request, overridable), with `S` added to the request's
/// [`SecurityScopes`] first; then every scope of `S` must be granted
/// ([`HasScopes`]), else `401` `{"detail": "Not enough permissions"}` with
/// `WWW-Authenticate: Bearer scope="<the required scopes>"`, as FastAPI's
/// tutorial answers. In the OpenAPI document the operation's OAuth2
/// security requirement lists the scopes: `{"OAuth2PasswordBearer": ["items"]}`.
///
/// ```
/// use ferrapi::extract::{Dependency, Depends, Rejection, RequestContext};
/// use ferrapi::http::request::Parts;
/// use ferrapi::prelude::*;
/// use ferrapi::security::{HasScopes, OAuth2PasswordFlow, OAuth2Token, Security};
/// use ferrapi::testing::TestClient;
///
/// struct Login;
/// impl OAuth2PasswordFlow for Login {
///     const TOKEN_URL: &'static str = "/token";
///     const SCOPES: &'static [(&'static str, &'static str)] = &[("items", "Read items.")];
/// }
///
/// #[derive(Clone)]
/// struct User { scopes: Vec<String> }
///
/// impl HasScopes for User {
///     fn has_scope(&self, scope: &str) -> bool {
///         self.scopes.iter().any(|s| s == scope)
///     }
/// }
///
/// impl Dependency for User {
///     fn describe(op: &mut ferrapi::openapi::OperationBuilder<'_>) {
///         <OAuth2Token<Login> as ferrapi::openapi::DescribeInput>::describe(op);
///     }
///     async fn resolve(parts: &mut Parts, cx: &RequestContext) -> Result<Self, Rejection> {
///         let token = <OAuth2Token<Login> as ferrapi::extract::FromRequestParts>::from_request_parts(parts, cx).await?;
///         // A real app verifies the token and reads its `scope` claim.
///         Ok(User { scopes: token.token().split('+').map(str::to_owned).collect() })
///     }
/// }
///
/// ferrapi::scopes!(ReadItems = ["items"]);
///
/// #[get("/items")]
/// async fn items(Security(_user, _): Security<User, ReadItems>) -> &'static str {
///     "[]"
/// }
///
/// let app = App::new().route(items);
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let client = TestClient::new(app);
/// let denied = client.get("/items").header("authorization", "Bearer me").send().await;
/// assert_eq!(denied.status(), 401);
/// assert_eq!(denied.header("www-authenticate"), Some("Bearer scope=\"items\""));
/// let allowed = client.get("/items").header("authorization", "Bearer me+items").send().await;
/// assert_eq!(allowed.status(), 200);
/// # });
/// ```
pub struct Security<D, S>(pub D, pub PhantomData<fn() -> S>);

impl<D: std::fmt::Debug, S> std::fmt::Debug for Security<D, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Security").field(&self.0).finish()
    }
}

impl<D: Clone, S> Clone for Security<D, S> {
    fn clone(&self) -> Self {
        Security(self.0.clone(), PhantomData)
    }
}

impl<D, S> std::ops::Deref for Security<D, S> {
    type Target = D;
    fn deref(&self) -> &D {
        &self.0
    }
}

impl<D, S> FromRequestParts for Security<D, S>
where
    D: crate::extract::Dependency + HasScopes,
    S: Scopes,
{
    async fn from_request_parts(parts: &mut Parts, cx: &RequestContext) -> Result<Self, Rejection> {
        let mut required = parts
            .extensions
            .get::<SecurityScopes>()
            .cloned()
            .unwrap_or_default();
        required.add(S::SCOPES);
        let header = format!("Bearer scope=\"{}\"", required.scope_str());
        parts.extensions.insert(required);
        let crate::extract::Depends(principal) =
            <crate::extract::Depends<D> as FromRequestParts>::from_request_parts(parts, cx).await?;
        if S::SCOPES.iter().all(|s| principal.has_scope(s)) {
            Ok(Security(principal, PhantomData))
        } else {
            Err(HttpError::unauthorized("Not enough permissions")
                .with_header("www-authenticate", &header)
                .into())
        }
    }
}

impl<D, S> DescribeInput for Security<D, S>
where
    D: crate::extract::Dependency,
    S: Scopes,
{
    fn describe(op: &mut OperationBuilder<'_>) {
        <crate::extract::Depends<D> as DescribeInput>::describe(op);
        add_scopes(op, S::SCOPES);
        op.error_response(http::StatusCode::UNAUTHORIZED, "Not enough permissions");
    }
}

/// Adds `scopes` to the operation's OAuth2 and OpenID Connect security
/// requirements (the schemes that have scopes).
fn add_scopes(op: &mut OperationBuilder<'_>, scopes: &[&str]) {
    let scoped: Vec<String> = op
        .security_schemes
        .iter()
        .filter(|(_, scheme)| {
            matches!(
                scheme.get("type").and_then(serde_json::Value::as_str),
                Some("oauth2" | "openIdConnect")
            )
        })
        .map(|(name, _)| name.clone())
        .collect();
    for requirement in &mut op.operation.security {
        let Some(map) = requirement.as_object_mut() else {
            continue;
        };
        for (name, list) in map.iter_mut() {
            if !scoped.contains(name) {
                continue;
            }
            if let Some(list) = list.as_array_mut() {
                for s in scopes {
                    if !list.iter().any(|v| v == s) {
                        list.push(json!(s));
                    }
                }
            }
        }
    }
}
