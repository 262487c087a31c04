//! Body extractors: raw bytes, text, form bodies; and the size-limited body reader.

use super::{FromRequest, Rejection, Request, RequestContext};
use crate::HttpError;
use crate::describe::DescribeInput;
use crate::describe::OperationBuilder;
use crate::validation::Source;
use http::{StatusCode, header};
use http_body_util::BodyExt;

/// The 413 answered for a body over the limit.
pub fn too_large() -> HttpError {
    HttpError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large")
}

/// The 408 answered for a body that did not arrive in time (the server
/// closes the connection after it).
pub fn timed_out() -> HttpError {
    HttpError::new(
        StatusCode::REQUEST_TIMEOUT,
        "Timed out reading the request body",
    )
}

/// The error of type `T` in `e` or its sources (through `io::Error`s,
/// whose `source` skips the error they wrap), if any.
pub fn find_in<'a, T: std::error::Error + 'static>(
    mut e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    // Bounded: error chains are short; a cycle would be a bug elsewhere.
    for _ in 0..16 {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        let wrapped = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn std::error::Error + 'static));
        e = wrapped.or_else(|| e.source())?;
    }
    None
}

/// Why a request body could not be read, when the answer is the
/// framework's: what the application's layers say
/// ([`AppContext::body_failure`](super::AppContext::body_failure): a
/// server timeout's 408, a refused compressed body's 413 or 400), else the
/// body limit (413). `None` for the client going away or breaking the
/// protocol, which nobody will read an answer to.
pub fn body_failure(
    e: &(dyn std::error::Error + 'static),
    cx: &RequestContext,
) -> Option<HttpError> {
    if let Some(answer) = cx.app().body_failure(e) {
        return Some(answer);
    }
    if find_in::<http_body_util::LengthLimitError>(e).is_some() {
        return Some(too_large());
    }
    None
}

/// Reads the whole body, refusing more than the route's limit with 413 —
/// up front when `Content-Length` already says so, else as soon as the
/// limit is crossed while reading. A read that times out on the server's
/// clock (`ServeConfig::body_read_timeout`) is a 408; a compressed body
/// refused by `middleware::DecompressionLayer` its 413 or 400.
pub async fn read_body(req: Request, cx: &RequestContext) -> Result<bytes::Bytes, Rejection> {
    let limit = cx.body_limit();
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large().into());
    }
    let limited = http_body_util::Limited::new(req.into_body(), limit);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) => match body_failure(&*e, cx) {
            Some(answer) => Err(answer.into()),
            None => {
                // The client went away or sent a broken body: nothing to answer.
                tracing::debug!(error = %e, "failed to read request body");
                Err(HttpError::bad_request("Failed to read request body").into())
            }
        },
    }
}

/// Reads the body of `req` whose head is `parts` (the framework reads
/// buffered bodies before the other extractors).
pub async fn read_body_for(
    req: Request,
    parts: &http::request::Parts,
    cx: &RequestContext,
) -> Result<bytes::Bytes, Rejection> {
    let limit = cx.body_limit();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large().into());
    }
    read_body(req, cx).await
}

/// The raw body bytes (up to the route's body limit).
pub type Bytes = bytes::Bytes;

impl FromRequest for bytes::Bytes {
    async fn from_request(req: Request, cx: &RequestContext) -> Result<Self, Rejection> {
        read_body(req, cx).await
    }
}
impl DescribeInput for bytes::Bytes {
    fn describe(op: &mut OperationBuilder<'_>) {
        op.request_body::<Vec<u8>>("application/octet-stream", true);
        op.plan.buffers_body = true;
    }
}

/// The body as UTF-8 text; invalid UTF-8 is a 422 (`string_unicode`).
impl FromRequest for String {
    async fn from_request(req: Request, cx: &RequestContext) -> Result<Self, Rejection> {
        let bytes = read_body(req, cx).await?;
        String::from_utf8(bytes.to_vec()).map_err(|_| {
            Rejection::Invalid(vec![crate::validation::ErrorItem::new(
                "string_unicode",
                crate::validation::Loc::source(Source::Body),
                "Input should be a valid string, unable to parse raw data as a unicode string",
                serde_json::Value::Null,
            )])
        })
    }
}
impl DescribeInput for String {
    fn describe(op: &mut OperationBuilder<'_>) {
        op.request_body::<String>("text/plain", true);
        op.plan.buffers_body = true;
    }
}

/// The unread body stream, for handlers that stream uploads themselves.
/// No size limit applies: the handler decides.
#[derive(Debug)]
pub struct RawBody(pub axum_core::body::Body);

impl FromRequest for RawBody {
    async fn from_request(req: Request, _cx: &RequestContext) -> Result<Self, Rejection> {
        Ok(RawBody(req.into_body()))
    }
}
impl DescribeInput for RawBody {}
