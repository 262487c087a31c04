//! Headers, cookies and a status on typed responses (FastAPI's
//! `response: Response` parameter), with the response model kept in the
//! OpenAPI document.

use ferrapi::http::{HeaderMap, StatusCode};
use ferrapi::prelude::*;
use ferrapi::response::{ResponseParts, SameSite, SetCookie};
use ferrapi::testing::TestClient;
use serde_json::{Value, json};
use std::time::Duration;

#[derive(Serialize, JsonSchema)]
struct Session {
    user: String,
}

#[derive(Clone)]
struct RateLimited;

/// A dependency writes a header too: the handler's response carries it.
#[ferrapi::dependency]
async fn rate_limited(response: ResponseParts) -> Result<RateLimited, HttpError> {
    response.insert_header("x-ratelimit-remaining", "9")?;
    Ok(RateLimited)
}

#[post("/login", status = 201)]
async fn login(
    response: ResponseParts,
    Depends(_): Depends<RateLimited>,
    Query(q): Query<LoginQuery>,
) -> Result<Json<Session>, HttpError> {
    if q.fail {
        response.set_status(StatusCode::ACCEPTED);
        return Err(HttpError::not_found("No such user"));
    }
    response.set_cookie(
        SetCookie::new("session", "abc123")
            .max_age(Duration::from_secs(3600))
            .http_only()
            .secure()
            .same_site(SameSite::Strict),
    )?;
    response.delete_cookie("old")?;
    response.insert_header("x-login", "ok")?;
    if q.accepted {
        response.set_status(StatusCode::ACCEPTED);
    }
    Ok(Json(Session { user: "ada".into() }))
}

#[derive(Deserialize, JsonSchema, Validate)]
struct LoginQuery {
    #[serde(default)]
    fail: bool,
    #[serde(default)]
    accepted: bool,
}

#[get("/tuple")]
async fn tuple() -> ([(&'static str, String); 1], Json<Session>) {
    (
        [("x-total-count", 42.to_string())],
        Json(Session { user: "ada".into() }),
    )
}

#[get("/map")]
async fn map() -> (StatusCode, HeaderMap, Json<Session>) {
    let mut headers = HeaderMap::new();
    headers.insert("x-a", "1".parse().unwrap());
    (
        StatusCode::ACCEPTED,
        headers,
        Json(Session { user: "ada".into() }),
    )
}

#[get("/bad-header")]
async fn bad_header() -> ([(&'static str, &'static str); 1], Json<Session>) {
    (
        [("x-bad", "line\nbreak")],
        Json(Session { user: "ada".into() }),
    )
}

fn app() -> App {
    App::new()
        .route(login)
        .route(tuple)
        .route(map)
        .route(bad_header)
}

#[tokio::test]
async fn response_parts_set_cookies_headers_and_status_on_a_typed_response() {
    let client = TestClient::new(app());
    let res = client.post("/login").send().await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.json::<Value>(), json!({"user": "ada"}));
    assert_eq!(res.header("x-login"), Some("ok"));
    assert_eq!(res.header("x-ratelimit-remaining"), Some("9"));
    assert_eq!(res.header("content-type"), Some("application/json"));
    let cookies: Vec<&str> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(
        cookies,
        [
            "session=abc123; Max-Age=3600; Path=/; HttpOnly; Secure; SameSite=Strict",
            "old=; Max-Age=0; Path=/; SameSite=Lax",
        ]
    );

    let res = client.post("/login?accepted=true").send().await;
    assert_eq!(res.status(), 202);

    // An error the handler returns keeps its status; headers still apply.
    let res = client.post("/login?fail=true").send().await;
    assert_eq!(res.status(), 404);
    assert_eq!(res.header("x-ratelimit-remaining"), Some("9"));

    // Not to a 422 answered before the handler ran.
    let res = client.post("/login?fail=maybe").send().await;
    assert_eq!(res.status(), 422);
    assert_eq!(res.header("x-ratelimit-remaining"), None);
}

#[tokio::test]
async fn header_tuples_add_headers_and_keep_the_status() {
    let client = TestClient::new(app());
    let res = client.get("/tuple").send().await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.header("x-total-count"), Some("42"));
    assert_eq!(res.json::<Value>(), json!({"user": "ada"}));

    let res = client.get("/map").send().await;
    assert_eq!(res.status(), 202);
    assert_eq!(res.header("x-a"), Some("1"));

    // A header the application got wrong is its own 500, not a panic.
    let res = client.get("/bad-header").send().await;
    assert_eq!(res.status(), 500);
    assert_eq!(
        res.json::<Value>(),
        json!({"detail": "Internal Server Error"})
    );
}

#[test]
fn typed_responses_with_headers_keep_their_schema_in_openapi() {
    let doc = serde_json::to_value(app().build().unwrap().openapi()).unwrap();
    let session = json!({"$ref": "#/components/schemas/Session"});
    for (path, method, status) in [
        ("/login", "post", "201"),
        ("/tuple", "get", "200"),
        ("/map", "get", "200"),
    ] {
        assert_eq!(
            doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"],
            session,
            "{method} {path}"
        );
    }
    // `ResponseParts` is no parameter of the operation.
    let params = doc["paths"]["/login"]["post"]["parameters"]
        .as_array()
        .unwrap();
    let names: Vec<&str> = params.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["fail", "accepted"]);
}
