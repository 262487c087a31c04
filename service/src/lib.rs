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

/// The application, around an opened and migrated database.
pub fn app(pool: sqlx::SqlitePool, max_body_bytes: usize) -> App {
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
        .body_limit(max_body_bytes)
        .include(health::router())
        .include(users::router())
}
