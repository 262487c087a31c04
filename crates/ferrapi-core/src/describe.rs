//! The hooks through which extractors and response types describe
//! themselves for OpenAPI. They live with the other contracts (not in
//! `ferrapi-openapi`, the document model) so that this crate can implement
//! them for foreign types (`String`, `http::Method`, `Result`, …) beside
//! the extraction and response traits.

/// The operation being documented (from the document model, `ferrapi-openapi`).
pub use ferrapi_openapi::OperationBuilder;
use http::StatusCode;

/// An extractor that describes the input it reads (parameters, body).
///
/// Implemented by every ferrapi extractor; a custom extractor that reads no
/// documented input implements it with the default (empty) body.
pub trait DescribeInput {
    /// Adds this input to the operation.
    fn describe(op: &mut OperationBuilder<'_>) {
        let _ = op;
    }
}

/// A response type that describes the responses it produces.
pub trait DescribeOutput {
    /// Adds this type's responses; `status` is the route's declared success
    /// status (200 unless the route says otherwise).
    fn describe(op: &mut OperationBuilder<'_>, status: StatusCode) {
        let _ = (op, status);
    }
}
