//! [`Stack`]: the middleware layers, installed in the documented order.

use super::{
    AccessLogLayer, ClientIpLayer, CorsLayer, RateLimitLayer, RequestIdLayer, SecurityHeadersLayer,
    TimingLayer, TraceContextLayer, catch_panic,
};
use crate::App;

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
    jwt: Option<super::jwt::JwtLayer>,
    rate_limits: Vec<RateLimitLayer>,
    catch_panic: bool,
}

impl Stack {
    /// No layer at all.
    pub fn new() -> Self {
        Self::default()
    }

    /// The default stack: request id, W3C trace context, timing, security
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
    pub fn jwt(mut self, layer: super::jwt::JwtLayer) -> Self {
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

    /// Installs the layers on `app` as one layer (one [`App::layer`]), in
    /// the default order. Layers added to `app` before run inside the
    /// stack, layers added after run outside it.
    pub fn apply(self, app: App) -> App {
        #[cfg(feature = "compression")]
        let compression = self.compression;
        #[cfg(not(feature = "compression"))]
        let compression: Option<tower::layer::util::Identity> = None;
        #[cfg(feature = "jwt")]
        let jwt = self.jwt;
        #[cfg(not(feature = "jwt"))]
        let jwt: Option<tower::layer::util::Identity> = None;
        let rate_limits = (!self.rate_limits.is_empty())
            .then(|| super::rate_limit::RateLimits::new(self.rate_limits));
        // One layer, not one per piece: each `App::layer` boxes every route
        // once more, and boxed services are cloned per request.
        let layer = tower::ServiceBuilder::new()
            .option_layer(self.request_id)
            .option_layer(self.trace_context)
            .option_layer(self.timing)
            .option_layer(self.security_headers)
            .option_layer(self.cors)
            .option_layer(self.client_ip)
            .option_layer(self.access_log)
            .option_layer(compression)
            .option_layer(jwt)
            .option_layer(rate_limits)
            .option_layer(self.catch_panic.then(catch_panic))
            .into_inner();
        app.layer(layer)
    }
}
