//! [`TraceContextLayer`]: honours W3C `traceparent`/`tracestate` on the
//! way in and answers `traceparent` on the way out. The
//! [`TraceContext`] value and its parsing are in `ferrapi-core`.

use axum::response::Response;
use ferrapi_core::middleware::{Flow, Hook, NoWait};
use ferrapi_core::trace_context::{TRACEPARENT, TraceContext, record_on};
use http::{HeaderValue, Request};

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

super::hook_layer!(TraceContextLayer, TraceContextService, TraceContextFuture);

/// The request half: for a request in a trace (the caller's, or the
/// exported span's), the request's [`TraceContext`] in its extensions and
/// its ids on the current span (the request id's, when that layer is
/// outside); the response half answers its `traceparent`.
impl Hook for TraceContextLayer {
    type State = Option<HeaderValue>;
    type Wait = NoWait<Self::State>;

    fn begin<B>(&self, req: &mut Request<B>) -> Flow<Option<HeaderValue>> {
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
            None => return Flow::Continue(None),
        };
        record_on(&tracing::Span::current(), &trace);
        let header = trace.traceparent_header();
        req.extensions_mut().insert(trace);
        Flow::Continue(Some(header))
    }

    #[inline]
    fn finish(header: Option<HeaderValue>, mut res: Response) -> Response {
        if let Some(v) = header {
            res.headers_mut().insert(TRACEPARENT, v);
        }
        res
    }
}
