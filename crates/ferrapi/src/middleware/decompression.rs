//! Request body decompression, with decompression bombs refused.

use crate::response::error_response;
use axum::BoxError;
use bytes::Bytes;
use ferrapi_core::HttpError;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::Body as HttpBody;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tower::{Layer, Service};
use tower_http::decompression::{DecompressionBody, RequestDecompression};

/// Decompressed bodies up to this size are never refused for their ratio:
/// a small, very repetitive body (a 10 KiB string of one letter) is not a
/// bomb.
pub const RATIO_FLOOR: u64 = 64 * 1024;

/// Decompresses request bodies by their `Content-Encoding` (cargo feature
/// `decompression`): gzip (`x-gzip` too), deflate (zlib) and brotli, over
/// tower-http's request decompression, for the extractors and handlers
/// below it. A decompression bomb — a small body that inflates to a huge
/// one — is refused `413` JSON without inflating it in memory:
///
/// - **size**: the decompressed bytes count against the route's body limit
///   ([`App::body_limit`](crate::App::body_limit),
///   [`Route::body_limit`](crate::Route::body_limit)), which `Json`,
///   `Form`, `Bytes`, `String` and `Multipart` apply as the bytes come out
///   of the decoder (and so stop inflating at the limit);
///   [`max_size`](Self::max_size) adds a hard cap for every request, the
///   bodies a handler streams itself ([`RawBody`](crate::extract::RawBody))
///   included;
/// - **ratio**: once more than [`RATIO_FLOOR`] (64 KiB) has come out, a body
///   that has inflated to more than [`max_ratio`](Self::max_ratio) times the
///   compressed bytes read so far (default 200, Apache `mod_deflate`'s
///   `DeflateInflateRatioLimit`) is refused. gzip of zeros inflates about
///   1000 times, brotli far more; JSON rarely 20 times.
///
/// An unknown or disabled encoding (`zstd`, `compress`, or several stacked
/// encodings) is answered `415 Unsupported Media Type` JSON with the
/// accepted ones in `Accept-Encoding`, before the body is read; so is a
/// body that is not valid data of its encoding, with `400`. A request
/// without `Content-Encoding` (or with `identity`) passes untouched, at the
/// cost of a header lookup.
///
/// Refusals reach the extractors as a [`DecompressionError`] in the body's
/// error, and they answer its status; a handler reading a
/// [`RawBody`](crate::extract::RawBody) finds it in the error's sources.
///
/// Memory: each compressed request in flight holds a decoder (gzip and
/// deflate about 40 KiB; brotli up to the window the body declares, at most
/// 16 MiB — disable it with [`br(false)`](Self::br) where that matters) and
/// one 4 KiB output buffer, besides what the extractor collects (at most
/// the limit).
///
/// ```
/// use ferrapi::middleware::DecompressionLayer;
/// use ferrapi::prelude::*;
///
/// let app = App::new().layer(DecompressionLayer::new().max_size(8 << 20).br(false));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct DecompressionLayer {
    gzip: bool,
    deflate: bool,
    br: bool,
    max_size: Option<u64>,
    max_ratio: Option<u32>,
}

impl Default for DecompressionLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl DecompressionLayer {
    /// gzip, deflate and brotli; no size cap beyond the route's body limit;
    /// a ratio cap of 200.
    pub fn new() -> Self {
        Self {
            gzip: true,
            deflate: true,
            br: true,
            max_size: None,
            max_ratio: Some(200),
        }
    }

    /// Accept gzip (default `true`).
    #[must_use]
    pub fn gzip(mut self, enabled: bool) -> Self {
        self.gzip = enabled;
        self
    }

    /// Accept deflate (default `true`).
    #[must_use]
    pub fn deflate(mut self, enabled: bool) -> Self {
        self.deflate = enabled;
        self
    }

    /// Accept brotli (default `true`).
    #[must_use]
    pub fn br(mut self, enabled: bool) -> Self {
        self.br = enabled;
        self
    }

    /// The largest a decompressed body may be, in bytes, whatever the
    /// route: beyond it the body's read fails with
    /// [`DecompressionError::TooLarge`] (413). Default: none beyond the
    /// route's body limit.
    #[must_use]
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.max_size = Some(bytes);
        self
    }

    /// The largest ratio of decompressed to compressed bytes, checked once
    /// more than [`RATIO_FLOOR`] came out ([`DecompressionError::Ratio`],
    /// 413); `None` disables the check. Default `Some(200)`.
    #[must_use]
    pub fn max_ratio(mut self, ratio: Option<u32>) -> Self {
        self.max_ratio = ratio;
        self
    }

    /// The `Accept-Encoding` of a 415 answer: what this layer accepts.
    fn accepted(&self) -> HeaderValue {
        let names: Vec<&str> = [
            (self.gzip, "gzip"),
            (self.deflate, "deflate"),
            (self.br, "br"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        if names.is_empty() {
            HeaderValue::from_static("identity")
        } else {
            HeaderValue::from_str(&names.join(", "))
                .unwrap_or_else(|_| HeaderValue::from_static("identity"))
        }
    }
}

impl<S> Layer<S> for DecompressionLayer {
    type Service = DecompressionService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        DecompressionService {
            inner,
            layer: *self,
        }
    }
}

