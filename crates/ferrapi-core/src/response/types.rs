//! The response helpers.

use super::error::json_response;
use super::{Responder, Response};
use crate::HttpError;
use crate::describe::DescribeOutput;
use crate::describe::OperationBuilder;
use crate::extract::RequestContext;
use axum_core::response::IntoResponse;
use http::{HeaderValue, StatusCode, header};
use schemars::JsonSchema;
use serde::Serialize;

/// A response with `status`, `body` and one header, `Content-Type`, set
/// once (`into_response` on a body sets a content type of its own, which
/// would then be replaced).
#[doc(hidden)]
pub fn typed_body(
    status: StatusCode,
    body: impl Into<axum_core::body::Body>,
    content_type: &'static str,
) -> Response {
    let mut res = Response::new(body.into());
    *res.status_mut() = status;
    // Room for what middleware commonly adds (request id, trace context,
    // timing, security headers) without growing the map again.
    *res.headers_mut() = http::HeaderMap::with_capacity(8);
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

/// Serializes `value` as a JSON response with `status`; a serialization
/// failure (a map with non-string keys, a failing `Serialize` impl) is a
/// logged 500, never a panic.
#[doc(hidden)]
pub fn json_body<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => typed_body(status, bytes, "application/json"),
        Err(e) => {
            tracing::error!(error = %e, "failed to serialize the response body");
            json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &HttpError::internal().body(),
            )
        }
    }
}

/// `201 Created` with a `Location` header and a JSON body.
///
/// ```
/// use ferrapi::prelude::*;
///
/// #[derive(Serialize, JsonSchema)]
/// struct User { id: i64 }
///
/// #[post("/users", status = 201)]
/// async fn create() -> Created<User> {
///     Created::new("/users/1", User { id: 1 })
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Created<T> {
    location: String,
    body: T,
}

impl<T> Created<T> {
    /// A 201 whose `Location` is `location` and body `body`.
    pub fn new(location: impl Into<String>, body: T) -> Self {
        Self {
            location: location.into(),
            body,
        }
    }
}

impl<T: Serialize + JsonSchema + Send> Responder for Created<T> {
    fn respond(self, _cx: &RequestContext) -> Response {
        let mut res = json_body(StatusCode::CREATED, &self.body);
        if res.status() == StatusCode::CREATED {
            match HeaderValue::try_from(self.location) {
                Ok(v) => {
                    res.headers_mut().insert(header::LOCATION, v);
                }
                Err(e) => tracing::error!(error = %e, "invalid Location header in Created"),
            }
        }
        res
    }
}
impl<T: JsonSchema> DescribeOutput for Created<T> {
    fn describe(op: &mut OperationBuilder<'_>, _status: StatusCode) {
        op.json_response::<T>(StatusCode::CREATED);
    }
}

/// `204 No Content`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoContent;

impl Responder for NoContent {
    fn respond(self, _cx: &RequestContext) -> Response {
        StatusCode::NO_CONTENT.into_response()
    }
}
impl DescribeOutput for NoContent {
    fn describe(op: &mut OperationBuilder<'_>, _status: StatusCode) {
        op.response(StatusCode::NO_CONTENT, "Successful Response", None);
    }
}

/// A `text/plain; charset=utf-8` body with the route's declared status.
#[derive(Debug, Clone, Default)]
pub struct Text<T = String>(pub T);

impl<T: Into<String> + Send> Responder for Text<T> {
    fn respond(self, cx: &RequestContext) -> Response {
        typed_body(cx.status(), self.0.into(), "text/plain; charset=utf-8")
    }
}
impl<T> DescribeOutput for Text<T> {
    fn describe(op: &mut OperationBuilder<'_>, status: StatusCode) {
        let schema = op.registry.schema_for::<String>();
        op.response(status, "Successful Response", Some(("text/plain", schema)));
    }
}

/// A `text/html; charset=utf-8` body with the route's declared status.
#[derive(Debug, Clone, Default)]
pub struct Html<T = String>(pub T);

impl<T: Into<String> + Send> Responder for Html<T> {
    fn respond(self, cx: &RequestContext) -> Response {
        typed_body(cx.status(), self.0.into(), "text/html; charset=utf-8")
    }
}
impl<T> DescribeOutput for Html<T> {
    fn describe(op: &mut OperationBuilder<'_>, status: StatusCode) {
        let schema = op.registry.schema_for::<String>();
        op.response(status, "Successful Response", Some(("text/html", schema)));
    }
}

/// A redirect: `307 Temporary Redirect` by default, as FastAPI's `RedirectResponse`.
#[derive(Debug, Clone)]
pub struct Redirect {
    status: StatusCode,
    location: String,
}

