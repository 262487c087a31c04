//! Body extractors: raw bytes, text, form bodies; and the size-limited body reader.

use super::{FromRequest, Rejection, Request, RequestContext};
use crate::openapi::{DescribeInput, OperationBuilder};
use crate::validation;
use ferrapi_core::HttpError;
use ferrapi_core::validation::Source;
use http::{StatusCode, header};
use http_body_util::BodyExt;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

/// The 413 answered for a body over the limit.
pub(crate) fn too_large() -> HttpError {
    HttpError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large")
}

/// The 408 answered for a body that did not arrive in time (the server
/// closes the connection after it).
pub(crate) fn timed_out() -> HttpError {
    HttpError::new(
        StatusCode::REQUEST_TIMEOUT,
        "Timed out reading the request body",
    )
}

/// The error of type `T` in `e` or its sources (through `io::Error`s,
/// whose `source` skips the error they wrap), if any.
pub(crate) fn find_in<'a, T: std::error::Error + 'static>(
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
/// framework's: a server timeout (408), a refused compressed body (413 or
/// 400), the body limit (413). `None` for the client going away or
/// breaking the protocol, which nobody will read an answer to.
pub(crate) fn body_failure(e: &(dyn std::error::Error + 'static)) -> Option<HttpError> {
    if find_in::<crate::BodyTimeout>(e).is_some() {
        return Some(timed_out());
    }
    #[cfg(feature = "decompression")]
    if let Some(refused) = find_in::<crate::middleware::DecompressionError>(e) {
        return Some(refused.into());
    }
    if find_in::<http_body_util::LengthLimitError>(e).is_some() {
        return Some(too_large());
    }
    None
}

/// Reads the whole body, refusing more than `limit` bytes with 413 — up
/// front when `Content-Length` already says so, else as soon as the limit
/// is crossed while reading. A read that times out on the server's clock
/// ([`ServeConfig::body_read_timeout`](crate::ServeConfig::body_read_timeout))
/// is a 408; a compressed body refused by `middleware::DecompressionLayer`
/// its 413 or 400.
pub(crate) async fn read_body(req: Request, limit: usize) -> Result<bytes::Bytes, Rejection> {
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
        Err(e) => match body_failure(&*e) {
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
pub(crate) async fn read_body_for(
    req: Request,
    parts: &http::request::Parts,
    limit: usize,
) -> Result<bytes::Bytes, Rejection> {
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large().into());
    }
    read_body(req, limit).await
}

/// The raw body bytes (up to the route's body limit).
pub type Bytes = bytes::Bytes;

impl FromRequest for bytes::Bytes {
    async fn from_request(req: Request, cx: &RequestContext) -> Result<Self, Rejection> {
        read_body(req, cx.body_limit()).await
    }
}
impl DescribeInput for bytes::Bytes {
    fn describe(op: &mut OperationBuilder<'_>) {
        op.request_body::<Vec<u8>>("application/octet-stream", true);
        op.buffers_body = true;
    }
}

/// The body as UTF-8 text; invalid UTF-8 is a 422 (`string_unicode`).
impl FromRequest for String {
    async fn from_request(req: Request, cx: &RequestContext) -> Result<Self, Rejection> {
        let bytes = read_body(req, cx.body_limit()).await?;
        String::from_utf8(bytes.to_vec()).map_err(|_| {
            Rejection::Invalid(vec![ferrapi_core::validation::ErrorItem::new(
                "string_unicode",
                ferrapi_core::validation::Loc::source(Source::Body),
                "Input should be a valid string, unable to parse raw data as a unicode string",
                serde_json::Value::Null,
            )])
        })
    }
}
impl DescribeInput for String {
    fn describe(op: &mut OperationBuilder<'_>) {
        op.request_body::<String>("text/plain", true);
        op.buffers_body = true;
    }
}

/// The unread body stream, for handlers that stream uploads themselves.
/// No size limit applies: the handler decides.
#[derive(Debug)]
pub struct RawBody(pub axum::body::Body);

impl FromRequest for RawBody {
    async fn from_request(req: Request, _cx: &RequestContext) -> Result<Self, Rejection> {
        Ok(RawBody(req.into_body()))
    }
}
impl DescribeInput for RawBody {}

/// A form body (`application/x-www-form-urlencoded`) validated into `T`,
/// as FastAPI's `Form()` fields: lax coercion, every error at once, `loc`
/// starting with `body`.
///
/// ```
/// use ferrapi::prelude::*;
///
/// #[derive(Deserialize, JsonSchema, Validate)]
/// struct Login {
///     username: String,
///     password: String,
/// }
///
/// #[post("/token")]
/// async fn token(Form(login): Form<Login>) -> Text {
///     Text(login.username)
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Form<T>(pub T);

impl<T> FromRequest for Form<T>
where
    T: DeserializeOwned + JsonSchema + ferrapi_core::validation::Validate + Send + 'static,
{
    async fn from_request(req: Request, cx: &RequestContext) -> Result<Self, Rejection> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                ct.split(';').next().is_some_and(|m| {
                    m.trim()
                        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
                })
            });
        let bytes = read_body(req, cx.body_limit()).await?;
        // Another content type carries no form fields: each required field is
        // then reported missing, as FastAPI does.
        let body: &[u8] = if is_form { &bytes } else { &[] };
        validation::from_pairs::<T, _>(Source::Body, form_urlencoded::parse(body))
            .map(Form)
            .map_err(Rejection::Invalid)
    }
}

impl<T: JsonSchema> DescribeInput for Form<T> {
    fn describe(op: &mut OperationBuilder<'_>) {
        op.request_body::<T>("application/x-www-form-urlencoded", true);
        op.buffers_body = true;
        let root = ferrapi_openapi::validation_schema::<T>();
        if let Some(props) = root
            .get("properties")
            .and_then(serde_json::Value::as_object)
        {
            for (name, schema) in props {
                // Resolved against the standalone schema's `$defs`.
                let schema = match schema.get("$ref").and_then(serde_json::Value::as_str) {
                    Some(r) => r
                        .strip_prefix("#/$defs/")
                        .and_then(|n| root.get("$defs").and_then(|d| d.get(n)))
                        .unwrap_or(schema),
                    None => schema,
                };
                if let Some(p) =
                    ferrapi_openapi::not_flat(ferrapi_openapi::ParameterIn::Query, name, schema)
                {
                    let p = p.replacen("query parameter", "form field", 1);
                    if !op.problems.contains(&p) {
                        op.problems.push(p);
                    }
                }
            }
        }
    }
}