/// Why a compressed request body was refused. Found in the error of the
/// body's read (the extractors answer [`status`](Self::status) as
/// `{"detail": …}`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecompressionError {
    /// The decompressed body is larger than [`DecompressionLayer::max_size`]: 413.
    #[error("Request body too large")]
    TooLarge {
        /// The cap in bytes.
        limit: u64,
    },
    /// The body inflates more than [`DecompressionLayer::max_ratio`] times: 413.
    #[error("Request body too large: it decompresses to more than {ratio} times its size")]
    Ratio {
        /// The cap.
        ratio: u32,
    },
    /// The body is not valid data of its encoding: 400.
    #[error("Request body is not valid {encoding} data")]
    Invalid {
        /// The `Content-Encoding`.
        encoding: &'static str,
        /// What the decoder said (logged at `DEBUG`, not answered).
        reason: String,
    },
}

impl DecompressionError {
    /// The status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::TooLarge { .. } | Self::Ratio { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Invalid { .. } => StatusCode::BAD_REQUEST,
        }
    }
}

impl From<&DecompressionError> for HttpError {
    fn from(e: &DecompressionError) -> Self {
        if let DecompressionError::Invalid { reason, .. } = e {
            tracing::debug!(reason = %reason, "invalid compressed request body");
        }
        HttpError::new(e.status(), e.to_string())
    }
}

/// A content coding this layer decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Gzip,
    Deflate,
    Br,
}

impl Coding {
    fn name(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Deflate => "deflate",
            Self::Br => "br",
        }
    }
}

/// The coding of a request's body: `Ok(None)` for none (or `identity`),
/// `Err` with the refused value for an unknown or disabled coding, or
/// several stacked ones.
fn coding(headers: &http::HeaderMap, layer: &DecompressionLayer) -> Result<Option<Coding>, String> {
    let mut found = None;
    for value in headers.get_all(header::CONTENT_ENCODING) {
        let Ok(value) = value.to_str() else {
            return Err(String::from_utf8_lossy(value.as_bytes()).into_owned());
        };
        for token in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let coding = if token.eq_ignore_ascii_case("identity") {
                continue;
            } else if (token.eq_ignore_ascii_case("gzip") || token.eq_ignore_ascii_case("x-gzip"))
                && layer.gzip
            {
                Coding::Gzip
            } else if token.eq_ignore_ascii_case("deflate") && layer.deflate {
                Coding::Deflate
            } else if token.eq_ignore_ascii_case("br") && layer.br {
                Coding::Br
            } else {
                return Err(token.to_owned());
            };
            if found.is_some() {
                // Stacked codings multiply a bomb's ratio: refused.
                return Err(value.to_owned());
            }
            found = Some(coding);
        }
    }
    Ok(found)
}

/// The service of [`DecompressionLayer`].
#[derive(Debug, Clone)]
pub struct DecompressionService<S> {
    inner: S,
    layer: DecompressionLayer,
}

impl<S, ResBody> Service<Request<axum::body::Body>> for DecompressionService<S>
where
    S: Service<Request<axum::body::Body>, Response = Response<ResBody>>,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<axum::body::Body>;
    type Error = S::Error;
    type Future = DecompressionFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<axum::body::Body>) -> Self::Future {
        let req = match coding(req.headers(), &self.layer) {
            Ok(None) => Ok(req),
            Ok(Some(coding)) => decoding(req, coding, &self.layer).ok_or(coding.name().to_owned()),
            Err(refused) => Err(refused),
        };
        let req = match req {
            Ok(req) => req,
            Err(refused) => {
                let mut res = error_response(&HttpError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!("Unsupported Content-Encoding: {refused}"),
                ));
                res.headers_mut()
                    .insert(header::ACCEPT_ENCODING, self.layer.accepted());
                return DecompressionFuture {
                    kind: Kind::Refused { res: Some(res) },
                };
            }
        };
        DecompressionFuture {
            kind: Kind::Inner {
                fut: self.inner.call(req),
            },
        }
    }
}

/// `req` with its body replaced by the decoded one (tower-http's decoder
/// between a byte counter and the caps).
fn decoding(
    req: Request<axum::body::Body>,
    coding: Coding,
    layer: &DecompressionLayer,
) -> Option<Request<axum::body::Body>> {
    let (mut parts, body) = req.into_parts();
    // tower-http matches the header's exact bytes.
    parts.headers.remove(header::CONTENT_ENCODING);
    parts.headers.insert(
        header::CONTENT_ENCODING,
        HeaderValue::from_static(coding.name()),
    );
    let counted = Request::from_parts(
        parts,
        Counted {
            inner: body,
            read: 0,
            failed: false,
        },
    );
    // tower-http builds its decoding body only inside its service: a
    // service that keeps the request it is called with hands it over (the
    // call runs the closure at once; the returned future is dropped).
    let mut decoded = None;
    {
        let keep = tower::service_fn(|req: Request<DecompressionBody<Counted>>| {
            decoded = Some(req);
            std::future::ready(Ok::<_, Infallible>(Response::new(http_body_util::Empty::<
                Bytes,
            >::new())))
        });
        let mut service = RequestDecompression::new(keep);
        drop(service.call(counted));
    }
    // `None` only if tower-http stopped decoding an encoding it decodes
    // today: the request is then refused, not passed on undecoded.
    decoded.map(|req| {
        req.map(|body| {
            axum::body::Body::new(Capped {
                inner: body,
                coding,
                written: 0,
                max_size: layer.max_size,
                max_ratio: layer.max_ratio,
                done: false,
            })
        })
    })
}

