//! [`TraceContextLayer`]: honours W3C `traceparent`/`tracestate` on the
//! way in and answers `traceparent` on the way out. The
//! [`TraceContext`] value and its parsing are in `ferrapi-core`.

use ferrapi_core::trace_context::{TRACEPARENT, TraceContext, record_on};
use http::{HeaderValue, Request, Response};
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Honours W3C `traceparent`/`tracestate`: for a request that carries a
/// valid `traceparent` (or whose span OpenTelemetry exports, see
/// `telemetry`, feature `otel`), puts the [`TraceContext`] on the
/// request, records `trace_id` and `span_id` on the request's tracing span
/// (the one `RequestIdLayer` opens, so every log
/// line of the request carries them), and answers with `traceparent`
/// naming this request's span, so a caller can find the server's part of
/// its trace.
///
/// A request without a (valid) `traceparent` costs one header lookup: no
/// trace is started for it unless
/// [`start_traces`](Self::start_traces) says so, or a handler extracts
/// [`TraceContext`] (to call another service), which starts one then. As
/// in FastAPI with OpenTelemetry, new traces are the tracer's business;
/// with `telemetry` (feature `otel`) installed every request has one.
///
/// ```
/// use ferrapi::middleware::TraceContextLayer;
/// use ferrapi::prelude::*;
///
/// let app = App::new().layer(TraceContextLayer::new());
/// // Every request gets a trace id in its log lines and a `traceparent`
/// // answer, even without a caller's trace or a tracer.
/// let app = App::new().layer(TraceContextLayer::new().start_traces(true));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceContextLayer {
    start_traces: bool,
}

impl TraceContextLayer {
    /// The layer: honours the caller's trace, starts none.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also start a new trace for a request that comes without a valid
    /// `traceparent` (its ids on the request's span and in the answer's
    /// `traceparent`). Off by default: it costs every such request the ids,
    /// a request extension and a response header.
    #[must_use]
    pub fn start_traces(mut self, enabled: bool) -> Self {
        self.start_traces = enabled;
        self
    }
}

impl<S> Layer<S> for TraceContextLayer {
    type Service = TraceContextService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        TraceContextService {
            inner,
            layer: *self,
        }
    }
}

/// The service of [`TraceContextLayer`].
#[derive(Debug, Clone)]
pub struct TraceContextService<S> {
    inner: S,
    layer: TraceContextLayer,
}

impl<S, B, ResBody> Service<Request<B>> for TraceContextService<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = TraceContextFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let header = self.layer.begin(&mut req);
        TraceContextFuture {
            inner: self.inner.call(req),
            header,
        }
    }
}

impl TraceContextLayer {
    /// The request half: for a request in a trace (the caller's, or the
    /// exported span's), the request's [`TraceContext`] in its extensions
    /// and its ids on the current span; returns the `traceparent` to
    /// answer. Shared by [`TraceContextService`] and the fused
    /// [`Stack`](super::Stack).
    #[doc(hidden)]
    pub fn begin<B>(&self, req: &mut Request<B>) -> Option<HeaderValue> {
        // With `otel`, the request span may already be an exported span
        // whose ids `telemetry` put on the request: answer and log those.
        #[cfg(feature = "otel")]
        let exported = req.extensions().get::<TraceContext>().cloned();
        #[cfg(not(feature = "otel"))]
        let exported: Option<TraceContext> = None;
        let trace = match exported.or_else(|| TraceContext::joining(req.headers())) {
            Some(trace) => trace,
            None if self.start_traces => TraceContext::new_trace(),
            // No trace to honour, none to start: nothing to do.
            None => return None,
        };
        record_on(&tracing::Span::current(), &trace);
        let header = trace.traceparent_header();
        req.extensions_mut().insert(trace);
        Some(header)
    }
}

/// The response half of [`TraceContextLayer`].
#[doc(hidden)]
pub fn finish<B>(header: Option<HeaderValue>, res: &mut Response<B>) {
    if let Some(v) = header {
        res.headers_mut().insert(TRACEPARENT, v);
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`TraceContextService`].
    #[derive(Debug)]
    pub struct TraceContextFuture<F> {
        #[pin]
        inner: F,
        header: Option<HeaderValue>,
    }
}

impl<F, B, E> std::future::Future for TraceContextFuture<F>
where
    F: std::future::Future<Output = Result<Response<B>, E>>,
{
    type Output = F::Output;
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut res = std::task::ready!(this.inner.poll(cx))?;
        finish(this.header.take(), &mut res);
        Poll::Ready(Ok(res))
    }
}
