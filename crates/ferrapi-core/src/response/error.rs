//! The default answers to the framework's own errors (the application's
//! exception handlers, in the facade, try theirs first).

use super::Response;
use crate::HttpError;
use crate::validation::ValidationErrors;
use axum_core::response::IntoResponse;
use http::{HeaderValue, StatusCode, header};

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
