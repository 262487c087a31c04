//! Responses: what handlers return.
//!
//! A handler returns any [`Responder`]: [`Json<T>`](crate::Json) (serialized
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
mod types;

pub use error::ExceptionHandlers;
pub use ferrapi_core::response::{
    Created, Error, Html, InvalidHeader, NoContent, Redirect, Responder, Response, ResponseError,
    ResponseParts, SameSite, SetCookie, Streaming, Text,
};

/// The default JSON answer to an [`HttpError`](crate::HttpError).
pub(crate) fn error_response(e: &ferrapi_core::HttpError) -> Response {
    ferrapi_core::response::http_error_response(e)
}