impl Redirect {
    /// `307 Temporary Redirect` (the method and body are kept).
    pub fn to(location: impl Into<String>) -> Self {
        Self {
            status: StatusCode::TEMPORARY_REDIRECT,
            location: location.into(),
        }
    }
    /// `308 Permanent Redirect`.
    pub fn permanent(location: impl Into<String>) -> Self {
        Self {
            status: StatusCode::PERMANENT_REDIRECT,
            location: location.into(),
        }
    }
    /// `303 See Other` (the client follows with a GET).
    pub fn see_other(location: impl Into<String>) -> Self {
        Self {
            status: StatusCode::SEE_OTHER,
            location: location.into(),
        }
    }
}

impl Responder for Redirect {
    fn respond(self, _cx: &RequestContext) -> Response {
        match HeaderValue::try_from(self.location) {
            Ok(v) => {
                let mut res = self.status.into_response();
                res.headers_mut().insert(header::LOCATION, v);
                res
            }
            Err(e) => {
                tracing::error!(error = %e, "invalid redirect location");
                json_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &HttpError::internal().body(),
                )
            }
        }
    }
}
impl DescribeOutput for Redirect {
    fn describe(op: &mut OperationBuilder<'_>, _status: StatusCode) {
        op.response(StatusCode::TEMPORARY_REDIRECT, "Redirect", None);
    }
}

/// A streamed body: any stream of byte chunks, sent as it is produced.
///
/// ```
/// use ferrapi::response::Streaming;
/// use futures_util::stream;
///
/// let chunks = stream::iter(vec![Ok::<_, std::io::Error>("a"), Ok("b")]);
/// let body = Streaming::new("text/plain", chunks);
/// ```
pub struct Streaming {
    content_type: HeaderValue,
    body: axum_core::body::Body,
}

impl std::fmt::Debug for Streaming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streaming")
            .field("content_type", &self.content_type)
            .finish_non_exhaustive()
    }
}

impl Streaming {
    /// A response streaming `stream` with this content type.
    pub fn new<S, C, E>(content_type: &'static str, stream: S) -> Self
    where
        S: futures_util::Stream<Item = Result<C, E>> + Send + 'static,
        C: Into<bytes::Bytes> + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
    {
        Self {
            content_type: HeaderValue::from_static(content_type),
            body: axum_core::body::Body::from_stream(stream),
        }
    }
}

impl Responder for Streaming {
    fn respond(self, cx: &RequestContext) -> Response {
        let mut res = (cx.status(), self.body).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, self.content_type);
        res
    }
}
impl DescribeOutput for Streaming {}

impl Responder for Response {
    fn respond(self, _cx: &RequestContext) -> Response {
        self
    }
}
impl DescribeOutput for Response {}

impl Responder for StatusCode {
    fn respond(self, _cx: &RequestContext) -> Response {
        self.into_response()
    }
}
impl DescribeOutput for StatusCode {}

impl Responder for HttpError {
    fn respond(self, _cx: &RequestContext) -> Response {
        super::error::http_error_response(&self)
    }
}
impl DescribeOutput for HttpError {}

/// `(status, value)`: `value`'s response with another status.
impl<T: Responder> Responder for (StatusCode, T) {
    fn respond(self, cx: &RequestContext) -> Response {
        let mut res = self.1.respond(cx);
        *res.status_mut() = self.0;
        res
    }
}
impl<T: DescribeOutput> DescribeOutput for (StatusCode, T) {
    fn describe(op: &mut OperationBuilder<'_>, status: StatusCode) {
        T::describe(op, status);
    }
}

/// Raw bytes as `application/octet-stream` with the declared status.
impl Responder for bytes::Bytes {
    fn respond(self, cx: &RequestContext) -> Response {
        typed_body(cx.status(), self, "application/octet-stream")
    }
}
impl DescribeOutput for bytes::Bytes {}

/// `()` answers the declared status with an empty body (for 204 routes) or
/// JSON `null`, as FastAPI answers a handler that returns `None`.
impl Responder for () {
    fn respond(self, cx: &RequestContext) -> Response {
        let status = cx.status();
        if status == StatusCode::NO_CONTENT || status.is_informational() {
            status.into_response()
        } else {
            json_body(status, &serde_json::Value::Null)
        }
    }
}
impl DescribeOutput for () {
    fn describe(op: &mut OperationBuilder<'_>, status: StatusCode) {
        op.response(status, "Successful Response", None);
    }
}

/// A string is a `text/plain; charset=utf-8` body with the declared status.
impl Responder for &'static str {
    fn respond(self, cx: &RequestContext) -> Response {
        // The static text itself, not a copy.
        typed_body(cx.status(), self, "text/plain; charset=utf-8")
    }
}
impl DescribeOutput for &'static str {
    fn describe(op: &mut OperationBuilder<'_>, status: StatusCode) {
        Text::<String>::describe(op, status);
    }
}

/// A string is a `text/plain; charset=utf-8` body with the declared status.
impl Responder for String {
    fn respond(self, cx: &RequestContext) -> Response {
        Text(self).respond(cx)
    }
}
impl DescribeOutput for String {
    fn describe(op: &mut OperationBuilder<'_>, status: StatusCode) {
        Text::<String>::describe(op, status);
    }
}
