//! ferrapi's observability, on ferrapi-core's contracts (not on the
//! `ferrapi` facade), so that a storage backend or another integration can
//! report into it without compiling the web layer:
//!
//! - [`trace_context`]: W3C `traceparent`/`tracestate` — the
//!   [`TraceContext`](trace_context::TraceContext) of a request and the
//!   layer that answers with it;
//! - `metrics` (feature `metrics`): Prometheus metrics per route template,
//!   process metrics, custom metrics; `statsd` (feature `statsd`) pushes
//!   them to a StatsD agent;
//! - `telemetry` (feature `otel`): OpenTelemetry traces exported over OTLP.
//!
//! Applications use it through `ferrapi` (`ferrapi::metrics`,
//! `ferrapi::statsd`, `ferrapi::telemetry`, `ferrapi::middleware::TraceContext`),
//! whose features of the same names turn these on.
#![deny(missing_docs)]

#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(feature = "statsd")]
pub mod statsd;
#[cfg(feature = "otel")]
pub mod telemetry;
pub mod trace_context;
