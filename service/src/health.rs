//! `/health/*`: the checks a load balancer or an orchestrator polls.

use ferrapi::http::StatusCode;
use ferrapi::prelude::*;
use serde::Serialize;

/// A health status.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Status {
    /// `ok` while the process serves.
    pub status: &'static str,
}

/// Liveness: 200 while the process runs.
#[get("/live", tags = ["health"])]
pub async fn live() -> Json<Status> {
    Json(Status { status: "ok" })
}

/// One check, bounded by a 2 s timeout.
async fn check<E: std::fmt::Display>(
    name: &'static str,
    probe: impl std::future::Future<Output = Result<(), E>>,
) -> (&'static str, Result<(), String>) {
    let outcome = match tokio::time::timeout(std::time::Duration::from_secs(2), probe).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out after 2 s".to_owned()),
    };
    (name, outcome)
}

/// Readiness: 200 while every dependency answers (database, cache, bus),
/// else 503 naming the failing checks; back to 200 by itself when they
/// recover. From the shutdown signal on (the server's drain, before its
/// listener closes), 503 `shutdown: draining` without probing anything.
#[get(
    "/ready",
    tags = ["health"],
    responses(503 = "A dependency is down, or the instance is shutting down")
)]
pub async fn ready(
    State(draining): State<ferrapi::Draining>,
    State(started): State<Startup>,
    State(pool): State<ferrapi_storage::db::DbPool>,
    State(cache): State<ferrapi_storage::cache::Cache>,
    State(bus): State<ferrapi_storage::bus::Bus>,
) -> (StatusCode, Json<serde_json::Value>) {
    if draining.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({
                "detail": "shutdown: draining",
                "status": "unavailable",
                "checks": {"shutdown": "draining"}
            })),
        );
    }
    let results = [
        check("database", pool.ping()).await,
        check("cache", cache.health()).await,
        check("bus", bus.health()).await,
    ];
    let mut checks = serde_json::Map::new();
    let mut failing = Vec::new();
    if !started.is_done() {
        checks.insert("startup".to_owned(), "migrations running".into());
        failing.push("startup: migrations running".to_owned());
    }
    for (name, outcome) in &results {
        match outcome {
            Ok(()) => {
                checks.insert((*name).to_owned(), "ok".into());
            }
            Err(reason) => {
                tracing::warn!(check = name, %reason, "readiness check failed");
                checks.insert((*name).to_owned(), reason.clone().into());
                failing.push(format!("{name}: {reason}"));
            }
        }
    }
    if failing.is_empty() {
        (
            StatusCode::OK,
            Json(serde_json::json!({"status": "ok", "checks": checks})),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({
                "detail": failing.join("; "),
                "status": "unavailable",
                "checks": checks
            })),
        )
    }
}

/// Whether migrations and the admin bootstrap are done (application
/// state). The service listens while they run; until then `/health/startup`
/// and `/health/ready` answer 503 and the API answers 503 `Service is
/// starting`.
#[derive(Debug, Clone, Default)]
pub struct Startup(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Startup {
    /// Not started yet.
    pub fn new() -> Self {
        Self::default()
    }
    /// Started (for apps built around an already migrated database).
    pub fn done() -> Self {
        let s = Self::default();
        s.mark_done();
        s
    }
    /// Migrations and bootstrap are done.
    pub fn mark_done(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Release);
    }
    /// Whether they are.
    pub fn is_done(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// Startup: 503 while migrations and the admin bootstrap run, then 200.
#[get("/startup", tags = ["health"], responses(503 = "Still starting"))]
pub async fn startup(State(started): State<Startup>) -> (StatusCode, Json<Status>) {
    if started.is_done() {
        (StatusCode::OK, Json(Status { status: "ok" }))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Status { status: "starting" }),
        )
    }
}

/// The health router.
pub fn router() -> Router {
    Router::new()
        .prefix("/health")
        .route(live)
        .route(ready)
        .route(startup)
}
