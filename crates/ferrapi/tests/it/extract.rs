//! Every extractor's success and failure, asserting the exact 422 JSON that
//! FastAPI (pydantic v2) gives for the same input.

use ferrapi::prelude::*;
use ferrapi::testing::TestClient;
use serde_json::{Value, json};

#[derive(Debug, Deserialize, Serialize, JsonSchema, Validate)]
struct Address {
    #[garde(length(chars, min = 2))]
    city: String,
    #[garde(skip)]
    #[serde(default)]
    zip: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema, Clone, Copy, PartialEq, Validate)]
#[serde(rename_all = "lowercase")]
enum Role {
    Admin,
    User,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema, Validate)]
struct UserIn {
    #[garde(length(chars, min = 2, max = 50))]
    name: String,
    #[garde(email)]
    email: String,
    #[garde(range(min = 18, max = 120))]
    age: i64,
    #[garde(dive)]
    #[serde(default)]
    address: Option<Address>,
    #[garde(inner(length(chars, min = 1)))]
    #[serde(default)]
    tags: Vec<String>,
    #[garde(skip)]
    #[serde(default)]
    active: Option<bool>,
    #[garde(skip)]
    #[serde(default)]
    score: Option<f64>,
    #[garde(skip)]
    #[serde(default)]
    role: Option<Role>,
}

#[post("/users")]
async fn create(Json(user): Json<UserIn>) -> Json<UserIn> {
    Json(user)
}

#[derive(Debug, Deserialize, Serialize, JsonSchema, Validate)]
struct Page {
    #[serde(default)]
    #[garde(range(min = 0))]
    skip: i64,
    #[serde(default = "default_limit")]
    #[garde(range(min = 1, max = 1000))]
    limit: i64,
    #[serde(default)]
    ids: Vec<i64>,
}
fn default_limit() -> i64 {
    100
}

#[derive(Debug, Deserialize, Serialize, JsonSchema, Validate)]
struct Search {
    q: String,
}

#[get("/items")]
async fn list(Query(page): Query<Page>) -> Json<Page> {
    Json(page)
}

#[get("/search")]
async fn search(Query(s): Query<Search>) -> Json<Search> {
    Json(s)
}

#[get("/users/{user_id}")]
async fn read(Path(user_id): Path<i64>) -> Json<Value> {
    Json(json!({ "user_id": user_id }))
}

#[derive(Debug, Deserialize, Serialize, JsonSchema, Validate)]
struct ItemPath {
    user_id: i64,
    item_id: String,
}

#[get("/users/{user_id}/items/{item_id}")]
async fn read_item(Path(p): Path<ItemPath>) -> Json<ItemPath> {
    Json(p)
}

#[get("/pairs/{a}/{b}")]
async fn pair(Path((a, b)): Path<(i64, bool)>) -> Json<Value> {
    Json(json!([a, b]))
}

#[derive(Debug, Deserialize, Serialize, JsonSchema, Validate)]
struct Headers {
    x_token: String,
    #[serde(default)]
    x_count: Option<i64>,
}

#[get("/headers")]
async fn headers(Header(h): Header<Headers>) -> Json<Headers> {
    Json(h)
}

#[derive(Debug, Deserialize, Serialize, JsonSchema, Validate)]
struct Session {
    session_id: String,
    #[serde(default)]
    visits: Option<i64>,
}

#[get("/cookies")]
async fn cookies(Cookie(c): Cookie<Session>) -> Json<Session> {
    Json(c)
}

#[derive(Debug, Deserialize, Serialize, JsonSchema, Validate)]
struct Login {
    username: String,
    password: String,
    #[serde(default)]
    remember: bool,
}

#[post("/login")]
async fn login(Form(f): Form<Login>) -> Json<Login> {
    Json(f)
}

/// Path, query and body errors in one request, in parameter order.
#[post("/everything/{user_id}")]
async fn everything(
    Path(_user_id): Path<i64>,
    Query(_page): Query<Page>,
    Header(_h): Header<Headers>,
    Json(_user): Json<UserIn>,
) -> NoContent {
    NoContent
}

