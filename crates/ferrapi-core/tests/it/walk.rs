//! `validate`: types, constraints, coercion, locations, order.

use super::{body, errors, run, schema_of};
use ferrapi_core::validation::{MissingInput, Schema, Source};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

#[derive(Debug, Deserialize, JsonSchema, garde::Validate, PartialEq)]
struct Address {
    #[garde(length(chars, min = 1, max = 50))]
    city: String,
    #[garde(skip)]
    zip: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Role {
    Admin,
    User,
    Guest,
}

#[derive(Debug, Deserialize, JsonSchema, garde::Validate, PartialEq)]
struct User {
    #[garde(length(chars, min = 2, max = 20))]
    name: String,
    #[garde(range(min = 18, max = 130))]
    age: u8,
    #[garde(email)]
    email: String,
    #[garde(range(min = 0.5, max = 10.0))]
    score: f64,
    #[garde(skip)]
    active: bool,
    #[garde(length(min = 1, max = 3), inner(length(chars, min = 1)))]
    tags: Vec<String>,
    #[garde(dive)]
    address: Address,
    #[garde(skip)]
    role: Role,
    #[garde(skip)]
    nickname: Option<String>,
}

fn valid_user() -> Value {
    json!({
        "name": "Ada", "age": 36, "email": "ada@example.com", "score": 9.5,
        "active": true, "tags": ["x"], "address": {"city": "London"},
        "role": "admin", "nickname": null
    })
}

fn with(patch: Value) -> Value {
    let mut v = valid_user();
    for (k, val) in patch.as_object().unwrap() {
        v[k] = val.clone();
    }
    v
}

fn without(key: &str) -> Value {
    let mut v = valid_user();
    v.as_object_mut().unwrap().remove(key);
    v
}

/// One error on a `User` body: (patch, expected error list).
fn user_cases() -> Vec<(Value, Value)> {
    vec![
        // string_type, also for null on a non-nullable field
        (
            with(json!({"name": 5})),
            json!([{"type": "string_type", "loc": ["body", "name"], "msg": "Input should be a valid string", "input": 5}]),
        ),
        (
            with(json!({"name": null})),
            json!([{"type": "string_type", "loc": ["body", "name"], "msg": "Input should be a valid string", "input": null}]),
        ),
        // string length counts characters
        (
            with(json!({"name": "é"})),
            json!([{"type": "string_too_short", "loc": ["body", "name"], "msg": "String should have at least 2 characters", "input": "é", "ctx": {"min_length": 2}}]),
        ),
        (
            with(json!({"name": "ééééééééééééééééééééé"})),
            json!([{"type": "string_too_long", "loc": ["body", "name"], "msg": "String should have at most 20 characters", "input": "ééééééééééééééééééééé", "ctx": {"max_length": 20}}]),
        ),
        (with(json!({"name": "ééééééééééééééééééé"})), json!([])),
        // integers
        (
            with(json!({"age": "thirty"})),
            json!([{"type": "int_parsing", "loc": ["body", "age"], "msg": "Input should be a valid integer, unable to parse string as an integer", "input": "thirty"}]),
        ),
        (
            with(json!({"age": 30.5})),
            json!([{"type": "int_from_float", "loc": ["body", "age"], "msg": "Input should be a valid integer, got a number with a fractional part", "input": 30.5}]),
        ),
        (
            with(json!({"age": [30]})),
            json!([{"type": "int_type", "loc": ["body", "age"], "msg": "Input should be a valid integer", "input": [30]}]),
        ),
        (
            with(json!({"age": null})),
            json!([{"type": "int_type", "loc": ["body", "age"], "msg": "Input should be a valid integer", "input": null}]),
        ),
        (
            with(json!({"age": 17})),
            json!([{"type": "greater_than_equal", "loc": ["body", "age"], "msg": "Input should be greater than or equal to 18", "input": 17, "ctx": {"ge": 18}}]),
        ),
        (
            with(json!({"age": "15"})),
            json!([{"type": "greater_than_equal", "loc": ["body", "age"], "msg": "Input should be greater than or equal to 18", "input": "15", "ctx": {"ge": 18}}]),
        ),
        (
            with(json!({"age": 131})),
            json!([{"type": "less_than_equal", "loc": ["body", "age"], "msg": "Input should be less than or equal to 130", "input": 131, "ctx": {"le": 130}}]),
        ),
        // floats: bounds printed as Python floats
        (
            with(json!({"score": 10.5})),
            json!([{"type": "less_than_equal", "loc": ["body", "score"], "msg": "Input should be less than or equal to 10.0", "input": 10.5, "ctx": {"le": 10.0}}]),
        ),
        (
            with(json!({"score": 0.25})),
            json!([{"type": "greater_than_equal", "loc": ["body", "score"], "msg": "Input should be greater than or equal to 0.5", "input": 0.25, "ctx": {"ge": 0.5}}]),
        ),
        (
            with(json!({"score": "high"})),
            json!([{"type": "float_parsing", "loc": ["body", "score"], "msg": "Input should be a valid number, unable to parse string as a number", "input": "high"}]),
        ),
        (
            with(json!({"score": {}})),
            json!([{"type": "float_type", "loc": ["body", "score"], "msg": "Input should be a valid number", "input": {}}]),
        ),
        (
            with(json!({"score": "inf"})),
            json!([{"type": "finite_number", "loc": ["body", "score"], "msg": "Input should be a finite number", "input": "inf"}]),
        ),
        // booleans
        (
            with(json!({"active": "maybe"})),
            json!([{"type": "bool_parsing", "loc": ["body", "active"], "msg": "Input should be a valid boolean, unable to interpret input", "input": "maybe"}]),
        ),
        (
            with(json!({"active": 2})),
            json!([{"type": "bool_parsing", "loc": ["body", "active"], "msg": "Input should be a valid boolean, unable to interpret input", "input": 2}]),
        ),
        (
            with(json!({"active": []})),
            json!([{"type": "bool_type", "loc": ["body", "active"], "msg": "Input should be a valid boolean", "input": []}]),
        ),
        // email
        (
            with(json!({"email": "ada"})),
            json!([{"type": "value_error", "loc": ["body", "email"], "msg": "value is not a valid email address: An email address must have an @-sign.", "input": "ada", "ctx": {"reason": "An email address must have an @-sign."}}]),
        ),
        (
            with(json!({"email": "ada@"})),
            json!([{"type": "value_error", "loc": ["body", "email"], "msg": "value is not a valid email address: There must be something after the @-sign.", "input": "ada@", "ctx": {"reason": "There must be something after the @-sign."}}]),
        ),
        // lists: type, length, item locations
        (
            with(json!({"tags": "x"})),
            json!([{"type": "list_type", "loc": ["body", "tags"], "msg": "Input should be a valid list", "input": "x"}]),
        ),
        (
            with(json!({"tags": []})),
            json!([{"type": "too_short", "loc": ["body", "tags"], "msg": "List should have at least 1 item after validation, not 0", "input": [], "ctx": {"field_type": "List", "min_length": 1, "actual_length": 0}}]),
        ),
        (
            with(json!({"tags": ["a", "b", "c", "d"]})),
            json!([{"type": "too_long", "loc": ["body", "tags"], "msg": "List should have at most 3 items after validation, not 4", "input": ["a", "b", "c", "d"], "ctx": {"field_type": "List", "max_length": 3, "actual_length": 4}}]),
        ),
        (
            with(json!({"tags": ["", 7]})),
            json!([
                {"type": "string_too_short", "loc": ["body", "tags", 0], "msg": "String should have at least 1 character", "input": "", "ctx": {"min_length": 1}},
                {"type": "string_type", "loc": ["body", "tags", 1], "msg": "Input should be a valid string", "input": 7}
            ]),
        ),
        // nested model
        (
            with(json!({"address": {"city": ""}})),
            json!([{"type": "string_too_short", "loc": ["body", "address", "city"], "msg": "String should have at least 1 character", "input": "", "ctx": {"min_length": 1}}]),
        ),
        (
            with(json!({"address": {"zip": "123"}})),
            json!([{"type": "missing", "loc": ["body", "address", "city"], "msg": "Field required", "input": {"zip": "123"}}]),
        ),
        (
            with(json!({"address": "London"})),
            json!([{"type": "model_attributes_type", "loc": ["body", "address"], "msg": "Input should be a valid dictionary or object to extract fields from", "input": "London"}]),
        ),
        // enum
        (
            with(json!({"role": "root"})),
            json!([{"type": "enum", "loc": ["body", "role"], "msg": "Input should be 'admin', 'user' or 'guest'", "input": "root", "ctx": {"expected": "'admin', 'user' or 'guest'"}}]),
        ),
        (
            with(json!({"role": 1})),
            json!([{"type": "enum", "loc": ["body", "role"], "msg": "Input should be 'admin', 'user' or 'guest'", "input": 1, "ctx": {"expected": "'admin', 'user' or 'guest'"}}]),
        ),
        // Option<String>: null is fine, a number is not
        (
            with(json!({"nickname": 3})),
            json!([{"type": "string_type", "loc": ["body", "nickname"], "msg": "Input should be a valid string", "input": 3}]),
        ),
        // missing, with the enclosing object as input
        (
            without("email"),
            json!([{"type": "missing", "loc": ["body", "email"], "msg": "Field required", "input": without("email")}]),
        ),
        (without("nickname"), json!([])),
    ]
}

#[test]
fn user_error_table() {
    let cases = user_cases();
    assert!(cases.len() >= 30);
    for (input, expected) in cases {
        let got = errors::<User>(input.clone());
        assert_eq!(got, expected, "input: {input}");
    }
}

#[test]
fn every_failure_in_declaration_order() {
    // Fields fail in an order that is neither alphabetical nor the input's.
    let input = json!({"tags": 5, "role": "x", "email": "nope", "age": "old", "name": "A", "active": true, "score": 1, "address": {}});
    let got = errors::<User>(input.clone());
    let kinds: Vec<(&str, Value)> = got
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["type"].as_str().unwrap(), e["loc"].clone()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("string_too_short", json!(["body", "name"])),
            ("int_parsing", json!(["body", "age"])),
            ("value_error", json!(["body", "email"])),
            ("list_type", json!(["body", "tags"])),
            ("missing", json!(["body", "address", "city"])),
            ("enum", json!(["body", "role"])),
        ]
    );
}

