//! The CORS configuration and layer.

use crate::response::Response;
use axum::response::IntoResponse;
use http::header::{ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN};
use http::{HeaderName, HeaderValue, Method, Request, StatusCode};
use regex::Regex;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tower::{Layer, Service};
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, ExposeHeaders};

/// A CORS configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CorsConfigError {
    /// Any origin (`*`) together with credentials: every site on the web
    /// could make credentialed requests with the user's cookies.
    #[error("CORS: any origin (`*`) cannot be combined with credentials; list the allowed origins")]
    WildcardWithCredentials,
    /// An origin that a browser never sends.
    #[error(
        "CORS: `{origin}` is not an origin: expected `scheme://host[:port]` without path or trailing slash"
    )]
    InvalidOrigin {
        /// The origin as configured.
        origin: String,
    },
    /// An origin regular expression that does not compile.
    #[error("CORS: origin pattern `{pattern}` is not a valid regular expression: {source}")]
    InvalidRegex {
        /// The pattern as configured.
        pattern: String,
        /// Why.
        source: regex::Error,
    },
    /// A method that is not a valid HTTP method token.
    #[error("CORS: `{0}` is not an HTTP method")]
    InvalidMethod(String),
    /// A header name that is not valid.
    #[error("CORS: `{0}` is not a header name")]
    InvalidHeader(String),
}

/// Allowed values of one kind: any, or a list.
#[derive(Debug, Clone)]
enum AnyOr<T> {
    Any,
    List(Vec<T>),
}

/// The CORS policy of an application; [`build`](Self::build) checks it and
/// makes the layer.
///
/// Defaults (FastAPI's usual `CORSMiddleware` set-up): no origin, any
/// method, any header, no credentials, `max-age` 600 s, nothing exposed.
///
/// ```
/// use ferrapi::middleware::{CorsConfig, CorsConfigError};
/// use ferrapi::prelude::*;
/// use std::time::Duration;
///
/// let cors = CorsConfig::new()
///     .allow_origins(["https://app.example.com"])
///     .allow_origin_regex(r"https://.*\.preview\.example\.com")
///     .allow_methods(["GET", "POST", "PATCH", "DELETE"])
///     .allow_headers(["authorization", "content-type"])
///     .allow_credentials(true)
///     .max_age(Duration::from_secs(3600))
///     .expose_headers(["x-request-id"])
///     .build()?;
/// let app = App::new().layer(cors);
///
/// // Refused when built, not at the first request:
/// let err = CorsConfig::new().allow_any_origin().allow_credentials(true).build();
/// assert!(matches!(err, Err(CorsConfigError::WildcardWithCredentials)));
/// # Ok::<(), CorsConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct CorsConfig {
    origins: Vec<String>,
    any_origin: bool,
    origin_regex: Option<String>,
    methods: AnyOr<String>,
    headers: AnyOr<String>,
    credentials: bool,
    max_age: Option<Duration>,
    expose: Vec<String>,
}

impl Default for CorsConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl CorsConfig {
    /// No origin allowed yet; see the type's docs for the other defaults.
    pub fn new() -> Self {
        Self {
            origins: Vec::new(),
            any_origin: false,
            origin_regex: None,
            methods: AnyOr::Any,
            headers: AnyOr::Any,
            credentials: false,
            max_age: Some(Duration::from_secs(600)),
            expose: Vec::new(),
        }
    }

