//! The OpenAPI document: exact JSON for models, parameters, bodies,
//! responses, security, versions and metadata.

use ferrapi::ApiError;
use ferrapi::extract::{FromRequestParts, Rejection, RequestContext};
use ferrapi::http::request::Parts;
use ferrapi::openapi::{DescribeInput, OperationBuilder};
use ferrapi::prelude::*;
use serde_json::{Value, json};

/// A user to create.
#[derive(Debug, Deserialize, Serialize, JsonSchema, Validate)]
struct Constrained {
    /// Display name.
    #[garde(length(chars, min = 2, max = 50))]
    name: String,
    #[garde(email)]
    email: String,
    #[garde(url)]
    homepage: String,
    #[garde(pattern(r"^[a-z]+$"))]
    slug: String,
    #[garde(range(min = 18, max = 120))]
    age: i64,
    #[garde(range(min = 0.0, max = 1.0))]
    ratio: f64,
    #[garde(length(min = 1, max = 3))]
    tags: Vec<String>,
    #[garde(skip)]
    nickname: Option<String>,
    #[garde(skip)]
    #[serde(default)]
    role: Role,
}

/// A role.
#[derive(Debug, Default, Deserialize, Serialize, JsonSchema, Clone, Copy, Validate)]
#[serde(rename_all = "lowercase")]
enum Role {
    Admin,
    #[default]
    User,
}

#[derive(Debug, Serialize, JsonSchema)]
struct Address {
    city: String,
}

#[derive(Debug, Serialize, JsonSchema)]
struct Person {
    name: String,
    address: Address,
}

#[derive(Debug, Serialize, JsonSchema)]
struct Page<T> {
    items: Vec<T>,
    next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema, Validate)]
#[allow(dead_code)]
struct Filters {
    /// How many to skip.
    #[serde(default)]
    #[garde(range(min = 0))]
    skip: u32,
    q: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema, Validate)]
#[allow(dead_code)]
struct Headers {
    x_token: String,
}

#[derive(Debug, Deserialize, JsonSchema, Validate)]
#[allow(dead_code)]
struct Cookies {
    session: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema, Validate)]
#[allow(dead_code)]
struct LoginForm {
    username: String,
    password: String,
}

#[derive(Debug, thiserror::Error, ApiError)]
enum PersonError {
    #[error("Person not found")]
    #[api(status = 404)]
    NotFound,
    #[error("Not your person")]
    #[api(status = 403)]
    Forbidden,
    #[error("Gone for good")]
    #[api(status = 404, description = "Deleted")]
    Deleted,
    #[error("database down: {0}")]
    Database(String),
}

/// Bearer token auth, declared by the extractor itself.
struct Bearer;

impl FromRequestParts for Bearer {
    async fn from_request_parts(_: &mut Parts, _: &RequestContext) -> Result<Self, Rejection> {
        Ok(Bearer)
    }
}
impl DescribeInput for Bearer {
    fn describe(op: &mut OperationBuilder<'_>) {
        op.security(
            "HTTPBearer",
            json!({"type": "http", "scheme": "bearer"}),
            &[],
        );
    }
}

/// Create a constrained thing.
#[post("/v1/things", status = 201, tags = ["things"])]
async fn create_thing(Json(_t): Json<Constrained>) -> NoContent {
    NoContent
}

#[get("/v1/people/{person_id}", tags = ["people"])]
async fn read_person(
    _auth: Bearer,
    Path(_id): Path<i64>,
    Query(_f): Query<Filters>,
    Header(_h): Header<Headers>,
    Cookie(_c): Cookie<Cookies>,
) -> Result<Json<Person>, PersonError> {
    Err(PersonError::NotFound)
}

#[get("/v2/people", tags = ["people"], deprecated)]
async fn list_people() -> Json<Page<Person>> {
    Json(Page {
        items: vec![],
        next_cursor: None,
    })
}

#[get("/v2/addresses", tags = ["people"])]
async fn list_addresses() -> Json<Page<Address>> {
    Json(Page {
        items: vec![],
        next_cursor: None,
    })
}

#[post("/v2/login", responses(401 = "Bad credentials"))]
async fn login(Form(_f): Form<LoginForm>) -> &'static str {
    "ok"
}

fn document() -> Value {
    let app = App::new()
        .title("Things")
        .version("2.0.0")
        .description("All the things.")
        .terms_of_service("https://example.com/terms")
        .contact(ferrapi::openapi::Contact {
            name: Some("Ops".into()),
            email: Some("ops@example.com".into()),
            url: None,
        })
        .license(ferrapi::openapi::License {
            name: "MIT".into(),
            identifier: Some("MIT".into()),
            url: None,
        })
        .server("https://api.example.com", Some("production"))
        .external_docs("https://docs.example.com", None)
        .tag("people", "People and their things.")
        .document("v1", "/v1")
        .route(create_thing)
        .route(read_person)
        .route(list_people)
        .route(list_addresses)
        .route(login);
    serde_json::to_value(app.build().unwrap().openapi()).unwrap()
}

