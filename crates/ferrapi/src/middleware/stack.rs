//! [`Stack`]: the middleware layers, installed in the documented order.

use super::{
    AccessLogLayer, ClientIpLayer, CorsLayer, RateLimitLayer, RequestIdLayer, SecurityHeadersLayer,
    TimingLayer, TraceContextLayer, catch_panic,
};
use crate::App;
use axum::body::Body;
use ferrapi_core::middleware::{Flow, Hook, HookService, NoWait};
use http::{Request, Response};
use std::sync::Arc;
use tower::Layer;

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
    /// comes before it) are fused into one service, their hooks composed
    /// and served by the generic hook service: one future, no boxing, no
    /// per-layer copy of the request's future. When nothing else wraps
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
        #[cfg(feature = "compression")]
        let tail = (self.security_headers, fused_compression);
        #[cfg(not(feature = "compression"))]
        let tail = self.security_headers;
        let fused = Fused((self.request_id, (self.trace_context, (self.timing, tail))));
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

#[cfg(feature = "compression")]
type Tail = (
    Option<SecurityHeadersLayer>,
    Option<super::CompressionLayer>,
);
#[cfg(not(feature = "compression"))]
type Tail = Option<SecurityHeadersLayer>;

/// The outer hooks of a [`Stack`], outermost first.
type Chain = (
    Option<RequestIdLayer>,
    (Option<TraceContextLayer>, (Option<TimingLayer>, Tail)),
);

/// The outer layers of a [`Stack`], run as one hook ([`FusedLayer`]): the
/// pairs of [`Hook`] nest them in order, so that they behave as the same
/// layers added one by one.
#[derive(Debug, Clone)]
pub(crate) struct Fused(Chain);

impl Fused {
    fn is_empty(&self) -> bool {
        let (request_id, (trace_context, (timing, tail))) = &self.0;
        #[cfg(feature = "compression")]
        let tail = tail.0.is_none() && tail.1.is_none();
        #[cfg(not(feature = "compression"))]
        let tail = tail.is_none();
        request_id.is_none() && trace_context.is_none() && timing.is_none() && tail
    }
}

// Always inlined (as `Arc`'s forwarding): each call boundary is one more
// copy of the whole state per request.
impl Hook for Fused {
    type State = <Chain as Hook>::State;
    type Wait = NoWait<Self::State>;

    #[inline(always)]
    fn begin<B>(&self, req: &mut Request<B>) -> Flow<Self::State> {
        self.0.begin(req)
    }

    #[inline(always)]
    fn finish(state: Self::State, mut res: Response<Body>) -> Response<Body> {
        // One growth of the header map for all that is added.
        res.headers_mut().reserve(6);
        Chain::finish(state, res)
    }

    #[inline(always)]
    fn span(state: &Self::State) -> Option<&tracing::Span> {
        Chain::span(state)
    }
}

/// The fused outer layers of a [`Stack`] as a tower layer: the generic
/// hook layer over the shared [`Fused`] hook (nothing of it is copied per
/// request: each request's future keeps only the hooks' states).
#[derive(Debug, Clone)]
pub(crate) struct FusedLayer(pub(crate) Arc<Fused>);

impl FusedLayer {
    pub(crate) fn new(fused: Fused) -> Self {
        Self(Arc::new(fused))
    }
}

impl<S> Layer<S> for FusedLayer {
    type Service = HookService<Arc<Fused>, S>;
    fn layer(&self, inner: S) -> Self::Service {
        HookService::new(self.0.clone(), inner)
    }
}
