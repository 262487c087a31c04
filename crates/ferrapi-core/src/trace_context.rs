//! W3C Trace Context (`traceparent` / `tracestate`): the
//! [`TraceContext`] of a request, which the trace-context layer (in the
//! facade), the outgoing client and the OpenTelemetry export share.
//!
//! Written by hand: the header is 55 characters of fixed layout, and the
//! `opentelemetry` propagator would pull the whole SDK into every build,
//! while this layer must work (for log correlation) without it.

use crate::describe::DescribeInput;
use crate::extract::{FromRequestParts, Rejection, RequestContext};
use http::request::Parts;
use http::{HeaderName, HeaderValue};
use std::cell::Cell;
use std::fmt;

/// `traceparent`.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// `tracestate`.
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// The trace this request belongs to: the caller's trace when it sent a
/// valid `traceparent`, else a new one; and this request's own span id.
///
/// An extractor (for handlers that call other services) and a request
/// extension. A request that came without a trace (and without
/// OpenTelemetry exporting one) starts its trace here, at the first
/// extraction: later extractions in the same request get the same ids, and
/// they are recorded on the request's span from then on.
/// [`traceparent`](Self::traceparent) is the header to send on outgoing
/// calls so that they join the trace as children of this request.
///
/// ```
/// use ferrapi::middleware::TraceContext;
/// use ferrapi::prelude::*;
///
/// #[get("/proxy")]
/// async fn proxy(trace: TraceContext) -> String {
///     // Send this as `traceparent` on the outgoing request.
///     trace.traceparent()
/// }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent_id: Option<[u8; 8]>,
    flags: u8,
    tracestate: Option<HeaderValue>,
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceContext")
            .field("trace_id", &self.trace_id())
            .field("span_id", &self.span_id())
            .field("parent_id", &self.parent_id())
            .field("sampled", &self.sampled())
            .finish()
    }
}

fn hex_into(src: &[u8], out: &mut [u8]) -> Option<()> {
    if src.len() != out.len() * 2 {
        return None;
    }
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    for (i, pair) in src.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(())
}

fn to_hex(bytes: &[u8]) -> String {
    let mut out = vec![0; bytes.len() * 2];
    hex_write(bytes, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Lowercase hex of `bytes` into `out` (twice as long).
fn hex_write(bytes: &[u8], out: &mut [u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (b, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 15)];
    }
}

thread_local! {
    static RNG: Cell<u64> = Cell::new({
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x9e37_79b9_7f4a_7c15);
        h.finish() | 1
    });
}

/// xorshift64*: ids need to be unique, not secret.
fn random_u64() -> u64 {
    RNG.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
}

fn random_nonzero<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    for chunk in out.chunks_mut(8) {
        let r = random_u64().to_le_bytes();
        chunk.copy_from_slice(&r[..chunk.len()]);
    }
    if out.iter().all(|b| *b == 0) {
        out[N - 1] = 1;
    }
    out
}

impl TraceContext {
    /// Parses a `traceparent` value into (trace id, parent span id, flags):
    /// version `00`, or a later version read as `00`; `None` when it is
    /// malformed or has all-zero ids.
    pub fn parse(traceparent: &[u8]) -> Option<([u8; 16], [u8; 8], u8)> {
        let value = traceparent.trim_ascii();
        if value.len() < 55 {
            return None;
        }
        let (version, rest) = (&value[..2], &value[2..]);
        let mut v = [0u8; 1];
        hex_into(version, &mut v)?;
        // Version ff is forbidden; version 00 is exactly 55 characters;
        // later versions may append `-…`.
        if v[0] == 0xff || (v[0] == 0 && value.len() != 55) {
            return None;
        }
        if value.len() > 55 && value[55] != b'-' {
            return None;
        }
        if rest[0] != b'-' || rest[33] != b'-' || rest[50] != b'-' {
            return None;
        }
        let mut trace_id = [0u8; 16];
        let mut parent = [0u8; 8];
        let mut flags = [0u8; 1];
        hex_into(&rest[1..33], &mut trace_id)?;
        hex_into(&rest[34..50], &mut parent)?;
        hex_into(&rest[51..53], &mut flags)?;
        if trace_id.iter().all(|b| *b == 0) || parent.iter().all(|b| *b == 0) {
            return None;
        }
        Some((trace_id, parent, flags[0]))
    }

    /// The context of a request: the caller's trace when `traceparent` is
    /// valid (with its `tracestate`), else a new sampled trace; a new span
    /// id either way.
    pub fn from_headers(headers: &http::HeaderMap) -> Self {
        Self::joining(headers).unwrap_or_else(Self::new_trace)
    }

