//! The bench endpoints on bare axum, serde and garde: what a Rust user would
//! write instead of ferrapi. Validation failures answer 422 with a simple
//! body built by hand; a body serde cannot read gets axum's own rejection.
//!
//! `PORT` (default 8002), `HOST` (default 127.0.0.1), `DATABASE_URL`
//! (optional: without it, `/db/users/{id}` answers 503).

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use garde::Validate;
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgPool, PgPoolOptions};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

#[derive(Serialize)]
struct Message {
    message: &'static str,
}

#[derive(Serialize)]
struct UserOut {
    id: i64,
    name: String,
    email: String,
}

#[derive(Deserialize, Validate)]
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

#[derive(Serialize)]
struct UserResponse {
    id: i64,
    name: String,
    email: String,
    created_at: String,
}

#[derive(Serialize)]
struct FieldError {
    loc: String,
    msg: String,
}

#[derive(Clone)]
struct AppState {
    ids: Arc<AtomicI64>,
    db: Option<PgPool>,
}

async fn plaintext() -> &'static str {
    "Hello, World!"
}

async fn json() -> Json<Message> {
    Json(Message {
        message: "Hello, World!",
    })
}

async fn read_user(Path(id): Path<i64>) -> Json<UserOut> {
    Json(UserOut {
        id,
        name: format!("User {id}"),
        email: format!("user{id}@example.com"),
    })
}

async fn create_user(State(state): State<AppState>, Json(user): Json<UserCreate>) -> Response {
    if let Err(report) = user.validate() {
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
    let id = state.ids.fetch_add(1, Ordering::Relaxed) + 1;
    (
        StatusCode::CREATED,
        [(header::LOCATION, format!("/users/{id}"))],
        Json(UserResponse {
            id,
            name: user.name,
            email: user.email,
            created_at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        }),
    )
        .into_response()
}

async fn read_db_user(State(state): State<AppState>, Path(id): Path<i64>) -> Response {
    let Some(pool) = state.db else {
        return (StatusCode::SERVICE_UNAVAILABLE, "DATABASE_URL is not set").into_response();
    };
    let row: Result<Option<(i64, String, String, DateTime<Utc>)>, _> =
        sqlx::query_as("SELECT id, name, email, created_at FROM bench_users WHERE id = $1")
            .bind(id)
            .fetch_optional(&pool)
            .await;
    match row {
        Ok(Some((id, name, email, created_at))) => Json(UserResponse {
            id,
            name,
            email,
            created_at: created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        })
        .into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"detail": "User not found"})),
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
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

fn app(state: AppState) -> Router {
    let mut router = Router::new();
    for i in 0..100 {
        router = if i % 2 == 0 {
            router.route(&format!("/items{i}/{{item_id}}"), get(other_item))
        } else {
            router.route(&format!("/items{i}/stats"), get(other_stats))
        };
    }
    router
        .route("/plaintext", get(plaintext))
        .route("/json", get(json))
        .route("/users/{id}", get(read_user))
        .route("/users", post(create_user))
        .route("/db/users/{id}", get(read_db_user))
        .with_state(state)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let db = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(
            PgPoolOptions::new()
                .max_connections(10)
                .connect(&url)
                .await?,
        ),
        _ => None,
    };
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port: u16 = std::env::var("PORT").map_or(Ok(8002), |p| p.parse())?;
    let listener = tokio::net::TcpListener::bind((host.as_str(), port)).await?;
    let state = AppState {
        ids: Arc::default(),
        db,
    };
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
