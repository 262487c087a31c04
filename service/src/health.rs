//! `/health/*`: the checks a load balancer or an orchestrator polls.

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

/// The health router.
pub fn router() -> Router {
    Router::new().prefix("/health").route(live)
}
