//! [`Error`]: what a handler's `Err` becomes, and the default answers to
//! the framework's own errors (the application's exception handlers, in
//! the facade, try theirs first).

use super::Response;
use crate::HttpError;
use crate::validation::ValidationErrors;
use axum_core::response::IntoResponse;
use http::{HeaderValue, StatusCode, header};
use std::error::Error as StdError;
use std::fmt;

/// Any error a handler or extractor returns: an [`HttpError`] (answered with
/// its status and detail), [`ValidationErrors`] (answered 422), or any other
/// `std::error::Error` (answered by the exception handler registered for its
/// type, else 500 `Internal Server Error`, logged with its cause chain).
///
/// ```
/// use ferrapi::{Error, HttpError};
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("the ledger is closed")]
/// struct LedgerClosed;
///
/// let e: Error = LedgerClosed.into();
/// assert!(e.downcast_ref::<LedgerClosed>().is_some());
/// let e: Error = HttpError::not_found("User not found").into();
/// assert!(e.downcast_ref::<HttpError>().is_some());
/// ```
pub struct Error(Box<dyn StdError + Send + Sync + 'static>);

impl Error {
    /// Wraps any error.
    pub fn new(e: impl StdError + Send + Sync + 'static) -> Self {
        Error(Box::new(e))
    }
    /// The error as `E`, if it is one.
    pub fn downcast_ref<E: StdError + 'static>(&self) -> Option<&E> {
        self.0.downcast_ref::<E>()
    }
    /// The inner error.
    pub fn inner(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.0
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl<E: StdError + Send + Sync + 'static> From<E> for Error {
    fn from(e: E) -> Self {
        Error(Box::new(e))
    }
}

/// A JSON response with `body`, `status` and no other header.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut res = (status, bytes).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// The default answer to [`ValidationErrors`]: 422 with FastAPI's
/// `{"detail": [...]}`, serialized straight from the error items (the same
/// bytes as serializing [`ValidationErrors::body`], without building that
/// JSON tree first).
pub fn validation_response(errors: &ValidationErrors) -> Response {
    #[derive(serde::Serialize)]
    struct Body<'a> {
        detail: &'a [crate::validation::ErrorItem],
    }
    // A few errors take a few hundred bytes: one allocation in most cases.
    let mut bytes = Vec::with_capacity(128 + 192 * errors.0.len());
    if serde_json::to_writer(&mut bytes, &Body { detail: &errors.0 }).is_err() {
        return json_response(StatusCode::UNPROCESSABLE_ENTITY, &errors.body());
    }
    let mut res = (StatusCode::UNPROCESSABLE_ENTITY, bytes).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// The default answer to an [`HttpError`].
pub fn http_error_response(e: &HttpError) -> Response {
    let mut res = json_response(e.status(), &e.body());
    for (name, value) in e.headers() {
        res.headers_mut().append(name, value.clone());
    }
    res
}