    /// A new span in the caller's trace, with the caller's `tracestate`,
    /// when `headers` carry a valid `traceparent`.
    #[doc(hidden)]
    pub fn joining(headers: &http::HeaderMap) -> Option<Self> {
        let (trace_id, parent, flags) = Self::parse(headers.get(TRACEPARENT)?.as_bytes())?;
        Some(Self {
            trace_id,
            span_id: random_nonzero(),
            parent_id: Some(parent),
            flags,
            tracestate: headers.get(TRACESTATE).cloned(),
        })
    }

    /// A new sampled trace.
    #[doc(hidden)]
    pub fn new_trace() -> Self {
        Self {
            trace_id: random_nonzero(),
            span_id: random_nonzero(),
            parent_id: None,
            flags: 1,
            tracestate: None,
        }
    }

    /// The trace id, 32 lowercase hex digits.
    pub fn trace_id(&self) -> String {
        to_hex(&self.trace_id)
    }

    /// This request's span id, 16 lowercase hex digits.
    pub fn span_id(&self) -> String {
        to_hex(&self.span_id)
    }

    /// The caller's span id, when the caller sent one.
    pub fn parent_id(&self) -> Option<String> {
        self.parent_id.map(|p| to_hex(&p))
    }

    /// Whether the trace is sampled (flag `01`).
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// The caller's `tracestate`, passed on unchanged.
    pub fn tracestate(&self) -> Option<&HeaderValue> {
        self.tracestate.as_ref()
    }

    /// The `traceparent` for an outgoing call made while handling this
    /// request (`00-<trace id>-<this span id>-<flags>`).
    pub fn traceparent(&self) -> String {
        let bytes = self.traceparent_bytes();
        // Always ASCII: version, hex digits and dashes.
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// [`traceparent`](Self::traceparent) as a header value.
    pub fn traceparent_header(&self) -> HeaderValue {
        let bytes = self.traceparent_bytes();
        HeaderValue::from_bytes(&bytes).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// `00-<trace id>-<span id>-<flags>`, written without allocating.
    fn traceparent_bytes(&self) -> [u8; 55] {
        let mut out = [b'-'; 55];
        out[..2].copy_from_slice(b"00");
        hex_write(&self.trace_id, &mut out[3..35]);
        hex_write(&self.span_id, &mut out[36..52]);
        hex_write(&[self.flags], &mut out[53..55]);
        out
    }

    /// Raw ids, for exporters: (trace id, span id, parent span id).
    pub fn ids(&self) -> ([u8; 16], [u8; 8], Option<[u8; 8]>) {
        (self.trace_id, self.span_id, self.parent_id)
    }

    /// The context of a span whose ids were chosen elsewhere (the exported
    /// server span of `telemetry`).
    #[doc(hidden)]
    pub fn from_ids(
        trace_id: [u8; 16],
        span_id: [u8; 8],
        parent_id: Option<[u8; 8]>,
        flags: u8,
        tracestate: Option<HeaderValue>,
    ) -> Self {
        Self {
            trace_id,
            span_id,
            parent_id,
            flags,
            tracestate,
        }
    }
}

impl FromRequestParts for TraceContext {
    async fn from_request_parts(
        parts: &mut Parts,
        _cx: &RequestContext,
    ) -> Result<Self, Rejection> {
        if let Some(trace) = parts.extensions.get::<TraceContext>() {
            return Ok(trace.clone());
        }
        // No layer put one here (none installed, or the request came
        // without a trace): start it now, once for the whole request.
        let trace = TraceContext::from_headers(&parts.headers);
        record_on(&tracing::Span::current(), &trace);
        parts.extensions.insert(trace.clone());
        Ok(trace)
    }
}

/// `trace_id` and `span_id` on `span` (the request's, when it is enabled).
pub fn record_on(span: &tracing::Span, trace: &TraceContext) {
    if !span.is_disabled() {
        span.record("trace_id", tracing::field::display(trace.trace_id()));
        span.record("span_id", tracing::field::display(trace.span_id()));
    }
}

impl DescribeInput for TraceContext {}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spec_example() {
        let (trace, parent, flags) =
            TraceContext::parse(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
                .unwrap();
        assert_eq!(to_hex(&trace), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(to_hex(&parent), "00f067aa0ba902b7");
        assert_eq!(flags, 1);
    }

    #[test]
    fn refuses_malformed_values() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ] {
            assert!(TraceContext::parse(bad.as_bytes()).is_none(), "{bad}");
        }
        // A later version may append fields.
        assert!(
            TraceContext::parse(b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz")
                .is_some()
        );
    }

    #[test]
    fn new_traces_have_distinct_nonzero_ids() {
        let a = TraceContext::from_headers(&http::HeaderMap::new());
        let b = TraceContext::from_headers(&http::HeaderMap::new());
        assert_ne!(a.trace_id(), b.trace_id());
        assert_ne!(a.span_id(), b.span_id());
        assert_eq!(a.trace_id().len(), 32);
        assert!(a.parent_id().is_none());
        let again = TraceContext::parse(a.traceparent().as_bytes()).unwrap();
        assert_eq!(to_hex(&again.0), a.trace_id());
    }
}
