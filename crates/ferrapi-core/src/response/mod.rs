//! Responses: what handlers return.
//!
//! A handler returns any [`Responder`]: `Json<T>` (serialized
//! with the route's declared status), [`Created`], [`NoContent`], [`Text`],
//! [`Html`], [`Redirect`], bytes, a raw [`Response`], `(StatusCode, T)`, or
//! `Result<T, E>` where the error converts into [`Error`] (any
//! `std::error::Error`, [`HttpError`](crate::HttpError) included). The
//! declared type is what gets serialized, so internal fields of other types
//! never leak.
//!
//! Headers, cookies and a status go on a typed response without losing its
//! schema: return `(HeaderMap, T)`, `([(name, value); N], T)` (optionally
//! with a [`StatusCode`](http::StatusCode) first), or take
//! [`ResponseParts`] as a parameter — FastAPI's `response: Response` — and
//! call [`set_cookie`](ResponseParts::set_cookie) with a [`SetCookie`].

mod error;
mod tuples;
mod types;

pub use crate::body::{Body, Response};
pub use crate::error::Error;
#[doc(hidden)]
pub use crate::extract::PendingParts;
pub use crate::extract::{InvalidHeader, ResponseParts, SameSite, SetCookie};
pub use error::{http_error_response, json_response, validation_response};
pub use types::{Created, Html, NoContent, Redirect, Streaming, Text, json_body, typed_body};

use crate::describe::DescribeOutput;
use crate::extract::RequestContext;

/// A value a handler can return.
///
/// `respond` receives the request's context: the route's declared status
/// (used by `Json`, [`Text`], …) and the application's
/// exception handlers (used by `Result`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned from a handler",
    note = "handlers return `Json<T>`, `Created<T>`, `NoContent`, `Text`, `Html<T>`, `Redirect`, a `Response`, `(StatusCode, T)`, `(HeaderMap, T)`, `([(name, value); N], T)`, or `Result<T, E>` where `E: ResponseError` (`ferrapi::Error`, `HttpError`, or `#[derive(ApiError)]`)"
)]
pub trait Responder: DescribeOutput + Send {
    /// Turns the value into a response.
    fn respond(self, cx: &RequestContext) -> Response;
}

impl<T: Responder, E: ResponseError> Responder for Result<T, E> {
    fn respond(self, cx: &RequestContext) -> Response {
        match self {
            Ok(value) => value.respond(cx),
            Err(e) => cx.render_error(e.into_error()),
        }
    }
}

/// An error type a handler may return in `Result<T, E>`: it becomes an
/// [`Error`] (answered by the exception handlers) and documents the
/// responses it can produce.
///
/// Implemented by [`Error`] (into which any `std::error::Error` converts
/// with `?`), [`HttpError`](crate::HttpError) and
/// `ValidationErrors`; derive it for your own
/// error enums with `#[derive(ApiError)]`, which lists each variant's
/// status in the OpenAPI document:
///
/// ```
/// use ferrapi::prelude::*;
/// use ferrapi::ApiError;
///
/// #[derive(Debug, thiserror::Error, ApiError)]
/// enum UserError {
///     #[error("User not found")]
///     #[api(status = 404)]
///     NotFound,
///     #[error("Email already registered")]
///     #[api(status = 409)]
///     EmailTaken,
///     /// No status: answered 500 `Internal Server Error`, logged with its message.
///     #[error("database unavailable: {0}")]
///     Database(String),
/// }
///
/// #[get("/users/{user_id}")]
/// async fn read_user(Path(user_id): Path<i64>) -> Result<Json<i64>, UserError> {
///     if user_id == 0 { Err(UserError::NotFound) } else { Ok(Json(user_id)) }
/// }
/// // The operation documents 404 and 409 with FastAPI's `{"detail": …}` body.
///
/// /// `errors(...)`: this operation documents 404 alone.
/// #[get("/users/{user_id}/name", errors(NotFound))]
/// async fn read_name(Path(user_id): Path<i64>) -> Result<Json<String>, UserError> {
///     if user_id == 0 { Err(UserError::NotFound) } else { Ok(Json("Ada".into())) }
/// }
/// ```
///
/// Without `errors(...)`, a route documents every status of its error type:
/// more than it may answer, never less. Listing the variants is the precise
/// form; a name that is no variant of the type does not compile (behind a
/// type alias of `Result`, `App::build` reports it).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a handler's error type",
    note = "return `Result<T, ferrapi::Error>` (any `std::error::Error` converts into it with `?`), `Result<T, HttpError>`, or derive `ferrapi::ApiError` on your error enum"
)]
pub trait ResponseError: Send {
    /// The error the exception handlers answer.
    fn into_error(self) -> Error;
    /// Documents the responses this error type produces.
    fn describe(op: &mut crate::describe::OperationBuilder<'_>) {
        let _ = op;
    }
    /// Documents the responses of the named `variants` only: what a route
    /// declaring `errors(NotFound, EmailTaken)` documents. `#[derive(ApiError)]`
    /// implements it; by default, every response ([`describe`](Self::describe)).
    fn describe_only(op: &mut crate::describe::OperationBuilder<'_>, variants: &[&str]) {
        let _ = variants;
        Self::describe(op);
    }
}

impl ResponseError for Error {
    fn into_error(self) -> Error {
        self
    }
}

impl ResponseError for crate::HttpError {
    fn into_error(self) -> Error {
        self.into()
    }
}

impl ResponseError for crate::validation::ValidationErrors {
    fn into_error(self) -> Error {
        self.into()
    }
}

impl<T: DescribeOutput, E: ResponseError> DescribeOutput for Result<T, E> {
    fn describe(op: &mut crate::describe::OperationBuilder<'_>, status: http::StatusCode) {
        T::describe(op, status);
        E::describe(op);
    }
}
