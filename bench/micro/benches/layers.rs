//! The layers the architecture overview times, in process: each request goes
//! through the router as a tower service (`oneshot`), no sockets, so the
//! numbers are the framework's own work. Each ferrapi figure has its
//! bare-axum (serde + garde by hand) neighbour in the same group.
//!
//! `cargo bench -p ferrapi-micro` (in bench/); `-- --quick` for a short run;
//! a group name filters, e.g. `-- routing`.

use axum::body::Body;
use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use ferrapi::extract::{Dependency, Depends, Rejection, RequestContext};
use ferrapi::http;
use ferrapi::http::request::Parts;
use ferrapi::prelude::*;
use http_body_util::BodyExt;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use tower::ServiceExt;

// ---------------------------------------------------------------- models

#[derive(Deserialize, JsonSchema, Validate)]
struct UserCreate {
    #[garde(length(chars, min = 2, max = 50))]
    name: String,
    #[garde(email)]
    email: String,
    #[garde(range(min = 18, max = 120))]
    age: i64,
    #[garde(inner(length(chars, min = 8, max = 128)))]
    #[serde(default)]
    password: Option<String>,
}

#[derive(Serialize, JsonSchema, Clone)]
struct UserResponse {
    id: i64,
    name: String,
    email: String,
    created_at: String,
}

#[derive(Serialize, JsonSchema)]
struct UserOut {
    id: i64,
    name: String,
    email: String,
}

const VALID: &str =
    r#"{"name":"Jane Doe","email":"jane@example.com","age":30,"password":"s3cret-pass"}"#;
const INVALID: &str = r#"{"name":"J","email":"not-an-email","age":10}"#;

fn created_at() -> String {
    "2024-01-01T00:00:00Z".to_owned()
}

// ---------------------------------------------------------------- ferrapi app

#[derive(Clone, Default)]
struct Ids(Arc<AtomicI64>);

async fn read_user(Path(id): Path<i64>) -> Json<UserOut> {
    Json(UserOut {
        id,
        name: format!("User {id}"),
        email: format!("user{id}@example.com"),
    })
}

async fn create_user(
    State(ids): State<Ids>,
    Json(user): Json<UserCreate>,
) -> Created<UserResponse> {
    let id = ids.0.fetch_add(1, Ordering::Relaxed) + 1;
    Created::new(
        format!("/users/{id}"),
        UserResponse {
            id,
            name: user.name,
            email: user.email,
            created_at: created_at(),
        },
    )
}

async fn other(Path(item_id): Path<i64>) -> Json<i64> {
    Json(item_id)
}

/// `n` routes in all: `n - 2` others, then the measured two.
fn ferrapi_app(n: usize) -> axum::Router {
    let mut app = App::new().state(Ids::default());
    for i in 0..n.saturating_sub(2) {
        app = app.route(
            Route::get(format!("/items{i}/{{item_id}}"), other).operation_id(format!("item{i}")),
        );
    }
    app.route(Route::get("/users/{id}", read_user))
        .route(Route::post("/users", create_user).status(ferrapi::http::StatusCode::CREATED))
        .into_router()
        .expect("valid routes")
}

// ---------------------------------------------------------------- axum app