#[test]
fn lax_inputs_are_coerced_in_place() {
    let input = with(json!({"age": "30", "score": "3.5", "active": "yes", "tags": ["a"]}));
    let (errs, value) = body::<User>(input);
    assert_eq!(errs, json!([]));
    assert_eq!(value["age"], json!(30));
    assert!(value["age"].is_u64());
    assert_eq!(value["score"], json!(3.5));
    assert_eq!(value["active"], json!(true));
    // The coerced value is what serde can now read.
    let user: User = serde_json::from_value(value).unwrap();
    assert_eq!(user.age, 30);
    assert_eq!(user.role, Role::Admin);
}

#[test]
fn more_lax_conversions() {
    for (age, expected) in [
        (json!(30.0), 30),
        (json!(" 42 "), 42),
        (json!("1_000"), 1000),
        (json!("40.000"), 40),
        (json!(true), 1),
    ] {
        let (errs, value) = body::<Counter>(json!({"n": age.clone()}));
        assert_eq!(errs, json!([]), "{age}");
        assert_eq!(value["n"], json!(expected), "{age}");
    }
    for (flag, expected) in [
        ("1", true),
        ("on", true),
        ("TRUE", true),
        ("f", false),
        ("off", false),
        ("No", false),
    ] {
        let (errs, value) = body::<Flag>(json!({"on": flag}));
        assert_eq!(errs, json!([]), "{flag}");
        assert_eq!(value["on"], json!(expected), "{flag}");
    }
    for bad in ["4.5", "0x10", "--1", "1__0", ""] {
        assert_eq!(
            errors::<Counter>(json!({"n": bad}))[0]["type"],
            "int_parsing",
            "{bad}"
        );
    }
}