    /// Allows these origins (`https://app.example.com`); `*` among them
    /// allows any origin. Adds to those already allowed.
    #[must_use]
    pub fn allow_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for o in origins {
            let o = o.as_ref().trim();
            if o == "*" {
                self.any_origin = true;
            } else if !o.is_empty() {
                self.origins.push(o.to_owned());
            }
        }
        self
    }

    /// Allows the origins of a comma-separated list (the `CORS_ORIGINS`
    /// variable); empty entries are skipped.
    #[must_use]
    pub fn allow_origin_list(self, list: &str) -> Self {
        self.allow_origins(list.split(','))
    }

    /// Allows every origin the regular expression matches in full
    /// (`https://.*\.example\.com`).
    #[must_use]
    pub fn allow_origin_regex(mut self, pattern: impl Into<String>) -> Self {
        self.origin_regex = Some(pattern.into());
        self
    }

    /// Allows any origin: `Access-Control-Allow-Origin: *`. Refused by
    /// [`build`](Self::build) together with credentials.
    #[must_use]
    pub fn allow_any_origin(mut self) -> Self {
        self.any_origin = true;
        self
    }

    /// Allows only these methods (`*` among them: any).
    #[must_use]
    pub fn allow_methods<I, S>(mut self, methods: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.methods = any_or_list(methods);
        self
    }

    /// Allows only these request headers (`*` among them: any). The
    /// CORS-safelisted headers (`Accept`, `Accept-Language`,
    /// `Content-Language`, `Content-Type`) are always allowed.
    #[must_use]
    pub fn allow_headers<I, S>(mut self, headers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.headers = any_or_list(headers);
        self
    }

    /// Lets browsers send cookies and `Authorization` cross-origin
    /// (`Access-Control-Allow-Credentials: true`).
    #[must_use]
    pub fn allow_credentials(mut self, allow: bool) -> Self {
        self.credentials = allow;
        self
    }

    /// How long browsers may cache a preflight answer (`None`: not sent).
    #[must_use]
    pub fn max_age(mut self, max_age: impl Into<Option<Duration>>) -> Self {
        self.max_age = max_age.into();
        self
    }

    /// Response headers the page may read besides the safelisted ones.
    #[must_use]
    pub fn expose_headers<I, S>(mut self, headers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.expose
            .extend(headers.into_iter().map(|h| h.as_ref().trim().to_owned()));
        self
    }

    /// Checks the configuration and makes the layer.
    ///
    /// # Errors
    /// Any origin with credentials, a malformed origin, regular expression,
    /// method or header name.
    pub fn build(self) -> Result<CorsLayer, CorsConfigError> {
        if self.any_origin && self.credentials {
            return Err(CorsConfigError::WildcardWithCredentials);
        }
        let mut origins = Vec::with_capacity(self.origins.len());
        for o in &self.origins {
            if !is_origin(o) {
                return Err(CorsConfigError::InvalidOrigin { origin: o.clone() });
            }
            origins.push(o.to_ascii_lowercase());
        }
        let regex = match &self.origin_regex {
            Some(p) => Some(Regex::new(&format!("^(?:{p})$")).map_err(|source| {
                CorsConfigError::InvalidRegex {
                    pattern: p.clone(),
                    source,
                }
            })?),
            None => None,
        };
        let methods = match &self.methods {
            AnyOr::Any => AnyOr::Any,
            AnyOr::List(list) => AnyOr::List(
                list.iter()
                    .map(|m| {
                        Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                            .map_err(|_| CorsConfigError::InvalidMethod(m.clone()))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let headers = match &self.headers {
            AnyOr::Any => AnyOr::Any,
            AnyOr::List(list) => {
                let mut names = header_names(list)?;
                for safe in [
                    "accept",
                    "accept-language",
                    "content-language",
                    "content-type",
                ] {
                    let safe = HeaderName::from_static(safe);
                    if !names.contains(&safe) {
                        names.push(safe);
                    }
                }
                AnyOr::List(names)
            }
        };
        let expose = header_names(&self.expose)?;

        let policy = Arc::new(Policy {
            any_origin: self.any_origin,
            origins,
            regex,
            methods: methods.clone(),
            headers: headers.clone(),
        });
        let mut inner = tower_http::cors::CorsLayer::new();
        inner = if self.any_origin {
            inner.allow_origin(AllowOrigin::any())
        } else {
            let policy = policy.clone();
            inner.allow_origin(AllowOrigin::predicate(move |origin, _| {
                policy.origin_allowed(origin)
            }))
        };
        // `*` means "any" to browsers only without credentials; with them,
        // the request's own method and headers are echoed.
        inner = inner.allow_methods(match (methods, self.credentials) {
            (AnyOr::Any, false) => AllowMethods::any(),
            (AnyOr::Any, true) => AllowMethods::mirror_request(),
            (AnyOr::List(list), _) => AllowMethods::list(list),
        });
        inner = inner.allow_headers(match (headers, self.credentials) {
            (AnyOr::Any, false) => AllowHeaders::any(),
            (AnyOr::Any, true) => AllowHeaders::mirror_request(),
            (AnyOr::List(list), _) => AllowHeaders::list(list),
        });
        inner = inner.allow_credentials(self.credentials);
        if let Some(age) = self.max_age {
            inner = inner.max_age(age);
        }
        if !expose.is_empty() {
            inner = inner.expose_headers(ExposeHeaders::list(expose));
        }
        Ok(CorsLayer { inner, policy })
    }
}

fn any_or_list<I, S>(items: I) -> AnyOr<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let list: Vec<String> = items
        .into_iter()
        .map(|s| s.as_ref().trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if list.iter().any(|s| s == "*") {
        AnyOr::Any
    } else {
        AnyOr::List(list)
    }
}

fn header_names(list: &[String]) -> Result<Vec<HeaderName>, CorsConfigError> {
    list.iter()
        .filter(|h| !h.is_empty())
        .map(|h| {
            HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes())
                .map_err(|_| CorsConfigError::InvalidHeader(h.clone()))
        })
        .collect()
}

/// `scheme://host[:port]`, nothing more (`null` is an origin too).
fn is_origin(o: &str) -> bool {
    if o == "null" {
        return true;
    }
    let Some((scheme, rest)) = o.split_once("://") else {
        return false;
    };
    !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !rest.contains(['/', '?', '#', '@', ' '])
        && HeaderValue::from_str(o).is_ok()
}

#[derive(Debug)]
struct Policy {
    any_origin: bool,
    origins: Vec<String>,
    regex: Option<Regex>,
    methods: AnyOr<Method>,
    headers: AnyOr<HeaderName>,
}

impl Policy {
    fn origin_allowed(&self, origin: &HeaderValue) -> bool {
        if self.any_origin {
            return true;
        }
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
            || self.regex.as_ref().is_some_and(|r| r.is_match(origin))
    }

    /// What a preflight asks for that is not allowed, as Starlette words it.
    fn refusals<B>(&self, req: &Request<B>, origin: &HeaderValue) -> Vec<&'static str> {
        let mut refused = Vec::new();
        if !self.origin_allowed(origin) {
            refused.push("origin");
        }
        if let AnyOr::List(methods) = &self.methods {
            let requested = req
                .headers()
                .get(ACCESS_CONTROL_REQUEST_METHOD)
                .and_then(|v| Method::from_bytes(v.as_bytes()).ok());
            if !requested.is_some_and(|m| methods.contains(&m)) {
                refused.push("method");
            }
        }
        if let AnyOr::List(headers) = &self.headers {
            let all_allowed = req
                .headers()
                .get_all(ACCESS_CONTROL_REQUEST_HEADERS)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .all(|h| headers.iter().any(|a| a.as_str().eq_ignore_ascii_case(h)));
            if !all_allowed {
                refused.push("headers");
            }
        }
        refused
    }
}

/// CORS: [`CorsConfig`] (origins as a list, a regular expression or `*`;
/// methods; headers; credentials; max-age; exposed headers), checked when
/// built, and [`CorsLayer`], tower-http's CORS layer with what it lacks for
/// an API:
///
/// - the insecure combination of any origin with credentials is refused at
///   configuration time with a typed error ([`CorsConfigError`]) rather than
///   a panic at the first request; "any method" and "any header" with
///   credentials are answered by mirroring the request, as browsers require;
/// - a preflight whose origin, method or headers are not allowed is answered
///   `400 {"detail": "Disallowed CORS origin"}` (naming what was refused, as
///   Starlette does), without `Access-Control-Allow-Origin`;
/// - an allowed preflight is answered `200` by the layer itself, before any
///   route, dependency or authentication runs;
/// - only real preflights (`OPTIONS` with `Origin` and
///   `Access-Control-Request-Method`) are intercepted: other `OPTIONS`
///   requests reach the application;
/// - requests from origins that are not allowed get no
///   `Access-Control-Allow-Origin`, so the browser keeps the response from
///   the page.
#[derive(Clone)]
pub struct CorsLayer {
    inner: tower_http::cors::CorsLayer,
    policy: Arc<Policy>,
}

impl std::fmt::Debug for CorsLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CorsLayer")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for CorsLayer {
    type Service = CorsService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CorsService {
            inner: self.inner.layer(inner),
            policy: self.policy.clone(),
        }
    }
}

