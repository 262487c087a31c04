//! Whether to open database and cache spans (feature `otel`).
//!
//! The spans of [`db`](crate::db) and [`cache`](crate::cache) operations
//! are opened only inside a span that ferrapi's telemetry layer exports
//! (`ferrapi::telemetry::exporting`): there they become its children in the
//! exported trace. Elsewhere — no collector configured, the feature off, a
//! worker's poll outside any request — nothing is opened, so the storage
//! calls cost what they cost without tracing and log lines do not change.

/// True when a span opened now would be exported as a child of the current one.
#[cfg(feature = "otel")]
pub(crate) fn exporting() -> bool {
    ferrapi_telemetry::telemetry::exporting()
}

/// Without the `otel` feature no span is ever opened.
#[cfg(not(feature = "otel"))]
pub(crate) fn exporting() -> bool {
    false
}

/// Marks `span` failed: `error.type` (a short, low-cardinality kind) and
/// the OpenTelemetry status.
pub(crate) fn record_error(span: &tracing::Span, kind: &str) {
    span.record("error.type", kind);
    span.record("otel.status_code", "ERROR");
}
