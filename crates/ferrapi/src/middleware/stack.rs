//! [`Stack`]: the middleware layers, installed in the documented order.

use super::RequestId;
use super::{
    AccessLogLayer, ClientIpLayer, CorsLayer, RateLimitLayer, RequestIdLayer, SecurityHeadersLayer,
    TimingLayer, TraceContextLayer, catch_panic,
};
use crate::App;
use axum::body::Body;
use http::{HeaderValue, Request, Response};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tower::{Layer, Service};
use tracing::Instrument as _;

/// A set of middleware layers that [`apply`](Self::apply) installs on an
/// [`App`] in the [default order](super#the-default-order), whatever order
/// they were configured in.
///
/// ```
/// use ferrapi::middleware::{SecurityHeadersLayer, Stack, TimingLayer};
/// use ferrapi::prelude::*;
///
/// let app = Stack::defaults()
///     .timing(Some(TimingLayer::new().server_timing(true)))
///     .security_headers(Some(SecurityHeadersLayer::new().exempt("/docs")))
///     .apply(App::new());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Stack {
    request_id: Option<RequestIdLayer>,
    trace_context: Option<TraceContextLayer>,
    access_log: Option<AccessLogLayer>,
    timing: Option<TimingLayer>,
    security_headers: Option<SecurityHeadersLayer>,
    cors: Option<CorsLayer>,
    client_ip: Option<ClientIpLayer>,
    #[cfg(feature = "compression")]
    compression: Option<super::CompressionLayer>,
    #[cfg(feature = "jwt")]
    jwt: Option<crate::security::jwt::JwtLayer>,
    rate_limits: Vec<RateLimitLayer>,
    catch_panic: bool,
}

impl Stack {
    /// No layer at all.
    pub fn new() -> Self {
        Self::default()
    }

    /// The default stack: request id, W3C trace context (honouring the
    /// caller's trace; see [`TraceContextLayer`]), timing, security
    /// headers (their defaults), compression when the `compression` feature
    /// is on, and the inner panic catcher. No CORS, no rate limit: those
    /// need your origins and quotas; no access log: turn it on with
    /// [`access_log`](Self::access_log).
    pub fn defaults() -> Self {
        Self {
            request_id: Some(RequestIdLayer::new()),
            trace_context: Some(TraceContextLayer::new()),
            timing: Some(TimingLayer::new()),
            security_headers: Some(SecurityHeadersLayer::new()),
            #[cfg(feature = "compression")]
            compression: Some(super::CompressionLayer::new()),
            catch_panic: true,
            ..Self::default()
        }
    }

    /// The W3C trace-context layer (`None`: none).
    #[must_use]
    pub fn trace_context(mut self, layer: Option<TraceContextLayer>) -> Self {
        self.trace_context = layer;
        self
    }

    /// The access log, one line per request (`None`, the default: none).
    #[must_use]
    pub fn access_log(mut self, layer: Option<AccessLogLayer>) -> Self {
        self.access_log = layer;
        self
    }

    /// The request-id layer (`None`: none).
    #[must_use]
    pub fn request_id(mut self, layer: Option<RequestIdLayer>) -> Self {
        self.request_id = layer;
        self
    }

    /// The timing layer (`None`: none).
    #[must_use]
    pub fn timing(mut self, layer: Option<TimingLayer>) -> Self {
        self.timing = layer;
        self
    }

    /// The security-headers layer (`None`: none).
    #[must_use]
    pub fn security_headers(mut self, layer: Option<SecurityHeadersLayer>) -> Self {
        self.security_headers = layer;
        self
    }

    /// CORS, from [`CorsConfig::build`](super::CorsConfig::build).
    #[must_use]
    pub fn cors(mut self, layer: CorsLayer) -> Self {
        self.cors = Some(layer);
        self
    }

    /// Resolves the client address through trusted proxies.
    #[must_use]
    pub fn client_ip(mut self, layer: ClientIpLayer) -> Self {
        self.client_ip = Some(layer);
        self
    }

    /// The compression layer (`None`: none).
    #[cfg(feature = "compression")]
    #[must_use]
    pub fn compression(mut self, layer: Option<super::CompressionLayer>) -> Self {
        self.compression = layer;
        self
    }

    /// Verifies bearer tokens before the rate limiter.
    #[cfg(feature = "jwt")]
    #[must_use]
    pub fn jwt(mut self, layer: crate::security::jwt::JwtLayer) -> Self {
        self.jwt = Some(layer);
        self
    }

