//! OpenAPI 3.1 for ferrapi: the document model, the schema registry over
//! schemars (JSON Schema 2020-12) and the hooks through which extractors and
//! response types describe themselves.
//!
//! Every route is declared once; when the application is built, each route's
//! extractor and response types are asked to describe themselves (the
//! facade's `DescribeInput` and `DescribeOutput` traits) into an
//! [`OperationBuilder`]. The
//! operations are assembled into one [`OpenApi`] document, built once at
//! start-up: no request ever pays for documentation.
//!
//! This is the only ferrapi crate that names schemars types, so a schemars
//! upgrade touches one crate.
#![deny(missing_docs)]

pub mod asyncapi;
mod model;
mod operation;
mod registry;

pub use model::*;
pub use operation::{OperationBuilder, PathShape, RequiredState, not_flat};
pub use registry::{SchemaRegistry, validation_schema};

/// Re-exported so that users derive `JsonSchema` through ferrapi.
pub use schemars;
/// A type that has a JSON Schema.
pub use schemars::JsonSchema;