#[derive(Deserialize, JsonSchema)]
struct Counter {
    n: i32,
}

#[derive(Deserialize, JsonSchema)]
struct Flag {
    on: bool,
}

#[test]
fn integer_range_of_the_rust_type() {
    assert_eq!(
        errors::<Counter>(json!({"n": 3_000_000_000u64})),
        json!([{"type": "less_than_equal", "loc": ["body", "n"], "msg": "Input should be less than or equal to 2147483647", "input": 3_000_000_000u64, "ctx": {"le": 2147483647}}])
    );
    assert_eq!(
        errors::<User>(with(json!({"age": -1})))[0]["type"],
        "greater_than_equal"
    );
}

#[test]
fn exclusive_bounds_and_multiple_of() {
    let schema = Schema::new(json!({
        "type": "object",
        "properties": {
            "a": {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 10},
            "b": {"type": "integer", "multipleOf": 5},
            "c": {"type": "number", "exclusiveMinimum": 0.0}
        }
    }));
    let (errs, _) = run(
        &schema,
        json!({"a": 0, "b": 7, "c": 0}),
        Source::Body,
        MissingInput::Parent,
    );
    assert_eq!(
        errs,
        json!([
            {"type": "greater_than", "loc": ["body", "a"], "msg": "Input should be greater than 0", "input": 0, "ctx": {"gt": 0}},
            {"type": "multiple_of", "loc": ["body", "b"], "msg": "Input should be a multiple of 5", "input": 7, "ctx": {"multiple_of": 5}},
            {"type": "greater_than", "loc": ["body", "c"], "msg": "Input should be greater than 0.0", "input": 0, "ctx": {"gt": 0.0}}
        ])
    );
    let (errs, _) = run(
        &schema,
        json!({"a": 10}),
        Source::Body,
        MissingInput::Parent,
    );
    assert_eq!(
        errs,
        json!([{"type": "less_than", "loc": ["body", "a"], "msg": "Input should be less than 10", "input": 10, "ctx": {"lt": 10}}])
    );
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Strict {
    first_name: String,
    #[serde(default)]
    page_size: u32,
}

#[test]
fn extra_forbidden_after_fields() {
    let (errs, value) = body::<Strict>(json!({"admin": true, "firstName": 1, "pageSize": "10"}));
    assert_eq!(
        errs,
        json!([
            {"type": "string_type", "loc": ["body", "firstName"], "msg": "Input should be a valid string", "input": 1},
            {"type": "extra_forbidden", "loc": ["body", "admin"], "msg": "Extra inputs are not permitted", "input": true}
        ])
    );
    assert_eq!(value["pageSize"], json!(10));
}

#[derive(Deserialize, JsonSchema)]
struct Maps {
    counts: HashMap<String, u16>,
    pair: (i32, String),
}

#[test]
fn dicts_and_tuples() {
    assert_eq!(
        errors::<Maps>(json!({"counts": [], "pair": [1, "a"]})),
        json!([{"type": "dict_type", "loc": ["body", "counts"], "msg": "Input should be a valid dictionary", "input": []}])
    );
    assert_eq!(
        errors::<Maps>(json!({"counts": {"a": "x"}, "pair": ["b"]})),
        json!([
            {"type": "int_parsing", "loc": ["body", "counts", "a"], "msg": "Input should be a valid integer, unable to parse string as an integer", "input": "x"},
            {"type": "int_parsing", "loc": ["body", "pair", 0], "msg": "Input should be a valid integer, unable to parse string as an integer", "input": "b"},
            {"type": "missing", "loc": ["body", "pair", 1], "msg": "Field required", "input": ["b"]}
        ])
    );
    assert_eq!(
        errors::<Maps>(json!({"counts": {}, "pair": [1, "a", 2]}))[0]["msg"],
        "Tuple should have at most 2 items after validation, not 3"
    );
    assert_eq!(
        errors::<Maps>(json!({"counts": {}, "pair": "x"}))[0]["type"],
        "tuple_type"
    );
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "kind")]
enum Shape {
    Circle { radius: f64 },
    Square { side: u32 },
}

