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

/// Readiness: 200 while every dependency answers, else 503 naming the
/// failing check; back to 200 by itself when it recovers.
#[get("/ready", tags = ["health"], responses(503 = "A dependency is down"))]
pub async fn ready(
    State(pool): State<ferrapi_storage::db::DbPool>,
) -> (StatusCode, Json<serde_json::Value>) {
    let database = tokio::time::timeout(std::time::Duration::from_secs(2), pool.ping()).await;
    let database = match database {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out after 2 s".to_owned()),
    };
    match database {
        Ok(()) => (
            StatusCode::OK,
            Json(serde_json::json!({"status": "ok", "checks": {"database": "ok"}})),
        ),
        Err(reason) => {
            tracing::warn!(check = "database", %reason, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({
                    "detail": format!("database: {reason}"),
                    "status": "unavailable",
                    "checks": {"database": reason}
                })),
            )
        }
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
