//! What the framework itself answers: 404, 405 with `Allow`, 413, 500 on a
//! panic, `HttpError`, exception handlers — all JSON `{"detail": …}`.

use ferrapi::axum::response::IntoResponse;
use ferrapi::http::StatusCode;
use ferrapi::prelude::*;
use ferrapi::testing::TestClient;
use serde_json::{Value, json};

#[derive(Debug, Deserialize, Serialize, JsonSchema, Validate)]
#[garde(allow_unvalidated)]
struct Note {
    text: String,
}

#[get("/notes")]
async fn list_notes() -> Json<Vec<String>> {
    Json(vec![])
}

#[post("/notes")]
async fn add_note(Json(note): Json<Note>) -> Json<Note> {
    Json(note)
}

#[delete("/notes")]
async fn clear_notes() -> NoContent {
    NoContent
}

#[get("/panic")]
async fn panics() -> Text {
    panic!("the handler broke")
}

#[get("/teapot")]
async fn teapot() -> Result<Text, HttpError> {
    Err(HttpError::new(StatusCode::IM_A_TEAPOT, "I'm a teapot").with_header("x-brew", "earl-grey"))
}

#[get("/detail-object")]
async fn detail_object() -> Result<Text, HttpError> {
    Err(HttpError::bad_request(json!({"code": 7, "why": "nope"})))
}

#[derive(Debug, thiserror::Error)]
#[error("out of stock: {0}")]
struct OutOfStock(String);

#[derive(Debug, thiserror::Error)]
#[error("disk on fire")]
struct DiskOnFire;

#[get("/stock")]
async fn stock() -> Result<Text, ferrapi::Error> {
    Err(OutOfStock("tea".into()).into())
}

#[get("/disk")]
async fn disk() -> Result<Text, ferrapi::Error> {
    Err(DiskOnFire.into())
}

fn app() -> App {
    App::new()
        .route(list_notes)
        .route(add_note)
        .route(clear_notes)
        .route(panics)
        .route(teapot)
        .route(detail_object)
        .route(stock)
        .route(disk)
        .body_limit(64)
}

#[tokio::test]
async fn unknown_path_is_json_404() {
    let client = TestClient::new(app());
    let res = client.get("/nowhere").send().await;
    assert_eq!(res.status(), 404);
    assert_eq!(res.header("content-type"), Some("application/json"));
    assert_eq!(res.json::<Value>(), json!({"detail": "Not Found"}));
}

#[tokio::test]
async fn wrong_method_is_json_405_with_allow() {
    let client = TestClient::new(app());
    let res = client.put("/notes").send().await;
    assert_eq!(res.status(), 405);
    assert_eq!(res.json::<Value>(), json!({"detail": "Method Not Allowed"}));
    let allow = res.header("allow").unwrap_or_default().to_owned();
    let mut methods: Vec<&str> = allow.split(',').map(str::trim).collect();
    methods.sort_unstable();
    assert_eq!(methods, ["DELETE", "GET", "HEAD", "POST"], "{allow}");
}

#[tokio::test]
async fn oversized_body_is_json_413() {
    let client = TestClient::new(app());
    let big = json!({"text": "x".repeat(100)});
    let res = client.post("/notes").json(&big).send().await;
    assert_eq!(res.status(), 413);
    assert_eq!(
        res.json::<Value>(),
        json!({"detail": "Request body too large"})
    );
    // Under the limit it is served.
    let res = client
        .post("/notes")
        .json(&json!({"text": "hi"}))
        .send()
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn oversized_streamed_body_without_length_is_413() {
    let client = TestClient::new(app());
    let chunks: Vec<Result<&'static str, std::io::Error>> =
        (0..20).map(|_| Ok("0123456789")).collect();
    let body = ferrapi::axum::body::Body::from_stream(futures_util::stream::iter(chunks));
    let res = client
        .post("/notes")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    assert_eq!(res.status(), 413);
}

#[tokio::test]
async fn panic_is_json_500_and_the_app_keeps_serving() {
    let client = TestClient::new(app());
    let res = client.get("/panic").send().await;
    assert_eq!(res.status(), 500);
    assert_eq!(
        res.json::<Value>(),
        json!({"detail": "Internal Server Error"})
    );
    let res = client.get("/notes").send().await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn http_error_keeps_status_headers_and_detail() {
    let client = TestClient::new(app());
    let res = client.get("/teapot").send().await;
    assert_eq!(res.status(), 418);
    assert_eq!(res.header("x-brew"), Some("earl-grey"));
    assert_eq!(res.json::<Value>(), json!({"detail": "I'm a teapot"}));
    let res = client.get("/detail-object").send().await;
    assert_eq!(
        res.json::<Value>(),
        json!({"detail": {"code": 7, "why": "nope"}})
    );
}

#[tokio::test]
async fn unhandled_errors_are_500_and_handlers_answer_by_type() {
    let client = TestClient::new(app());
    let res = client.get("/stock").send().await;
    assert_eq!(res.status(), 500);
    assert_eq!(
        res.json::<Value>(),
        json!({"detail": "Internal Server Error"})
    );

    let client = TestClient::new(
        app()
            .exception_handler(|e: &OutOfStock| {
                (StatusCode::CONFLICT, format!("sorry, {e}")).into_response()
            })
            .exception_handler(|_: &ferrapi::ValidationErrors| {
                (StatusCode::BAD_REQUEST, "bad input").into_response()
            })
            .exception_handler(|e: &HttpError| {
                (e.status(), format!("custom {}", e.detail())).into_response()
            }),
    );
    let res = client.get("/stock").send().await;
    assert_eq!(res.status(), 409);
    assert_eq!(res.text(), "sorry, out of stock: tea");
    // Another type still falls through to the default.
    let res = client.get("/disk").send().await;
    assert_eq!(res.status(), 500);
    // The framework's own errors go through the handlers too.
    let res = client.post("/notes").json(&json!({})).send().await;
    assert_eq!(
        (res.status().as_u16(), res.text().as_str()),
        (400, "bad input")
    );
    let res = client.get("/nowhere").send().await;
    assert_eq!(
        (res.status().as_u16(), res.text().as_str()),
        (404, "custom \"Not Found\"")
    );
}

/// serde's derived structs accept an array positionally; pydantic does not.
/// Found by schemathesis: `["text"]` must not create a `Note`.
#[tokio::test]
async fn a_json_array_is_not_an_object() {
    let client = TestClient::new(app());
    for body in [json!(["hello"]), json!([]), json!(["a", "b"])] {
        let res = client.post("/notes").json(&body).send().await;
        assert_eq!(res.status(), 422, "{body}");
        assert_eq!(
            res.json::<Value>(),
            json!({"detail": [{
                "type": "model_attributes_type",
                "loc": ["body"],
                "msg": "Input should be a valid dictionary or object to extract fields from",
                "input": body
            }]}),
        );
    }
    // An object still works, whitespace before it included.
    let res = client
        .post("/notes")
        .header("content-type", "application/json")
        .body("  \n{\"text\": \"hi\"}")
        .send()
        .await;
    assert_eq!(res.status(), 200);
}
