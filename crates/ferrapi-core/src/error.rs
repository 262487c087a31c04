//! [`HttpError`]: an error a handler returns to answer with a status and a
//! JSON `{"detail": …}` body, as FastAPI's `HTTPException`.

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_json::Value;
use std::error::Error as StdError;
use std::fmt;

/// An HTTP error answered as `{"detail": …}` with a status and optional headers.
///
/// This is FastAPI's `HTTPException`: return it (or `Err(it)`) from a handler
/// and the framework answers with its status, its headers and a JSON body whose
/// only key is `detail`.
///
/// ```
/// use ferrapi_core::HttpError;
/// use http::StatusCode;
///
/// let err = HttpError::not_found("User not found");
/// assert_eq!(err.status(), StatusCode::NOT_FOUND);
/// assert_eq!(err.body(), serde_json::json!({"detail": "User not found"}));
///
/// let err = HttpError::new(StatusCode::UNAUTHORIZED, "Not authenticated")
///     .with_header("www-authenticate", "Bearer");
/// assert_eq!(err.headers()["www-authenticate"], "Bearer");
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[error("HTTP {status}: {detail}")]
pub struct HttpError {
    status: StatusCode,
    detail: Value,
    headers: HeaderMap,
}

impl HttpError {
    /// An error with `status` and a `detail` (a string, or any JSON value).
    pub fn new(status: StatusCode, detail: impl Into<Value>) -> Self {
        Self {
            status,
            detail: detail.into(),
            headers: HeaderMap::new(),
        }
    }

    /// Sets a response header (replacing one of the same name). Invalid
    /// names or values are ignored (they can only come from the program,
    /// never from a request) and reported in debug builds.
    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        match (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            (Ok(name), Ok(value)) => {
                self.headers.insert(name, value);
            }
            _ => debug_assert!(false, "invalid header {name}: {value}"),
        }
        self
    }

    /// Replaces the detail with any JSON value.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<Value>) -> Self {
        self.detail = detail.into();
        self
    }

    /// 400 Bad Request.
    pub fn bad_request(detail: impl Into<Value>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }
    /// 401 Unauthorized, with `WWW-Authenticate: Bearer`.
    pub fn unauthorized(detail: impl Into<Value>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail).with_header("www-authenticate", "Bearer")
    }
    /// 403 Forbidden.
    pub fn forbidden(detail: impl Into<Value>) -> Self {
        Self::new(StatusCode::FORBIDDEN, detail)
    }
    /// 404 Not Found.
    pub fn not_found(detail: impl Into<Value>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }
    /// 409 Conflict.
    pub fn conflict(detail: impl Into<Value>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }
    /// 500 Internal Server Error with FastAPI's detail text.
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }
    /// The `detail` value.
    pub fn detail(&self) -> &Value {
        &self.detail
    }
    /// Extra response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
    /// The JSON body: `{"detail": …}`.
    pub fn body(&self) -> Value {
        serde_json::json!({ "detail": self.detail })
    }
    /// Splits the error into its status, detail and headers.
    pub fn into_parts(self) -> (StatusCode, Value, HeaderMap) {
        (self.status, self.detail, self.headers)
    }
}

/// Any error a handler or extractor returns: an [`HttpError`] (answered with
/// its status and detail), [`ValidationErrors`](crate::validation::ValidationErrors) (answered 422), or any other
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
