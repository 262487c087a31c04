//! Integration tests of the validation module: schemars-derived schemas of
//! real Rust types, exact pydantic v2 error JSON.
#![allow(clippy::unwrap_used, dead_code)]

mod garde_map;
mod json;
mod params;
mod walk;

use ferrapi_core::validation::{Loc, MissingInput, Schema, Source, validate};
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::Value;

/// The schema the framework derives for `T`.
pub fn schema_of<T: JsonSchema>() -> Schema {
    let root = SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>();
    Schema::new(serde_json::to_value(root).unwrap())
}

/// Validates `input` as a JSON body of type `T`: the errors as JSON, and the
/// value after coercion.
pub fn body<T: JsonSchema>(input: Value) -> (Value, Value) {
    run(&schema_of::<T>(), input, Source::Body, MissingInput::Parent)
}

pub fn run(
    schema: &Schema,
    mut input: Value,
    source: Source,
    missing: MissingInput,
) -> (Value, Value) {
    let mut errors = Vec::new();
    validate(
        schema,
        &mut input,
        &Loc::source(source),
        missing,
        &mut errors,
    );
    (serde_json::to_value(&errors).unwrap(), input)
}

/// The errors only.
pub fn errors<T: JsonSchema>(input: Value) -> Value {
    body::<T>(input).0
}
