//! Rules that the schema cannot show, or that another vocabulary would
//! only document, are compile errors.
use ferrapi::prelude::*;

#[derive(Deserialize, JsonSchema, Validate)]
struct Bytes {
    #[garde(length(bytes, max = 10))]
    name: String,
}

#[derive(Deserialize, JsonSchema, Validate)]
struct SchemarsOnly {
    #[schemars(range(min = 1))]
    limit: u32,
}

#[derive(Deserialize, JsonSchema, Validate)]
struct TwoPatterns {
    #[garde(prefix("a"), suffix("z"))]
    code: String,
}

#[derive(Deserialize, JsonSchema, Validate)]
struct BadPattern {
    #[garde(pattern("(unclosed"))]
    code: String,
}

fn main() {}
