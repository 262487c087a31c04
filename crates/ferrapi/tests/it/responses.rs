//! Response helpers and the route's declared status.

use ferrapi::http::StatusCode;
use ferrapi::prelude::*;
use ferrapi::testing::TestClient;
use serde_json::{Value, json};

#[derive(Debug, Serialize, JsonSchema)]
struct Public {
    id: i64,
    name: String,
}

/// An internal record: its secret must never reach a client.
struct Record {
    id: i64,
    name: String,
    #[allow(dead_code)]
    password_hash: String,
}

impl From<Record> for Public {
    fn from(r: Record) -> Self {
        Public {
            id: r.id,
            name: r.name,
        }
    }
}

#[post("/things", status = 201)]
async fn create_thing() -> Json<Public> {
    let record = Record {
        id: 1,
        name: "a".into(),
        password_hash: "secret".into(),
    };
    Json(record.into())
}

#[post("/created")]
async fn created() -> Created<Public> {
    Created::new(
        "/things/2",
        Public {
            id: 2,
            name: "b".into(),
        },
    )
}

#[delete("/things/{id}")]
async fn delete_thing(Path(_id): Path<i64>) -> NoContent {
    NoContent
}

#[get("/html")]
async fn html() -> Html<&'static str> {
    Html("<h1>hi</h1>")
}

#[get("/old")]
async fn old() -> Redirect {
    Redirect::permanent("/new")
}

#[get("/accepted")]
async fn accepted() -> (StatusCode, Json<Value>) {
    (StatusCode::ACCEPTED, Json(json!({"queued": true})))
}

#[get("/stream")]
async fn stream() -> ferrapi::response::Streaming {
    let chunks =
        futures_util::stream::iter((0..3).map(|i| Ok::<_, std::io::Error>(format!("{i};"))));
    ferrapi::response::Streaming::new("text/plain", chunks)
}

#[get("/bytes")]
async fn raw_bytes() -> ferrapi::Bytes {
    ferrapi::Bytes::from_static(b"\x00\x01")
}

#[post("/nothing", status = 204)]
async fn nothing() {}

async fn plain_fn(Path(id): Path<i64>) -> Json<Value> {
    Json(json!({"id": id}))
}

fn client() -> TestClient {
    TestClient::new(
        App::new()
            .route(create_thing)
            .route(created)
            .route(delete_thing)
            .route(html)
            .route(old)
            .route(accepted)
            .route(stream)
            .route(raw_bytes)
            .route(nothing)
            .route(Route::get("/plain/{id}", plain_fn).status(StatusCode::ACCEPTED)),
    )
}

#[tokio::test]
async fn declared_status_and_response_model() {
    let client = client();
    let res = client.post("/things").send().await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.json::<Value>(), json!({"id": 1, "name": "a"}));
    assert!(!res.text().contains("secret"));
    let res = client.get("/plain/5").send().await;
    assert_eq!(res.status(), 202);
    assert_eq!(res.json::<Value>(), json!({"id": 5}));
}

#[tokio::test]
async fn helpers() {
    let client = client();
    let res = client.post("/created").send().await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.header("location"), Some("/things/2"));
    assert_eq!(res.json::<Value>(), json!({"id": 2, "name": "b"}));

    let res = client.delete("/things/2").send().await;
    assert_eq!(res.status(), 204);
    assert!(res.bytes().is_empty());

    let res = client.get("/html").send().await;
    assert_eq!(res.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(res.text(), "<h1>hi</h1>");

    let res = client.get("/old").send().await;
    assert_eq!(res.status(), 308);
    assert_eq!(res.header("location"), Some("/new"));

    let res = client.get("/accepted").send().await;
    assert_eq!(res.status(), 202);
    assert_eq!(res.json::<Value>(), json!({"queued": true}));

    let res = client.get("/stream").send().await;
    assert_eq!(res.text(), "0;1;2;");

    let res = client.get("/bytes").send().await;
    assert_eq!(res.header("content-type"), Some("application/octet-stream"));
    assert_eq!(res.bytes(), b"\x00\x01");

    let res = client.post("/nothing").send().await;
    assert_eq!(res.status(), 204);
    assert!(res.bytes().is_empty());
}
