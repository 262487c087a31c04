//! The contracts of ferrapi: what an integration implements without the
//! web layer (as axum keeps its traits in `axum-core`).
//!
//! - [`extract`] — the extraction traits ([`FromRequestParts`](extract::FromRequestParts),
//!   [`FromRequest`](extract::FromRequest)) and [`Rejection`](extract::Rejection);
//!   [`RequestContext`](extract::RequestContext), the application behind
//!   it ([`AppContext`](extract::AppContext)) and the route's
//!   [`RoutePlan`](extract::RoutePlan); the route a request was dispatched
//!   to ([`MatchedRoute`](extract::MatchedRoute), numbered by a
//!   [`RouteId`](extract::RouteId); [`MatchedRouteSlot`](extract::MatchedRouteSlot)
//!   for a layer outside the dispatcher); dependency injection
//!   ([`Dependency`](extract::Dependency), [`Depends`](extract::Depends),
//!   [`Outcome`](extract::Outcome), [`defer`](extract::defer));
//! - [`response`] — [`Responder`](response::Responder),
//!   [`ResponseError`](response::ResponseError), [`Error`];
//! - [`describe`] — how extractors and responses describe themselves for
//!   OpenAPI, into one walk ([`OperationBuilder`](describe::OperationBuilder))
//!   that also records the route's runtime facts
//!   ([`PlanBuilder`](describe::PlanBuilder));
//! - [`middleware`] — the middleware adapter: a [`Hook`](middleware::Hook)
//!   (request half, response half) served by one generic tower service;
//! - [`rate_limit`] — the rate limiter's quota and store;
//! - [`trace_context`] — a request's W3C trace context, shared by the
//!   trace-context layer, the outgoing client and the OpenTelemetry export;
//! - FastAPI-shaped errors: [`HttpError`] (FastAPI's `HTTPException`) and
//!   [`validation::ValidationErrors`] for 422 responses, with the
//!   schema-driven validator ([`validation::validate`]) that produces them
//!   and the validation pipeline the extractors run
//!   (`validation::pipeline`).
//!
//! It depends on `http`, `http-body`, `axum-core` (the body and response
//! types), `serde` and the document model (`ferrapi-openapi`): never on
//! the `ferrapi` facade, a database or an exporter. Applications import
//! all of it through `ferrapi`, at the paths they always had.
#![deny(missing_docs)]

pub mod body;
pub mod describe;
mod error;
pub mod extract;
pub mod middleware;
pub mod rate_limit;
pub mod response;
pub mod trace_context;
pub mod validation;

pub use error::{Error, HttpError};
