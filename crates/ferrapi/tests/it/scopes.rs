//! `Security<D, S>` and `SecurityScopes`: per-route OAuth2 scopes, checked
//! at request time and listed in the operation's security requirement.

use ferrapi::extract::{Dependency, Depends, Rejection, RequestContext};
use ferrapi::http::request::Parts;
use ferrapi::prelude::*;
use ferrapi::security::{
    HasScopes, OAuth2PasswordFlow, OAuth2Token, Scopes, Security, SecurityScopes,
};
use ferrapi::testing::TestClient;
use serde_json::{Value, json};

struct Login;
impl OAuth2PasswordFlow for Login {
    const TOKEN_URL: &'static str = "/token";
    const SCOPES: &'static [(&'static str, &'static str)] = &[
        ("me", "Your profile."),
        ("items", "Items."),
        ("admin", "Everything."),
    ];
}

/// The token is `scope,scope`.
#[derive(Clone, Debug)]
struct User {
    scopes: Vec<String>,
    /// What the dependency saw as required when it ran.
    required: Vec<&'static str>,
}

impl HasScopes for User {
    fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

impl Dependency for User {
    fn describe(op: &mut ferrapi::openapi::OperationBuilder<'_>) {
        <OAuth2Token<Login> as ferrapi::openapi::DescribeInput>::describe(op);
    }
    async fn resolve(parts: &mut Parts, cx: &RequestContext) -> Result<Self, Rejection> {
        let token = <OAuth2Token<Login> as ferrapi::extract::FromRequestParts>::from_request_parts(
            parts, cx,
        )
        .await?;
        let required =
            <SecurityScopes as ferrapi::extract::FromRequestParts>::from_request_parts(parts, cx)
                .await?;
        Ok(User {
            scopes: token.token().split(',').map(str::to_owned).collect(),
            required: required.scopes,
        })
    }
}

ferrapi::scopes!(Items = ["items"]);
ferrapi::scopes!(ItemsAndMe = ["items", "me"]);
ferrapi::scopes!(Admin = ["admin"]);

#[get("/items")]
async fn items(Security(user, _): Security<User, Items>) -> Json<Vec<&'static str>> {
    Json(user.required)
}

#[get("/me/items")]
async fn my_items(user: Security<User, ItemsAndMe>) -> Json<Vec<&'static str>> {
    Json(user.required.clone())
}

/// A route requiring the admin scope through a dependency of its own.
#[derive(Clone)]
struct AdminUser;

impl Dependency for AdminUser {
    fn describe(op: &mut ferrapi::openapi::OperationBuilder<'_>) {
        <Security<User, Admin> as ferrapi::openapi::DescribeInput>::describe(op);
    }
    async fn resolve(parts: &mut Parts, cx: &RequestContext) -> Result<Self, Rejection> {
        <Security<User, Admin> as ferrapi::extract::FromRequestParts>::from_request_parts(
            parts, cx,
        )
        .await?;
        Ok(AdminUser)
    }
}

#[delete("/items", status = 204)]
async fn purge(Depends(_admin): Depends<AdminUser>) -> NoContent {
    NoContent
}

#[get("/open")]
async fn open(Depends(_user): Depends<User>) -> &'static str {
    "ok"
}

fn app() -> App {
    App::new()
        .route(items)
        .route(my_items)
        .route(purge)
        .route(open)
}

async fn get(client: &TestClient, path: &str, token: &str) -> ferrapi::testing::TestResponse {
    client
        .get(path)
        .header("authorization", &format!("Bearer {token}"))
        .send()
        .await
}

#[tokio::test]
async fn token_with_the_scopes_passes_and_the_dependency_sees_them() {
    let client = TestClient::new(app());
    let res = get(&client, "/items", "items").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>(), json!(["items"]));
    let res = get(&client, "/me/items", "me,items").await;
    assert_eq!(res.json::<Value>(), json!(["items", "me"]));
}

#[tokio::test]
async fn missing_scope_is_401_naming_the_required_scopes() {
    let client = TestClient::new(app());
    let res = get(&client, "/me/items", "items").await;
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.json::<Value>(),
        json!({"detail": "Not enough permissions"})
    );
    assert_eq!(
        res.header("www-authenticate"),
        Some(r#"Bearer scope="items me""#)
    );

    let res = client
        .delete("/items")
        .header("authorization", "Bearer items,me")
        .send()
        .await;
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.header("www-authenticate"),
        Some(r#"Bearer scope="admin""#)
    );
    let res = client
        .delete("/items")
        .header("authorization", "Bearer admin")
        .send()
        .await;
    assert_eq!(res.status(), 204);

    // No token at all: the scheme's own 401.
    let res = client.get("/items").send().await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.header("www-authenticate"), Some("Bearer"));
}

#[tokio::test]
async fn overridden_dependency_is_still_checked_for_scopes() {
    let app = app().override_dependency(User {
        scopes: vec!["me".into()],
        required: vec![],
    });
    let client = TestClient::new(app);
    assert_eq!(client.get("/items").send().await.status(), 401);
    assert_eq!(client.get("/open").send().await.status(), 200);
}

#[test]
fn operations_list_their_scopes_in_the_document() {
    let built = app().build().unwrap();
    let doc = serde_json::to_value(built.openapi()).unwrap();
    let security = |path: &str, method: &str| doc["paths"][path][method]["security"].clone();
    assert_eq!(
        security("/items", "get"),
        json!([{"OAuth2PasswordBearer": ["items"]}])
    );
    assert_eq!(
        security("/me/items", "get"),
        json!([{"OAuth2PasswordBearer": ["items", "me"]}])
    );
    assert_eq!(
        security("/items", "delete"),
        json!([{"OAuth2PasswordBearer": ["admin"]}])
    );
    assert_eq!(
        security("/open", "get"),
        json!([{"OAuth2PasswordBearer": []}])
    );
    assert_eq!(
        doc["paths"]["/items"]["get"]["responses"]["401"]["description"],
        "Not enough permissions"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]["password"]["scopes"]
            ["items"],
        "Items."
    );
    assert_eq!(Items::SCOPES, ["items"]);
}
