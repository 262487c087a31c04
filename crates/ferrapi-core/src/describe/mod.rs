//! The hooks through which extractors and response types describe
//! themselves for OpenAPI. They live with the other contracts (not in
//! `ferrapi-openapi`, the document model) so that this crate can implement
//! them for foreign types (`String`, `http::Method`, `Result`, …) beside
//! the extraction and response traits.
//!
//! The walk's context, [`OperationBuilder`], lives here too (written by
//! hand, in `operation.rs`): it fills the operation's document and, in
//! [`OperationBuilder::plan`], the route's runtime facts ([`PlanBuilder`],
//! in `plan.rs`), which the document model has no business carrying.

mod operation;
mod plan;

pub use operation::{OperationBuilder, not_flat};
pub use plan::{DependencyCycle, PathShape, PlanBuilder, RequiredState};

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