mod bare {
    use super::*;
    use axum::extract::{Path, State};
    use axum::http::{StatusCode, header};
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};
    use axum::{Json, Router};

    /// The same model for the bare-axum neighbour: serde's and garde's
    /// own derives, checked by hand as an axum user would.
    #[derive(serde::Deserialize, garde::Validate)]
    pub(super) struct UserCreate {
        #[garde(length(chars, min = 2, max = 50))]
        pub name: String,
        #[garde(email)]
        pub email: String,
        #[garde(range(min = 18, max = 120))]
        pub age: i64,
        #[garde(inner(length(chars, min = 8, max = 128)))]
        #[serde(default)]
        pub password: Option<String>,
    }

    #[derive(Serialize)]
    struct FieldError {
        loc: String,
        msg: String,
    }

    async fn read_user(Path(id): Path<i64>) -> Json<UserOut> {
        Json(UserOut {
            id,
            name: format!("User {id}"),
            email: format!("user{id}@example.com"),
        })
    }

    async fn create_user(State(ids): State<Ids>, Json(user): Json<UserCreate>) -> Response {
        if let Err(report) = garde::Validate::validate(&user) {
            let detail: Vec<FieldError> = report
                .iter()
                .map(|(path, error)| FieldError {
                    loc: path.to_string(),
                    msg: error.to_string(),
                })
                .collect();
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(serde_json::json!({ "detail": detail })),
            )
                .into_response();
        }
        let id = ids.0.fetch_add(1, Ordering::Relaxed) + 1;
        (
            StatusCode::CREATED,
            [(header::LOCATION, format!("/users/{id}"))],
            Json(UserResponse {
                id,
                name: user.name,
                email: user.email,
                created_at: created_at(),
            }),
        )
            .into_response()
    }

    async fn other(Path(item_id): Path<i64>) -> Json<i64> {
        Json(item_id)
    }

    pub fn app(n: usize) -> Router {
        let mut router = Router::new();
        for i in 0..n.saturating_sub(2) {
            router = router.route(&format!("/items{i}/{{item_id}}"), get(other));
        }
        router
            .route("/users/{id}", get(read_user))
            .route("/users", post(create_user))
            .with_state(Ids::default())
    }
}

// ---------------------------------------------------------------- helpers

fn get_req(path: &str) -> http::Request<Body> {
    http::Request::get(path)
        .body(Body::empty())
        .expect("request")
}

fn post_req(body: &'static str) -> http::Request<Body> {
    http::Request::post("/users")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("request")
}

/// One request through the router, body read to the end.
async fn call(router: &axum::Router, req: http::Request<Body>) -> u16 {
    let res = router.clone().oneshot(req).await.expect("infallible");
    let status = res.status().as_u16();
    let _ = black_box(res.into_body().collect().await.expect("body").to_bytes());
    status
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

// ---------------------------------------------------------------- benches

fn routing(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("routing");
    for n in [10, 100, 1000] {
        let f = ferrapi_app(n);
        assert_eq!(rt.block_on(call(&f, get_req("/users/42"))), 200);
        g.bench_with_input(
            BenchmarkId::new("ferrapi GET /users/{id}", n),
            &n,
            |b, _| b.to_async(&rt).iter(|| call(&f, get_req("/users/42"))),
        );
        let a = bare::app(n);
        g.bench_with_input(BenchmarkId::new("axum GET /users/{id}", n), &n, |b, _| {
            b.to_async(&rt).iter(|| call(&a, get_req("/users/42")))
        });
        // The radix tree alone (matchit, which both use).
        let mut m = matchit::Router::new();
        for i in 0..n - 1 {
            m.insert(format!("/items{i}/{{item_id}}"), i)
                .expect("route");
        }
        m.insert("/users/{id}", n).expect("route");
        g.bench_with_input(BenchmarkId::new("matchit lookup", n), &n, |b, _| {
            b.iter(|| black_box(m.at(black_box("/users/42")).map(|m| *m.value)))
        });
    }
    g.finish();
}

#[derive(Clone)]
struct Settings(Arc<str>);

impl Dependency for Settings {
    async fn resolve(_parts: &mut Parts, _cx: &RequestContext) -> Result<Self, Rejection> {
        Ok(Settings(Arc::from("hello")))
    }
}

#[derive(Clone)]
struct Greeting(String);

impl Dependency for Greeting {
    async fn resolve(parts: &mut Parts, cx: &RequestContext) -> Result<Self, Rejection> {
        use ferrapi::FromRequestParts;
        let Depends(s) = Depends::<Settings>::from_request_parts(parts, cx).await?;
        Ok(Greeting(format!("{}!", s.0)))
    }
}

async fn no_deps() -> &'static str {
    "hello!"
}

