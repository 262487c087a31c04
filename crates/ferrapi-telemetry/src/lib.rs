//! ferrapi's observability, on ferrapi-core's contracts (not on the
//! `ferrapi` facade), so that a storage backend or another integration can
//! report into it without compiling the web layer:
//!
//! - `metrics` (feature `metrics`): Prometheus metrics per route template,
//!   process metrics, custom metrics; `statsd` (feature `statsd`) pushes
//!   them to a StatsD agent;
//! - `telemetry` (feature `otel`): OpenTelemetry traces exported over OTLP.
//!
//! Applications use it through `ferrapi` (`ferrapi::metrics`,
//! `ferrapi::statsd`, `ferrapi::telemetry`),
//! whose features of the same names turn these on. The W3C trace context
//! the export continues is `ferrapi_core::trace_context` (the facade's
//! default middleware needs it without this crate).
#![deny(missing_docs)]

#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(feature = "statsd")]
pub mod statsd;
#[cfg(feature = "otel")]
pub mod telemetry;
