//! `Patch<T>`: a PATCH body tells absent fields from `null` ones, validates
//! set values with FastAPI's 422, and documents the fields as optional.

use ferrapi::prelude::*;
use ferrapi::testing::TestClient;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

#[derive(Clone, Serialize, JsonSchema)]
struct Item {
    name: String,
    price: f64,
    description: Option<String>,
}

#[derive(Deserialize, JsonSchema, Validate)]
struct ItemPatch {
    #[serde(default)]
    #[garde(length(chars, min = 2))]
    name: Patch<String>,
    #[serde(default)]
    #[garde(range(min = 0.0))]
    price: Patch<f64>,
    #[serde(default)]
    #[garde(length(chars, max = 10))]
    description: Patch<Option<String>>,
}

#[derive(Clone)]
struct Store(Arc<Mutex<Item>>);

#[patch("/item")]
async fn update(State(store): State<Store>, Json(patch): Json<ItemPatch>) -> Json<Item> {
    let mut item = store.0.lock().unwrap();
    patch.name.apply_to(&mut item.name);
    patch.price.apply_to(&mut item.price);
    patch.description.apply_to(&mut item.description);
    Json(item.clone())
}

fn store() -> Store {
    Store(Arc::new(Mutex::new(Item {
        name: "Foo".into(),
        price: 1.5,
        description: Some("A foo".into()),
    })))
}

fn app(store: Store) -> App {
    App::new().state(store).route(update)
}

#[tokio::test]
async fn patch_applies_only_the_fields_sent() {
    let client = TestClient::new(app(store()));
    let res = client.patch("/item").json(&json!({})).send().await;
    assert_eq!(
        res.json::<Value>(),
        json!({"name": "Foo", "price": 1.5, "description": "A foo"})
    );
    // `"30"`-style lax input still coerces inside a patch field.
    let res = client
        .patch("/item")
        .json(&json!({"price": "2.5"}))
        .send()
        .await;
    assert_eq!(
        res.json::<Value>(),
        json!({"name": "Foo", "price": 2.5, "description": "A foo"})
    );
    // `null` clears a nullable field.
    let res = client
        .patch("/item")
        .json(&json!({"description": null, "name": "Bar"}))
        .send()
        .await;
    assert_eq!(
        res.json::<Value>(),
        json!({"name": "Bar", "price": 2.5, "description": null})
    );
}

#[tokio::test]
async fn patch_field_errors_have_fastapi_shape() {
    let client = TestClient::new(app(store()));
    // `null` for a field whose type refuses it, a constraint broken by a
    // set value, a value of the wrong type: every one reported, each at its loc.
    let res = client
        .patch("/item")
        .json(&json!({"name": null, "price": -1, "description": "far too long a text"}))
        .send()
        .await;
    assert_eq!(res.status(), 422);
    let body: Value = res.json();
    let detail = body["detail"].as_array().unwrap();
    let kinds: Vec<(&str, Value)> = detail
        .iter()
        .map(|e| (e["type"].as_str().unwrap(), e["loc"].clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("string_type", json!(["body", "name"])),
            ("greater_than_equal", json!(["body", "price"])),
            ("string_too_long", json!(["body", "description"])),
        ],
        "{body}"
    );
    assert_eq!(detail[0]["msg"], "Input should be a valid string");
    assert_eq!(detail[0]["input"], Value::Null);

    // A set value that breaks a garde rule alone (the fast path's report).
    let res = client
        .patch("/item")
        .json(&json!({"name": "x"}))
        .send()
        .await;
    assert_eq!(res.status(), 422);
    let body: Value = res.json();
    assert_eq!(body["detail"][0]["type"], "string_too_short");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "name"]));
    assert_eq!(body["detail"][0]["input"], "x");
}

#[test]
fn patch_fields_are_optional_and_nullable_only_when_their_type_is() {
    let doc = serde_json::to_value(app(store()).build().unwrap().openapi()).unwrap();
    let schema = &doc["components"]["schemas"]["ItemPatch"];
    assert!(schema.get("required").is_none(), "{schema}");
    let props = &schema["properties"];
    assert_eq!(props["name"]["type"], "string");
    assert_eq!(props["name"]["minLength"], 2);
    assert_eq!(props["price"]["type"], "number");
    assert_eq!(props["description"]["type"], json!(["string", "null"]));
}

/// Without `#[serde(default)]`, an absent field is not silently `null`:
/// the field is required, in the document and at run time.
#[derive(Deserialize, JsonSchema, Validate)]
struct Forgot {
    #[garde(skip)]
    note: Patch<Option<String>>,
}

#[patch("/forgot")]
async fn forgot(Json(f): Json<Forgot>) -> Json<bool> {
    Json(f.note.is_set())
}

#[tokio::test]
async fn patch_without_serde_default_is_required_not_null() {
    let client = TestClient::new(App::new().route(forgot));
    let res = client.patch("/forgot").json(&json!({})).send().await;
    assert_eq!(res.status(), 422);
    let body: Value = res.json();
    assert_eq!(body["detail"][0]["type"], "missing");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "note"]));
    let res = client
        .patch("/forgot")
        .json(&json!({"note": null}))
        .send()
        .await;
    assert!(res.json::<bool>());
}