/// The service of [`CorsLayer`].
#[derive(Clone)]
pub struct CorsService<S> {
    inner: tower_http::cors::Cors<S>,
    policy: Arc<Policy>,
}

impl<S> std::fmt::Debug for CorsService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CorsService").finish_non_exhaustive()
    }
}

type BoxFuture = futures_util::future::BoxFuture<'static, Result<Response, Infallible>>;

impl<S, B, ResBody> Service<Request<B>> for CorsService<S>
where
    S: Service<Request<B>, Response = http::Response<ResBody>, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
    ResBody: http_body::Body<Data = bytes::Bytes> + Default + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
    B: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let preflight_origin = (req.method() == Method::OPTIONS
            && req.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD))
        .then(|| req.headers().get(ORIGIN).cloned())
        .flatten();
        match preflight_origin {
            // Not a preflight: plain `OPTIONS` goes to the application
            // (tower-http would answer every `OPTIONS` itself).
            None if req.method() == Method::OPTIONS => {
                let fut = self.inner.get_mut().call(req);
                Box::pin(async move { Ok(fut.await?.map(axum::body::Body::new)) })
            }
            Some(origin) => {
                let refused = self.policy.refusals(&req, &origin);
                if refused.is_empty() {
                    let fut = self.inner.call(req);
                    Box::pin(async move { Ok(fut.await?.map(axum::body::Body::new)) })
                } else {
                    tracing::debug!(origin = ?origin, ?refused, "CORS preflight refused");
                    let detail = format!("Disallowed CORS {}", refused.join(", "));
                    let res = refused_preflight(&detail);
                    Box::pin(async move { Ok(res) })
                }
            }
            None => {
                let fut = self.inner.call(req);
                Box::pin(async move { Ok(fut.await?.map(axum::body::Body::new)) })
            }
        }
    }
}

