//! The ferrapi reference service: a users API that exercises every layer
//! of the framework (see `shared/spec/reference-service.md`).
//!
//! The binary (`src/main.rs`) reads the configuration, opens the database,
//! and serves [`app`]; tests build [`app`] around their own database.
#![deny(missing_docs)]

pub mod config;
pub mod db;
pub mod db_dep;
pub mod health;
pub mod users;

use ferrapi::App;
use ferrapi::middleware::{ClientIpLayer, CorsConfig, RateLimitKey, RateLimitLayer, Stack};

/// The application, around an opened and migrated database.
pub fn app(pool: sqlx::SqlitePool, config: &config::Config) -> App {
    let mut stack = Stack::defaults()
        .client_ip(ClientIpLayer::new(config.forwarded_allow_ips.clone()))
        .rate_limit(
            RateLimitLayer::new(config.rate_limit)
                .key(RateLimitKey::client_ip(config.forwarded_allow_ips.clone()))
                .exempt("/health")
                .exempt("/metrics"),
        );
    if let Some(origins) = &config.cors_origins
        && let Ok(cors) = CorsConfig::new().allow_origin_list(origins).build()
    {
        stack = stack.cors(cors);
    }
    App::new()
        .title("ferrapi reference service")
        .version(env!("CARGO_PKG_VERSION"))
        .description("A users API built with ferrapi, exercising every layer of the framework.")
        .tag("users", "Create and read users.")
        .tag("health", "Liveness, readiness and startup checks.")
        .document("v1", "/api/v1")
        .tag("observability", "Prometheus metrics.")
        .metrics(
            "/metrics",
            std::sync::Arc::new(ferrapi::metrics::Metrics::new()),
        )
        .state(db_dep::Pool(pool))
        .body_limit(config.max_body_bytes)
        .include(health::router())
        .include(users::router())
        .middleware(stack)
}
