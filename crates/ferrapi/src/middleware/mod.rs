//! Middleware: tower layers for what every API needs, each usable on its
//! own with [`App::layer`](crate::App::layer), and [`Stack`], which installs
//! them in the documented order.
//!
//! | layer | what it does |
//! |---|---|
//! | [`RequestIdLayer`] | `X-Request-ID` echoed when sane, else a UUID v4; [`RequestId`] extractor; `request_id` on the request's tracing span |
//! | [`TimingLayer`] | `X-Process-Time` in seconds (`0.001234`), optional `Server-Timing` and slow-request log |
//! | [`SecurityHeadersLayer`] | `X-Content-Type-Options`, `X-Frame-Options`, `Referrer-Policy`, optional HSTS and CSP; exempt paths |
//! | [`CorsLayer`] (from [`CorsConfig`]) | CORS over tower-http; insecure set-ups refused when built |
//! | [`ClientIpLayer`] | the client address through trusted proxies, as [`ClientIp`] |
//! | `CompressionLayer` (feature `compression`) | gzip/brotli for bodies of 1 KiB and more |
//! | `DecompressionLayer` (feature `decompression`) | gzip/deflate/brotli request bodies decoded; bombs refused 413, unknown encodings 415 |
//! | `security::jwt::JwtLayer` (feature `jwt`) | verifies `Authorization: Bearer` tokens; claims as `security::jwt::Claims<T>` (also at `middleware::jwt`) |
//! | [`RateLimitLayer`] | GCRA per key, `RateLimit-*` headers, 429 with `Retry-After`; [`RateLimitStore`] |
//! | [`catch_panic`] | a panic answered 500 JSON, logged within the request's span |
//!
//! Any other tower or tower-http layer works too, and so does a plain
//! `async fn` ([`from_fn`]).
//!
//! # One adapter
//!
//! Most of these layers are a [`Hook`]: a request half and a response half
//! (from `ferrapi-core`, so that integrations implement it without this
//! crate), served by one generic tower service, [`HookService`]. Each
//! layer's service is that service (`TimingService<S>` is
//! `HookService<TimingLayer, S>`), and a [`Stack`]'s outer layers are the
//! same hooks composed into one (pairs of hooks are a hook): one service,
//! one future, no boxing, no per-layer future, with the behaviour of the
//! layers added one by one. A hook may answer at once (a refused token) or
//! wait first ([`Flow::Wait`]: the rate limiter's store, a key-set fetch).
//!
//! Three layers are written by hand instead, each for a reason: CORS wraps
//! tower-http's own service (its header logic is not split in halves);
//! decompression replaces the request's body (a hook sees the request with
//! any body type); the panic catcher wraps the inner call and every poll
//! of its future in `catch_unwind`, which is not a half of anything.
//!
//! # The default order
//!
//! From the outside in — the server, then:
//!
//! 1. [`RequestIdLayer`]: first, so that everything below — a 429, a refused
//!    preflight, a panic — carries the id, and every log line is in the span;
//! 2. [`TraceContextLayer`]: the caller's W3C `traceparent`, recorded on
//!    the request's span (`trace_id`) and answered (new traces are started
//!    by the tracer, or on demand: see the layer);
//! 3. [`TimingLayer`]: measures everything below;
//! 4. [`SecurityHeadersLayer`]: on every answer, errors included;
//!
//!    (1–4 of a [`Stack`] run fused as one hook service, outside every
//!    other layer: the server calls them first.)
//! 5. the application's panic catcher, which [`App::build`](crate::App::build)
//!    puts around the layers below when there are any: a panic in a layer
//!    answers a JSON 500 that still passes through 1–4;
//! 6. [`CorsLayer`]: answers preflights before rate limiting and
//!    authentication, and puts CORS headers on 429s and 401s so that the
//!    page can read them;
//! 7. [`ClientIpLayer`]: the address the rate limiter and the handlers see;
//! 8. [`AccessLogLayer`] (off by default): after the client address is
//!    known, before the rate limiter, so that 429s are logged too;
//! 9. `CompressionLayer`;
//! 10. `security::jwt::JwtLayer`: before the rate limiter, so that it can count per
//!     verified user;
//! 11. [`RateLimitLayer`]s, in the order given (the first is outermost):
//!     refused requests never reach the application;
//! 12. [`catch_panic`]: innermost of the stack, so that a panic's 500
//!     passes through all of the above;
//!
//! then routing, dependencies, the handler (the dispatcher answers a
//! handler's own panic with a JSON 500 itself).
//!
//! ```
//! use ferrapi::middleware::{CorsConfig, RateLimitLayer, Stack};
//! use ferrapi::prelude::*;
//!
//! let stack = Stack::defaults()
//!     .cors(CorsConfig::new().allow_origins(["https://app.example.com"]).build()?)
//!     .rate_limit(RateLimitLayer::new("100/1s".parse()?).exempt("/health"));
//! let app = stack.apply(App::new());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! With [`App::layer`](crate::App::layer), "layers added later wrap those
//! added earlier": a layer added before [`Stack::apply`] runs inside the
//! stack (after rate limiting, with the request id known), one added after
//! runs outside it.
//!
//! # Custom middleware
//!
//! A plain `async fn(Request, Next) -> Response`, as FastAPI's
//! `@app.middleware("http")`, made a layer by [`from_fn`] (axum's). It can
//! change the request, answer early without calling the application, add
//! response headers, and turn errors into answers:
//!
//! ```
//! use ferrapi::axum::response::IntoResponse;
//! use ferrapi::http::{HeaderValue, StatusCode};
//! use ferrapi::middleware::{from_fn, Next, RequestId, RequestIdLayer};
//! use ferrapi::prelude::*;
//!
//! type Request = ferrapi::extract::Request;
//! type Response = ferrapi::axum::response::Response;
//!
//! async fn maintenance(mut req: Request, next: Next) -> Response {
//!     // Short-circuit: the application is not called.
//!     if req.headers().contains_key("x-maintenance") {
//!         return (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance").into_response();
//!     }
//!     // Change the request: handlers see this header.
//!     req.headers_mut().insert("x-seen-by", HeaderValue::from_static("maintenance"));
//!     // Read what an outer layer put in the extensions.
//!     let id = req.extensions().get::<RequestId>().map(|id| id.to_string());
//!     let mut res = next.run(req).await;
//!     // Handle errors: replace the body of any 5xx.
//!     if res.status().is_server_error() {
//!         let body = serde_json::json!({ "detail": format!("failed; quote {}", id.unwrap_or_default()) });
//!         res = (res.status(), [("content-type", "application/json")], body.to_string()).into_response();
//!     }
//!     // Add a response header.
//!     res.headers_mut().insert("x-served-by", HeaderValue::from_static("ferrapi"));
//!     res
//! }
//!
//! let app = App::new()
//!     .layer(from_fn(maintenance))
//!     .layer(RequestIdLayer::new()); // outer: runs first
//! ```
//!
//! The function may also take extractors before the request (any axum
//! extractor) and state with [`from_fn_with_state`].

