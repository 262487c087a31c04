//! `params_to_value`: string pairs to the object to validate.

use super::{run, schema_of};
use ferrapi_core::validation::{MissingInput, Source, params_to_value};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use std::borrow::Cow;

#[derive(Debug, Deserialize, JsonSchema)]
struct Search {
    q: String,
    limit: u32,
    tag: Vec<String>,
    sort: Option<Vec<String>>,
    active: Option<bool>,
}

fn pairs(list: &[(&'static str, &'static str)]) -> Vec<(Cow<'static, str>, Cow<'static, str>)> {
    list.iter()
        .map(|(k, v)| (Cow::Borrowed(*k), Cow::Borrowed(*v)))
        .collect()
}

#[test]
fn repeated_keys() {
    let schema = schema_of::<Search>();
    let value = params_to_value(
        &schema,
        pairs(&[
            ("tag", "a"),
            ("limit", "1"),
            ("q", "x"),
            ("tag", "b"),
            ("limit", "25"),
            ("sort", "name"),
            ("sort", "-age"),
            ("unknown", "z"),
        ]),
    );
    assert_eq!(
        value,
        json!({"tag": ["a", "b"], "limit": "25", "q": "x", "sort": ["name", "-age"]})
    );
    let (errs, value) = run(&schema, value, Source::Query, MissingInput::Null);
    assert_eq!(errs, json!([]));
    let s: Search = serde_json::from_value(value).unwrap();
    assert_eq!(s.limit, 25);
    assert_eq!(s.tag, ["a", "b"]);
}

#[test]
fn query_errors() {
    let schema = schema_of::<Search>();
    let value = params_to_value(&schema, pairs(&[("limit", "ten"), ("active", "perhaps")]));
    let (errs, _) = run(&schema, value, Source::Query, MissingInput::Null);
    assert_eq!(
        errs,
        json!([
            {"type": "missing", "loc": ["query", "q"], "msg": "Field required", "input": null},
            {"type": "int_parsing", "loc": ["query", "limit"], "msg": "Input should be a valid integer, unable to parse string as an integer", "input": "ten"},
            {"type": "missing", "loc": ["query", "tag"], "msg": "Field required", "input": null},
            {"type": "bool_parsing", "loc": ["query", "active"], "msg": "Input should be a valid boolean, unable to interpret input", "input": "perhaps"}
        ])
    );
}
