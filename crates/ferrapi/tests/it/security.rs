//! Security scheme extractors: credentials read, 401 when missing, each
//! documented as a security scheme.

use ferrapi::prelude::*;
use ferrapi::security::{
    ApiKey, ApiKeyIn, ApiKeySpec, HttpBasic, HttpBearer, OAuth2PasswordFlow,
    OAuth2PasswordRequestForm, OAuth2Token,
};
use ferrapi::testing::TestClient;
use serde_json::{Value, json};

struct Login;
impl OAuth2PasswordFlow for Login {
    const TOKEN_URL: &'static str = "/token";
    const SCOPES: &'static [(&'static str, &'static str)] = &[("read", "Read things")];
}

struct HeaderKey;
impl ApiKeySpec for HeaderKey {
    const NAME: &'static str = "x-api-key";
    const LOCATION: ApiKeyIn = ApiKeyIn::Header;
    const SCHEME_NAME: &'static str = "HeaderKey";
}
struct QueryKey;
impl ApiKeySpec for QueryKey {
    const NAME: &'static str = "api_key";
    const LOCATION: ApiKeyIn = ApiKeyIn::Query;
    const SCHEME_NAME: &'static str = "QueryKey";
}
struct CookieKey;
impl ApiKeySpec for CookieKey {
    const NAME: &'static str = "key";
    const LOCATION: ApiKeyIn = ApiKeyIn::Cookie;
    const SCHEME_NAME: &'static str = "CookieKey";
}

#[get("/bearer")]
async fn bearer(HttpBearer(t): HttpBearer) -> String {
    t
}
#[get("/oauth")]
async fn oauth(t: OAuth2Token<Login>) -> String {
    t.token().to_owned()
}
#[post("/token")]
async fn token(Form(f): Form<OAuth2PasswordRequestForm>) -> Json<Value> {
    Json(json!({"user": f.username, "scopes": f.scopes().collect::<Vec<_>>()}))
}
#[get("/basic")]
async fn basic(b: HttpBasic) -> String {
    format!("{}:{}", b.username, b.password)
}
#[get("/hkey")]
async fn hkey(k: ApiKey<HeaderKey>) -> String {
    k.key().to_owned()
}
#[get("/qkey")]
async fn qkey(k: ApiKey<QueryKey>) -> String {
    k.key().to_owned()
}
#[get("/ckey")]
async fn ckey(k: ApiKey<CookieKey>) -> String {
    k.key().to_owned()
}

fn app() -> App {
    App::new()
        .route(bearer)
        .route(oauth)
        .route(token)
        .route(basic)
        .route(hkey)
        .route(qkey)
        .route(ckey)
}

#[tokio::test]
async fn credentials_are_read_and_missing_ones_are_401() {
    let client = TestClient::new(app());
    let res = client
        .get("/bearer")
        .header("authorization", "Bearer abc")
        .send()
        .await;
    assert_eq!(res.text(), "abc");
    let res = client
        .get("/bearer")
        .header("authorization", "Basic abc")
        .send()
        .await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.header("www-authenticate"), Some("Bearer"));
    assert_eq!(res.json::<Value>(), json!({"detail": "Not authenticated"}));
    assert_eq!(
        client
            .get("/oauth")
            .header("authorization", "bearer xyz")
            .send()
            .await
            .text(),
        "xyz"
    );
    assert_eq!(client.get("/oauth").send().await.status(), 401);
    let res = client
        .post("/token")
        .form(&json!({"username": "ada@example.com", "password": "pw", "scope": "read write"}))
        .send()
        .await;
    assert_eq!(
        res.json::<Value>(),
        json!({"user": "ada@example.com", "scopes": ["read", "write"]})
    );
    // "ada:pw" in base64.
    assert_eq!(
        client
            .get("/basic")
            .header("authorization", "Basic YWRhOnB3")
            .send()
            .await
            .text(),
        "ada:pw"
    );
    let res = client
        .get("/basic")
        .header("authorization", "Basic !!!")
        .send()
        .await;
    assert_eq!(
        (res.status().as_u16(), res.header("www-authenticate")),
        (401, Some("Basic"))
    );
    assert_eq!(
        client
            .get("/hkey")
            .header("x-api-key", "k1")
            .send()
            .await
            .text(),
        "k1"
    );
    assert_eq!(client.get("/hkey").send().await.status(), 401);
    assert_eq!(client.get("/qkey?api_key=k2").send().await.text(), "k2");
    assert_eq!(client.get("/qkey").send().await.status(), 401);
    assert_eq!(
        client
            .get("/ckey")
            .header("cookie", "a=1; key=k3")
            .send()
            .await
            .text(),
        "k3"
    );
    assert_eq!(client.get("/ckey").send().await.status(), 401);
}

#[test]
fn each_scheme_is_documented() {
    let doc = serde_json::to_value(app().build().unwrap().openapi()).unwrap();
    assert_eq!(
        doc["components"]["securitySchemes"],
        json!({
            "HTTPBearer": {"type": "http", "scheme": "bearer"},
            "OAuth2PasswordBearer": {"type": "oauth2", "flows": {"password": {"scopes": {"read": "Read things"}, "tokenUrl": "/token"}}},
            "HTTPBasic": {"type": "http", "scheme": "basic"},
            "HeaderKey": {"type": "apiKey", "name": "x-api-key", "in": "header"},
            "QueryKey": {"type": "apiKey", "name": "api_key", "in": "query"},
            "CookieKey": {"type": "apiKey", "name": "key", "in": "cookie"}
        })
    );
    assert_eq!(
        doc["paths"]["/oauth"]["get"]["security"],
        json!([{"OAuth2PasswordBearer": []}])
    );
    assert_eq!(
        doc["paths"]["/qkey"]["get"]["security"],
        json!([{"QueryKey": []}])
    );
    assert!(doc["paths"]["/token"]["post"].get("security").is_none());
}

/// Issue 18 item 12: the framework's own document text says nothing of any
/// particular application (it described `username` as the reference
/// service's e-mail address in every user's docs).
#[tokio::test]
async fn the_framework_describes_its_types_for_any_application() {
    let doc: Value = TestClient::new(app())
        .get("/openapi.json")
        .send()
        .await
        .json();
    let text = doc.to_string().to_lowercase();
    assert!(!text.contains("reference service"), "{text}");
    let username =
        &doc["components"]["schemas"]["OAuth2PasswordRequestForm"]["properties"]["username"];
    assert_eq!(
        username["description"],
        "The user's name: whatever identifies the user to your application\n(a login, an e-mail address).",
        "{username}"
    );
}
