//! ferrapi's `#[derive(JsonSchema, Validate)]`: one reading of each
//! `#[garde(...)]` rule for the schema, the check and the 422 message, on
//! every extractor. Regression tests of issue 18's items 1, 2 and 8 with
//! the exact JSON pydantic gives for the same constraint.

use ferrapi::prelude::*;
use ferrapi::testing::TestClient;
use serde_json::{Value, json};

/// pydantic: `tags: list[constr(min_length=1, max_length=5)] | None =
/// Field(None, max_length=3)`.
#[derive(Debug, Deserialize, Serialize, JsonSchema, Validate)]
struct Note {
    #[garde(length(min = 1, max = 20))]
    title: String,
    #[garde(inner(length(max = 3), inner(length(chars, min = 1, max = 5))))]
    #[serde(default)]
    tags: Option<Vec<String>>,
}

fn even(v: &i64, _: &()) -> ferrapi::garde::Result {
    if v % 2 == 0 {
        Ok(())
    } else {
        Err(ferrapi::garde::Error::new("must be even"))
    }
}

/// A field validator (`AfterValidator`) beside a plainly typed field.
#[derive(Debug, Deserialize, Serialize, JsonSchema, Validate)]
struct Pair {
    age: i64,
    #[garde(custom(even))]
    n: i64,
}

#[post("/notes")]
async fn create_note(Json(note): Json<Note>) -> Json<Note> {
    Json(note)
}

#[post("/pairs")]
async fn create_pair(Json(p): Json<Pair>) -> Json<Pair> {
    Json(p)
}

#[get("/pairs/query")]
async fn pair_query(Query(p): Query<Pair>) -> Json<Pair> {
    Json(p)
}

#[get("/pairs/header")]
async fn pair_header(Header(p): Header<Pair>) -> Json<Pair> {
    Json(p)
}

#[get("/pairs/cookie")]
async fn pair_cookie(Cookie(p): Cookie<Pair>) -> Json<Pair> {
    Json(p)
}

#[post("/pairs/form")]
async fn pair_form(Form(p): Form<Pair>) -> Json<Pair> {
    Json(p)
}

#[get("/pairs/path/{age}/{n}")]
async fn pair_path(Path(p): Path<Pair>) -> Json<Pair> {
    Json(p)
}

fn client() -> TestClient {
    TestClient::new(
        App::new()
            .route(create_note)
            .route(create_pair)
            .route(pair_query)
            .route(pair_header)
            .route(pair_cookie)
            .route(pair_form)
            .route(pair_path),
    )
}

async fn detail(c: &TestClient, res: ferrapi::testing::TestResponse) -> Value {
    let _ = c;
    assert_eq!(res.status(), 422, "{}", res.text());
    res.json::<Value>()["detail"].clone()
}

#[tokio::test]
async fn inner_on_an_option_of_a_list_is_the_list_in_schema_check_and_message() {
    let c = client();
    // The schema: the list has at most 3 items of 1 to 5 characters.
    let doc: Value = c.get("/openapi.json").send().await.json();
    let tags = &doc["components"]["schemas"]["Note"]["properties"]["tags"];
    assert_eq!(tags["maxItems"], 3, "{tags}");
    assert_eq!(tags["items"]["minLength"], 1, "{tags}");
    assert_eq!(tags["items"]["maxLength"], 5, "{tags}");
    assert!(tags["items"].get("maxItems").is_none(), "{tags}");

    // "abcd" (4 characters) is accepted: the limit is 5.
    let ok = c
        .post("/notes")
        .json(&json!({"title": "t", "tags": ["abcd"]}))
        .send()
        .await;
    assert_eq!(ok.status(), 200, "{}", ok.text());

    let res = c
        .post("/notes")
        .json(&json!({"title": "t", "tags": ["abcdef"]}))
        .send()
        .await;
    assert_eq!(
        detail(&c, res).await,
        json!([{
            "type": "string_too_long", "loc": ["body", "tags", 0],
            "msg": "String should have at most 5 characters",
            "input": "abcdef", "ctx": {"max_length": 5}
        }])
    );

    let res = c
        .post("/notes")
        .json(&json!({"title": "t", "tags": ["a", "b", "c", "d"]}))
        .send()
        .await;
    assert_eq!(
        detail(&c, res).await,
        json!([{
            "type": "too_long", "loc": ["body", "tags"],
            "msg": "List should have at most 3 items after validation, not 4",
            "input": ["a", "b", "c", "d"],
            "ctx": {"field_type": "List", "max_length": 3, "actual_length": 4}
        }])
    );

    // Characters, not bytes: "ééééé" is 5 characters (10 bytes).
    let ok = c
        .post("/notes")
        .json(&json!({"title": "ééééé", "tags": ["ééééé"]}))
        .send()
        .await;
    assert_eq!(ok.status(), 200, "{}", ok.text());
}

fn custom_error(source: &str, input: Value) -> Value {
    json!([{
        "type": "value_error", "loc": [source, "n"],
        "msg": "Value error, must be even", "input": input,
        "ctx": {"error": "must be even"}
    }])
}

