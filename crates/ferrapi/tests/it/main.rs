//! Integration tests of the ferrapi crate: one binary (link time dominates
//! on two cores), one module per concern.
#![allow(clippy::unwrap_used)]

mod asyncapi;
mod background;
mod blocking;
mod client;
mod configured_deps;
mod console;
mod depends;
mod docs;
mod drain;
mod error_docs;
mod errors;
mod extract;
mod jwks;
mod lifespan;
mod limits;
mod matched_route;
mod matrix;
mod metrics;
mod middleware;
mod models;
mod mount;
mod observability;
mod openapi;
mod partial_update;
mod resource_bounds;
mod response_parts;
mod responses;
mod routing;
mod scopes;
mod security;
mod server;
mod sse;
mod state_check;
mod static_files;
mod telemetry;
mod ui;
mod uploads;
mod ws;
