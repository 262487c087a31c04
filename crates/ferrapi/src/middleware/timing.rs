//! The timing layer.

use http::{HeaderName, HeaderValue, Method, Request, Response, Uri};
use std::fmt::Write as _;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tower::{Layer, Service};

/// The header carrying the processing time in seconds.
pub const X_PROCESS_TIME: HeaderName = HeaderName::from_static("x-process-time");
const SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");

/// Adds `X-Process-Time` (seconds spent in the application, as a
/// plain decimal: `0.001234`), optionally `Server-Timing` (`app;dur=1.234`,
/// milliseconds, shown by browsers' developer tools), and a warning in the
/// log for requests slower than a threshold.
///
/// The time runs from the moment the request enters this layer until the
/// response head is ready; streaming a body afterwards is not counted.
///
/// ```
/// use ferrapi::middleware::TimingLayer;
/// use ferrapi::prelude::*;
/// use std::time::Duration;
///
/// let app = App::new().layer(
///     TimingLayer::new()
///         .server_timing(true)
///         .slow_request_threshold(Some(Duration::from_millis(500))),
/// );
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct TimingLayer {
    server_timing: bool,
    slow: Option<Duration>,
}

impl TimingLayer {
    /// `X-Process-Time` only; no `Server-Timing`, no slow-request log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also send `Server-Timing: app;dur=<milliseconds>`.
    #[must_use]
    pub fn server_timing(mut self, enabled: bool) -> Self {
        self.server_timing = enabled;
        self
    }

    /// Log a warning (method, path, status, seconds) for every request that
    /// takes longer than `threshold`; `None` (the default) logs nothing.
    #[must_use]
    pub fn slow_request_threshold(mut self, threshold: Option<Duration>) -> Self {
        self.slow = threshold;
        self
    }
}

impl<S> Layer<S> for TimingLayer {
    type Service = TimingService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        TimingService {
            inner,
            layer: *self,
        }
    }
}

/// The service of [`TimingLayer`].
#[derive(Debug, Clone)]
pub struct TimingService<S> {
    inner: S,
    layer: TimingLayer,
}

impl<S, B, ResBody> Service<Request<B>> for TimingService<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = TimingFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let start = Instant::now();
        // The request line is kept only when slow requests are logged.
        let request = self
            .layer
            .slow
            .map(|_| Box::new((req.method().clone(), req.uri().clone())));
        TimingFuture {
            inner: self.inner.call(req),
            start,
            layer: self.layer,
            request,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`TimingService`].
    #[derive(Debug)]
    pub struct TimingFuture<F> {
        #[pin]
        inner: F,
        start: Instant,
        layer: TimingLayer,
        request: Option<Box<(Method, Uri)>>,
    }
}

impl<F, B, E> std::future::Future for TimingFuture<F>
where
    F: std::future::Future<Output = Result<Response<B>, E>>,
{
    type Output = F::Output;
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut res = std::task::ready!(this.inner.poll(cx))?;
        let elapsed = this.start.elapsed();
        let headers = res.headers_mut();
        if let Some(v) = seconds_header(elapsed) {
            headers.insert(X_PROCESS_TIME, v);
        }
        if this.layer.server_timing
            && let Some(v) = server_timing_header(elapsed)
        {
            headers.append(SERVER_TIMING, v);
        }
        if let (Some(threshold), Some(request)) = (this.layer.slow, this.request.as_deref())
            && elapsed > threshold
        {
            tracing::warn!(
                method = %request.0,
                path = %request.1.path(),
                status = res.status().as_u16(),
                seconds = elapsed.as_secs_f64(),
                "slow request"
            );
        }
        Poll::Ready(Ok(res))
    }
}

/// Seconds with six decimals (rounded to the microsecond), never in
/// exponent notation: `0.001234`. Integer arithmetic into a stack buffer:
/// one allocation, for the header value itself.
fn seconds_header(elapsed: Duration) -> Option<HeaderValue> {
    let micros = (elapsed.as_nanos() + 500) / 1000;
    let mut buf = StackBuf::default();
    write!(buf, "{}.{:06}", micros / 1_000_000, micros % 1_000_000).ok()?;
    HeaderValue::from_bytes(buf.as_bytes()).ok()
}

/// `Server-Timing: app;dur=<milliseconds with three decimals>`.
fn server_timing_header(elapsed: Duration) -> Option<HeaderValue> {
    let micros = (elapsed.as_nanos() + 500) / 1000;
    let mut buf = StackBuf::default();
    write!(buf, "app;dur={}.{:03}", micros / 1000, micros % 1000).ok()?;
    HeaderValue::from_bytes(buf.as_bytes()).ok()
}

/// A small formatting buffer on the stack.
struct StackBuf {
    bytes: [u8; 48],
    len: usize,
}

impl Default for StackBuf {
    fn default() -> Self {
        Self {
            bytes: [0; 48],
            len: 0,
        }
    }
}

impl StackBuf {
    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl std::fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let slot = self.bytes.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_decimals() {
        let text = |d: Duration| {
            seconds_header(d)
                .and_then(|h| h.to_str().ok().map(str::to_owned))
                .unwrap_or_default()
        };
        assert_eq!(text(Duration::from_micros(1234)), "0.001234");
        assert_eq!(text(Duration::from_nanos(1)), "0.000000");
        assert_eq!(text(Duration::from_millis(12_500)), "12.500000");
        assert_eq!(text(Duration::from_nanos(1_234_567)), "0.001235");
        assert_eq!(text(Duration::from_secs(86_400 * 365)), "31536000.000000");
        let st = server_timing_header(Duration::from_nanos(1_234_567))
            .and_then(|h| h.to_str().ok().map(str::to_owned));
        assert_eq!(st.as_deref(), Some("app;dur=1.235"));
    }
}