/// The compressed body, counting the bytes the decoder reads.
struct Counted {
    inner: axum::body::Body,
    /// Compressed bytes read so far.
    read: u64,
    /// The body itself failed (the client went, a timeout): its error is
    /// passed on as it is, not taken for invalid data.
    failed: bool,
}

impl HttpBody for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let Some(data) = f.data_ref() {
                    self.read += data.len() as u64;
                }
            }
            Some(Err(_)) => self.failed = true,
            None => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// The decoded body, refused past the size or ratio cap.
    struct Capped {
        #[pin]
        inner: DecompressionBody<Counted>,
        coding: Coding,
        // Decompressed bytes handed out so far.
        written: u64,
        max_size: Option<u64>,
        max_ratio: Option<u32>,
        done: bool,
    }
}

/// Whether `written` decompressed bytes from `read` compressed ones are
/// within the caps.
fn check(
    written: u64,
    read: u64,
    max_size: Option<u64>,
    max_ratio: Option<u32>,
) -> Result<(), DecompressionError> {
    if let Some(limit) = max_size
        && written > limit
    {
        return Err(DecompressionError::TooLarge { limit });
    }
    if let Some(ratio) = max_ratio
        && written > RATIO_FLOOR
        && written > u64::from(ratio).saturating_mul(read)
    {
        return Err(DecompressionError::Ratio { ratio });
    }
    Ok(())
}

impl HttpBody for Capped {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        match ready!(this.inner.as_mut().poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    *this.written += data.len() as u64;
                    let read = this.inner.get_ref().read;
                    if let Err(e) = check(*this.written, read, *this.max_size, *this.max_ratio) {
                        *this.done = true;
                        tracing::debug!(error = %e, written = *this.written, read, "compressed request body refused");
                        return Poll::Ready(Some(Err(Box::new(e))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(e)) => {
                *this.done = true;
                if this.inner.get_ref().failed {
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Some(Err(Box::new(DecompressionError::Invalid {
                    encoding: this.coding.name(),
                    reason: e.to_string(),
                }))))
            }
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`DecompressionService`].
    pub struct DecompressionFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project_lite::pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Inner { #[pin] fut: F },
        Refused { res: Option<Response<axum::body::Body>> },
    }
}

impl<F, B, E> std::future::Future for DecompressionFuture<F>
where
    F: std::future::Future<Output = Result<Response<B>, E>>,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response<axum::body::Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { fut } => {
                let res = ready!(fut.poll(cx))?;
                Poll::Ready(Ok(res.map(axum::body::Body::new)))
            }
            KindProj::Refused { res } => Poll::Ready(Ok(res
                .take()
                .unwrap_or_else(|| error_response(&HttpError::internal())))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for v in values {
            h.append(
                header::CONTENT_ENCODING,
                HeaderValue::from_str(v).expect("a valid test header"),
            );
        }
        h
    }

    #[test]
    fn content_codings_are_read_as_rfc_9110_says() {
        let all = DecompressionLayer::new();
        let c = |v: &[&str]| coding(&headers(v), &all);
        assert_eq!(c(&[]), Ok(None));
        assert_eq!(c(&["identity"]), Ok(None));
        assert_eq!(c(&["gzip"]), Ok(Some(Coding::Gzip)));
        assert_eq!(c(&["GZip"]), Ok(Some(Coding::Gzip)));
        assert_eq!(c(&["x-gzip"]), Ok(Some(Coding::Gzip)));
        assert_eq!(c(&[" br "]), Ok(Some(Coding::Br)));
        assert_eq!(c(&["deflate"]), Ok(Some(Coding::Deflate)));
        assert_eq!(c(&["identity, gzip"]), Ok(Some(Coding::Gzip)));
        assert_eq!(c(&["zstd"]), Err("zstd".into()));
        assert_eq!(c(&["compress"]), Err("compress".into()));
        assert_eq!(c(&["gzip, br"]), Err("gzip, br".into()));
        assert_eq!(c(&["gzip", "gzip"]), Err("gzip".into()));
        let no_br = DecompressionLayer::new().br(false);
        assert_eq!(coding(&headers(&["br"]), &no_br), Err("br".into()));
        assert_eq!(no_br.accepted(), "gzip, deflate");
        let none = no_br.gzip(false).deflate(false);
        assert_eq!(none.accepted(), "identity");
    }
}
