//! The access log: one line per request.
//!
//! The route it reports is the one the dispatcher publishes: the layer puts
//! a [`MatchedRouteSlot`] in the request (only when the line will be
//! written) and reads it when the response is back.

use super::{ClientIp, ClientScheme};
use ferrapi_core::extract::MatchedRouteSlot;
use http::{Method, Request, Response, Uri};
use std::task::{Context, Poll};
use std::time::Instant;
use tower::{Layer, Service};

/// Logs one line per request, at `info` with target `ferrapi::access`,
/// when the response head is ready: `method`, `route` (the template, such
/// as `/api/v1/users/{user_id}`; `unmatched` for a 404 no route matched;
/// absent for an answer given before routing, such as a 429),
/// `path`, `status`, `latency_ms`, `bytes` (when known), `client_ip`,
/// `scheme` (from a trusted proxy's `X-Forwarded-Proto`) and `user_agent`. Inside [`RequestIdLayer`](super::RequestIdLayer)'s span, the
/// line also carries `request_id` (and `trace_id` with
/// [`TraceContextLayer`](super::TraceContextLayer)).
///
/// Headers other than `User-Agent` are never logged, nor query strings
/// (they may carry tokens), nor bodies: secrets stay out of the log.
/// Switch it off by not installing it (`Stack::access_log(None)`), or
/// filter the target (`RUST_LOG=info,ferrapi::access=off`). A program
/// with no subscriber at all gets the server's plain console line instead
/// (see [`console`](crate::console)).
///
/// ```
/// use ferrapi::middleware::AccessLogLayer;
/// use ferrapi::prelude::*;
///
/// let app = App::new().layer(AccessLogLayer::new());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct AccessLogLayer {
    _private: (),
}

impl AccessLogLayer {
    /// The layer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<S> Layer<S> for AccessLogLayer {
    type Service = AccessLogService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AccessLogService { inner }
    }
}

/// The service of [`AccessLogLayer`].
#[derive(Debug, Clone)]
pub struct AccessLogService<S> {
    inner: S,
}

struct Line {
    method: Method,
    uri: Uri,
    client_ip: Option<String>,
    scheme: &'static str,
    user_agent: Option<String>,
    route: MatchedRouteSlot,
}

impl<S, B, ResBody> Service<Request<B>> for AccessLogService<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: http_body::Body,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = AccessLogFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let start = Instant::now();
        // Nothing is gathered when no subscriber would take the line.
        let line = tracing::enabled!(target: "ferrapi::access", tracing::Level::INFO).then(|| {
            let route = MatchedRouteSlot::default();
            req.extensions_mut().insert(route.clone());
            Box::new(Line {
                method: req.method().clone(),
                uri: req.uri().clone(),
                client_ip: req
                    .extensions()
                    .get::<ClientIp>()
                    .map(|ip| ip.0.to_string()),
                scheme: req
                    .extensions()
                    .get::<ClientScheme>()
                    .map_or("http", |s| s.as_str()),
                user_agent: req
                    .headers()
                    .get(http::header::USER_AGENT)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.chars().take(256).collect()),
                route,
            })
        });
        AccessLogFuture {
            inner: self.inner.call(req),
            start,
            line,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`AccessLogService`].
    pub struct AccessLogFuture<F> {
        #[pin]
        inner: F,
        start: Instant,
        line: Option<Box<Line>>,
    }
}

impl<F> std::fmt::Debug for AccessLogFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessLogFuture(..)")
    }
}

impl<F, B, E> std::future::Future for AccessLogFuture<F>
where
    F: std::future::Future<Output = Result<Response<B>, E>>,
    B: http_body::Body,
{
    type Output = F::Output;
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let res = std::task::ready!(this.inner.poll(cx))?;
        if let Some(line) = this.line.take() {
            let status = res.status().as_u16();
            // No route is known for an answer given before routing (a 429,
            // a refused preflight): the field is left out rather than
            // filled with a raw path.
            let route = match line.route.get() {
                Some(route) => Some(route.template().to_owned()),
                None if status == 404 => Some("unmatched".to_owned()),
                None => None,
            };
            let latency_ms = this.start.elapsed().as_secs_f64() * 1000.0;
            let bytes = res.body().size_hint().exact();
            tracing::info!(
                target: "ferrapi::access",
                method = %line.method,
                route = route.as_deref(),
                path = %line.uri.path(),
                status,
                latency_ms,
                bytes,
                client_ip = line.client_ip.as_deref(),
                scheme = line.scheme,
                user_agent = line.user_agent.as_deref(),
                "{} {} {}",
                line.method,
                line.uri.path(),
                status
            );
        }
        Poll::Ready(Ok(res))
    }
}