async fn one_dep(Depends(s): Depends<Settings>) -> String {
    s.0.to_string()
}

/// Greeting needs Settings, and the handler asks for Settings too: the
/// second ask is answered from the request's cache.
async fn nested_cached(Depends(g): Depends<Greeting>, Depends(_s): Depends<Settings>) -> String {
    g.0
}

fn dependencies(c: &mut Criterion) {
    let rt = runtime();
    let app = App::new()
        .route(Route::get("/none", no_deps))
        .route(Route::get("/one", one_dep))
        .route(Route::get("/nested", nested_cached))
        .into_router()
        .expect("valid routes");
    let mut g = c.benchmark_group("dependencies");
    for (name, path) in [
        ("no dependency", "/none"),
        ("one, fresh", "/one"),
        ("nested + cached reuse", "/nested"),
    ] {
        assert_eq!(rt.block_on(call(&app, get_req(path))), 200);
        g.bench_function(name, |b| b.to_async(&rt).iter(|| call(&app, get_req(path))));
    }
    g.finish();
}

fn validation(c: &mut Criterion) {
    let rt = runtime();
    let f = ferrapi_app(2);
    let a = bare::app(2);
    assert_eq!(rt.block_on(call(&f, post_req(VALID))), 201);
    assert_eq!(rt.block_on(call(&a, post_req(VALID))), 201);
    assert_eq!(rt.block_on(call(&f, post_req(INVALID))), 422);
    assert_eq!(rt.block_on(call(&a, post_req(INVALID))), 422);
    let mut g = c.benchmark_group("validation");
    g.bench_function("serde_json + garde only, UserCreate", |b| {
        b.iter(|| {
            let u: bare::UserCreate = serde_json::from_str(black_box(VALID)).expect("valid");
            black_box(garde::Validate::validate(&u).is_ok())
        })
    });
    g.bench_function("ferrapi POST /users valid → 201", |b| {
        b.to_async(&rt).iter(|| call(&f, post_req(VALID)))
    });
    g.bench_function("axum POST /users valid → 201", |b| {
        b.to_async(&rt).iter(|| call(&a, post_req(VALID)))
    });
    g.bench_function("ferrapi POST /users invalid → 422", |b| {
        b.to_async(&rt).iter(|| call(&f, post_req(INVALID)))
    });
    g.bench_function("axum POST /users invalid → 422", |b| {
        b.to_async(&rt).iter(|| call(&a, post_req(INVALID)))
    });
    g.finish();
}

fn serialization(c: &mut Criterion) {
    let user = UserResponse {
        id: 42,
        name: "Jane Doe".into(),
        email: "jane@example.com".into(),
        created_at: created_at(),
    };
    let mut g = c.benchmark_group("serialization");
    g.bench_function("serde_json::to_vec(UserResponse)", |b| {
        b.iter(|| black_box(serde_json::to_vec(black_box(&user)).expect("serializes")))
    });
    g.finish();
}

fn openapi(c: &mut Criterion) {
    let mut g = c.benchmark_group("openapi");
    g.sample_size(20);
    g.bench_function("App::build, 500 routes", |b| {
        b.iter_batched(
            || {
                let mut app = App::new().title("500 routes");
                for i in 0..250 {
                    app = app
                        .route(
                            Route::get(format!("/r{i}/users/{{id}}"), read_user)
                                .operation_id(format!("read{i}"))
                                .tags(["users"]),
                        )
                        .route(
                            Route::post(format!("/r{i}/users"), create_user)
                                .operation_id(format!("create{i}"))
                                .tags(["users"]),
                        );
                }
                app.state(Ids::default())
            },
            |app| black_box(app.build().expect("valid routes")),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(
    benches,
    routing,
    dependencies,
    validation,
    serialization,
    openapi
);
criterion_main!(benches);
