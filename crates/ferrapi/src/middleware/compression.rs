//! The compression layer.

use axum::body::Body;
use ferrapi_core::middleware::{Flow, Hook, NoWait};
use http::{HeaderValue, Request, Response, header};
use http_body::Body as HttpBody;
use tower_http::compression::predicate::{Predicate, SizeAbove};

pub use tower_http::compression::CompressionLevel;

/// Compresses responses (cargo feature `compression`): gzip and brotli by
/// `Accept-Encoding` with q-values, over tower-http's compression, with
/// these changes for an API:
///
/// - bodies under a minimum size (default 1 KiB) are sent as they are:
///   compressing a 60-byte JSON answer costs more than it saves;
/// - content that is already compressed (images but SVG, audio, video,
///   archives, fonts) and event streams are never compressed;
/// - when the client refuses every encoding, identity included
///   (`Accept-Encoding: *;q=0`), the response is sent uncompressed with its
///   own status: tower-http 0.7 would turn it into a `406`, which clients
///   do not expect from an API (RFC 9110 allows either);
/// - the compression level defaults to 4 (brotli's own default, 11, is meant
///   for static files and is slow for per-request bodies).
///
/// ```
/// use ferrapi::middleware::{CompressionLayer, CompressionLevel};
/// use ferrapi::prelude::*;
///
/// let app = App::new().layer(CompressionLayer::new().min_size(2048).level(CompressionLevel::Fastest));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct CompressionLayer {
    min_size: u64,
    gzip: bool,
    br: bool,
    level: CompressionLevel,
}

impl Default for CompressionLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl CompressionLayer {
    /// gzip and brotli, bodies of 1 KiB and more, level 4.
    pub fn new() -> Self {
        Self {
            min_size: 1024,
            gzip: true,
            br: true,
            level: CompressionLevel::Precise(4),
        }
    }

    /// The smallest body compressed, in bytes (bodies of unknown size, such
    /// as streams, are always compressed).
    #[must_use]
    pub fn min_size(mut self, bytes: u64) -> Self {
        self.min_size = bytes;
        self
    }

    /// Offer gzip (default `true`).
    #[must_use]
    pub fn gzip(mut self, enabled: bool) -> Self {
        self.gzip = enabled;
        self
    }

    /// Offer brotli (default `true`).
    #[must_use]
    pub fn br(mut self, enabled: bool) -> Self {
        self.br = enabled;
        self
    }

    /// The compression level.
    #[must_use]
    pub fn level(mut self, level: CompressionLevel) -> Self {
        self.level = level;
        self
    }
}

/// Content types that are compressed already (or must not be buffered).
const SKIP: &[&str] = &[
    "image/",
    "audio/",
    "video/",
    "font/woff",
    "application/zip",
    "application/gzip",
    "application/x-gzip",
    "application/zstd",
    "application/x-bzip2",
    "application/x-xz",
    "application/x-7z-compressed",
    "application/vnd.rar",
    "application/grpc",
    "text/event-stream",
];
/// Exceptions to [`SKIP`]: text in disguise.
const COMPRESSIBLE: &[&str] = &["image/svg+xml", "application/grpc-web"];

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// Whether a response is worth compressing: big enough (or of unknown
/// size), not compressed already, not a range.
fn worth_compressing<B: HttpBody>(res: &Response<B>, min_size: u64) -> bool {
    // The cheapest test first: most API answers are small.
    if !SizeAbove::new(min_size).should_compress(res) {
        return false;
    }
    let headers = res.headers();
    if headers.contains_key(header::CONTENT_ENCODING) || headers.contains_key(header::CONTENT_RANGE)
    {
        return false;
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim_start();
    if SKIP
        .iter()
        .any(|p| starts_with_ignore_case(content_type, p))
        && !COMPRESSIBLE
            .iter()
            .any(|p| starts_with_ignore_case(content_type, p))
    {
        return false;
    }
    true
}

super::hook_layer!(CompressionLayer, CompressionService, CompressionFuture);

/// The request half keeps the request's `Accept-Encoding`; the response
/// half compresses when it is worth it. The response comes first: small,
/// already compressed or uncompressible ones go out untouched, at the cost
/// of a header lookup; only the others go through tower-http's
/// compression, with the request's `Accept-Encoding`.
impl Hook for CompressionLayer {
    /// The layer, and the request's `Accept-Encoding`.
    type State = (Self, Option<HeaderValue>);
    type Wait = NoWait<Self::State>;

    #[inline]
    fn begin<B>(&self, req: &mut Request<B>) -> Flow<Self::State> {
        Flow::Continue((*self, accept_encoding(req.headers())))
    }

    #[inline]
    fn finish((layer, accept): Self::State, res: Response<Body>) -> Response<Body> {
        layer.respond(res, accept)
    }
}

/// The request's `Accept-Encoding`: one value in the common case; several
/// lines are one list.
fn accept_encoding(headers: &http::HeaderMap) -> Option<HeaderValue> {
    let mut lines = headers.get_all(header::ACCEPT_ENCODING).iter();
    match (lines.next(), lines.next()) {
        (None, _) => None,
        (Some(one), None) => Some(one.clone()),
        (Some(_), Some(_)) => {
            let joined: Vec<&[u8]> = headers
                .get_all(header::ACCEPT_ENCODING)
                .iter()
                .map(HeaderValue::as_bytes)
                .collect();
            HeaderValue::from_bytes(&joined.join(&b","[..])).ok()
        }
    }
}

impl CompressionLayer {
    /// The response half: `res` compressed for a request that accepted
    /// `accept`, when it is worth it; else as it is (with `Vary` when
    /// another client would have had it compressed).
    fn respond(&self, res: Response<Body>, accept: Option<HeaderValue>) -> Response<Body> {
        if !worth_compressing(&res, self.min_size) {
            return res;
        }
        match accept {
            Some(accept) => compress(res, accept, self),
            None => {
                // Sent as is to this client, compressed to others: caches
                // must know.
                let mut res = res;
                res.headers_mut()
                    .append(header::VARY, HeaderValue::from_static("accept-encoding"));
                res
            }
        }
    }
}

/// Runs `res` through tower-http's compression as if answering a request
/// with `accept`.
fn compress<B>(
    res: Response<B>,
    accept: HeaderValue,
    layer: &CompressionLayer,
) -> Response<axum::body::Body>
where
    B: HttpBody<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError> + Send + Sync,
{
    use futures_util::FutureExt as _;
    use tower::ServiceExt as _;
    let status = res.status();
    let mut res = Some(res);
    let answer = tower::service_fn(move |_: Request<()>| std::future::ready(res.take().ok_or(())));
    let service = tower_http::compression::Compression::new(answer)
        .gzip(layer.gzip)
        .br(layer.br)
        .no_deflate()
        .no_zstd()
        .quality(layer.level)
        .compress_when(|_, _, _: &http::HeaderMap, _: &http::Extensions| true);
    let mut req = Request::new(());
    req.headers_mut().insert(header::ACCEPT_ENCODING, accept);
    // The inner service answers at once, so does the compression's future.
    match service.oneshot(req).now_or_never() {
        Some(Ok(mut compressed)) => {
            // tower-http answers 406 when every encoding, identity
            // included, is refused; the body is then passed through
            // uncompressed: keep the application's status.
            *compressed.status_mut() = status;
            compressed.map(axum::body::Body::new)
        }
        _ => crate::response::error_response(&ferrapi_core::HttpError::internal()),
    }
}
