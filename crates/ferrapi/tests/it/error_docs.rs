//! `errors(...)` on a route: the operation documents the variants of its
//! `#[derive(ApiError)]` type that it names, not every status of the type.

use ferrapi::ApiError;
use ferrapi::prelude::*;
use ferrapi::testing::TestClient;
use serde_json::{Value, json};

#[derive(Debug, thiserror::Error, ApiError)]
enum UserError {
    #[error("User not found")]
    #[api(status = 404)]
    NotFound,
    #[error("Email already registered")]
    #[api(status = 409)]
    EmailTaken,
    #[error("Not allowed")]
    #[api(status = 403)]
    Forbidden,
    #[error("Upgrade required")]
    #[api(status = 426)]
    UpgradeRequired { version: u32 },
}

type UserResult<T> = Result<T, UserError>;

/// Can only say "taken".
#[post("/register", status = 201, errors(EmailTaken))]
async fn register(Query(q): Query<Email>) -> Result<Json<String>, UserError> {
    if q.email == "taken@example.com" {
        return Err(UserError::EmailTaken);
    }
    Ok(Json(q.email))
}

#[derive(Deserialize, JsonSchema, Validate)]
struct Email {
    email: String,
}

/// Through a type alias, two variants.
#[get("/users/{id}", errors(NotFound, Forbidden))]
async fn read(Path(id): Path<i64>) -> UserResult<Json<i64>> {
    match id {
        0 => Err(UserError::NotFound),
        1 => Err(UserError::Forbidden),
        _ => Ok(Json(id)),
    }
}

/// No `errors(...)`: every status of the type (the fallback).
#[delete("/users/{id}")]
async fn remove(Path(id): Path<i64>) -> Result<NoContent, UserError> {
    if id == 2 {
        return Err(UserError::UpgradeRequired { version: 2 });
    }
    Ok(NoContent)
}

/// `errors()`: none.
#[get("/ping", errors())]
async fn ping() -> Result<Json<bool>, UserError> {
    Ok(Json(true))
}

fn app() -> App {
    App::new()
        .route(register)
        .route(read)
        .route(remove)
        .route(ping)
}

fn statuses(doc: &Value, path: &str, method: &str) -> Vec<String> {
    doc["paths"][path][method]["responses"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

#[test]
fn routes_document_only_the_errors_they_name() {
    let doc = serde_json::to_value(app().build().unwrap().openapi()).unwrap();
    assert_eq!(statuses(&doc, "/register", "post"), ["201", "409", "422"]);
    assert_eq!(
        doc["paths"]["/register"]["post"]["responses"]["409"]["description"],
        "Email already registered"
    );
    assert_eq!(
        statuses(&doc, "/users/{id}", "get"),
        ["200", "404", "403", "422"]
    );
    assert_eq!(
        statuses(&doc, "/users/{id}", "delete"),
        ["204", "404", "409", "403", "426", "422"]
    );
    assert_eq!(statuses(&doc, "/ping", "get"), ["200"]);
}

#[tokio::test]
async fn errors_list_changes_documentation_not_answers() {
    let client = TestClient::new(app());
    let res = client
        .post("/register?email=taken@example.com")
        .send()
        .await;
    assert_eq!(res.status(), 409);
    assert_eq!(
        res.json::<Value>(),
        json!({"detail": "Email already registered"})
    );
    assert_eq!(client.get("/users/1").send().await.status(), 403);
    assert_eq!(client.delete("/users/2").send().await.status(), 426);
}

/// Behind an alias of `Result` the name cannot be checked at compile time:
/// the application build reports it.
#[get("/alias", errors(NotFund))]
async fn misspelled_behind_alias() -> UserResult<Json<i64>> {
    Ok(Json(1))
}

#[test]
fn a_name_that_is_no_variant_fails_the_build() {
    let Err(err) = App::new().route(misspelled_behind_alias).build() else {
        panic!("the build should fail");
    };
    assert!(
        err.to_string()
            .contains("errors(...) names `NotFund`, which is no variant of `UserError`"),
        "{err}"
    );
}
