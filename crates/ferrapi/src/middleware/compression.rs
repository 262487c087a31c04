//! The compression layer.

use http::{Request, Response, StatusCode, header};
use http_body::Body as HttpBody;
use std::task::{Context, Poll};
use tower::{Layer, Service};
use tower_http::compression::predicate::{Predicate, SizeAbove};

pub use tower_http::compression::CompressionLevel;

/// Compresses responses (cargo feature `compression`): gzip and brotli by
/// `Accept-Encoding` with q-values, over tower-http's compression, with
/// three changes for an API:
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

impl<S> Layer<S> for CompressionLayer {
    type Service = CompressionService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        let compression = tower_http::compression::CompressionLayer::new()
            .gzip(self.gzip)
            .br(self.br)
            .no_deflate()
            .no_zstd()
            .quality(self.level)
            .compress_when(ShouldCompress {
                min_size: SizeAbove::new(self.min_size),
            });
        CompressionService {
            inner: compression.layer(StatusMemo { inner }),
        }
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

/// The predicate of [`CompressionLayer`]: big enough, not compressed already.
#[derive(Debug, Clone, Copy)]
pub struct ShouldCompress {
    min_size: SizeAbove,
}

impl Predicate for ShouldCompress {
    fn should_compress<B: HttpBody>(&self, response: &Response<B>) -> bool {
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let skipped = SKIP.iter().any(|p| content_type.starts_with(p))
            && !COMPRESSIBLE.iter().any(|p| content_type.starts_with(p));
        !skipped && self.min_size.should_compress(response)
    }
}

/// The status the application answered, before tower-http's compression.
#[derive(Debug, Clone, Copy)]
struct OriginalStatus(StatusCode);

/// Records the application's status in the response's extensions.
#[derive(Debug, Clone)]
pub struct StatusMemo<S> {
    inner: S,
}

type MemoFuture<F, B, E> =
    futures_util::future::Map<F, fn(Result<Response<B>, E>) -> Result<Response<B>, E>>;

impl<S, Req, B> Service<Req> for StatusMemo<S>
where
    S: Service<Req, Response = Response<B>>,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = MemoFuture<S::Future, B, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        use futures_util::FutureExt as _;
        self.inner.call(req).map(memo::<B, S::Error> as fn(_) -> _)
    }
}

/// The service of [`CompressionLayer`].
#[derive(Clone)]
pub struct CompressionService<S> {
    inner: tower_http::compression::Compression<StatusMemo<S>, ShouldCompress>,
}

impl<S> std::fmt::Debug for CompressionService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompressionService").finish_non_exhaustive()
    }
}

type CompressedResponse<B> = Response<tower_http::compression::CompressionBody<B>>;

type CompressionFuture<S, B, E> = futures_util::future::Map<
    tower_http::compression::ResponseFuture<MemoFuture<S, B, E>, ShouldCompress>,
    fn(Result<CompressedResponse<B>, E>) -> Result<Response<axum::body::Body>, E>,
>;

impl<S, B, ResBody> Service<Request<B>> for CompressionService<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: HttpBody<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError> + Send + Sync,
{
    type Response = Response<axum::body::Body>;
    type Error = S::Error;
    type Future = CompressionFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        use futures_util::FutureExt as _;
        self.inner
            .call(req)
            .map(restore::<ResBody, S::Error> as fn(_) -> _)
    }
}

fn memo<B, E>(res: Result<Response<B>, E>) -> Result<Response<B>, E> {
    res.map(|mut res| {
        let status = res.status();
        res.extensions_mut().insert(OriginalStatus(status));
        res
    })
}

fn restore<B, E>(res: Result<CompressedResponse<B>, E>) -> Result<Response<axum::body::Body>, E>
where
    B: HttpBody<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError> + Send + Sync,
{
    res.map(|mut res| {
        let original = res.extensions_mut().remove::<OriginalStatus>();
        if res.status() == StatusCode::NOT_ACCEPTABLE
            && let Some(OriginalStatus(status)) = original
        {
            // tower-http's 406 for "no acceptable encoding": the body went
            // through uncompressed; the application's status comes back.
            *res.status_mut() = status;
        }
        res.map(axum::body::Body::new)
    })
}
