//! `json_invalid`, `model_attributes_type`, `missing_body`.

use ferrapi_core::validation::{json_invalid, missing_body, model_attributes_type};
use serde_json::{Value, json};

fn invalid(body: &[u8]) -> Value {
    let err = serde_json::from_slice::<Value>(body).unwrap_err();
    serde_json::to_value(json_invalid(body, &err)).unwrap()
}

fn expect(pos: usize, reason: &str) -> Value {
    json!({"type": "json_invalid", "loc": ["body", pos], "msg": "JSON decode error", "input": {}, "ctx": {"error": reason}})
}

#[test]
fn malformed_bodies() {
    let deep = "[".repeat(200) + &"]".repeat(200);
    let cases: Vec<(Vec<u8>, Value)> = vec![
        (b"".to_vec(), expect(0, "Expecting value")),
        (
            br#"{"name": "Ada""#.to_vec(),
            expect(14, "Expecting ',' delimiter"),
        ),
        (
            br#"{"name": "Ad"#.to_vec(),
            expect(9, "Unterminated string starting at"),
        ),
        (
            br#"{"a": 1,}"#.to_vec(),
            expect(7, "Illegal trailing comma before end of object"),
        ),
        (
            br#"[1, 2,]"#.to_vec(),
            expect(5, "Illegal trailing comma before end of array"),
        ),
        (br#"{"a": NaN}"#.to_vec(), expect(6, "Expecting value")),
        (
            br#"{"a": -Infinity}"#.to_vec(),
            expect(6, "Expecting value"),
        ),
        (
            br#"{name: "Ada"}"#.to_vec(),
            expect(1, "Expecting property name enclosed in double quotes"),
        ),
        (br#"{"a": 1} x"#.to_vec(), expect(9, "Extra data")),
        (
            b"{\"a\": \"x\ny\"}".to_vec(),
            expect(8, "Invalid control character at"),
        ),
        // Non-ASCII before the error: positions count characters, not bytes.
        (
            "{\"name\": \"Zoë 😀\", \"age\": }".as_bytes().to_vec(),
            expect(25, "Expecting value"),
        ),
        (
            "{\"ключ\": \"значение\" \"x\": 1}".as_bytes().to_vec(),
            expect(20, "Expecting ',' delimiter"),
        ),
        // Only serde_json refuses these: its message, its position.
        (
            br#"{"a": 1e400}"#.to_vec(),
            expect(10, "number out of range"),
        ),
        (
            br#"{"a": "\ud800"}"#.to_vec(),
            expect(13, "unexpected end of hex escape"),
        ),
        (
            deep.clone().into_bytes(),
            expect(127, "recursion limit exceeded"),
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(
            invalid(&body),
            expected,
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
}

#[test]
fn body_level_errors() {
    assert_eq!(
        serde_json::to_value(model_attributes_type(json!("name=Ada"))).unwrap(),
        json!({"type": "model_attributes_type", "loc": ["body"], "msg": "Input should be a valid dictionary or object to extract fields from", "input": "name=Ada"})
    );
    assert_eq!(
        serde_json::to_value(missing_body()).unwrap(),
        json!({"type": "missing", "loc": ["body"], "msg": "Field required", "input": null})
    );
}