fn refused_preflight(detail: &str) -> Response {
    let mut res = (
        StatusCode::BAD_REQUEST,
        [(http::header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "detail": detail }).to_string(),
    )
        .into_response();
    res.headers_mut().insert(
        http::header::VARY,
        HeaderValue::from_static(
            "origin, access-control-request-method, access-control-request-headers",
        ),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked() {
        assert!(is_origin("https://app.example.com"));
        assert!(is_origin("http://localhost:3000"));
        assert!(is_origin("null"));
        assert!(!is_origin("https://app.example.com/"));
        assert!(!is_origin("app.example.com"));
        assert!(!is_origin("https://"));
        assert!(!is_origin("https://a.com/path"));
    }

    #[test]
    fn config_errors() {
        let e = |c: CorsConfig| c.build().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            e(CorsConfig::new()
                .allow_origins(["*"])
                .allow_credentials(true))
            .contains("credentials")
        );
        assert!(e(CorsConfig::new().allow_origins(["https://a.com/"])).contains("https://a.com/"));
        assert!(e(CorsConfig::new().allow_origin_regex("(")).contains("regular expression"));
        assert!(e(CorsConfig::new().allow_methods(["GE T"])).contains("GE T"));
        assert!(e(CorsConfig::new().allow_headers(["bad header"])).contains("bad header"));
        // Any method and header with credentials is fine: they are mirrored.
        assert!(
            CorsConfig::new()
                .allow_origins(["https://a.com"])
                .allow_credentials(true)
                .build()
                .is_ok()
        );
    }

    #[test]
    fn regex_matches_whole_origin() {
        let layer = CorsConfig::new()
            .allow_origin_regex(r"https://[a-z]+\.example\.com")
            .build();
        let Ok(layer) = layer else {
            panic!("valid config");
        };
        let ok = |o: &'static str| layer.policy.origin_allowed(&HeaderValue::from_static(o));
        assert!(ok("https://app.example.com"));
        assert!(!ok("https://app.example.com.evil.net"));
        assert!(!ok("https://evil.net/https://app.example.com"));
    }
}
