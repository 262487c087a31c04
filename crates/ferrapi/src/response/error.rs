//! [`Error`]: what a handler's `Err` becomes, and the exception handlers
//! that turn errors into responses (FastAPI's `exception_handler`).

use super::Response;
use axum::response::IntoResponse;
use ferrapi_core::HttpError;
use ferrapi_core::validation::ValidationErrors;
use http::{HeaderValue, StatusCode, header};
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

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
pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
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
pub(crate) fn validation_response(errors: &ValidationErrors) -> Response {
    #[derive(serde::Serialize)]
    struct Body<'a> {
        detail: &'a [ferrapi_core::validation::ErrorItem],
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
pub(crate) fn http_error_response(e: &HttpError) -> Response {
    let mut res = json_response(e.status(), &e.body());
    for (name, value) in e.headers() {
        res.headers_mut().append(name, value.clone());
    }
    res
}

type Handler = Arc<dyn Fn(&Error) -> Option<Response> + Send + Sync>;

/// The application's exception handlers, tried in registration order
/// (the first whose type matches answers).
#[derive(Clone, Default)]
pub struct ExceptionHandlers(Vec<Handler>);

impl fmt::Debug for ExceptionHandlers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExceptionHandlers({})", self.0.len())
    }
}

impl ExceptionHandlers {
    pub(crate) fn add<E, F>(&mut self, handler: F)
    where
        E: StdError + 'static,
        F: Fn(&E) -> Response + Send + Sync + 'static,
    {
        self.0.push(Arc::new(move |e: &Error| {
            e.downcast_ref::<E>().map(&handler)
        }));
    }

    /// Answers an error: a registered handler, else the default.
    pub fn render(&self, e: Error) -> Response {
        for h in &self.0 {
            if let Some(res) = h(&e) {
                return res;
            }
        }
        if let Some(http) = e.downcast_ref::<HttpError>() {
            return http_error_response(http);
        }
        if let Some(v) = e.downcast_ref::<ValidationErrors>() {
            return validation_response(v);
        }
        let mut chain = String::new();
        let mut source = e.inner().source();
        while let Some(s) = source {
            chain.push_str(": ");
            chain.push_str(&s.to_string());
            source = s.source();
        }
        tracing::error!(error = %e, cause = %chain, "unhandled error in handler");
        http_error_response(&HttpError::internal())
    }
}
