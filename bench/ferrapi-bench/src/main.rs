//! The bench endpoints on ferrapi, written as a ferrapi user would write
//! them (see `bench/README.md` for the endpoints and their semantics).
//!
//! `PORT` (default 8001) and `DATABASE_URL` (optional: without it,
//! `/db/users/{id}` answers 503) come from the environment; `HOST` defaults
//! to 127.0.0.1 here. `BENCH_MIDDLEWARE=1` installs the default middleware
//! stack (`Stack::defaults()`: request id, trace context, timing, security
//! headers, compression (skipped on these small bodies), panic catching)
//! and Prometheus metrics (`App::metrics`). The runtime has one worker per
//! core it may run on
//! (`taskset -c 1` gives one), as every Rust server of the harness.

use chrono::{DateTime, SecondsFormat, Utc};
use ferrapi::prelude::*;
use sqlx::postgres::{PgPool, PgPoolOptions};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

#[derive(Serialize, JsonSchema)]
struct Message {
    message: &'static str,
}

/// A user as `GET /users/{id}` shows it.
#[derive(Serialize, JsonSchema)]
struct UserOut {
    id: i64,
    name: String,
    email: String,
}

/// A new user: the reference service's `UserCreate`.
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

/// A created or stored user.
#[derive(Serialize, JsonSchema)]
struct UserResponse {
    id: i64,
    name: String,
    email: String,
    created_at: String,
}

/// The in-memory id counter of `POST /users`.
#[derive(Clone, Default)]
struct Ids(Arc<AtomicI64>);

/// The PostgreSQL pool, when `DATABASE_URL` is set.
#[derive(Clone)]
struct Db(Option<PgPool>);

#[get("/plaintext")]
async fn plaintext() -> &'static str {
    "Hello, World!"
}

#[get("/json")]
async fn json() -> Json<Message> {
    Json(Message {
        message: "Hello, World!",
    })
}

#[get("/users/{id}")]
async fn read_user(Path(id): Path<i64>) -> Json<UserOut> {
    Json(UserOut {
        id,
        name: format!("User {id}"),
        email: format!("user{id}@example.com"),
    })
}

#[post("/users", status = 201)]
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
            created_at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        },
    )
}

#[get("/db/users/{id}")]
async fn read_db_user(
    State(db): State<Db>,
    Path(id): Path<i64>,
) -> Result<Json<UserResponse>, HttpError> {
    let Some(pool) = db.0 else {
        return Err(HttpError::new(
            ferrapi::http::StatusCode::SERVICE_UNAVAILABLE,
            "DATABASE_URL is not set",
        ));
    };
    let row: Option<(i64, String, String, DateTime<Utc>)> =
        sqlx::query_as("SELECT id, name, email, created_at FROM bench_users WHERE id = $1")
            .bind(id)
            .fetch_optional(&pool)
            .await
            .map_err(|_| HttpError::internal())?;
    match row {
        Some((id, name, email, created_at)) => Ok(Json(UserResponse {
            id,
            name,
            email,
            created_at: created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        })),
        None => Err(HttpError::not_found("User not found")),
    }
}

async fn other_item(Path(item_id): Path<i64>) -> Json<UserOut> {
    Json(UserOut {
        id: item_id,
        name: String::new(),
        email: String::new(),
    })
}

async fn other_stats() -> Json<Message> {
    Json(Message { message: "stats" })
}

/// The app: 100 other routes registered before the measured ones, as in
/// every server of the harness.
fn app(db: Db) -> App {
    let mut app = App::new().title("ferrapi-bench");
    for i in 0..100 {
        app = app.route(if i % 2 == 0 {
            Route::get(format!("/items{i}/{{item_id}}"), other_item)
                .operation_id(format!("item{i}"))
        } else {
            Route::get(format!("/items{i}/stats"), other_stats).operation_id(format!("stats{i}"))
        });
    }
    app.state(Ids::default())
        .state(db)
        .route(plaintext)
        .route(json)
        .route(read_user)
        .route(create_user)
        .route(read_db_user)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let db = match std::env::var("DATABASE_URL") {
            Ok(url) if !url.is_empty() => Db(Some(
                PgPoolOptions::new()
                    .max_connections(10)
                    .connect(&url)
                    .await?,
            )),
            _ => Db(None),
        };
        let mut config = ferrapi::ServeConfig::from_env()?;
        if std::env::var_os("HOST").is_none() {
            config.host = [127, 0, 0, 1].into();
        }
        if std::env::var_os("PORT").is_none() {
            config.port = 8001;
        }
        let listener = tokio::net::TcpListener::bind((config.host, config.port)).await?;
        let mut app = app(db);
        if std::env::var_os("BENCH_MIDDLEWARE").is_some_and(|v| v == "1") {
            // Issues 5's and 10's default stack: request id, trace context,
            // timing, security headers, compression, panic catching, and
            // Prometheus metrics.
            app = app
                .metrics(
                    "/metrics",
                    std::sync::Arc::new(ferrapi::metrics::Metrics::new()),
                )
                .middleware(ferrapi::middleware::Stack::defaults());
        }
        app.serve_with(listener, config, ferrapi::shutdown_signal())
            .await?;
        Ok(())
    })
}
