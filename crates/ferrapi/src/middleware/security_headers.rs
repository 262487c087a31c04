//! The security-headers layer.

use super::path_under;
use axum::response::Response;
use ferrapi_core::middleware::{Flow, Hook, NoWait};
use http::{HeaderName, HeaderValue, Request, header};
use std::sync::Arc;
use std::time::Duration;

/// `X-Frame-Options`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameOptions {
    /// No framing at all (`DENY`).
    Deny,
    /// Framing by pages of the same origin (`SAMEORIGIN`).
    SameOrigin,
}

/// `Referrer-Policy` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferrerPolicy {
    /// `no-referrer`.
    NoReferrer,
    /// `no-referrer-when-downgrade`.
    NoReferrerWhenDowngrade,
    /// `origin`.
    Origin,
    /// `origin-when-cross-origin`.
    OriginWhenCrossOrigin,
    /// `same-origin`.
    SameOrigin,
    /// `strict-origin`.
    StrictOrigin,
    /// `strict-origin-when-cross-origin`.
    StrictOriginWhenCrossOrigin,
    /// `unsafe-url`.
    UnsafeUrl,
}

impl ReferrerPolicy {
    fn value(self) -> &'static str {
        match self {
            Self::NoReferrer => "no-referrer",
            Self::NoReferrerWhenDowngrade => "no-referrer-when-downgrade",
            Self::Origin => "origin",
            Self::OriginWhenCrossOrigin => "origin-when-cross-origin",
            Self::SameOrigin => "same-origin",
            Self::StrictOrigin => "strict-origin",
            Self::StrictOriginWhenCrossOrigin => "strict-origin-when-cross-origin",
            Self::UnsafeUrl => "unsafe-url",
        }
    }
}

/// Adds the response headers every API should send —
/// `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY`,
/// `Referrer-Policy: no-referrer` — plus optional `Strict-Transport-Security`
/// and `Content-Security-Policy`.
///
/// A header the handler already set is left alone. Paths given to
/// [`exempt`](SecurityHeadersLayer::exempt) get none of these headers: use it
/// for pages a policy would break (an interactive docs page under a strict
/// CSP, a page meant to be framed).
///
/// ```
/// use ferrapi::middleware::{FrameOptions, SecurityHeadersLayer};
/// use ferrapi::prelude::*;
/// use std::time::Duration;
///
/// let layer = SecurityHeadersLayer::new()
///     .frame_options(Some(FrameOptions::SameOrigin))
///     .hsts(Some(Duration::from_secs(31_536_000)), true)
///     .content_security_policy(Some(http::HeaderValue::from_static("default-src 'self'")))
///     .exempt("/docs")
///     .exempt("/redoc");
/// let app = App::new().layer(layer);
/// # use ferrapi::http;
/// ```
#[derive(Debug, Clone)]
pub struct SecurityHeadersLayer {
    inner: Arc<Config>,
}