#[post("/raw")]
async fn raw(body: ferrapi::Bytes) -> Text {
    Text(format!("{} bytes", body.len()))
}

#[post("/text")]
async fn text(body: String) -> Text {
    Text(body.to_uppercase())
}

fn client() -> TestClient {
    TestClient::new(
        App::new()
            .route(create)
            .route(list)
            .route(search)
            .route(read)
            .route(read_item)
            .route(pair)
            .route(headers)
            .route(cookies)
            .route(login)
            .route(everything)
            .route(raw)
            .route(text),
    )
}

fn valid_user() -> Value {
    json!({"name": "Ada", "email": "ada@example.com", "age": 36})
}

/// `valid_user()` with `field` set to `value`.
fn user_with(field: &str, value: Value) -> Value {
    let mut u = valid_user();
    u[field] = value;
    u
}

/// `valid_user()` without `field`.
fn user_without(field: &str) -> Value {
    let mut u = valid_user();
    u.as_object_mut().unwrap().remove(field);
    u
}

struct Case {
    name: &'static str,
    body: Value,
    detail: Value,
}

/// JSON body cases: each body, posted to `/users`, must answer 422 with
/// exactly this `detail`.
fn body_cases() -> Vec<Case> {
    vec![
        Case {
            name: "string_too_short",
            body: user_with("name", json!("J")),
            detail: json!([{"type": "string_too_short", "loc": ["body", "name"], "msg": "String should have at least 2 characters", "input": "J", "ctx": {"min_length": 2}}]),
        },
        Case {
            name: "string_too_short counts characters, not bytes",
            body: user_with("name", json!("é")),
            detail: json!([{"type": "string_too_short", "loc": ["body", "name"], "msg": "String should have at least 2 characters", "input": "é", "ctx": {"min_length": 2}}]),
        },
        Case {
            name: "string_too_long",
            body: user_with("name", json!("x".repeat(51))),
            detail: json!([{"type": "string_too_long", "loc": ["body", "name"], "msg": "String should have at most 50 characters", "input": "x".repeat(51), "ctx": {"max_length": 50}}]),
        },
        Case {
            name: "string_type",
            body: user_with("name", json!(123)),
            detail: json!([{"type": "string_type", "loc": ["body", "name"], "msg": "Input should be a valid string", "input": 123}]),
        },
        Case {
            name: "email value_error",
            body: user_with("email", json!("x")),
            detail: json!([{"type": "value_error", "loc": ["body", "email"], "msg": "value is not a valid email address: An email address must have an @-sign.", "input": "x", "ctx": {"reason": "An email address must have an @-sign."}}]),
        },
        Case {
            name: "greater_than_equal",
            body: user_with("age", json!(10)),
            detail: json!([{"type": "greater_than_equal", "loc": ["body", "age"], "msg": "Input should be greater than or equal to 18", "input": 10, "ctx": {"ge": 18}}]),
        },
        Case {
            name: "less_than_equal",
            body: user_with("age", json!(200)),
            detail: json!([{"type": "less_than_equal", "loc": ["body", "age"], "msg": "Input should be less than or equal to 120", "input": 200, "ctx": {"le": 120}}]),
        },
        Case {
            name: "int_parsing",
            body: user_with("age", json!("thirty")),
            detail: json!([{"type": "int_parsing", "loc": ["body", "age"], "msg": "Input should be a valid integer, unable to parse string as an integer", "input": "thirty"}]),
        },
        Case {
            name: "int_from_float",
            body: user_with("age", json!(30.5)),
            detail: json!([{"type": "int_from_float", "loc": ["body", "age"], "msg": "Input should be a valid integer, got a number with a fractional part", "input": 30.5}]),
        },
        Case {
            name: "int_type",
            body: user_with("age", json!([30])),
            detail: json!([{"type": "int_type", "loc": ["body", "age"], "msg": "Input should be a valid integer", "input": [30]}]),
        },
        Case {
            name: "coerced value still checked against its bounds",
            body: user_with("age", json!("10")),
            detail: json!([{"type": "greater_than_equal", "loc": ["body", "age"], "msg": "Input should be greater than or equal to 18", "input": "10", "ctx": {"ge": 18}}]),
        },
        Case {
            name: "missing field: input is the enclosing object",
            body: user_without("name"),
            detail: json!([{"type": "missing", "loc": ["body", "name"], "msg": "Field required", "input": {"email": "ada@example.com", "age": 36}}]),
        },
        Case {
            name: "several failing fields at once, in declaration order",
            body: json!({"age": 10, "email": "x", "name": "J"}),
            detail: json!([
                {"type": "string_too_short", "loc": ["body", "name"], "msg": "String should have at least 2 characters", "input": "J", "ctx": {"min_length": 2}},
                {"type": "value_error", "loc": ["body", "email"], "msg": "value is not a valid email address: An email address must have an @-sign.", "input": "x", "ctx": {"reason": "An email address must have an @-sign."}},
                {"type": "greater_than_equal", "loc": ["body", "age"], "msg": "Input should be greater than or equal to 18", "input": 10, "ctx": {"ge": 18}}
            ]),
        },
        Case {
            name: "type errors and constraint errors together",
            body: json!({"name": "J", "email": "ada@example.com", "age": "old", "active": "maybe"}),
            detail: json!([
                {"type": "string_too_short", "loc": ["body", "name"], "msg": "String should have at least 2 characters", "input": "J", "ctx": {"min_length": 2}},
                {"type": "int_parsing", "loc": ["body", "age"], "msg": "Input should be a valid integer, unable to parse string as an integer", "input": "old"},
                {"type": "bool_parsing", "loc": ["body", "active"], "msg": "Input should be a valid boolean, unable to interpret input", "input": "maybe"}
            ]),
        },
        Case {
            name: "nested model field",
            body: user_with("address", json!({"city": "X"})),
            detail: json!([{"type": "string_too_short", "loc": ["body", "address", "city"], "msg": "String should have at least 2 characters", "input": "X", "ctx": {"min_length": 2}}]),
        },
        Case {
            name: "nested model missing field",
            body: user_with("address", json!({"zip": "75001"})),
            detail: json!([{"type": "missing", "loc": ["body", "address", "city"], "msg": "Field required", "input": {"zip": "75001"}}]),
        },
        Case {
            name: "nested model given a string",
            body: user_with("address", json!("Paris")),
            detail: json!([{"type": "model_attributes_type", "loc": ["body", "address"], "msg": "Input should be a valid dictionary or object to extract fields from", "input": "Paris"}]),
        },
        Case {
            name: "list item",
            body: user_with("tags", json!(["ok", ""])),
            detail: json!([{"type": "string_too_short", "loc": ["body", "tags", 1], "msg": "String should have at least 1 character", "input": "", "ctx": {"min_length": 1}}]),
        },
        Case {
            name: "list item of the wrong type",
            body: user_with("tags", json!([7])),
            detail: json!([{"type": "string_type", "loc": ["body", "tags", 0], "msg": "Input should be a valid string", "input": 7}]),
        },
        Case {
            name: "list_type",
            body: user_with("tags", json!("a,b")),
            detail: json!([{"type": "list_type", "loc": ["body", "tags"], "msg": "Input should be a valid list", "input": "a,b"}]),
        },
        Case {
            name: "bool_parsing",
            body: user_with("active", json!("maybe")),
            detail: json!([{"type": "bool_parsing", "loc": ["body", "active"], "msg": "Input should be a valid boolean, unable to interpret input", "input": "maybe"}]),
        },
        Case {
            name: "float_parsing",
            body: user_with("score", json!("high")),
            detail: json!([{"type": "float_parsing", "loc": ["body", "score"], "msg": "Input should be a valid number, unable to parse string as a number", "input": "high"}]),
        },
        Case {
            name: "enum",
            body: user_with("role", json!("root")),
            detail: json!([{"type": "enum", "loc": ["body", "role"], "msg": "Input should be 'admin' or 'user'", "input": "root", "ctx": {"expected": "'admin' or 'user'"}}]),
        },
        Case {
            name: "body that is not an object",
            body: json!([1, 2]),
            detail: json!([{"type": "model_attributes_type", "loc": ["body"], "msg": "Input should be a valid dictionary or object to extract fields from", "input": [1, 2]}]),
        },
    ]
}

