//! `App::mount`: a whole application under a prefix, with its own routes,
//! middleware, document and docs pages.

use ferrapi::middleware::{Next, from_fn};
use ferrapi::prelude::*;
use ferrapi::testing::TestClient;
use serde_json::{Value, json};

#[get("/items")]
async fn items_v1() -> &'static str {
    "v1"
}

#[get("/items/{item_id}")]
async fn item_v2(Path(item_id): Path<i64>) -> Json<Value> {
    Json(json!({"id": item_id, "version": 2}))
}

#[derive(Clone)]
struct Name(&'static str);

#[get("/whoami")]
async fn whoami(State(name): State<Name>) -> &'static str {
    name.0
}

/// Stamps the mounted app's responses.
async fn stamp_v2(
    req: ferrapi::axum::extract::Request,
    next: Next,
) -> ferrapi::axum::response::Response {
    let mut res = next.run(req).await;
    res.headers_mut()
        .insert("x-app", ferrapi::http::HeaderValue::from_static("v2"));
    res
}

/// Stamps every response of the main app.
async fn stamp_main(
    req: ferrapi::axum::extract::Request,
    next: Next,
) -> ferrapi::axum::response::Response {
    let mut res = next.run(req).await;
    res.headers_mut()
        .insert("x-outer", ferrapi::http::HeaderValue::from_static("main"));
    res
}

fn v2() -> App {
    App::new()
        .title("API v2")
        .version("2.0.0")
        .state(Name("the v2 app"))
        .route(item_v2)
        .route(whoami)
        .layer(from_fn(stamp_v2))
}

fn app() -> App {
    App::new()
        .title("Main")
        .state(Name("the main app"))
        .route(items_v1)
        .route(whoami)
        .mount("/v2", v2())
}

#[tokio::test]
async fn mounted_app_serves_its_routes_under_the_prefix_with_its_own_state_and_layers() {
    let client = TestClient::new(app());
    let res = client.get("/items").send().await;
    assert_eq!(res.text(), "v1");
    assert_eq!(res.header("x-app"), None);

    let res = client.get("/v2/items/7").send().await;
    assert_eq!(res.json::<Value>(), json!({"id": 7, "version": 2}));
    assert_eq!(
        res.header("x-app"),
        Some("v2"),
        "the mounted app's own layer"
    );

    assert_eq!(client.get("/whoami").send().await.text(), "the main app");
    assert_eq!(client.get("/v2/whoami").send().await.text(), "the v2 app");
}

#[tokio::test]
async fn mounted_app_validates_and_answers_404_itself() {
    let client = TestClient::new(app());
    let res = client.get("/v2/items/abc").send().await;
    assert_eq!(res.status(), 422);
    assert_eq!(
        res.json::<Value>()["detail"][0]["loc"],
        json!(["path", "item_id"])
    );
    let res = client.get("/v2/nowhere").send().await;
    assert_eq!(res.status(), 404);
    assert_eq!(res.json::<Value>(), json!({"detail": "Not Found"}));
    // Not under the prefix: the main app's 404, not the mounted app's routes.
    assert_eq!(client.get("/v2x/items/1").send().await.status(), 404);
}

#[tokio::test]
async fn mounted_app_has_its_own_document_and_docs_pages() {
    let client = TestClient::new(app());
    let main: Value = client.get("/openapi.json").send().await.json();
    assert_eq!(main["info"]["title"], "Main");
    let paths: Vec<&String> = main["paths"].as_object().unwrap().keys().collect();
    assert_eq!(
        paths,
        ["/items", "/whoami"],
        "mounted routes stay out, as in FastAPI"
    );

    let sub: Value = client.get("/v2/openapi.json").send().await.json();
    assert_eq!(sub["info"]["title"], "API v2");
    assert_eq!(sub["servers"], json!([{"url": "/v2"}]));
    assert!(sub["paths"]["/items/{item_id}"]["get"].is_object());

    let res = client.get("/v2/docs").send().await;
    assert_eq!(res.status(), 200);
    let html = res.text();
    assert!(html.contains(r#""url":"/v2/openapi.json""#), "{html}");
    assert!(html.contains(r#"href="/v2/docs/swagger-ui.css""#), "{html}");
    assert!(
        html.contains(r#"src="/v2/docs/swagger-ui-bundle.js""#),
        "{html}"
    );
    assert_eq!(
        client.get("/v2/docs/swagger-ui.css").send().await.status(),
        200
    );
    assert_eq!(client.get("/v2/redoc").send().await.status(), 200);
}

#[tokio::test]
async fn main_app_layers_wrap_the_mounted_app() {
    let app = app().layer(from_fn(stamp_main));
    let client = TestClient::new(app);
    let res = client.get("/v2/items/1").send().await;
    assert_eq!(res.header("x-outer"), Some("main"));
    assert_eq!(res.header("x-app"), Some("v2"));
}

#[test]
fn mount_mistakes_fail_the_build() {
    let err = App::new()
        .route(items_v1)
        .mount("/items", App::new())
        .mount("v3/", App::new())
        .mount("/docs", App::new())
        .mount("/v4", App::new().route(item_v2).route(item_v2))
        .build()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("mount `/items`") && text.contains("is under the mount prefix"),
        "{text}"
    );
    assert!(text.contains("prefix `v3/` must start with `/`"), "{text}");
    assert!(
        text.contains("(the app's document or docs pages) is under the mount prefix"),
        "{text}"
    );
    assert!(text.contains("(in the app mounted at `/v4`)"), "{text}");
    assert!(text.contains("same method and path"), "{text}");
}
