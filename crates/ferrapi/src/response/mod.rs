//! Responses: what handlers return.
//!
//! A handler returns any [`Responder`]: [`Json<T>`](crate::Json) (serialized
//! with the route's declared status), [`Created`], [`NoContent`], [`Text`],
//! [`Html`], [`Redirect`], bytes, a raw [`Response`], `(StatusCode, T)`, or
//! `Result<T, E>` where the error converts into [`Error`] (any
//! `std::error::Error`, [`HttpError`](crate::HttpError) included). The
//! declared type is what gets serialized, so internal fields of other types
//! never leak.

mod error;
mod types;

pub use error::{Error, ExceptionHandlers};
pub use types::{Created, Html, NoContent, Redirect, Streaming, Text};

use crate::extract::RequestContext;
use crate::openapi::DescribeOutput;

/// The response type of the HTTP layer.
pub type Response = axum::response::Response;

/// A value a handler can return.
///
/// `respond` receives the request's context: the route's declared status
/// (used by [`Json`](crate::Json), [`Text`], …) and the application's
/// exception handlers (used by `Result`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned from a handler",
    note = "handlers return `Json<T>`, `Created<T>`, `NoContent`, `Text`, `Html<T>`, `Redirect`, a `Response`, `(StatusCode, T)`, or `Result<T, E>` where `E: Into<ferrapi::Error>`"
)]
pub trait Responder: DescribeOutput + Send {
    /// Turns the value into a response.
    fn respond(self, cx: &RequestContext) -> Response;
}

impl<T: Responder, E: Into<Error> + Send> Responder for Result<T, E> {
    fn respond(self, cx: &RequestContext) -> Response {
        match self {
            Ok(value) => value.respond(cx),
            Err(e) => cx.app.render_error(e.into()),
        }
    }
}

impl<T: DescribeOutput, E> DescribeOutput for Result<T, E> {
    fn describe(op: &mut ferrapi_openapi::OperationBuilder<'_>, status: http::StatusCode) {
        T::describe(op, status);
    }
}

/// The default JSON answer to an [`HttpError`](crate::HttpError).
pub(crate) fn error_response(e: &ferrapi_core::HttpError) -> Response {
    error::http_error_response(e)
}