#[tokio::test]
async fn json_body_failures_answer_fastapi_422() {
    let client = client();
    let cases = body_cases();
    assert!(cases.len() >= 24);
    for case in cases {
        let res = client.post("/users").json(&case.body).send().await;
        assert_eq!(res.status(), 422, "{}: {}", case.name, res.text());
        assert_eq!(
            res.header("content-type"),
            Some("application/json"),
            "{}",
            case.name
        );
        assert_eq!(
            res.json::<Value>(),
            json!({"detail": case.detail}),
            "{}",
            case.name
        );
    }
}

#[tokio::test]
async fn json_body_successes_with_lax_coercion() {
    let client = client();
    let res = client.post("/users").json(&valid_user()).send().await;
    assert_eq!(res.status(), 200, "{}", res.text());
    assert_eq!(res.json::<Value>()["name"], "Ada");

    // Lax mode: "30" → 30, "yes" → true, "2.5" → 2.5; unknown fields ignored;
    // two-character non-ASCII name is long enough.
    let body = json!({"name": "éé", "email": "ada@example.com", "age": "30", "active": "yes",
                      "score": "2.5", "role": "admin", "unknown": 1, "tags": ["a"]});
    let res = client.post("/users").json(&body).send().await;
    assert_eq!(res.status(), 200, "{}", res.text());
    let out: Value = res.json();
    assert_eq!(out["age"], 30);
    assert_eq!(out["active"], true);
    assert_eq!(out["score"], 2.5);
    assert_eq!(out["role"], "admin");
    assert!(out.get("unknown").is_none());

    // Integral floats are integers in lax mode.
    let res = client
        .post("/users")
        .json(&user_with("age", json!(30.0)))
        .send()
        .await;
    assert_eq!(res.status(), 200, "{}", res.text());
    assert_eq!(res.json::<Value>()["age"], 30);
}

