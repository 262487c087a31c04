//! The body and response types of the HTTP layer (axum's, from
//! `axum-core`), below both the extractors and the responses.

/// The body type of requests and responses.
pub use axum_core::body::Body;

/// The response type of the HTTP layer.
pub type Response = axum_core::response::Response;
