//! Headers (and a status) on a typed response: `(HeaderMap, T)`,
//! `([(name, value); N], T)`, optionally with a status first.

use super::{Responder, Response, http_error_response};
use crate::HttpError;
use crate::describe::DescribeOutput;
use crate::describe::OperationBuilder;
use crate::extract::{InvalidHeader, RequestContext, header_pair};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

fn internal() -> Response {
    http_error_response(&HttpError::internal())
}

/// Extends `res` with `headers` (each name replaced, as axum's tuples do).
fn extend(res: &mut Response, headers: HeaderMap) {
    res.headers_mut().extend(headers);
}

/// `[(name, value); N]` into a map.
fn array_headers<K, V, const N: usize>(pairs: [(K, V); N]) -> Result<HeaderMap, InvalidHeader>
where
    K: TryInto<HeaderName>,
    V: TryInto<HeaderValue>,
{
    let mut map = HeaderMap::with_capacity(N);
    for (k, v) in pairs {
        let (k, v) = header_pair(k, v)?;
        map.append(k, v);
    }
    Ok(map)
}

/// A header the handler got wrong: logged, answered 500.
fn invalid(e: &InvalidHeader) -> Response {
    tracing::error!(error = %e, "invalid response header");
    internal()
}

/// `(headers, value)`: `value`'s response with these headers added.
impl<T: Responder> Responder for (HeaderMap, T) {
    fn respond(self, cx: &RequestContext) -> Response {
        let mut res = self.1.respond(cx);
        extend(&mut res, self.0);
        res
    }
}
impl<T: DescribeOutput> DescribeOutput for (HeaderMap, T) {
    fn describe(op: &mut OperationBuilder<'_>, status: StatusCode) {
        T::describe(op, status);
    }
}

/// `([(name, value); N], value)`: `value`'s response with these headers
/// (`[("x-total-count", "42")]`).
impl<K, V, T, const N: usize> Responder for ([(K, V); N], T)
where
    K: TryInto<HeaderName> + Send,
    V: TryInto<HeaderValue> + Send,
    T: Responder,
{
    fn respond(self, cx: &RequestContext) -> Response {
        let headers = match array_headers(self.0) {
            Ok(h) => h,
            Err(e) => return invalid(&e),
        };
        let mut res = self.1.respond(cx);
        extend(&mut res, headers);
        res
    }
}
impl<K, V, T: DescribeOutput, const N: usize> DescribeOutput for ([(K, V); N], T) {
    fn describe(op: &mut OperationBuilder<'_>, status: StatusCode) {
        T::describe(op, status);
    }
}

/// `(status, headers, value)`.
impl<T: Responder> Responder for (StatusCode, HeaderMap, T) {
    fn respond(self, cx: &RequestContext) -> Response {
        let mut res = (self.1, self.2).respond(cx);
        *res.status_mut() = self.0;
        res
    }
}
impl<T: DescribeOutput> DescribeOutput for (StatusCode, HeaderMap, T) {
    fn describe(op: &mut OperationBuilder<'_>, status: StatusCode) {
        T::describe(op, status);
    }
}

/// `(status, [(name, value); N], value)`.
impl<K, V, T, const N: usize> Responder for (StatusCode, [(K, V); N], T)
where
    K: TryInto<HeaderName> + Send,
    V: TryInto<HeaderValue> + Send,
    T: Responder,
{
    fn respond(self, cx: &RequestContext) -> Response {
        match array_headers(self.1) {
            Ok(headers) => (self.0, headers, self.2).respond(cx),
            Err(e) => invalid(&e),
        }
    }
}
impl<K, V, T: DescribeOutput, const N: usize> DescribeOutput for (StatusCode, [(K, V); N], T) {
    fn describe(op: &mut OperationBuilder<'_>, status: StatusCode) {
        T::describe(op, status);
    }
}