async fn raw_post(
    client: &TestClient,
    content_type: Option<&str>,
    body: &'static str,
) -> (u16, Value) {
    let mut req = client.post("/users").body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let res = req.send().await;
    (res.status().as_u16(), res.json())
}

#[tokio::test]
async fn malformed_json_is_json_invalid_with_position() {
    let client = client();
    let (status, body) = raw_post(&client, Some("application/json"), r#"{"name": "J","#).await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"detail": [{"type": "json_invalid", "loc": ["body", 13], "msg": "JSON decode error", "input": {}, "ctx": {"error": "Expecting property name enclosed in double quotes"}}]})
    );
    // Positions count characters, not bytes.
    let (status, body) = raw_post(&client, Some("application/json"), r#"{"name": "é" x}"#).await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["type"], "json_invalid");
    assert_eq!(body["detail"][0]["loc"], json!(["body", 13]));
    // Things Python's parser refuses, and we too: never a 5xx.
    for bad in [
        r#"{"name": NaN}"#,
        r#"{"age": Infinity}"#,
        r#"{"age": 1e400}"#,
        r#"{"name": "\ud800"}"#,
        "{",
        "",
    ] {
        let (status, body) = raw_post(&client, Some("application/json"), bad).await;
        assert_eq!(status, 422, "{bad}: {body}");
        let kind = &body["detail"][0]["type"];
        assert!(
            kind == "json_invalid" || (bad.is_empty() && kind == "missing"),
            "{bad}: {body}"
        );
    }
    let deep =
        Box::leak(format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_boxed_str());
    let (status, body) = raw_post(&client, Some("application/json"), deep).await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["type"], "json_invalid");
}

