//! `/admin/*` (administrator token) and `/internal/*` (shared secret in
//! `X-Internal-Token`).

use crate::auth::Admin;
use crate::config::{Config, mask_url};
use ferrapi::extract::{Dependency, Rejection, RequestContext};
use ferrapi::http::request::Parts;
use ferrapi::openapi::OperationBuilder;
use ferrapi::prelude::*;
use ferrapi_storage::db::Db;
use serde::Serialize;
use sqlx::Row;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Counts every request the application sees (for `/admin/stats`).
#[derive(Debug)]
pub struct Stats {
    started: Instant,
    requests: AtomicU64,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            requests: AtomicU64::new(0),
        }
    }
}

impl Stats {
    /// Counts one request.
    pub fn count(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }
}

/// Service statistics.
#[derive(Debug, Serialize, JsonSchema)]
pub struct StatsResponse {
    /// Number of users.
    pub users: i64,
    /// Requests served by this instance since it started.
    pub requests_total: u64,
    /// Seconds since this instance started.
    pub uptime_seconds: f64,
}

/// Service statistics (administrators only).
#[get("/admin/stats", tags = ["admin"])]
pub async fn stats(
    Depends(_admin): Depends<Admin>,
    Depends(db): Depends<Db>,
    State(stats): State<Arc<Stats>>,
) -> Result<Json<StatsResponse>, HttpError> {
    let row = db
        .fetch_one(db.query("SELECT COUNT(*) AS n FROM users"))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "counting users failed");
            HttpError::internal()
        })?;
    let users: i64 = row.try_get("n").map_err(|e| {
        tracing::error!(error = %e, "reading the user count failed");
        HttpError::internal()
    })?;
    Ok(Json(StatsResponse {
        users,
        requests_total: stats.requests.load(Ordering::Relaxed),
        uptime_seconds: stats.started.elapsed().as_secs_f64(),
    }))
}

/// Access to `/internal/*`: header `X-Internal-Token` equal to
/// `INTERNAL_TOKEN`; 403 otherwise, and always while `INTERNAL_TOKEN` is
/// unset. Documented as an API-key scheme.
#[derive(Debug, Clone, Copy)]
pub struct Internal;

/// The configured internal token (application state).
#[derive(Debug, Clone)]
pub struct InternalToken(pub Option<String>);

impl Dependency for Internal {
    async fn resolve(parts: &mut Parts, cx: &RequestContext) -> Result<Self, Rejection> {
        let expected = cx.state::<InternalToken>().and_then(|t| t.0.clone());
        let given = parts
            .headers
            .get("x-internal-token")
            .map(|v| v.as_bytes().to_vec());
        match (expected, given) {
            (Some(expected), Some(given)) if constant_time_eq(expected.as_bytes(), &given) => {
                Ok(Internal)
            }
            _ => Err(HttpError::forbidden("Forbidden").into()),
        }
    }

    fn describe(op: &mut OperationBuilder<'_>) {
        op.security(
            "InternalToken",
            serde_json::json!({"type": "apiKey", "name": "X-Internal-Token", "in": "header"}),
            &[],
        );
        op.error_response(
            ferrapi::http::StatusCode::FORBIDDEN,
            "Missing or wrong X-Internal-Token",
        );
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The effective configuration, secrets masked (application state).
#[derive(Debug, Clone, Serialize)]
pub struct EffectiveConfig(pub serde_json::Value);

impl EffectiveConfig {
    /// The configuration as `/internal/config` shows it.
    pub fn from_config(config: &Config) -> Self {
        let masked = |present: bool| if present { "***" } else { "" };
        let serve = &config.serve;
        Self(serde_json::json!({
            "HOST": serve.host.to_string(),
            "PORT": serve.port,
            "WORKERS": serve.workers,
            "BODY_READ_TIMEOUT": serve.body_read_timeout.as_secs_f64(),
            "BODY_TOTAL_TIMEOUT": serve.body_total_timeout.as_secs_f64(),
            "DRAIN_DELAY": serve.drain_delay.as_secs_f64(),
            "DATABASE_URL": mask_url(&config.database_url),
            "REDIS_URL": config.redis_url.as_deref().map(mask_url),
            "NATS_URL": config.nats_url.as_deref().map(mask_url),
            "STORAGE_URL": mask_url(&config.storage_url),
            "JWT_SECRET": "***",
            "JWT_SECRET_GENERATED": config.jwt_secret_generated,
            "ACCESS_TOKEN_TTL": config.access_token_ttl,
            "ADMIN_EMAIL": config.admin_email,
            "ADMIN_PASSWORD": "***",
            "INTERNAL_TOKEN": masked(config.internal_token.is_some()),
            "CORS_ORIGINS": config.cors_origins.clone().unwrap_or_default(),
            "RATE_LIMIT": format!("{}/{}s", config.rate_limit.count(), config.rate_limit.window().as_secs()),
            "MAX_BODY_BYTES": config.max_body_bytes,
            "LOG_FORMAT": match config.log_format {
                crate::config::LogFormat::Json => "json",
                crate::config::LogFormat::Pretty => "pretty",
            },
            "OTEL_EXPORTER_OTLP_ENDPOINT": config.otel_endpoint,
            "FORWARDED_ALLOW_IPS": config.forwarded_allow_ips_text,
        }))
    }
}

/// The effective configuration, with secrets masked. Needs the header
/// `X-Internal-Token`.
#[get("/internal/config", tags = ["internal"])]
pub async fn internal_config(
    Depends(_internal): Depends<Internal>,
    State(config): State<Arc<EffectiveConfig>>,
) -> Json<serde_json::Value> {
    Json(config.0.clone())
}

/// The admin and internal router.
pub fn router() -> Router {
    Router::new().route(stats).route(internal_config)
}