fn op(doc: &Value, path: &str, method: &str) -> Value {
    doc["paths"][path][method].clone()
}

#[test]
fn model_with_every_constraint_kind() {
    let doc = document();
    assert_eq!(
        doc["components"]["schemas"]["Constrained"],
        json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "Display name.", "minLength": 2, "maxLength": 50},
                "email": {"type": "string", "format": "email"},
                "homepage": {"type": "string", "format": "uri"},
                "slug": {"type": "string", "pattern": "^[a-z]+$"},
                "age": {"type": "integer", "format": "int64", "minimum": 18, "maximum": 120},
                "ratio": {"type": "number", "format": "double", "minimum": 0.0, "maximum": 1.0},
                "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3},
                "nickname": {"type": ["string", "null"]},
                "role": {"$ref": "#/components/schemas/Role", "default": "user"}
            },
            "required": ["name", "email", "homepage", "slug", "age", "ratio", "tags"],
            "description": "A user to create."
        })
    );
    assert_eq!(
        doc["components"]["schemas"]["Role"],
        json!({"type": "string", "enum": ["admin", "user"], "description": "A role."})
    );
    let create = op(&doc, "/v1/things", "post");
    assert_eq!(
        create["requestBody"],
        json!({"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Constrained"}}}, "required": true})
    );
    assert_eq!(create["summary"], "Create a constrained thing.");
    assert_eq!(
        create["responses"]["204"],
        json!({"description": "Successful Response"})
    );
}

#[test]
fn nested_and_generic_models_are_components_without_clashes() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["Person"],
        json!({"type": "object", "properties": {"name": {"type": "string"}, "address": {"$ref": "#/components/schemas/Address"}}, "required": ["name", "address"]})
    );
    assert_eq!(
        schemas["Address"],
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
    );
    let people =
        op(&doc, "/v2/people", "get")["responses"]["200"]["content"]["application/json"]["schema"]
            ["$ref"]
            .clone();
    let addresses = op(&doc, "/v2/addresses", "get")["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].clone();
    assert_ne!(
        people, addresses,
        "Page<Person> and Page<Address> must not share a name"
    );
    for r in [people, addresses] {
        let name = r
            .as_str()
            .unwrap()
            .trim_start_matches("#/components/schemas/");
        let page = &schemas[name];
        assert_eq!(page["type"], "object", "{name}");
        assert_eq!(
            page["properties"]["next_cursor"],
            json!({"type": ["string", "null"]})
        );
    }
}

#[test]
fn parameters_of_every_kind() {
    let doc = document();
    assert_eq!(
        op(&doc, "/v1/people/{person_id}", "get")["parameters"],
        json!([
            {"name": "person_id", "in": "path", "required": true, "schema": {"type": "integer", "format": "int64"}},
            {"name": "skip", "in": "query", "required": false, "schema": {"type": "integer", "format": "uint32", "minimum": 0, "default": 0}, "description": "How many to skip."},
            {"name": "q", "in": "query", "required": false, "schema": {"type": ["string", "null"]}},
            {"name": "x-token", "in": "header", "required": true, "schema": {"type": "string"}},
            {"name": "session", "in": "cookie", "required": false, "schema": {"type": ["string", "null"]}}
        ])
    );
}

