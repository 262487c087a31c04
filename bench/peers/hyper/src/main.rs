//! The bench endpoints on bare hyper (HTTP/1.1, keep-alive): a hand-written
//! `match` instead of a router, serde and garde by hand. The practical
//! limit of the stack ferrapi and axum stand on.
//!
//! `PORT` (default 8003), `HOST` (default 127.0.0.1), `DATABASE_URL`
//! (optional: without it, `/db/users/{id}` answers 503).

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use garde::Validate;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue, LOCATION};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgPool, PgPoolOptions};
use std::convert::Infallible;
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

#[derive(Serialize)]
struct Detail<T> {
    detail: T,
}

struct AppState {
    ids: AtomicI64,
    db: Option<PgPool>,
}

type Res = Response<Full<Bytes>>;

fn text(status: StatusCode, body: &'static str) -> Res {
    let mut res = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *res.status_mut() = status;
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Res {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut res = Response::new(Full::new(Bytes::from(body)));
            *res.status_mut() = status;
            res.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            res
        }
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "serialization failed"),
    }
}

fn not_found() -> Res {
    text(StatusCode::NOT_FOUND, "Not Found")
}

async fn create_user(state: &AppState, req: Request<Incoming>) -> Res {
    let body = match Limited::new(req.into_body(), 1 << 20).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return text(StatusCode::PAYLOAD_TOO_LARGE, "body too large"),
    };
    let user: UserCreate = match serde_json::from_slice(&body) {
        Ok(u) => u,
        Err(_) => return text(StatusCode::UNPROCESSABLE_ENTITY, "invalid JSON body"),
    };
    if let Err(report) = user.validate() {
        let detail: Vec<FieldError> = report
            .iter()
            .map(|(path, error)| FieldError {
                loc: path.to_string(),
                msg: error.to_string(),
            })
            .collect();
        return json(StatusCode::UNPROCESSABLE_ENTITY, &Detail { detail });
    }
    let id = state.ids.fetch_add(1, Ordering::Relaxed) + 1;
    let mut res = json(
        StatusCode::CREATED,
        &UserResponse {
            id,
            name: user.name,
            email: user.email,
            created_at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        },
    );
    if let Ok(v) = HeaderValue::from_str(&format!("/users/{id}")) {
        res.headers_mut().insert(LOCATION, v);
    }
    res
}

async fn read_db_user(state: &AppState, id: i64) -> Res {
    let Some(pool) = &state.db else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "DATABASE_URL is not set");
    };
    let row: Result<Option<(i64, String, String, DateTime<Utc>)>, _> =
        sqlx::query_as("SELECT id, name, email, created_at FROM bench_users WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await;
    match row {
        Ok(Some((id, name, email, created_at))) => json(
            StatusCode::OK,
            &UserResponse {
                id,
                name,
                email,
                created_at: created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            },
        ),
        Ok(None) => json(
            StatusCode::NOT_FOUND,
            &Detail {
                detail: "User not found",
            },
        ),
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "database error"),
    }
}

async fn handle(state: Arc<AppState>, req: Request<Incoming>) -> Result<Res, Infallible> {
    let path = req.uri().path();
    let mut segments = path.strip_prefix('/').unwrap_or(path).split('/');
    let res = match (
        req.method(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) {
        (&Method::GET, Some("plaintext"), None, _) => text(StatusCode::OK, "Hello, World!"),
        (&Method::GET, Some("json"), None, _) => json(
            StatusCode::OK,
            &Message {
                message: "Hello, World!",
            },
        ),
        (&Method::GET, Some("users"), Some(id), None) => match id.parse::<i64>() {
            Ok(id) => json(
                StatusCode::OK,
                &UserOut {
                    id,
                    name: format!("User {id}"),
                    email: format!("user{id}@example.com"),
                },
            ),
            Err(_) => text(StatusCode::UNPROCESSABLE_ENTITY, "id is not an integer"),
        },
        (&Method::POST, Some("users"), None, _) => create_user(&state, req).await,
        (&Method::GET, Some("db"), Some("users"), Some(id)) if segments.next().is_none() => {
            match id.parse::<i64>() {
                Ok(id) => read_db_user(&state, id).await,
                Err(_) => text(StatusCode::UNPROCESSABLE_ENTITY, "id is not an integer"),
            }
        }
        // The 100 other routes: /items{even}/{item_id} and /items{odd}/stats.
        (&Method::GET, Some(first), Some(second), None) => {
            match first
                .strip_prefix("items")
                .and_then(|n| n.parse::<u32>().ok())
            {
                Some(n) if n < 100 && n % 2 == 1 && second == "stats" => {
                    json(StatusCode::OK, &Message { message: "stats" })
                }
                Some(n) if n < 100 && n % 2 == 0 => match second.parse::<i64>() {
                    Ok(id) => json(
                        StatusCode::OK,
                        &UserOut {
                            id,
                            name: String::new(),
                            email: String::new(),
                        },
                    ),
                    Err(_) => text(StatusCode::UNPROCESSABLE_ENTITY, "id is not an integer"),
                },
                _ => not_found(),
            }
        }
        _ => not_found(),
    };
    Ok(res)
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
    let port: u16 = std::env::var("PORT").map_or(Ok(8003), |p| p.parse())?;
    let listener = tokio::net::TcpListener::bind((host.as_str(), port)).await?;
    let state = Arc::new(AppState {
        ids: AtomicI64::new(0),
        db,
    });
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(_) => {
                // Out of file descriptors and the like: wait, retry.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(state.clone(), req));
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