#[derive(Debug, Deserialize, JsonSchema)]
struct Drawing {
    shape: Shape,
}

#[test]
fn tagged_unions() {
    assert_eq!(
        errors::<Drawing>(json!({"shape": {"kind": "Square", "side": "big"}})),
        json!([{"type": "int_parsing", "loc": ["body", "shape", "Square", "side"], "msg": "Input should be a valid integer, unable to parse string as an integer", "input": "big"}])
    );
    assert_eq!(
        errors::<Drawing>(json!({"shape": {"kind": "Hexagon"}})),
        json!([{"type": "union_tag_invalid", "loc": ["body", "shape"], "msg": "Input tag 'Hexagon' found using 'kind' does not match any of the expected tags: 'Circle', 'Square'", "input": {"kind": "Hexagon"}, "ctx": {"discriminator": "'kind'", "tag": "Hexagon", "expected_tags": "'Circle', 'Square'"}}])
    );
    assert_eq!(
        errors::<Drawing>(json!({"shape": {"radius": 1}})),
        json!([{"type": "union_tag_not_found", "loc": ["body", "shape"], "msg": "Unable to extract tag using discriminator 'kind'", "input": {"radius": 1}, "ctx": {"discriminator": "'kind'"}}])
    );
    let (errs, value) = body::<Drawing>(json!({"shape": {"kind": "Circle", "radius": "2.5"}}));
    assert_eq!(errs, json!([]));
    let d: Drawing = serde_json::from_value(value).unwrap();
    assert!(matches!(d.shape, Shape::Circle { radius } if radius == 2.5));
}