#[test]
fn responses_from_the_error_type_and_the_route() {
    let doc = document();
    let http_error =
        json!({"application/json": {"schema": {"$ref": "#/components/schemas/HTTPError"}}});
    let read = op(&doc, "/v1/people/{person_id}", "get");
    assert_eq!(
        read["responses"],
        json!({
            "200": {"description": "Successful Response", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Person"}}}},
            "404": {"description": "Person not found / Deleted", "content": http_error},
            "403": {"description": "Not your person", "content": http_error},
            "422": {"description": "Validation Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}}}
        })
    );
    assert_eq!(
        doc["components"]["schemas"]["HTTPError"],
        json!({"type": "object", "title": "HTTPError", "properties": {"detail": {"type": "string", "title": "Detail"}}, "required": ["detail"]})
    );
    let login_op = op(&doc, "/v2/login", "post");
    assert_eq!(
        login_op["responses"]["401"],
        json!({"description": "Bad credentials"})
    );
    assert_eq!(
        login_op["requestBody"],
        json!({"content": {"application/x-www-form-urlencoded": {"schema": {"$ref": "#/components/schemas/LoginForm"}}}, "required": true})
    );
}

#[tokio::test]
async fn error_types_answer_with_their_status() {
    let client = ferrapi::testing::TestClient::new(App::new().route(read_person));
    let res = client
        .get("/v1/people/1")
        .header("x-token", "t")
        .send()
        .await;
    assert_eq!(res.status(), 404);
    assert_eq!(res.json::<Value>(), json!({"detail": "Person not found"}));
    let _ = (
        PersonError::Forbidden,
        PersonError::Deleted,
        PersonError::Database(String::new()),
    );
}

#[test]
fn validation_error_components_are_fastapis() {
    let doc = document();
    assert_eq!(
        doc["components"]["schemas"]["HTTPValidationError"],
        json!({"properties": {"detail": {"items": {"$ref": "#/components/schemas/ValidationError"}, "type": "array", "title": "Detail"}}, "type": "object", "title": "HTTPValidationError"})
    );
    assert_eq!(
        doc["components"]["schemas"]["ValidationError"],
        json!({
            "properties": {
                "loc": {"items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}, "type": "array", "title": "Location"},
                "msg": {"type": "string", "title": "Message"},
                "type": {"type": "string", "title": "Error Type"},
                "input": {"title": "Input"},
                "ctx": {"type": "object", "title": "Context"}
            },
            "type": "object",
            "required": ["loc", "msg", "type"],
            "title": "ValidationError"
        })
    );
    // Operations without input document no 422.
    assert!(
        op(&doc, "/v2/people", "get")["responses"]
            .get("422")
            .is_none()
    );
}

#[test]
fn deprecated_and_security() {
    let doc = document();
    assert_eq!(op(&doc, "/v2/people", "get")["deprecated"], true);
    assert!(
        op(&doc, "/v1/people/{person_id}", "get")
            .get("deprecated")
            .is_none()
    );
    assert_eq!(
        op(&doc, "/v1/people/{person_id}", "get")["security"],
        json!([{"HTTPBearer": []}])
    );
    assert!(op(&doc, "/v2/people", "get").get("security").is_none());
    assert_eq!(
        doc["components"]["securitySchemes"],
        json!({"HTTPBearer": {"type": "http", "scheme": "bearer"}})
    );
}

#[test]
fn metadata() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["info"],
        json!({
            "title": "Things", "version": "2.0.0", "description": "All the things.",
            "termsOfService": "https://example.com/terms",
            "contact": {"name": "Ops", "email": "ops@example.com"},
            "license": {"name": "MIT", "identifier": "MIT"}
        })
    );
    assert_eq!(
        doc["servers"],
        json!([{"url": "https://api.example.com", "description": "production"}])
    );
    assert_eq!(
        doc["externalDocs"],
        json!({"url": "https://docs.example.com"})
    );
    assert_eq!(
        doc["tags"],
        json!([{"name": "people", "description": "People and their things."}])
    );
}

#[tokio::test]
async fn versioned_documents_hold_their_prefix_only() {
    let app = App::new()
        .document("v1", "/v1")
        .tag("people", "People.")
        .tag("things", "Things.")
        .route(create_thing)
        .route(read_person)
        .route(list_people)
        .route(login);
    let client = ferrapi::testing::TestClient::new(app);
    let v1: Value = client.get("/openapi/v1.json").send().await.json();
    let paths: Vec<&String> = v1["paths"].as_object().unwrap().keys().collect();
    assert_eq!(paths, ["/v1/things", "/v1/people/{person_id}"]);
    let schemas: Vec<&String> = v1["components"]["schemas"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    for kept in [
        "Constrained",
        "Role",
        "Person",
        "Address",
        "HTTPError",
        "HTTPValidationError",
        "ValidationError",
    ] {
        assert!(
            schemas.iter().any(|s| *s == kept),
            "{kept} missing from {schemas:?}"
        );
    }
    assert!(!schemas.iter().any(|s| *s == "LoginForm"), "{schemas:?}");
    assert_eq!(
        v1["components"]["securitySchemes"],
        json!({"HTTPBearer": {"type": "http", "scheme": "bearer"}})
    );
    assert_eq!(
        v1["tags"],
        json!([{"name": "people", "description": "People."}, {"name": "things", "description": "Things."}])
    );
    let all: Value = client.get("/openapi.json").send().await.json();
    assert_eq!(all["paths"].as_object().unwrap().len(), 4);
}

#[test]
fn a_document_of_500_routes_is_built() {
    let mut app = App::new();
    for i in 0..500 {
        let route =
            Route::post(format!("/r{i}/{{person_id}}"), read_person_plain).name(format!("op{i}"));
        app = app.route(route);
    }
    let started = std::time::Instant::now();
    let built = app.build().unwrap();
    let elapsed = started.elapsed();
    assert_eq!(built.openapi().paths.len(), 500);
    // The issue's target is 50 ms on a release build; a debug build on a
    // shared machine gets ten times that.
    assert!(
        elapsed < std::time::Duration::from_millis(500),
        "{elapsed:?}"
    );
    println!("500 routes: {elapsed:?}");
}

async fn read_person_plain(
    Path(_id): Path<i64>,
    Query(_f): Query<Filters>,
    Json(_t): Json<Constrained>,
) -> Json<Person> {
    Json(Person {
        name: String::new(),
        address: Address {
            city: String::new(),
        },
    })
}
