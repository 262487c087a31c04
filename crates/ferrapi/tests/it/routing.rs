//! Routers, prefixes, tags, and the checks made when the app is built.

use ferrapi::prelude::*;
use ferrapi::testing::TestClient;
use serde_json::{Value, json};

#[get("/{user_id}", tags = ["read"])]
async fn read_user(Path(user_id): Path<i64>) -> Json<Value> {
    Json(json!({"user_id": user_id}))
}

/// List users.
///
/// Ordered by id.
#[get("/")]
async fn list_users() -> Json<Vec<i64>> {
    Json(vec![1, 2])
}

#[get("/me")]
async fn me() -> &'static str {
    "me"
}

#[derive(Deserialize, JsonSchema, Validate)]
#[allow(dead_code)]
struct Two {
    a: i64,
    b: i64,
}

// Mistakes, each found at build time.
#[get("/wrong/{id}")]
async fn takes_no_path() -> &'static str {
    ""
}

#[get("/named/{a}/{c}")]
async fn wrong_names(Path(_p): Path<Two>) -> &'static str {
    ""
}

#[get("/single")]
async fn single_without_var(Path(_id): Path<i64>) -> &'static str {
    ""
}

#[get("/dup")]
async fn dup_one() -> &'static str {
    "1"
}

#[get("/dup")]
async fn dup_two() -> &'static str {
    "2"
}

#[get("/shape/{x}")]
async fn shape_x(Path(_x): Path<i64>) -> &'static str {
    ""
}

#[post("/shape/{y}")]
async fn shape_y(Path(_y): Path<i64>) -> &'static str {
    ""
}

#[get("/bad{name}")]
async fn bad_template() -> &'static str {
    ""
}

async fn op_fn() -> &'static str {
    ""
}

fn users_router() -> Router {
    Router::new()
        .prefix("/users")
        .tags(["users"])
        .route(list_users)
        .route(me)
        .route(read_user)
}

#[tokio::test]
async fn nested_routers_apply_prefixes_and_tags() {
    let app = App::new().include(
        Router::new()
            .prefix("/api/v1")
            .tags(["v1"])
            .include(users_router()),
    );
    let built = app.build().unwrap();
    let doc = serde_json::to_value(built.openapi()).unwrap();
    let op = &doc["paths"]["/api/v1/users/{user_id}"]["get"];
    assert_eq!(op["tags"], json!(["v1", "users", "read"]));
    assert_eq!(op["operationId"], "read_user");
    assert_eq!(op["summary"], "Read User");
    assert_eq!(op["parameters"][0]["name"], "user_id");
    assert_eq!(op["parameters"][0]["in"], "path");
    assert_eq!(op["parameters"][0]["schema"]["type"], "integer");
    assert_eq!(
        op["responses"]["422"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/HTTPValidationError"
    );
    let list = &doc["paths"]["/api/v1/users"]["get"];
    assert_eq!(list["summary"], "List users.");
    assert_eq!(list["description"], "Ordered by id.");
    assert!(list["responses"].get("422").is_none(), "no input, no 422");
    assert!(doc["components"]["schemas"]["HTTPValidationError"].is_object());

    let client = TestClient::new(
        App::new().include(Router::new().prefix("/api/v1").include(users_router())),
    );
    assert_eq!(
        client.get("/api/v1/users").send().await.json::<Value>(),
        json!([1, 2])
    );
    assert_eq!(client.get("/api/v1/users/me").send().await.text(), "me");
    assert_eq!(
        client.get("/api/v1/users/9").send().await.json::<Value>(),
        json!({"user_id": 9})
    );
    // HEAD is answered for GET routes, without a body.
    let res = client
        .request(ferrapi::http::Method::HEAD, "/api/v1/users/me")
        .send()
        .await;
    assert_eq!(res.status(), 200);
    assert!(res.bytes().is_empty());
    // The document is served.
    let res = client.get("/openapi.json").send().await;
    assert_eq!(res.json::<Value>()["openapi"], "3.1.0");
}

#[test]
fn every_registration_mistake_is_reported_at_once() {
    let app = App::new()
        .route(takes_no_path)
        .route(wrong_names)
        .route(single_without_var)
        .route(dup_one)
        .route(dup_two)
        .route(shape_x)
        .route(shape_y)
        .route(bad_template)
        .route(Route::get("/op", op_fn).operation_id("takes_no_path"))
        .include(Router::new().prefix("api/").route(me));
    let err = app.build().unwrap_err();
    let text = err.to_string();
    let problems: Vec<(String, String)> = err
        .errors
        .iter()
        .map(|e| (e.route.clone(), e.problem.clone()))
        .collect();
    let find = |route: &str, words: &[&str]| {
        assert!(
            problems
                .iter()
                .any(|(r, p)| r.contains(route) && words.iter().all(|w| p.contains(w))),
            "no problem for {route} containing {words:?} in:\n{text}"
        );
    };
    find("GET /wrong/{id} (takes_no_path", &["`id`", "no `Path`"]);
    find("GET /named/{a}/{c} (wrong_names", &["`b`", "`c`"]);
    find("GET /single (single_without_var", &["one path value"]);
    find("GET /dup (dup_two", &["clashes", "dup_one"]);
    find(
        "GET /op (",
        &["operation id `takes_no_path`", "GET /wrong/{id}"],
    );
    find("POST /shape/{y} (shape_y", &["variable names"]);
    find("GET /bad{name} (bad_template", &["whole segment"]);
    find("(me,", &["prefix `api/`"]);
    // Each names where the route was declared.
    assert!(text.contains("routing.rs:"), "{text}");
    assert_eq!(err.errors.len(), 9, "{text}");
}

#[tokio::test]
async fn routes_without_macros() {
    async fn hello(Path(name): Path<String>) -> Text {
        Text(format!("hello {name}"))
    }
    let app = App::new()
        .route(
            Route::get("/hello/{name}", hello)
                .tags(["greet"])
                .summary("Greet"),
        )
        .route(
            Route::post("/echo", |Json(v): Json<Echo>| async move { Json(v) }).operation_id("echo"),
        );
    let built = app.build().unwrap();
    let doc = serde_json::to_value(built.openapi()).unwrap();
    assert_eq!(doc["paths"]["/hello/{name}"]["get"]["operationId"], "hello");
    assert_eq!(doc["paths"]["/hello/{name}"]["get"]["summary"], "Greet");
    assert_eq!(
        doc["paths"]["/echo"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Echo"
    );
    let client = TestClient::new(App::new().route(Route::get("/hello/{name}", hello)).route(
        Route::post("/echo", |Json(v): Json<Echo>| async move { Json(v) }),
    ));
    assert_eq!(client.get("/hello/ada").send().await.text(), "hello ada");
    let res = client.post("/echo").json(&json!({"n": "x"})).send().await;
    assert_eq!(res.status(), 422);
    assert_eq!(
        res.json::<Value>()["detail"][0]["loc"],
        json!(["body", "n"])
    );
}

#[derive(Debug, Deserialize, Serialize, JsonSchema, Validate)]
#[garde(allow_unvalidated)]
struct Echo {
    n: i64,
}

#[tokio::test]
async fn state_is_shared_and_missing_state_fails_the_build() {
    #[derive(Clone)]
    struct Greeting(String);
    async fn greet(State(g): State<Greeting>) -> Text {
        Text(g.0)
    }
    let client = TestClient::new(
        App::new()
            .state(Greeting("hi".into()))
            .route(Route::get("/greet", greet)),
    );
    assert_eq!(client.get("/greet").send().await.text(), "hi");
    // Without the state the app does not build (it used to answer 500).
    let err = App::new()
        .route(Route::get("/greet", greet))
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err.errors[0].kind,
            ferrapi::RouteErrorKind::MissingState { type_name } if type_name.ends_with("Greeting")
        ),
        "{err}"
    );
    assert!(err.errors[0].route.starts_with("GET /greet"), "{err}");
}

