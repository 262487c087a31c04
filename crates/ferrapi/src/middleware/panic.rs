//! The inner panic catcher.

use crate::response::Response;
use std::any::Any;
use tower_http::catch_panic::CatchPanicLayer;

/// What a panic is answered with.
pub type PanicHandler = fn(Box<dyn Any + Send + 'static>) -> Response;

/// A handler's panic answered 500
/// `{"detail": "Internal Server Error"}` from *inside* the middleware stack.
///
/// [`App::build`](crate::App::build) already catches panics at the very
/// outside; this layer, placed innermost, catches them earlier so that the
/// panic is logged within the request's span (with its `request_id`) and
/// the 500 still passes through the other layers (request id, timing,
/// security and CORS headers).
///
/// The layer: tower-http's `CatchPanicLayer` with FastAPI's 500 answer.
///
/// ```
/// use ferrapi::middleware::{catch_panic, RequestIdLayer};
/// use ferrapi::prelude::*;
///
/// // Innermost first: the panic is caught inside the request-id span.
/// let app = App::new().layer(catch_panic()).layer(RequestIdLayer::new());
/// ```
pub fn catch_panic() -> CatchPanicLayer<PanicHandler> {
    CatchPanicLayer::custom(panic_response as PanicHandler)
}

fn panic_response(err: Box<dyn Any + Send + 'static>) -> Response {
    let message = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("(non-string panic payload)");
    tracing::error!(panic = %message, "handler panicked");
    crate::response::error_response(&ferrapi_core::HttpError::internal())
}
