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
/// recover.
#[get("/ready", tags = ["health"], responses(503 = "A dependency is down"))]
pub async fn ready(
    State(pool): State<ferrapi_storage::db::DbPool>,
    State(cache): State<ferrapi_storage::cache::Cache>,
    State(bus): State<ferrapi_storage::bus::Bus>,
) -> (StatusCode, Json<serde_json::Value>) {
    let results = [
        check("database", pool.ping()).await,
        check("cache", cache.health()).await,
        check("bus", bus.health()).await,
    ];
    let mut checks = serde_json::Map::new();
    let mut failing = Vec::new();
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

/// Startup: 200 once migrations and bootstrap are done. The service only
/// listens after them, so a reachable service has started.
#[get("/startup", tags = ["health"])]
pub async fn startup() -> Json<Status> {
    Json(Status { status: "ok" })
}

/// The health router.
pub fn router() -> Router {
    Router::new()
        .prefix("/health")
        .route(live)
        .route(ready)
        .route(startup)
}