#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
enum IdOrName {
    Id(u32),
    Name(String),
}

#[derive(Deserialize, JsonSchema)]
struct Lookup {
    key: IdOrName,
}

#[test]
fn smart_unions() {
    // An exact match wins over a lax one: "7" stays a string.
    let (errs, value) = body::<Lookup>(json!({"key": "7"}));
    assert_eq!(errs, json!([]));
    assert_eq!(value["key"], json!("7"));
    let got = errors::<Lookup>(json!({"key": [1]}));
    assert_eq!(
        got,
        json!([
            {"type": "int_type", "loc": ["body", "key", "int"], "msg": "Input should be a valid integer", "input": [1]},
            {"type": "string_type", "loc": ["body", "key", "str"], "msg": "Input should be a valid string", "input": [1]}
        ])
    );
}

#[derive(Deserialize, JsonSchema)]
struct Formats {
    id: uuid::Uuid,
    at: chrono::DateTime<chrono::Utc>,
    day: chrono::NaiveDate,
}

#[test]
fn formats() {
    let ok = json!({"id": "67e55044-10b1-426f-9247-bb680e5fe0c8", "at": "2024-05-01 10:00:00+02:00", "day": "2024-05-01"});
    let (errs, value) = body::<Formats>(ok);
    assert_eq!(errs, json!([]));
    assert_eq!(value["at"], json!("2024-05-01T10:00:00+02:00"));
    let f: Formats = serde_json::from_value(value).unwrap();
    assert_eq!(f.at.to_rfc3339(), "2024-05-01T08:00:00+00:00");

    let (errs, value) = body::<Formats>(
        json!({"id": "67e5504410b1426f9247bb680e5fe0c8", "at": 1700000000, "day": "2024-05-01T00:00:00"}),
    );
    assert_eq!(errs, json!([]));
    assert_eq!(value["at"], json!("2023-11-14T22:13:20Z"));
    assert_eq!(value["day"], json!("2024-05-01"));
    serde_json::from_value::<Formats>(value).unwrap();
    assert_eq!(
        errors::<Formats>(
            json!({"id": "67e55044-10b1-426f-9247-bb680e5fe0c8", "at": "yesterday", "day": "2024-05-01x"})
        ),
        json!([
            {"type": "datetime_from_date_parsing", "loc": ["body", "at"], "msg": "Input should be a valid datetime or date, input is too short", "input": "yesterday", "ctx": {"error": "input is too short"}},
            {"type": "date_from_datetime_parsing", "loc": ["body", "day"], "msg": "Input should be a valid date or datetime, invalid datetime separator, expected `T`, `t`, `_` or space", "input": "2024-05-01x", "ctx": {"error": "invalid datetime separator, expected `T`, `t`, `_` or space"}}
        ])
    );

    assert_eq!(
        errors::<Formats>(json!({"id": "123", "at": "2024-05-01T25:00:00", "day": "2024-02-30"})),
        json!([
            {"type": "uuid_parsing", "loc": ["body", "id"], "msg": "Input should be a valid UUID, invalid length: expected length 32 for simple format, found 3", "input": "123", "ctx": {"error": "invalid length: expected length 32 for simple format, found 3"}},
            {"type": "datetime_from_date_parsing", "loc": ["body", "at"], "msg": "Input should be a valid datetime or date, unexpected extra characters at the end of the input", "input": "2024-05-01T25:00:00", "ctx": {"error": "unexpected extra characters at the end of the input"}},
            {"type": "date_from_datetime_parsing", "loc": ["body", "day"], "msg": "Input should be a valid date or datetime, day value is outside expected range", "input": "2024-02-30", "ctx": {"error": "day value is outside expected range"}}
        ])
    );
    assert_eq!(
        errors::<Formats>(json!({"id": 5, "at": "2024-05-01", "day": true})),
        json!([
            {"type": "uuid_type", "loc": ["body", "id"], "msg": "UUID input should be a string, bytes or UUID object", "input": 5},
            {"type": "timezone_aware", "loc": ["body", "at"], "msg": "Input should have timezone info", "input": "2024-05-01"},
            {"type": "date_type", "loc": ["body", "day"], "msg": "Input should be a valid date", "input": true}
        ])
    );
}

