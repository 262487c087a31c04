//! # ferrapi
//!
//! FastAPI's design in Rust: the types you write drive request validation,
//! response serialization and the OpenAPI document; handlers declare what
//! they need in their signature; every validation failure of a request is
//! answered at once, in FastAPI's exact 422 shape.
//!
//! ```no_run
//! use ferrapi::prelude::*;
//!
//! #[derive(Deserialize, JsonSchema, Validate)]
//! struct UserCreate {
//!     #[garde(length(chars, min = 2, max = 50))]
//!     name: String,
//!     #[garde(range(min = 18, max = 120))]
//!     age: u8,
//! }
//!
//! #[derive(Serialize, JsonSchema)]
//! struct UserOut {
//!     id: i64,
//!     name: String,
//! }
//!
//! /// Create a user.
//! #[post("/users", status = 201, tags = ["users"])]
//! async fn create_user(Json(user): Json<UserCreate>) -> Json<UserOut> {
//!     Json(UserOut { id: 1, name: user.name })
//! }
//!
//! /// Read a user.
//! #[get("/users/{user_id}", tags = ["users"])]
//! async fn read_user(Path(user_id): Path<i64>) -> Result<Json<UserOut>, HttpError> {
//!     Err(HttpError::not_found(format!("User {user_id} not found")))
//! }
//!
//! # async fn run() -> Result<(), ferrapi::ServeError> {
//! let app = App::new()
//!     .title("Users")
//!     .version("1.0.0")
//!     .include(Router::new().prefix("/api/v1").route(create_user).route(read_user));
//! app.serve().await
//! # }
//! ```
//!
//! ## The request's walk
//!
//! server ([`App::serve`]) → a [`Stack`](middleware::Stack)'s fused outer
//! layers (request id, trace context, timing, security headers) → the
//! tower middleware ([`App::layer`], under the application's panic
//! catcher) → route match (ferrapi's dispatcher over `matchit`: JSON 404,
//! 405 with `Allow`) → every extractor runs, their validation errors are
//! gathered into one 422 → the handler → the response type is serialized
//! with the route's declared status. `docs/architecture.md` draws the
//! crates and this walk.
//!
//! ## Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `macros` | yes | `#[get]`, `#[post]`, `#[put]`, `#[patch]`, `#[delete]` route attributes |
//! | `metrics` | no | Prometheus metrics (`App::metrics`) |
//! | `statsd` | no | the metrics also pushed to a StatsD agent over UDP (`statsd`, `metrics::Metrics::statsd`); implies `metrics` |
//! | `docs-ui` | yes | Swagger UI at `/docs`, Scalar at `/redoc`, served offline |
//! | `compression` | no | gzip and brotli responses (`middleware::CompressionLayer`) |
//! | `jwt` | no | JWT verification and issuing (`security::jwt`; also at `middleware::jwt`) |
//! | `jwks` | no | JWT keys from an identity provider's JWKS URL (`security::jwks::Jwks`, re-exported by `security::jwt`): cached, refetched on an unknown `kid`, last good set kept on errors; implies `jwt` and `client` |
//! | `password` | no | Argon2id password hashing (`security::password`; also at `middleware::password`) |
//! | `static-files` | no | a directory served at a path (`static_files::StaticFiles`), file downloads with `Range` (`static_files::FileRequest`) |
//! | `ws` | no | WebSocket routes (`ws`): typed JSON messages, keep-alive, bounded send buffers, broadcast `Hub`; `TestServer::websocket` |
//! | `multipart` | no | streaming `multipart/form-data` uploads (`extract::Multipart`) with per-part limits |
//! | `client` | no | outgoing HTTP client (`client::Client`) propagating W3C `traceparent`/`tracestate` |
//! | `otel` | no | OpenTelemetry traces over OTLP, HTTP/protobuf or gRPC (`telemetry`): a server span per request named by its route template; implies `client` |
#![deny(missing_docs)]

