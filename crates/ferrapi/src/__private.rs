//! What the route attribute macros expand to. Not public API.

pub use crate::extract::{Request, RequestContext};
pub use crate::routing::Extraction;
pub use futures_util::future::BoxFuture;
pub use std::sync::Arc;

use crate::openapi::OperationBuilder;
use crate::response::Responder;
use crate::response::Response;
use crate::routing::Route;
use http::{Method, StatusCode};

/// Builds a route from macro-generated glue.
#[track_caller]
pub fn route<F>(
    method: Method,
    path: &str,
    name: &str,
    handler: F,
    describe: fn(&mut OperationBuilder<'_>, StatusCode),
) -> Route
where
    F: Fn(Request, Arc<RequestContext>) -> BoxFuture<'static, Response> + Send + Sync + 'static,
{
    Route::from_parts(
        method,
        path.to_owned(),
        name.to_owned(),
        Arc::new(handler),
        describe,
        std::panic::Location::caller(),
    )
}

/// Describes a handler's return type (bound on `Responder`, not only
/// `DescribeOutput`, so that a wrong return type gets one clear error).
pub fn describe_output<R: Responder>(op: &mut OperationBuilder<'_>, status: StatusCode) {
    R::describe(op, status);
}

/// A handler's `Result<T, E>` return type, for routes declaring
/// `errors(...)`: `T` is described as usual, `E` by the named variants.
#[diagnostic::on_unimplemented(
    message = "`errors(...)` needs a handler returning `Result<T, E>`, not `{Self}`",
    note = "`errors(NotFound, …)` names variants of the `#[derive(ApiError)]` type `E`"
)]
pub trait ReturnsErrors {
    /// `E`.
    type Error: ResponseError;
    /// Describes `T`.
    fn describe_ok(op: &mut OperationBuilder<'_>, status: StatusCode);
}

impl<T: crate::openapi::DescribeOutput, E: ResponseError> ReturnsErrors for Result<T, E> {
    type Error = E;
    fn describe_ok(op: &mut OperationBuilder<'_>, status: StatusCode) {
        T::describe(op, status);
    }
}

/// Describes a handler's `Result<T, E>`, documenting only the named
/// variants of `E`.
pub fn describe_output_with_errors<R: Responder + ReturnsErrors>(
    op: &mut OperationBuilder<'_>,
    status: StatusCode,
    variants: &[&str],
) {
    R::describe_ok(op, status);
    <R::Error as ResponseError>::describe_only(op, variants);
}

/// Answers 500 (never reached: see `routing::handler::internal_error`).
pub fn internal_error() -> Response {
    crate::routing::internal_error()
}

/// Asserts that a handler's future can move between threads; a handler that
/// holds a non-`Send` value across an `.await` fails here, at its call.
pub fn assert_send<T: Send>(future: T) -> T {
    future
}

/// A variant of an `ApiError` without a status: logged, answered 500.
pub fn internal_error_logged(error: &dyn std::fmt::Display) -> crate::Error {
    tracing::error!(error = %error, "handler error");
    ferrapi_core::HttpError::internal().into()
}

/// An `ApiError` variant with a status: answered with its message as detail.
pub fn http_error(status: u16, detail: String) -> crate::Error {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    ferrapi_core::HttpError::new(status, detail).into()
}

pub use crate::response::ResponseError;
