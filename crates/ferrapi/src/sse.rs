//! Server-Sent Events: [`Sse`], a `text/event-stream` response, and
//! [`LastEventId`], the header a reconnecting browser sends.
//!
//! A handler returns `Sse::new(stream)` where the stream yields events
//! (or [`Sse::try_new`] for a stream of `Result<Event, E>`); each [`Event`] has optional `id`, `event`, `data` and
//! `retry` fields (axum's type, re-exported), and [`json_event`] builds one
//! whose data is a serialized model. Unlike axum's `Sse`, keep-alive comment
//! lines (`: keep-alive`) are on by default, every 15 s of silence, so that
//! proxies and load balancers do not cut an idle stream; change them with
//! [`Sse::keep_alive`] or turn them off with [`Sse::without_keep_alive`].
//! The response carries `Cache-Control: no-cache` and
//! `X-Accel-Buffering: no` (nginx then passes events through unbuffered).
//!
//! When the connection drops, the browser's `EventSource` reconnects and
//! sends the last `id` it saw in `Last-Event-ID`: take [`LastEventId`] and
//! resume after it.
//!
//! ```
//! use ferrapi::prelude::*;
//! use ferrapi::sse::{Event, LastEventId, Sse, json_event};
//! use futures_util::stream;
//!
//! #[derive(Serialize)]
//! struct Tick { n: u64 }
//!
//! /// Ticks 1 to 10, resuming after the last one the client saw.
//! #[get("/ticks")]
//! async fn ticks(last: LastEventId) -> Sse {
//!     let start = last.parse::<u64>().map_or(1, |n| n + 1);
//!     Sse::try_new(stream::iter((start..=10).map(|n| {
//!         Ok::<_, serde_json::Error>(json_event(&Tick { n })?.id(n.to_string()).event("tick"))
//!     })))
//! }
//!
//! let app = App::new().route(ticks);
//! ```
//!
//! The operation documents a `text/event-stream` response and the optional
//! `Last-Event-ID` header parameter. Setting `id` or `event` to text with a
//! newline (or `id` with a NUL) panics in axum's `Event`: build them from
//! trusted values.

use crate::extract::{FromRequestParts, Rejection, RequestContext};
use crate::openapi::{DescribeInput, DescribeOutput, OperationBuilder, ParameterIn};
use crate::response::{Responder, Response};
use axum::response::IntoResponse;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt, TryStreamExt};
use http::request::Parts;
use http::{HeaderName, HeaderValue, StatusCode};
use serde::Serialize;
use serde_json::json;
use std::time::Duration;

pub use axum::response::sse::{Event, KeepAlive};

/// How long a stream may stay silent before a keep-alive comment is sent.
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// A `text/event-stream` response: each item of the stream is sent as one
/// event as soon as it is produced; an `Err` item ends the stream.
///
/// The stream is boxed, so that the handler's return type is plain `Sse`
/// (an `impl Stream` in it would hide the response from the document).
pub struct Sse {
    stream: BoxStream<'static, Result<Event, axum::BoxError>>,
    keep_alive: Option<KeepAlive>,
}

impl std::fmt::Debug for Sse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sse")
            .field("keep_alive", &self.keep_alive)
            .finish_non_exhaustive()
    }
}

impl Sse {
    /// An event stream with keep-alive comments after 15 s of silence.
    pub fn new<S>(stream: S) -> Self
    where
        S: Stream<Item = Event> + Send + 'static,
    {
        Self::from_boxed(stream.map(Ok).boxed())
    }

    /// An event stream whose items may fail: an `Err` ends the stream
    /// (logged at debug level by the HTTP layer).
    pub fn try_new<S, E>(stream: S) -> Self
    where
        S: Stream<Item = Result<Event, E>> + Send + 'static,
        E: Into<axum::BoxError> + 'static,
    {
        Self::from_boxed(stream.map_err(Into::into).boxed())
    }

    fn from_boxed(stream: BoxStream<'static, Result<Event, axum::BoxError>>) -> Self {
        Self {
            stream,
            keep_alive: Some(
                KeepAlive::new()
                    .interval(DEFAULT_KEEP_ALIVE)
                    .text("keep-alive"),
            ),
        }
    }

    /// Sets the keep-alive interval and text.
    #[must_use]
    pub fn keep_alive(mut self, keep_alive: KeepAlive) -> Self {
        self.keep_alive = Some(keep_alive);
        self
    }

    /// Sends no keep-alive comments.
    #[must_use]
    pub fn without_keep_alive(mut self) -> Self {
        self.keep_alive = None;
        self
    }
}

impl Responder for Sse {
    fn respond(self, cx: &RequestContext) -> Response {
        let sse = axum::response::Sse::new(self.stream);
        let mut res = match self.keep_alive {
            Some(k) => sse.keep_alive(k).into_response(),
            None => sse.into_response(),
        };
        *res.status_mut() = cx.status();
        res.headers_mut().insert(
            HeaderName::from_static("x-accel-buffering"),
            HeaderValue::from_static("no"),
        );
        res
    }
}

impl DescribeOutput for Sse {
    fn describe(op: &mut OperationBuilder<'_>, status: StatusCode) {
        op.response(
            status,
            "Server-Sent Events",
            Some((
                "text/event-stream",
                json!({
                    "type": "string",
                    "description": "A stream of events (`id`, `event`, `data`, `retry` lines), kept alive by comment lines"
                }),
            )),
        );
    }
}

/// An event whose `data` is `value` serialized as compact JSON (one line).
///
/// # Errors
/// When `value` cannot be serialized.
pub fn json_event<T: Serialize + ?Sized>(value: &T) -> Result<Event, serde_json::Error> {
    serde_json::to_string(value).map(|data| Event::default().data(data))
}

/// The `Last-Event-ID` request header: the id of the last event a
/// reconnecting client received (`None` on a first connection).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LastEventId(pub Option<String>);

impl LastEventId {
    /// The id, if the client sent one.
    pub fn as_deref(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// The id parsed as `T` (a sequence number, say); `None` when absent or
    /// unparsable (then start from the beginning).
    pub fn parse<T: std::str::FromStr>(&self) -> Option<T> {
        self.0.as_deref().and_then(|s| s.trim().parse().ok())
    }
}

impl FromRequestParts for LastEventId {
    async fn from_request_parts(
        parts: &mut Parts,
        _cx: &RequestContext,
    ) -> Result<Self, Rejection> {
        Ok(LastEventId(parts.headers.get("last-event-id").map(|v| {
            String::from_utf8_lossy(v.as_bytes()).into_owned()
        })))
    }
}

impl DescribeInput for LastEventId {
    fn describe(op: &mut OperationBuilder<'_>) {
        op.parameter(
            "Last-Event-ID",
            ParameterIn::Header,
            false,
            json!({"type": "string", "title": "Last-Event-Id"}),
        );
    }
}