#[tokio::test]
async fn a_custom_rule_holds_on_every_extractor() {
    let c = client();
    let res = c
        .post("/pairs")
        .json(&json!({"age": 1, "n": 3}))
        .send()
        .await;
    assert_eq!(detail(&c, res).await, custom_error("body", json!(3)));

    let res = c.get("/pairs/query?age=1&n=3").send().await;
    assert_eq!(detail(&c, res).await, custom_error("query", json!("3")));

    let res = c
        .get("/pairs/header")
        .header("age", "1")
        .header("n", "3")
        .send()
        .await;
    assert_eq!(detail(&c, res).await, custom_error("header", json!("3")));

    let res = c
        .get("/pairs/cookie")
        .header("cookie", "age=1; n=3")
        .send()
        .await;
    assert_eq!(detail(&c, res).await, custom_error("cookie", json!("3")));

    let res = c
        .post("/pairs/form")
        .form(&json!({"age": 1, "n": 3}))
        .send()
        .await;
    assert_eq!(detail(&c, res).await, custom_error("body", json!("3")));

    let res = c.get("/pairs/path/1/3").send().await;
    assert_eq!(detail(&c, res).await, custom_error("path", json!("3")));

    // And passes where the rule holds.
    for uri in ["/pairs/query?age=1&n=4", "/pairs/path/1/4"] {
        let ok = c.get(uri).send().await;
        assert_eq!(ok.status(), 200, "{uri}: {}", ok.text());
    }
}

#[tokio::test]
async fn a_custom_rule_is_reported_beside_another_fields_error() {
    let c = client();
    let res = c
        .post("/pairs")
        .json(&json!({"age": "old", "n": 3}))
        .send()
        .await;
    assert_eq!(
        detail(&c, res).await,
        json!([
            {
                "type": "int_parsing", "loc": ["body", "age"],
                "msg": "Input should be a valid integer, unable to parse string as an integer",
                "input": "old"
            },
            {
                "type": "value_error", "loc": ["body", "n"],
                "msg": "Value error, must be even", "input": 3,
                "ctx": {"error": "must be even"}
            }
        ])
    );
    let res = c.get("/pairs/query?age=old&n=3").send().await;
    let d = detail(&c, res).await;
    assert_eq!(d.as_array().map(Vec::len), Some(2), "{d}");
    assert_eq!(d[1], custom_error("query", json!("3"))[0], "{d}");
}

/// FastAPI: `item_id: int = Path(ge=1)`.
#[get("/items/{item_id}")]
async fn read_item(#[garde(range(min = 1, max = 1000))] Path(item_id): Path<i64>) -> Json<Value> {
    Json(json!({ "item_id": item_id }))
}

/// FastAPI: `q: str = Query(alias="item-query", examples=["fixed"], max_length=8)`.
#[derive(Debug, Deserialize, Serialize, JsonSchema, Validate)]
struct Search {
    /// What to look for.
    #[serde(rename = "item-query")]
    #[schemars(example = &"fixed")]
    #[garde(length(max = 8))]
    q: String,
}

#[get("/search")]
async fn search(Query(s): Query<Search>) -> Json<Search> {
    Json(s)
}

#[tokio::test]
async fn a_path_parameter_takes_rules_without_a_model() {
    let c = TestClient::new(App::new().route(read_item));
    let ok = c.get("/items/1000").send().await;
    assert_eq!(ok.status(), 200, "{}", ok.text());
    assert_eq!(ok.json::<Value>(), json!({"item_id": 1000}));
    let res = c.get("/items/0").send().await;
    assert_eq!(
        detail(&c, res).await,
        json!([{
            "type": "greater_than_equal", "loc": ["path", "item_id"],
            "msg": "Input should be greater than or equal to 1",
            "input": "0", "ctx": {"ge": 1}
        }])
    );
    let res = c.get("/items/1001").send().await;
    assert_eq!(detail(&c, res).await[0]["type"], "less_than_equal");
    let doc: Value = c.get("/openapi.json").send().await.json();
    let param = &doc["paths"]["/items/{item_id}"]["get"]["parameters"][0];
    assert_eq!(param["name"], "item_id");
    assert_eq!(param["schema"]["minimum"], 1, "{param}");
    assert_eq!(param["schema"]["maximum"], 1000, "{param}");
}

#[tokio::test]
async fn a_parameter_alias_and_examples() {
    let c = TestClient::new(App::new().route(search));
    let ok = c.get("/search?item-query=abc").send().await;
    assert_eq!(ok.status(), 200, "{}", ok.text());
    assert_eq!(ok.json::<Value>(), json!({"item-query": "abc"}));
    let res = c.get("/search?item-query=abcdefghi").send().await;
    assert_eq!(
        detail(&c, res).await,
        json!([{
            "type": "string_too_long", "loc": ["query", "item-query"],
            "msg": "String should have at most 8 characters",
            "input": "abcdefghi", "ctx": {"max_length": 8}
        }])
    );
    let doc: Value = c.get("/openapi.json").send().await.json();
    let param = &doc["paths"]["/search"]["get"]["parameters"][0];
    assert_eq!(param["name"], "item-query", "{param}");
    assert_eq!(param["description"], "What to look for.", "{param}");
    assert_eq!(param["schema"]["examples"], json!(["fixed"]), "{param}");
    assert_eq!(param["schema"]["maxLength"], 8, "{param}");
}
