//! OpenAPI 3.1 for ferrapi: the document model and the schema registry over
//! schemars (JSON Schema 2020-12).
//!
//! Every route is declared once; when the application is built, each route's
//! extractor and response types are asked to describe themselves (the
//! `DescribeInput` and `DescribeOutput` traits of `ferrapi-core`) into an
//! `OperationBuilder` (also in `ferrapi-core`: it records the route's
//! runtime facts beside the document, which this crate does not carry). The
//! operations are assembled into one [`OpenApi`] document, built once at
//! start-up: no request ever pays for documentation.
//!
//! This is the only ferrapi crate that names schemars types, so a schemars
//! upgrade touches one crate.
#![deny(missing_docs)]

pub mod asyncapi;
mod model;
mod registry;

pub use model::*;
pub use registry::{SchemaRegistry, validation_schema};

/// Re-exported so that users derive `JsonSchema` through ferrapi.
pub use schemars;
/// A type that has a JSON Schema.
pub use schemars::JsonSchema;
