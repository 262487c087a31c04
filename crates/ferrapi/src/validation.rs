//! The extractors' validation pipeline, which lives in ferrapi-core with the
//! rest of validation (`ferrapi_core::validation::pipeline`: fast serde
//! path, schema walk on failure), under the name the extractors use.

pub(crate) use ferrapi_core::validation::pipeline::{
    PairsDeserializer, ParamDeserializer, SeqParams, Shape, TypeSchema, from_pairs, from_value,
    parse_json, rename_loc, schema_of, type_schema,
};