    /// Adds a rate limiter; several run in the order added (the first
    /// outermost).
    #[must_use]
    pub fn rate_limit(mut self, layer: RateLimitLayer) -> Self {
        self.rate_limits.push(layer);
        self
    }

    /// Whether panics are caught inside the stack (see
    /// [`catch_panic`](super::catch_panic)).
    #[must_use]
    pub fn catch_panic(mut self, enabled: bool) -> Self {
        self.catch_panic = enabled;
        self
    }

    /// Installs the layers on `app` in the default order. Layers added to
    /// `app` before run inside the stack, layers added after run outside it.
    ///
    /// The outer layers (request id, trace context, timing, security
    /// headers, and compression when no CORS, client-IP or access-log layer
    /// comes before it) are fused into one service: one future, no boxing,
    /// no per-layer copy of the request's future. When nothing else wraps
    /// the routes the server calls that service over the routes directly,
    /// without axum's router in between. CORS, client IP, access log,
    /// compression (after any of those), JWT and rate limits stay tower
    /// layers inside it.
    pub fn apply(self, app: App) -> App {
        // Compression joins the fused layers when no inner layer comes
        // before it in the order (CORS, client IP, access log): then it is
        // the next layer inward anyway.
        #[cfg(feature = "compression")]
        let (fused_compression, compression) =
            if self.cors.is_none() && self.client_ip.is_none() && self.access_log.is_none() {
                (self.compression, None)
            } else {
                (None, self.compression)
            };
        let fused = Fused {
            request_id: self.request_id,
            trace_context: self.trace_context,
            timing: self.timing,
            security_headers: self.security_headers,
            #[cfg(feature = "compression")]
            compression: fused_compression,
        };
        #[cfg(not(feature = "compression"))]
        let compression: Option<tower::layer::util::Identity> = None;
        #[cfg(feature = "jwt")]
        let jwt = self.jwt;
        #[cfg(not(feature = "jwt"))]
        let jwt: Option<tower::layer::util::Identity> = None;
        let inner_layers = self.cors.is_some()
            || self.client_ip.is_some()
            || self.access_log.is_some()
            || compression.is_some()
            || jwt.is_some()
            || !self.rate_limits.is_empty();
        let mut app = app;
        // The panic catcher guards the inner layers; without them it would
        // guard nothing the dispatcher (and, with other layers, the app's
        // outer catcher) does not already.
        if inner_layers {
            let rate_limits = (!self.rate_limits.is_empty())
                .then(|| super::rate_limit::RateLimits::new(self.rate_limits));
            let layer = tower::ServiceBuilder::new()
                .option_layer(self.cors)
                .option_layer(self.client_ip)
                .option_layer(self.access_log)
                .option_layer(compression)
                .option_layer(jwt)
                .option_layer(rate_limits)
                .option_layer(self.catch_panic.then(catch_panic))
                .into_inner();
            app = app.layer(layer);
        }
        if fused.is_empty() {
            app
        } else {
            app.fused_layer(fused)
        }
    }
}

/// The outer layers of a [`Stack`], run as one service ([`FusedLayer`]).
#[derive(Debug, Clone)]
pub(crate) struct Fused {
    request_id: Option<RequestIdLayer>,
    trace_context: Option<TraceContextLayer>,
    timing: Option<TimingLayer>,
    security_headers: Option<SecurityHeadersLayer>,
    #[cfg(feature = "compression")]
    compression: Option<super::CompressionLayer>,
}

impl Fused {
    fn is_empty(&self) -> bool {
        #[cfg(feature = "compression")]
        let compression = self.compression.is_some();
        #[cfg(not(feature = "compression"))]
        let compression = false;
        self.request_id.is_none()
            && self.trace_context.is_none()
            && self.timing.is_none()
            && self.security_headers.is_none()
            && !compression
    }

