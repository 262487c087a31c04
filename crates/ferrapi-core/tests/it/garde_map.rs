//! `from_garde`: garde's report merged into pydantic-shaped errors.

use super::schema_of;
use ferrapi_core::validation::{ErrorItem, Loc, MissingInput, Source, from_garde, validate};
use garde::Validate;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

fn not_admin(value: &str, _: &()) -> garde::Result {
    if value.eq_ignore_ascii_case("admin") {
        return Err(garde::Error::new("this name is reserved"));
    }
    Ok(())
}

#[derive(Debug, Deserialize, JsonSchema, Validate)]
#[serde(rename_all = "camelCase")]
struct Signup {
    #[garde(length(chars, min = 2), custom(not_admin))]
    display_name: String,
    #[garde(range(min = 18))]
    user_age: u8,
    #[garde(dive)]
    home_address: Address,
    #[garde(dive)]
    pets: Vec<Pet>,
}

#[derive(Debug, Deserialize, JsonSchema, Validate)]
struct Address {
    #[garde(length(min = 1))]
    city: String,
    #[garde(pattern(r"^[0-9]{5}$"))]
    zip_code: String,
}

#[derive(Debug, Deserialize, JsonSchema, Validate)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
struct Pet {
    #[garde(custom(not_admin))]
    pet_name: String,
}

/// The framework's slow path: garde failed on the typed value, so the body
/// is walked again and garde's own errors are merged in.
fn slow_path(body: Value) -> Value {
    let schema = schema_of::<Signup>();
    let typed: Signup = serde_json::from_value(body.clone()).unwrap();
    let report = typed.validate().unwrap_err();
    let mut value = body.clone();
    let mut errors: Vec<ErrorItem> = Vec::new();
    let loc = Loc::source(Source::Body);
    validate(&schema, &mut value, &loc, MissingInput::Parent, &mut errors);
    from_garde(&report, &schema, &body, &loc, &mut errors);
    serde_json::to_value(&errors).unwrap()
}

#[test]
fn custom_rules_and_renamed_fields() {
    let got = slow_path(json!({
        "displayName": "admin",
        "userAge": 30,
        "homeAddress": {"city": "Oslo", "zip_code": "12345"},
        "pets": [{"PET_NAME": "Rex"}, {"PET_NAME": "Admin"}]
    }));
    assert_eq!(
        got,
        json!([
            {"type": "value_error", "loc": ["body", "displayName"], "msg": "Value error, this name is reserved", "input": "admin", "ctx": {"error": "this name is reserved"}},
            {"type": "value_error", "loc": ["body", "pets", 1, "PET_NAME"], "msg": "Value error, this name is reserved", "input": "Admin", "ctx": {"error": "this name is reserved"}}
        ])
    );
}

#[test]
fn schema_errors_win_and_order_is_declaration_order() {
    // garde reports length, range and pattern too; `validate` already has
    // them in pydantic's words, so only the custom rule is added.
    let got = slow_path(json!({
        "pets": [{"PET_NAME": "admin"}],
        "homeAddress": {"zip_code": "x", "city": "Oslo"},
        "userAge": 10,
        "displayName": "a"
    }));
    let summary: Vec<(String, Value)> = got
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["type"].as_str().unwrap().to_owned(), e["loc"].clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "string_too_short".to_owned(),
                json!(["body", "displayName"])
            ),
            ("greater_than_equal".to_owned(), json!(["body", "userAge"])),
            (
                "string_pattern_mismatch".to_owned(),
                json!(["body", "homeAddress", "zip_code"])
            ),
            (
                "value_error".to_owned(),
                json!(["body", "pets", 0, "PET_NAME"])
            ),
        ]
    );
    assert_eq!(got[2]["ctx"], json!({"pattern": "^[0-9]{5}$"}));
}
