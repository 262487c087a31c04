//! The request-id layer and extractor.

use crate::extract::{FromRequestParts, Rejection, RequestContext};
use crate::openapi::DescribeInput;
use axum::response::Response;
use ferrapi_core::middleware::{Flow, Hook, NoWait};
use http::request::Parts;
use http::{HeaderName, HeaderValue, Request};
use std::fmt;

/// The header the id is read from and written to by default.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest incoming id that is echoed (in bytes).
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// A request's id: the caller's `X-Request-ID` when sane, else a fresh UUID
/// v4 (`9b2f8c1e-4c1b-4f5e-9d3a-2b6c1f0e7a51`).
///
/// [`RequestIdLayer`] puts it in the request's extensions; handlers and
/// dependencies take it as a parameter, custom middleware reads it with
/// `req.extensions().get::<RequestId>()`.
///
/// ```
/// use ferrapi::middleware::RequestId;
/// use ferrapi::prelude::*;
///
/// #[get("/whoami")]
/// async fn whoami(id: RequestId) -> String {
///     format!("request {id}")
/// }
/// ```
///
/// As a handler parameter without the layer installed it answers 500 and
/// logs why (a configuration mistake, not a client error).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// A new random id: a canonical, lowercase, hyphenated UUID v4.
    ///
    /// The 122 random bits come from SipHash, keyed per thread from the
    /// operating system's randomness, over a counter: ids are unique and
    /// unpredictable without the key, at a few dozen nanoseconds each (a
    /// system call per request would cost more than the rest of this
    /// layer). They are identifiers, not secrets.
    pub fn generate() -> Self {
        let text = uuid_v4_text(random_bytes());
        // A UUID's text is always a valid header value. Shared bytes: the
        // clones for the request header and extension are reference counts.
        match HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(text)) {
            Ok(v) => RequestId(v),
            Err(_) => RequestId(HeaderValue::from_static(
                "00000000-0000-4000-8000-000000000000",
            )),
        }
    }

    /// `value` as an id if it is sane: 1 to [`MAX_REQUEST_ID_LEN`] visible
    /// ASCII characters (`!` to `~`; no space, no control character, no
    /// byte above 0x7E).
    pub fn parse(value: &HeaderValue) -> Option<Self> {
        is_sane(value.as_bytes()).then(|| RequestId(value.clone()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only visible ASCII ever gets in (`parse`, `generate`).
        self.0.to_str().unwrap_or_default()
    }

    /// The id as a header value.
    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }
}

thread_local! {
    /// Two splitmix64 streams per thread, each started at a random point
    /// (the process's SipHash keys, drawn from the OS).
    static ID_SOURCE: std::cell::Cell<(u64, u64)> = std::cell::Cell::new({
        use std::hash::BuildHasher as _;
        let keys = std::hash::RandomState::new();
        (keys.hash_one(0u8), keys.hash_one(1u8))
    });
}

/// 16 bytes from two per-thread splitmix64 streams. Each stream is a
/// bijection of its counter, so a thread never repeats an id within 2^64
/// ids, and threads start at independent random points. Request ids need
/// uniqueness, not secrecy; this costs a few instructions where a keyed
/// hash per id cost a few hundred.
fn random_bytes() -> [u8; 16] {
    fn splitmix64(state: u64) -> u64 {
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;
    ID_SOURCE.with(|source| {
        let (a, b) = source.get();
        let (a, b) = (a.wrapping_add(GAMMA), b.wrapping_add(GAMMA));
        source.set((a, b));
        (u128::from(splitmix64(a)) << 64 | u128::from(splitmix64(b))).to_be_bytes()
    })
}

/// The canonical text of the UUID v4 made of `bytes` (version and variant
/// bits set): `xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx`, lowercase.
fn uuid_v4_text(mut bytes: [u8; 16]) -> [u8; 36] {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    /// Where each byte's two digits go (the dashes stay where they are).
    const AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
    let mut out = [b'-'; 36];
    for (b, at) in bytes.iter().zip(AT) {
        out[at] = HEX[usize::from(b >> 4)];
        out[at + 1] = HEX[usize::from(b & 0x0f)];
    }
    out
}

fn is_sane(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID_LEN
        && bytes.iter().all(|b| (0x21..=0x7e).contains(b))
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({:?})", self.as_str())
    }
}

/// A middleware a handler parameter needs is not installed.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{extractor}` is a handler parameter but `{layer}` is not installed (add it with `App::layer`)"
)]
pub struct MissingLayer {
    /// The extractor.
    pub extractor: &'static str,
    /// The layer it needs.
    pub layer: &'static str,
}