#[test]
fn url_format() {
    let schema = Schema::new(
        json!({"type": "object", "properties": {"site": {"type": "string", "format": "uri"}}}),
    );
    let (errs, _) = run(
        &schema,
        json!({"site": "example.com"}),
        Source::Body,
        MissingInput::Parent,
    );
    assert_eq!(
        errs,
        json!([{"type": "url_parsing", "loc": ["body", "site"], "msg": "Input should be a valid URL, relative URL without a base", "input": "example.com", "ctx": {"error": "relative URL without a base"}}])
    );
}

#[derive(Deserialize, JsonSchema)]
struct Tree {
    label: String,
    children: Vec<Tree>,
}

#[test]
fn recursive_types_and_ref_cycles_terminate() {
    let got = errors::<Tree>(json!({"label": "a", "children": [{"label": 1, "children": []}]}));
    assert_eq!(
        got,
        json!([{"type": "string_type", "loc": ["body", "children", 0, "label"], "msg": "Input should be a valid string", "input": 1}])
    );
    // A schema that refers to itself without consuming input.
    for schema in [
        json!({"$ref": "#"}),
        json!({"$defs": {"A": {"$ref": "#/$defs/B"}, "B": {"$ref": "#/$defs/A"}}, "$ref": "#/$defs/A"}),
        json!({"anyOf": [{"$ref": "#"}, {"$ref": "#"}]}),
    ] {
        let s = Schema::new(schema);
        let _ = run(
            &s,
            json!({"x": [1, 2, {"y": null}]}),
            Source::Body,
            MissingInput::Parent,
        );
        assert!(s.property_names().is_empty());
    }
    // Deep input against a recursive schema.
    let mut deep = json!({"label": "leaf", "children": []});
    for _ in 0..120 {
        deep = json!({"label": "n", "children": [deep]});
    }
    assert_eq!(errors::<Tree>(deep), json!([]));
}

