//! Core vocabulary of ferrapi.
//!
//! This crate holds what changes slowly and what every other ferrapi crate
//! speaks: the [`HttpError`] that handlers return (FastAPI's `HTTPException`),
//! and the FastAPI/pydantic-shaped validation error vocabulary
//! ([`validation::ErrorItem`]) together with the schema-driven validator that
//! produces it and the validation pipeline that `ferrapi`'s extractors run.
//!
//! It has no runtime dependencies (no tokio, no hyper): only `http`, `serde`,
//! `garde`, and `schemars` with `ferrapi-openapi` for a type's validation
//! schema.
#![deny(missing_docs)]

mod error;
pub mod validation;

pub use error::HttpError;