impl FromRequestParts for RequestId {
    async fn from_request_parts(
        parts: &mut Parts,
        _cx: &RequestContext,
    ) -> Result<Self, Rejection> {
        parts.extensions.get::<RequestId>().cloned().ok_or_else(|| {
            MissingLayer {
                extractor: "RequestId",
                layer: "RequestIdLayer",
            }
            .into()
        })
    }
}

impl DescribeInput for RequestId {}

/// One id per request, echoed from `X-Request-ID` when
/// the caller sent a sane one, else a new UUID v4; on the request's
/// extensions ([`RequestId`], an extractor), on the response, and as the
/// `request_id` field of a tracing span around the whole request, so that
/// every log line of the request carries it.
///
/// ```
/// use ferrapi::middleware::RequestIdLayer;
/// use ferrapi::prelude::*;
///
/// let app = App::new().layer(RequestIdLayer::new());
/// ```
#[derive(Debug, Clone)]
pub struct RequestIdLayer {
    header: HeaderName,
    trust_incoming: bool,
}

impl Default for RequestIdLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestIdLayer {
    /// Reads and writes `X-Request-ID`; echoes sane incoming ids.
    pub fn new() -> Self {
        Self {
            header: X_REQUEST_ID,
            trust_incoming: true,
        }
    }

    /// Another header name (`X-Correlation-ID`, …).
    #[must_use]
    pub fn header(mut self, name: HeaderName) -> Self {
        self.header = name;
        self
    }

    /// `false`: ignore incoming ids, always generate one (for a service
    /// exposed to clients whose ids must not reach the logs).
    #[must_use]
    pub fn trust_incoming(mut self, trust: bool) -> Self {
        self.trust_incoming = trust;
        self
    }
}

super::hook_layer!(RequestIdLayer, RequestIdService, RequestIdFuture);

/// What [`RequestIdLayer`] keeps from a request until its response: the
/// id and the request's span.
#[derive(Debug)]
pub struct Tagged {
    header: HeaderName,
    id: RequestId,
    span: tracing::Span,
}

/// The request half picks the id and makes the request's span, which the
/// rest of the request runs in; the response half answers the id.
impl Hook for RequestIdLayer {
    type State = Tagged;
    type Wait = NoWait<Self::State>;

    #[inline]
    fn begin<B>(&self, req: &mut Request<B>) -> Flow<Tagged> {
        let (id, span) = self.tag(req);
        Flow::Continue(Tagged {
            header: self.header.clone(),
            id,
            span,
        })
    }

    #[inline]
    fn finish(Tagged { header, id, span }: Tagged, mut res: Response) -> Response {
        #[cfg(feature = "otel")]
        crate::telemetry::finish_server_span(&span, res.status());
        #[cfg(not(feature = "otel"))]
        let _ = span;
        res.headers_mut().insert(header, id.0);
        res
    }

    #[inline]
    fn span(state: &Tagged) -> Option<&tracing::Span> {
        Some(&state.span)
    }
}