/// A hook layer's tower face: `Layer` through the generic
/// [`HookService`], and the names of its service and future, kept for the
/// applications that name them. One macro rather than the same lines in
/// every layer's file.
macro_rules! hook_layer {
    ($layer:ident, $service:ident $(, $future:ident)?) => {
        impl<S> tower::Layer<S> for $layer {
            type Service = $service<S>;
            fn layer(&self, inner: S) -> Self::Service {
                ferrapi_core::middleware::HookService::new(Clone::clone(self), inner)
            }
        }

        #[doc = concat!("The service of [`", stringify!($layer), "`]: the generic hook service.")]
        pub type $service<S> = ferrapi_core::middleware::HookService<$layer, S>;

        $(
            #[doc = concat!("The response future of [`", stringify!($service), "`].")]
            pub type $future<S, B> = ferrapi_core::middleware::HookFuture<$layer, S, B>;
        )?
    };
}
pub(crate) use hook_layer;

mod access_log;
mod client_ip;
#[cfg(feature = "compression")]
mod compression;
mod cors;
#[cfg(feature = "decompression")]
mod decompression;
mod panic;
mod rate_limit;
mod request_id;
mod security_headers;
pub(crate) mod stack;
mod timing;
mod trace_context;

/// JWT verification and issuing (feature `jwt`), kept here for the paths
/// applications import; it lives in [`security::jwt`](crate::security::jwt).
#[cfg(feature = "jwt")]
pub use crate::security::jwt;
/// Argon2id password hashing (feature `password`), kept here for the paths
/// applications import; it lives in
/// [`security::password`](crate::security::password).
#[cfg(feature = "password")]
pub use crate::security::password;
pub use access_log::{AccessLogFuture, AccessLogLayer, AccessLogService};
pub use client_ip::{
    ClientIp, ClientIpLayer, ClientIpService, ClientScheme, TrustedProxies, TrustedProxiesError,
};
#[cfg(feature = "compression")]
pub use compression::{CompressionFuture, CompressionLayer, CompressionLevel, CompressionService};
pub use cors::{CorsConfig, CorsConfigError, CorsLayer, CorsService};
#[cfg(feature = "decompression")]
pub use decompression::{
    DecompressionError, DecompressionFuture, DecompressionLayer, DecompressionService, RATIO_FLOOR,
};
pub use ferrapi_core::middleware::{Flow, Hook, HookFuture, HookLayer, HookService, NoWait};
pub use ferrapi_core::rate_limit::{
    Decision, Quota, QuotaError, RateLimitStore, RateLimitStoreError,
};
pub use ferrapi_core::trace_context::{TRACEPARENT, TRACESTATE, TraceContext};
pub use panic::{CatchPanicLayer, CatchPanicService, catch_panic};
pub use rate_limit::{FailMode, MemoryStore, RateLimitKey, RateLimitLayer, RateLimitService};
pub use request_id::{
    MAX_REQUEST_ID_LEN, MissingLayer, RequestId, RequestIdFuture, RequestIdLayer, RequestIdService,
    X_REQUEST_ID,
};
pub use security_headers::{
    FrameOptions, ReferrerPolicy, SecurityHeadersFuture, SecurityHeadersLayer,
    SecurityHeadersService,
};
pub use stack::Stack;
pub use timing::{TimingFuture, TimingLayer, TimingService, X_PROCESS_TIME};
pub use trace_context::{TraceContextFuture, TraceContextLayer, TraceContextService};

/// Middleware from an `async fn(Request, Next) -> Response` (axum's
/// `middleware::from_fn`; see [Custom middleware](self#custom-middleware)).
pub use axum::middleware::{FromFnLayer, Next, from_fn, from_fn_with_state};

/// A boxed, sendable future, as [`RateLimitStore::check`] returns.
pub use futures_util::future::BoxFuture;

/// Whether `path` is `prefix` or under it, at a segment boundary: `/docs`
/// covers `/docs`, `/docs/` and `/docs/x`, not `/docsx`; `/` covers all.
pub(crate) fn path_under(path: &str, prefix: &str) -> bool {
    let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::path_under;

    #[test]
    fn path_prefixes_stop_at_segments() {
        assert!(path_under("/docs", "/docs"));
        assert!(path_under("/docs/", "/docs"));
        assert!(path_under("/docs/oauth2-redirect", "/docs"));
        assert!(!path_under("/docsx", "/docs"));
        assert!(path_under("/health/live", "/health/"));
        assert!(path_under("/anything", "/"));
        assert!(!path_under("/api", "/api/v1"));
    }
}