    /// The request halves, outermost first, then `call` (the inner
    /// service), in the request id's span.
    fn begin<B, F>(
        &self,
        mut req: Request<B>,
        call: impl FnOnce(Request<B>) -> F,
    ) -> (Pending, F, tracing::Span) {
        let (id, span) = match &self.request_id {
            Some(layer) => {
                let (id, span) = layer.begin(&mut req);
                (Some(id), span)
            }
            None => (None, tracing::Span::none()),
        };
        let timing = self.timing.as_ref().map(|t| t.begin(&req));
        let security = self.security_headers.as_ref().and_then(|s| s.begin(&req));
        #[cfg(feature = "compression")]
        let accept = self
            .compression
            .as_ref()
            .and_then(|_| super::compression::accept_encoding(req.headers()));
        let _entered = span.enter();
        // The trace context records its ids on the request's span.
        let traceparent = self
            .trace_context
            .as_ref()
            .and_then(|layer| layer.begin(&mut req));
        let future = call(req);
        drop(_entered);
        let pending = Pending {
            id,
            traceparent,
            timing,
            security,
            #[cfg(feature = "compression")]
            accept,
        };
        (pending, future, span)
    }

    /// The response halves, innermost first.
    #[cfg_attr(not(feature = "compression"), allow(unused_mut))]
    fn finish(
        &self,
        mut pending: Pending,
        span: &tracing::Span,
        res: Response<Body>,
    ) -> Response<Body> {
        #[cfg(feature = "compression")]
        let mut res = match &self.compression {
            Some(layer) => layer.respond(res, pending.accept.take()),
            None => res,
        };
        #[cfg(not(feature = "compression"))]
        let mut res = res;
        let Pending {
            id,
            traceparent,
            timing,
            security,
            ..
        } = pending;
        // One growth of the header map for all that is added.
        res.headers_mut().reserve(6);
        super::security_headers::finish(security, &mut res);
        if let (Some(layer), Some(started)) = (&self.timing, &timing) {
            layer.finish(started, &mut res);
        }
        super::trace_context::finish(traceparent, &mut res);
        if let (Some(layer), Some(id)) = (&self.request_id, id) {
            super::request_id::finish(layer.header_name(), id, span, &mut res);
        }
        res
    }
}

/// What the fused layers keep from a request until its response.
#[derive(Debug)]
struct Pending {
    id: Option<RequestId>,
    traceparent: Option<HeaderValue>,
    timing: Option<super::timing::Started>,
    security: Option<Arc<super::security_headers::Config>>,
    /// The request's `Accept-Encoding`, when compression is fused.
    #[cfg(feature = "compression")]
    accept: Option<HeaderValue>,
}

/// The fused outer layers of a [`Stack`] as a tower layer.
#[derive(Debug, Clone)]
pub(crate) struct FusedLayer(pub(crate) Arc<Fused>);

impl FusedLayer {
    pub(crate) fn new(fused: Fused) -> Self {
        Self(Arc::new(fused))
    }
}

impl<S> Layer<S> for FusedLayer {
    type Service = FusedService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        FusedService {
            fused: self.0.clone(),
            inner,
        }
    }
}

/// The service of [`FusedLayer`].
#[derive(Debug, Clone)]
pub(crate) struct FusedService<S> {
    fused: Arc<Fused>,
    inner: S,
}

impl<S, B> Service<Request<B>> for FusedService<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = FusedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        wrap(&self.fused, req, |req| self.inner.call(req))
    }
}

impl FusedService<crate::routing::Dispatch> {
    /// [`Service::call`] without `&mut` (the server's path: no clone of
    /// the service per request).
    pub(crate) fn call_direct(
        &self,
        req: axum::extract::Request,
    ) -> FusedFuture<crate::routing::DispatchFuture> {
        wrap(&self.fused, req, |req| self.inner.call(req))
    }
}

/// The fused layers around `call` (the inner service's call).
fn wrap<B, F>(
    fused: &Arc<Fused>,
    req: Request<B>,
    call: impl FnOnce(Request<B>) -> F,
) -> FusedFuture<F> {
    let (pending, inner, span) = fused.begin(req, call);
    FusedFuture {
        inner: inner.instrument(span),
        fused: fused.clone(),
        pending: Some(pending),
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`FusedService`].
    pub(crate) struct FusedFuture<F> {
        #[pin]
        inner: tracing::instrument::Instrumented<F>,
        fused: Arc<Fused>,
        pending: Option<Pending>,
    }
}

impl<F, E> Future for FusedFuture<F>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let res = ready!(this.inner.as_mut().poll(cx))?;
        Poll::Ready(Ok(match this.pending.take() {
            Some(pending) => this.fused.finish(pending, this.inner.span(), res),
            None => res,
        }))
    }
}