impl RequestIdLayer {
    /// The request half: picks the id (the incoming one if sane and
    /// trusted, else a new one), sets it on the request's header and
    /// extensions, and makes the request's span.
    pub(crate) fn tag<B>(&self, req: &mut Request<B>) -> (RequestId, tracing::Span) {
        // Downstream code (and proxied calls) see the id that was chosen,
        // as the header's only value. One lookup of the header: kept as it
        // is when the caller's id is used.
        let id = match req.headers_mut().entry(&self.header) {
            http::header::Entry::Occupied(mut entry) => {
                let incoming = self
                    .trust_incoming
                    .then(|| RequestId::parse(entry.get()))
                    .flatten();
                match incoming {
                    Some(id) if entry.iter().nth(1).is_none() => id,
                    incoming => {
                        let id = incoming.unwrap_or_else(RequestId::generate);
                        entry.insert(id.0.clone());
                        id
                    }
                }
            }
            http::header::Entry::Vacant(slot) => {
                let id = RequestId::generate();
                slot.insert(id.0.clone());
                id
            }
        };
        // With the `otel` feature and `telemetry`'s layer installed, this
        // span is the exported server span (`otel.kind`); see `telemetry`.
        #[cfg(feature = "otel")]
        let otel = crate::telemetry::active();
        #[cfg(not(feature = "otel"))]
        let otel = false;
        let span = if !tracing::dispatcher::has_been_set() {
            // No subscriber in this process (nor a scoped one, ever): the
            // span would record nothing, and `tracing`'s `log` feature
            // (turned on through tower) would still check `log`'s level
            // at its creation and at every enter and exit.
            tracing::Span::none()
        } else if otel {
            tracing::info_span!(
                "request",
                request_id = %id,
                method = %req.method(),
                path = %req.uri().path(),
                trace_id = tracing::field::Empty,
                span_id = tracing::field::Empty,
                otel.kind = "server",
            )
        } else {
            tracing::info_span!(
                "request",
                request_id = %id,
                method = %req.method(),
                path = %req.uri().path(),
                // Filled by the trace-context layer, when installed.
                trace_id = tracing::field::Empty,
                span_id = tracing::field::Empty,
            )
        };
        #[cfg(feature = "otel")]
        if otel {
            let peer = req
                .extensions()
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0);
            crate::telemetry::start_server_span(&span, req, peer);
        }
        req.extensions_mut().insert(id.clone());
        (id, span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_carries_the_chosen_id_as_its_only_value() {
        let layer = RequestIdLayer::new();
        let ids = |req: &Request<()>| -> Vec<String> {
            req.headers()
                .get_all("x-request-id")
                .iter()
                .map(|v| v.to_str().unwrap_or_default().to_owned())
                .collect()
        };
        // A sane one is kept as it is.
        let mut req = Request::builder()
            .header("x-request-id", "abc")
            .body(())
            .unwrap_or_default();
        let (id, _) = layer.tag(&mut req);
        assert_eq!(id.as_str(), "abc");
        assert_eq!(ids(&req), ["abc"]);
        // Two values: the first (sane) one, alone.
        let mut req = Request::builder()
            .header("x-request-id", "first")
            .header("x-request-id", "second")
            .body(())
            .unwrap_or_default();
        let (id, _) = layer.tag(&mut req);
        assert_eq!(id.as_str(), "first");
        assert_eq!(ids(&req), ["first"]);
        // Not sane, untrusted, or absent: a new one replaces it.
        for (layer, value) in [
            (RequestIdLayer::new(), Some("has space")),
            (RequestIdLayer::new().trust_incoming(false), Some("abc")),
            (RequestIdLayer::new(), None),
        ] {
            let mut builder = Request::builder();
            if let Some(value) = value {
                builder = builder.header("x-request-id", value);
            }
            let mut req = builder.body(()).unwrap_or_default();
            let (id, _) = layer.tag(&mut req);
            assert_eq!(id.as_str().len(), 36, "{value:?}");
            assert_eq!(ids(&req), [id.as_str()]);
        }
    }

    #[test]
    fn sanity_bounds() {
        assert!(is_sane(b"a"));
        assert!(is_sane(&[b'x'; 128]));
        assert!(!is_sane(&[b'x'; 129]));
        assert!(!is_sane(b""));
        assert!(!is_sane(b"has space"));
        assert!(!is_sane(b"tab\there"));
        assert!(!is_sane("caf\u{e9}".as_bytes()));
        assert!(is_sane(b"!~"));
    }

    #[test]
    fn uuid_text_layout() {
        let text = uuid_v4_text([0xff; 16]);
        assert_eq!(&text, b"ffffffff-ffff-4fff-bfff-ffffffffffff");
        let text = uuid_v4_text([0; 16]);
        assert_eq!(&text, b"00000000-0000-4000-8000-000000000000");
        let bytes: [u8; 16] = std::array::from_fn(|i| i as u8 * 17);
        assert_eq!(
            &uuid_v4_text(bytes),
            b"00112233-4455-4677-8899-aabbccddeeff"
        );
    }

    #[test]
    fn generated_ids_are_canonical_v4() {
        let id = RequestId::generate();
        let s = id.as_str();
        assert_eq!(s.len(), 36);
        let groups: Vec<usize> = s.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert!(s.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
        assert_eq!(s, s.to_ascii_lowercase());
        assert_eq!(&s[14..15], "4");
        assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"), "{s}");
        assert_ne!(RequestId::generate(), id);
        let ids: std::collections::HashSet<RequestId> =
            (0..10_000).map(|_| RequestId::generate()).collect();
        assert_eq!(ids.len(), 10_000);
        // Another thread has its own key: no overlap either.
        let other = std::thread::spawn(RequestId::generate).join();
        assert!(other.is_ok_and(|id| !ids.contains(&id)));
    }
}