#[tokio::test]
async fn missing_body_and_wrong_content_type() {
    let client = client();
    let (status, body) = raw_post(&client, Some("application/json"), "").await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"detail": [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": null}]})
    );
    let (status, body) = raw_post(&client, Some("text/plain"), "hello").await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"detail": [{"type": "model_attributes_type", "loc": ["body"], "msg": "Input should be a valid dictionary or object to extract fields from", "input": "hello"}]})
    );
    let (status, body) = raw_post(
        &client,
        Some("application/x-www-form-urlencoded"),
        "name=Ada&age=3",
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["type"], "model_attributes_type");
    // No content type at all: read as JSON, as FastAPI does.
    let (status, _) = raw_post(
        &client,
        None,
        r#"{"name": "Ada", "email": "ada@example.com", "age": 36}"#,
    )
    .await;
    assert_eq!(status, 200);
    // `application/*+json` is JSON.
    let (status, _) = raw_post(
        &client,
        Some("application/merge-patch+json"),
        r#"{"name": "Ada", "email": "ada@example.com", "age": 36}"#,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn query_parameters() {
    let client = client();
    let res = client
        .get("/items?skip=5&limit=10&ids=1&ids=2")
        .send()
        .await;
    assert_eq!(res.status(), 200, "{}", res.text());
    assert_eq!(
        res.json::<Value>(),
        json!({"skip": 5, "limit": 10, "ids": [1, 2]})
    );
    let res = client.get("/items").send().await;
    assert_eq!(
        res.json::<Value>(),
        json!({"skip": 0, "limit": 100, "ids": []})
    );
    // The last value of a repeated scalar wins (Starlette).
    let res = client.get("/items?limit=1&limit=2").send().await;
    assert_eq!(res.json::<Value>()["limit"], 2);

    let res = client
        .get("/items?skip=-1&limit=abc&ids=1&ids=x")
        .send()
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(
        res.json::<Value>(),
        json!({"detail": [
            {"type": "greater_than_equal", "loc": ["query", "skip"], "msg": "Input should be greater than or equal to 0", "input": "-1", "ctx": {"ge": 0}},
            {"type": "int_parsing", "loc": ["query", "limit"], "msg": "Input should be a valid integer, unable to parse string as an integer", "input": "abc"},
            {"type": "int_parsing", "loc": ["query", "ids", 1], "msg": "Input should be a valid integer, unable to parse string as an integer", "input": "x"}
        ]})
    );
    let res = client.get("/items?limit=0").send().await;
    assert_eq!(
        res.json::<Value>(),
        json!({"detail": [{"type": "greater_than_equal", "loc": ["query", "limit"], "msg": "Input should be greater than or equal to 1", "input": "0", "ctx": {"ge": 1}}]})
    );
    // A missing required parameter: input is null, as FastAPI says it.
    let res = client.get("/search").send().await;
    assert_eq!(
        res.json::<Value>(),
        json!({"detail": [{"type": "missing", "loc": ["query", "q"], "msg": "Field required", "input": null}]})
    );
    let res = client.get("/search?q=caf%C3%A9+au+lait").send().await;
    assert_eq!(res.json::<Value>(), json!({"q": "café au lait"}));
}

#[tokio::test]
async fn path_parameters() {
    let client = client();
    let res = client.get("/users/42").send().await;
    assert_eq!(res.json::<Value>(), json!({"user_id": 42}));
    let res = client.get("/users/abc").send().await;
    assert_eq!(res.status(), 422);
    assert_eq!(
        res.json::<Value>(),
        json!({"detail": [{"type": "int_parsing", "loc": ["path", "user_id"], "msg": "Input should be a valid integer, unable to parse string as an integer", "input": "abc"}]})
    );
    let res = client.get("/users/7/items/x%20y").send().await;
    assert_eq!(res.json::<Value>(), json!({"user_id": 7, "item_id": "x y"}));
    let res = client.get("/users/seven/items/x").send().await;
    assert_eq!(
        res.json::<Value>()["detail"][0]["loc"],
        json!(["path", "user_id"])
    );
    let res = client.get("/pairs/1/true").send().await;
    assert_eq!(res.json::<Value>(), json!([1, true]));
    let res = client.get("/pairs/x/perhaps").send().await;
    assert_eq!(
        res.json::<Value>(),
        json!({"detail": [
            {"type": "int_parsing", "loc": ["path", "a"], "msg": "Input should be a valid integer, unable to parse string as an integer", "input": "x"},
            {"type": "bool_parsing", "loc": ["path", "b"], "msg": "Input should be a valid boolean, unable to interpret input", "input": "perhaps"}
        ]})
    );
}