#[derive(Deserialize, JsonSchema)]
struct Page {
    limit: u32,
    q: Option<String>,
}

#[test]
fn missing_query_params_have_null_input() {
    let schema = schema_of::<Page>();
    let (errs, _) = run(
        &schema,
        json!({"q": "x"}),
        Source::Query,
        MissingInput::Null,
    );
    assert_eq!(
        errs,
        json!([{"type": "missing", "loc": ["query", "limit"], "msg": "Field required", "input": null}])
    );
    let (errs, _) = run(
        &schema,
        json!({"q": "x"}),
        Source::Body,
        MissingInput::Parent,
    );
    assert_eq!(errs[0]["input"], json!({"q": "x"}));
}

#[test]
fn property_names_follow_declaration() {
    assert_eq!(
        schema_of::<User>().property_names(),
        [
            "name", "age", "email", "score", "active", "tags", "address", "role", "nickname"
        ]
    );
    #[derive(JsonSchema)]
    struct Wrapper(#[allow(dead_code)] Address);
    assert_eq!(schema_of::<Wrapper>().property_names(), ["city", "zip"]);
    assert!(schema_of::<Vec<Address>>().property_names().is_empty());
}

#[test]
fn any_input_is_safe() {
    // Nothing panics, whatever arrives.
    let schema = schema_of::<User>();
    for input in [
        json!(null),
        json!(1),
        json!("s"),
        json!([]),
        json!({"tags": {"0": 1}}),
        json!({"age": "9".repeat(5000)}),
        json!({"age": 1e300}),
        json!({"score": -1e308}),
    ] {
        let _ = run(&schema, input, Source::Body, MissingInput::Parent);
    }
    assert_eq!(
        errors::<User>(json!([1])),
        json!([{"type": "model_attributes_type", "loc": ["body"], "msg": "Input should be a valid dictionary or object to extract fields from", "input": [1]}])
    );
    assert_eq!(
        errors::<User>(with(json!({"age": "9".repeat(5000)})))[0]["type"],
        "int_parsing_size"
    );
}

#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
enum Node {
    A { kids: Vec<Node>, a: u8 },
    B { kids: Vec<Node>, b: u8 },
}

#[test]
fn nested_untagged_unions_stay_cheap() {
    // Each level tries both members, and both walk the same child: without
    // a budget, 2^depth work on an input of linear size.
    let mut deep = json!({"kids": []});
    for _ in 0..60 {
        deep = json!({ "kids": [deep] });
    }
    let start = std::time::Instant::now();
    let _ = errors::<Node>(deep);
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn schema_is_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Schema>();
}

/// Variants with docs make schemars emit `oneOf` of constants.
#[derive(Debug, Deserialize, JsonSchema)]
enum Level {
    /// Low.
    Low,
    /// High.
    High,
}

#[derive(Debug, Deserialize, JsonSchema)]
struct Alarm {
    level: Level,
}

#[test]
fn documented_enum_variants_are_one_enum() {
    assert!(schema_of::<Alarm>().root().to_string().contains("oneOf"));
    assert_eq!(
        errors::<Alarm>(json!({"level": "Medium"})),
        json!([{"type": "enum", "loc": ["body", "level"], "msg": "Input should be 'Low' or 'High'", "input": "Medium", "ctx": {"expected": "'Low' or 'High'"}}])
    );
    assert_eq!(errors::<Alarm>(json!({"level": "High"})), json!([]));
}