/// What a [`SecurityHeadersLayer`] adds, and where not.
#[derive(Debug, Clone)]
pub struct Config {
    nosniff: bool,
    frame: Option<FrameOptions>,
    referrer: Option<ReferrerPolicy>,
    hsts: Option<HeaderValue>,
    csp: Option<HeaderValue>,
    extra: Vec<(HeaderName, HeaderValue)>,
    exempt: Vec<String>,
    /// Built from the fields above whenever one changes.
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Default for SecurityHeadersLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl SecurityHeadersLayer {
    /// `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY`,
    /// `Referrer-Policy: no-referrer`; no HSTS, no CSP, no exempt path.
    pub fn new() -> Self {
        let mut config = Config {
            nosniff: true,
            frame: Some(FrameOptions::Deny),
            referrer: Some(ReferrerPolicy::NoReferrer),
            hsts: None,
            csp: None,
            extra: Vec::new(),
            exempt: Vec::new(),
            headers: Vec::new(),
        };
        config.rebuild();
        Self {
            inner: Arc::new(config),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Config)) -> Self {
        let config = Arc::make_mut(&mut self.inner);
        f(config);
        config.rebuild();
        self
    }

    /// Send `X-Content-Type-Options: nosniff` (default `true`).
    #[must_use]
    pub fn nosniff(self, enabled: bool) -> Self {
        self.edit(|c| c.nosniff = enabled)
    }

    /// `X-Frame-Options` (default `DENY`; `None`: not sent).
    #[must_use]
    pub fn frame_options(self, value: Option<FrameOptions>) -> Self {
        self.edit(|c| c.frame = value)
    }

    /// `Referrer-Policy` (default `no-referrer`; `None`: not sent).
    #[must_use]
    pub fn referrer_policy(self, value: Option<ReferrerPolicy>) -> Self {
        self.edit(|c| c.referrer = value)
    }

    /// `Strict-Transport-Security: max-age=<seconds>[; includeSubDomains]`
    /// (default: not sent). Only for services reached over HTTPS.
    #[must_use]
    pub fn hsts(self, max_age: Option<Duration>, include_subdomains: bool) -> Self {
        let value = max_age.and_then(|age| {
            let sub = if include_subdomains {
                "; includeSubDomains"
            } else {
                ""
            };
            HeaderValue::from_str(&format!("max-age={}{sub}", age.as_secs())).ok()
        });
        self.edit(|c| c.hsts = value)
    }

    /// `Content-Security-Policy` (default: not sent).
    #[must_use]
    pub fn content_security_policy(self, value: Option<HeaderValue>) -> Self {
        self.edit(|c| c.csp = value)
    }

    /// Any other header to add to every response.
    #[must_use]
    pub fn header(self, name: HeaderName, value: HeaderValue) -> Self {
        self.edit(|c| c.extra.push((name, value)))
    }

    /// Sends none of the headers for `path` and the paths under it
    /// (`/docs` covers `/docs`, `/docs/` and `/docs/oauth2-redirect`, not
    /// `/docsx`).
    #[must_use]
    pub fn exempt(self, path: impl Into<String>) -> Self {
        let path = path.into();
        self.edit(|c| c.exempt.push(path))
    }
}

impl Config {
    fn rebuild(&mut self) {
        let mut h = Vec::new();
        if self.nosniff {
            h.push((
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ));
        }
        if let Some(frame) = self.frame {
            let v = match frame {
                FrameOptions::Deny => "DENY",
                FrameOptions::SameOrigin => "SAMEORIGIN",
            };
            h.push((header::X_FRAME_OPTIONS, HeaderValue::from_static(v)));
        }
        if let Some(policy) = self.referrer {
            h.push((
                header::REFERRER_POLICY,
                HeaderValue::from_static(policy.value()),
            ));
        }
        if let Some(v) = &self.hsts {
            h.push((header::STRICT_TRANSPORT_SECURITY, v.clone()));
        }
        if let Some(v) = &self.csp {
            h.push((header::CONTENT_SECURITY_POLICY, v.clone()));
        }
        h.extend(self.extra.iter().cloned());
        self.headers = h;
    }
}

super::hook_layer!(
    SecurityHeadersLayer,
    SecurityHeadersService,
    SecurityHeadersFuture
);

/// The request half decides whether the path is exempt; the response half
/// adds the headers the application did not set itself.
impl Hook for SecurityHeadersLayer {
    /// The headers to add, unless the path is exempt.
    type State = Option<Arc<Config>>;
    type Wait = NoWait<Self::State>;

    #[inline]
    fn begin<B>(&self, req: &mut Request<B>) -> Flow<Self::State> {
        let path = req.uri().path();
        let exempt = self.inner.exempt.iter().any(|p| path_under(path, p));
        Flow::Continue((!exempt).then(|| self.inner.clone()))
    }

    #[inline]
    fn finish(config: Self::State, mut res: Response) -> Response {
        if let Some(config) = config {
            let headers = res.headers_mut();
            headers.reserve(config.headers.len());
            for (name, value) in &config.headers {
                if let http::header::Entry::Vacant(slot) = headers.entry(name) {
                    slot.insert(value.clone());
                }
            }
        }
        res
    }
}