mod app;
pub mod blocking;
#[cfg(feature = "client")]
pub mod client;
pub mod console;
pub mod docs;
pub mod extract;
pub mod lifespan;
/// Prometheus metrics (from `ferrapi-telemetry`).
#[cfg(feature = "metrics")]
pub use ferrapi_telemetry::metrics;
pub mod middleware;
mod observe;
mod patch;
pub mod response;
pub mod routing;
pub mod security;
mod server;
pub mod sse;
#[cfg(feature = "static-files")]
pub mod static_files;
/// StatsD push (from `ferrapi-telemetry`).
#[cfg(feature = "statsd")]
pub use ferrapi_telemetry::statsd;
/// OpenTelemetry export (from `ferrapi-telemetry`).
#[cfg(feature = "otel")]
pub use ferrapi_telemetry::telemetry;
pub mod testing;
mod validation;
#[cfg(feature = "ws")]
pub mod ws;

#[doc(hidden)]
pub mod __private;

// The derive macros name `::ferrapi`, also from this crate's own tests.
extern crate self as ferrapi;

pub use app::{App, BuildError, BuiltApp, DEFAULT_BODY_LIMIT, RouteError, RouteErrorKind};
pub use blocking::{BlockingError, BlockingPool, blocking};
pub use extract::{
    Bytes, Cookie, Form, FromRequest, FromRequestParts, Header, Json, Path, Query, Rejection,
    RequestContext, State,
};
pub use ferrapi_core::HttpError;
pub use ferrapi_core::validation::{ErrorItem, Loc, LocItem, Source, ValidationErrors};
pub use patch::Patch;
pub use response::{Created, Error, Html, NoContent, Redirect, Responder, ResponseError, Text};
pub use routing::{IntoRoute, Route, Router};
pub use server::{BodyTimeout, Draining, ServeConfig, ServeError, shutdown_signal};

/// OpenAPI: the document model, the schema registry and the hooks through
/// which extractors and response types describe themselves, with the walk's
/// context ([`OperationBuilder`](openapi::OperationBuilder)) and the runtime
/// facts it records ([`PlanBuilder`](openapi::PlanBuilder)).
pub mod openapi {
    pub use ferrapi_core::describe::{
        DependencyCycle, DescribeInput, DescribeOutput, OperationBuilder, PathShape, PlanBuilder,
        RequiredState, not_flat,
    };
    pub use ferrapi_openapi::*;
}
/// The HTTP layer ferrapi stands on; any axum/tower piece plugs in.
pub use axum;
/// The validation library whose attributes constrain models.
pub use garde;
/// The HTTP types.
pub use http;
/// JSON Schema derivation for models.
pub use schemars;

/// The check of a model's rules (derive it with `#[derive(Validate)]`).
pub use ferrapi_core::validation::Validate;
#[cfg(feature = "macros")]
pub use ferrapi_macros::{
    ApiError, JsonSchema, Validate, delete, dependency, get, head, options, patch, post, put, trace,
};
/// Serialization, for `#[derive(Serialize, Deserialize)]`.
pub use serde;

/// The `JsonSchema` trait without schemars' derive macro (the prelude's
/// derive is ferrapi's).
mod schema_trait {
    pub use schemars::JsonSchema;
}

/// serde's traits (and, shadowed in the prelude, its derives).
mod serde_traits {
    pub use serde::{Deserialize, Serialize};
}
// `ferrapi::JsonSchema`: schemars' trait (through the glob) and ferrapi's
// derive (the explicit import above shadows schemars' derive).
pub use schema_trait::*;

/// What most applications import: `use ferrapi::prelude::*;`.
pub mod prelude {
    pub use crate::extract::{Cookie, Depends, Form, Header, Json, Path, Query, State};
    pub use crate::response::{Created, Html, NoContent, Redirect, Text};
    pub use crate::{App, HttpError, IntoRoute, Patch, Route, Router};
    pub use ferrapi_core::validation::Validate;
    // serde's traits through a glob, so that ferrapi's derives below
    // shadow serde's derive macros of the same names.
    pub use crate::serde_traits::*;

    // The trait through a glob, so that the explicit derive below shadows
    // schemars' own derive macro of the same name.
    pub use crate::schema_trait::*;
    /// ferrapi's derives: `#[garde(...)]` rules read once for the check
    /// and the schema.
    #[cfg(feature = "macros")]
    pub use ferrapi_macros::{Deserialize, JsonSchema, Serialize, Validate};
    #[cfg(feature = "macros")]
    pub use ferrapi_macros::{delete, dependency, get, head, options, patch, post, put, trace};
}