#[get("/docs")]
async fn my_docs() -> &'static str {
    "mine"
}

#[test]
fn a_route_shadowed_by_the_docs_pages_is_reported() {
    let err = App::new().route(my_docs).build().unwrap_err();
    assert!(err.to_string().contains("docs pages"), "{err}");
    // Moving the docs pages away resolves it.
    assert!(
        App::new()
            .route(my_docs)
            .docs_url(Some("/api-docs"))
            .build()
            .is_ok()
    );
}

/// `App::into_router` is an axum router: it nests under a prefix of an axum
/// app, with its path parameters, 405s and JSON 404s intact.
#[tokio::test]
async fn the_router_nests_into_an_axum_app() {
    use ferrapi::axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let api = App::new()
        .include(Router::new().prefix("/users").route(read_user))
        .into_router()
        .unwrap();
    let app = ferrapi::axum::Router::new()
        .route("/", ferrapi::axum::routing::get(|| async { "root" }))
        .nest("/api", api);
    let call = |method: &str, path: &str| {
        let req = ferrapi::http::Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        let app = app.clone();
        async move {
            let res = app.oneshot(req).await.unwrap();
            let status = res.status().as_u16();
            let allow = res
                .headers()
                .get("allow")
                .map(|v| v.to_str().unwrap().to_owned());
            let body = res.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&body).into_owned(), allow)
        }
    };
    let (status, body, _) = call("GET", "/api/users/7").await;
    assert_eq!((status, body.as_str()), (200, r#"{"user_id":7}"#));
    let (status, body, _) = call("GET", "/").await;
    assert_eq!((status, body.as_str()), (200, "root"));
    let (status, body, allow) = call("DELETE", "/api/users/7").await;
    assert_eq!(status, 405, "{body}");
    assert_eq!(allow.as_deref(), Some("GET,HEAD"));
    let (status, body, _) = call("GET", "/api/nowhere").await;
    assert_eq!((status, body.as_str()), (404, r#"{"detail":"Not Found"}"#));
}
