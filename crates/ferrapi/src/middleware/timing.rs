//! The timing layer.

use axum::response::Response;
use ferrapi_core::middleware::{Flow, Hook, NoWait};
use http::{HeaderName, HeaderValue, Method, Request, Uri};
use std::time::{Duration, Instant};

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

super::hook_layer!(TimingLayer, TimingService, TimingFuture);

/// What [`TimingLayer`] keeps from a request until its response: small,
/// since every request's future carries it (the slow-request threshold
/// goes with the request line, in the box made only when it is set).
#[derive(Debug)]
pub struct Started {
    start: Instant,
    /// The threshold and the request line, kept only when slow requests
    /// are logged.
    slow: Option<Box<(Duration, Method, Uri)>>,
    server_timing: bool,
}

/// The request half takes the start time; the response half writes the
/// headers and the slow-request log line.
impl Hook for TimingLayer {
    type State = Started;
    type Wait = NoWait<Self::State>;

    #[inline]
    fn begin<B>(&self, req: &mut Request<B>) -> Flow<Started> {
        Flow::Continue(Started {
            start: Instant::now(),
            slow: self
                .slow
                .map(|threshold| Box::new((threshold, req.method().clone(), req.uri().clone()))),
            server_timing: self.server_timing,
        })
    }

    fn finish(started: Started, mut res: Response) -> Response {
        let elapsed = started.start.elapsed();
        let status = res.status();
        let headers = res.headers_mut();
        if let Some(v) = seconds_header(elapsed) {
            headers.insert(X_PROCESS_TIME, v);
        }
        if started.server_timing
            && let Some(v) = server_timing_header(elapsed)
        {
            headers.append(SERVER_TIMING, v);
        }
        if let Some((threshold, method, uri)) = started.slow.as_deref()
            && elapsed > *threshold
        {
            tracing::warn!(
                method = %method,
                path = %uri.path(),
                status = status.as_u16(),
                seconds = elapsed.as_secs_f64(),
                "slow request"
            );
        }
        res
    }
}

/// Seconds with six decimals (rounded to the microsecond), never in
/// exponent notation: `0.001234`. Integer arithmetic into a stack buffer:
/// one allocation, for the header value itself.
fn seconds_header(elapsed: Duration) -> Option<HeaderValue> {
    fixed_point(b"", micros(elapsed), 6)
}

/// `Server-Timing: app;dur=<milliseconds with three decimals>`.
fn server_timing_header(elapsed: Duration) -> Option<HeaderValue> {
    fixed_point(b"app;dur=", micros(elapsed), 3)
}

/// Whole microseconds, rounded.
fn micros(elapsed: Duration) -> u64 {
    u64::try_from((elapsed.as_nanos() + 500) / 1000).unwrap_or(u64::MAX)
}

/// `prefix` then `units` / 10^`decimals` in plain decimal notation with
/// exactly `decimals` digits after the point. Written by hand into a stack
/// buffer (`core::fmt` cost more than the rest of the layer).
fn fixed_point(prefix: &[u8], units: u64, decimals: usize) -> Option<HeaderValue> {
    // Written backwards from the end: u64::MAX has 20 digits, then the
    // point and the prefix.
    let mut out = [0u8; 48];
    let mut at = out.len();
    let mut v = units;
    let mut n = 0;
    while v > 0 || n <= decimals {
        if n == decimals && n > 0 {
            at = at.checked_sub(1)?;
            *out.get_mut(at)? = b'.';
        }
        at = at.checked_sub(1)?;
        *out.get_mut(at)? = b'0' + (v % 10) as u8;
        v /= 10;
        n += 1;
    }
    let start = at.checked_sub(prefix.len())?;
    out.get_mut(start..at)?.copy_from_slice(prefix);
    HeaderValue::from_bytes(out.get(start..)?).ok()
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
        let st = server_timing_header(Duration::from_secs(3))
            .and_then(|h| h.to_str().ok().map(str::to_owned));
        assert_eq!(st.as_deref(), Some("app;dur=3000.000"));
        assert_eq!(text(Duration::MAX), "18446744073709.551615");
    }

    /// A log writer sharing what it was given.
    #[derive(Clone, Default)]
    struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut lines) = self.0.lock() {
                lines.extend_from_slice(bytes);
            }
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// One request through the layer's halves, taking at least 5 ms.
    fn through(layer: TimingLayer) -> Response {
        let mut req = Request::new(());
        *req.method_mut() = Method::POST;
        *req.uri_mut() = Uri::from_static("/users/7?full=1");
        let Flow::Continue(started) = layer.begin(&mut req) else {
            panic!("the timing layer always goes on");
        };
        std::thread::sleep(Duration::from_millis(5));
        TimingLayer::finish(started, Response::new(axum::body::Body::empty()))
    }

    #[test]
    fn slow_requests_are_logged_with_their_request_line() {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let (slow, fast, off) = tracing::subscriber::with_default(subscriber, || {
            let slow = through(
                TimingLayer::new()
                    .server_timing(true)
                    .slow_request_threshold(Some(Duration::from_millis(1))),
            );
            let fast =
                through(TimingLayer::new().slow_request_threshold(Some(Duration::from_secs(3600))));
            (slow, fast, through(TimingLayer::new()))
        });
        let text = lines
            .0
            .lock()
            .map(|l| String::from_utf8_lossy(&l).into_owned())
            .unwrap_or_default();
        assert_eq!(text.matches("slow request").count(), 1, "{text}");
        assert!(text.contains("method=POST"), "{text}");
        assert!(text.contains("path=/users/7 "), "{text}");
        assert!(text.contains("status=200"), "{text}");
        for res in [&slow, &fast, &off] {
            assert!(res.headers().contains_key(X_PROCESS_TIME));
        }
        assert!(slow.headers().contains_key(SERVER_TIMING));
        assert!(!fast.headers().contains_key(SERVER_TIMING));
        assert!(!off.headers().contains_key(SERVER_TIMING));
    }
}