#[tokio::test]
async fn header_parameters() {
    let client = client();
    let res = client
        .get("/headers")
        .header("X-Token", "secret")
        .header("x-count", "3")
        .send()
        .await;
    assert_eq!(
        res.json::<Value>(),
        json!({"x_token": "secret", "x_count": 3})
    );
    let res = client
        .get("/headers")
        .header("x-count", "many")
        .send()
        .await;
    assert_eq!(
        res.json::<Value>(),
        json!({"detail": [
            {"type": "missing", "loc": ["header", "x-token"], "msg": "Field required", "input": null},
            {"type": "int_parsing", "loc": ["header", "x-count"], "msg": "Input should be a valid integer, unable to parse string as an integer", "input": "many"}
        ]})
    );
}

#[tokio::test]
async fn cookie_parameters() {
    let client = client();
    let res = client
        .get("/cookies")
        .header("cookie", "session_id=abc; visits=2")
        .send()
        .await;
    assert_eq!(
        res.json::<Value>(),
        json!({"session_id": "abc", "visits": 2})
    );
    let res = client
        .get("/cookies")
        .header("cookie", "visits=two")
        .send()
        .await;
    assert_eq!(
        res.json::<Value>(),
        json!({"detail": [
            {"type": "missing", "loc": ["cookie", "session_id"], "msg": "Field required", "input": null},
            {"type": "int_parsing", "loc": ["cookie", "visits"], "msg": "Input should be a valid integer, unable to parse string as an integer", "input": "two"}
        ]})
    );
}

#[tokio::test]
async fn form_bodies() {
    let client = client();
    let res = client
        .post("/login")
        .form(&json!({"username": "ada", "password": "pw", "remember": "on"}))
        .send()
        .await;
    assert_eq!(
        res.json::<Value>(),
        json!({"username": "ada", "password": "pw", "remember": true})
    );
    let res = client
        .post("/login")
        .form(&json!({"username": "ada"}))
        .send()
        .await;
    assert_eq!(
        res.json::<Value>(),
        json!({"detail": [{"type": "missing", "loc": ["body", "password"], "msg": "Field required", "input": null}]})
    );
}

#[tokio::test]
async fn errors_of_every_extractor_are_gathered_into_one_422() {
    let client = client();
    let res = client
        .post("/everything/abc?limit=0")
        .json(&json!({"name": "J", "email": "ada@example.com", "age": 36}))
        .send()
        .await;
    assert_eq!(res.status(), 422);
    let detail = res.json::<Value>()["detail"].clone();
    let locs: Vec<Value> = detail
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["loc"].clone())
        .collect();
    assert_eq!(
        locs,
        vec![
            json!(["path", "user_id"]),
            json!(["query", "limit"]),
            json!(["header", "x-token"]),
            json!(["body", "name"])
        ]
    );
}

#[tokio::test]
async fn raw_bodies() {
    let client = client();
    let res = client.post("/raw").body("abc").send().await;
    assert_eq!(res.text(), "3 bytes");
    let res = client.post("/text").body("abc").send().await;
    assert_eq!(res.text(), "ABC");
    let res = client.post("/text").body(vec![0xff, 0xfe]).send().await;
    assert_eq!(res.status(), 422);
    assert_eq!(res.json::<Value>()["detail"][0]["type"], "string_unicode");
}
