//! Cache spans: one client span per backend call of [`Cache`](super::Cache)
//! (`get`, `set`, `delete`, and the look-up and store of
//! `get_or_compute`), opened only inside an exported span (see
//! [`crate::telemetry`]).
//!
//! | attribute | value |
//! |---|---|
//! | span name | `cache get`, `cache set`, `cache delete` (not the Redis command alone: `GET` would read as an HTTP call next to the client's spans) |
//! | `cache.operation` | `get`, `set`, `delete` |
//! | `cache.backend` | `memory`, `redis` |
//! | `cache.hit` | on `get`: whether a value was found (and decoded) |
//! | `db.system`, `db.system.name`, `db.operation.name` | for a backend with a server ([`CacheBackend::server`]): `redis`, and the command (`GET`, `SET`, `DEL`) |
//! | `db.namespace`, `server.address`, `server.port` | the server's database number, host and port |
//! | `error.type` | on failure: `unavailable`, `backend`, `decode` |
//!
//! Keys are not exported: they often carry user data (an e-mail address,
//! a search string). Values never are.

use super::{CacheBackend, CacheError};
use tracing::Span;
use tracing::field::Empty;

/// A backend call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Get,
    Set,
    Delete,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Get => "cache get",
            Op::Set => "cache set",
            Op::Delete => "cache delete",
        }
    }

    fn operation(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Set => "set",
            Op::Delete => "delete",
        }
    }
}

pub use crate::common::CacheServer;

/// A span for `op` on `backend`, or `Span::none()` when nothing is
/// exported.
pub(crate) fn span(backend: &dyn CacheBackend, op: Op) -> Span {
    if !crate::telemetry::exporting() {
        return Span::none();
    }
    let server = backend.server();
    let command = server.map(|s| match op {
        Op::Get => s.commands[0],
        Op::Set => s.commands[1],
        Op::Delete => s.commands[2],
    });
    tracing::info_span!(
        "cache",
        otel.name = op.name(),
        otel.kind = "client",
        cache.operation = op.operation(),
        cache.backend = backend.name(),
        cache.hit = Empty,
        db.system = server.map(|s| s.system),
        db.system.name = server.map(|s| s.system),
        db.operation.name = command,
        db.namespace = server.and_then(|s| s.namespace.as_deref()),
        server.address = server.map(|s| s.address.as_str()),
        server.port = server.and_then(|s| s.port).map(i64::from),
        error.type = Empty,
        otel.status_code = Empty,
    )
}

/// Records the outcome of a call: a failure's kind, and for a `get`
/// (`hit` is `Some`) whether it hit.
pub(crate) fn record<T>(span: &Span, result: &Result<T, CacheError>, hit: Option<bool>) {
    if span.is_none() {
        return;
    }
    match result {
        Ok(_) => {
            if let Some(hit) = hit {
                span.record("cache.hit", hit);
            }
        }
        Err(e) => {
            let kind = match e {
                CacheError::Unavailable(_) => "unavailable",
                CacheError::Backend(_) => "backend",
                CacheError::Encode(_) => "encode",
                CacheError::Decode { .. } => "decode",
                CacheError::InvalidUrl { .. } => "config",
            };
            if hit.is_some() {
                span.record("cache.hit", false);
            }
            crate::telemetry::record_error(span, kind);
        }
    }
}
