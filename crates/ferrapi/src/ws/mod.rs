//! WebSocket routes (feature `ws`).
//!
//! A WebSocket route is declared like any other route — a route attribute
//! (`#[get("/ws/events")]`) or [`Route::get`](crate::Route::get), on an app
//! or a router — with a handler that takes a [`WebSocketUpgrade`] next to
//! any other extractors (`Query` for a token, `Depends<…>`, `State<…>`,
//! headers, cookies) and returns what
//! [`on_upgrade`](WebSocketUpgrade::on_upgrade) gives. The callback gets the
//! accepted [`WebSocket`].
//!
//! ```
//! use ferrapi::prelude::*;
//! use ferrapi::ws::{Hub, WebSocketUpgrade, WebSocketResponse, close_code};
//!
//! #[derive(Deserialize, JsonSchema, Validate)]
//! struct Auth {
//!     token: Option<String>,
//! }
//!
//! /// Pushes every event of the `users` topic to the client.
//! #[get("/ws/events")]
//! async fn events(
//!     ws: WebSocketUpgrade,
//!     Query(auth): Query<Auth>,
//!     State(hub): State<Hub>,
//! ) -> WebSocketResponse {
//!     if auth.token.as_deref() != Some("secret") {
//!         // The handshake completes, then the client gets close code 1008.
//!         return ws.close(close_code::POLICY, "invalid token");
//!     }
//!     ws.on_upgrade(move |socket| async move {
//!         let _ = socket.forward(hub.subscribe("users")).await;
//!     })
//! }
//!
//! let hub = Hub::new();
//! let app = App::new().state(hub.clone()).route(events);
//! // Elsewhere (a handler, a task fed by the message bus):
//! hub.publish("users", &serde_json::json!({"type": "user.created"})).unwrap();
//! ```
//!
//! Authentication by the first message instead of the query string (the
//! token then stays out of access logs): accept, wait a bounded time for
//! it, close with `1008` when it is wrong.
//!
//! ```
//! use ferrapi::prelude::*;
//! use ferrapi::ws::{WebSocketUpgrade, WebSocketResponse, close_code};
//! use std::time::Duration;
//!
//! #[derive(Deserialize)]
//! struct Hello { token: String }
//!
//! #[get("/ws/chat")]
//! async fn chat(ws: WebSocketUpgrade) -> WebSocketResponse {
//!     ws.on_upgrade(|mut socket| async move {
//!         let hello = tokio::time::timeout(Duration::from_secs(5), socket.recv_json::<Hello>()).await;
//!         match hello {
//!             Ok(Ok(hello)) if hello.token == "secret" => {
//!                 let _ = socket.send_json(&serde_json::json!({"type": "welcome"})).await;
//!                 // … the conversation …
//!             }
//!             _ => {
//!                 socket.close(close_code::POLICY, "authentication required").await;
//!             }
//!         }
//!     })
//! }
//! ```
//!
//! # What happens
//!
//! - **Handshake.** A route whose handler takes [`WebSocketUpgrade`] (or
//!   returns [`WebSocketResponse`]) is a WebSocket route. A request that is
//!   not a WebSocket handshake is answered `400` (`426` when the connection
//!   cannot be upgraded) in the usual `{"detail": …}` shape. Only HTTP/1.1
//!   upgrades are served (not WebSockets over HTTP/2).
//! - **Failures close the socket, as in FastAPI.** When an extractor or a
//!   dependency of a WebSocket route fails (a missing `token`, a `401` from
//!   an auth dependency, a `422`), or the handler returns an error, the
//!   handshake still completes and the server then sends a close frame:
//!   code `1008` (policy violation) for a 4xx, `1011` (internal error) for
//!   a 5xx, with the error's `detail` as the reason (cut to 123 bytes; for a
//!   422, the first error as `loc: msg`). FastAPI closes with `1008` on
//!   `WebSocketRequestValidationError` the same way.
//! - **Dependencies** resolve for the handshake, as for any route; their
//!   cleanups run once the handshake is answered (FastAPI keeps
//!   `yield`-dependencies open until the socket closes). Move owned values
//!   (pools, a hub, the authenticated user) into the callback.
//! - **Keep-alive.** The server pings every
//!   [`ping_interval`](WebSocketConfig::ping_interval) (20 s) and closes
//!   with `1011` when no pong comes within the
//!   [`pong_timeout`](WebSocketConfig::pong_timeout) (20 s). Pings from the
//!   client are answered.
//! - **Bounded send buffer.** Each connection queues at most
//!   [`send_buffer`](WebSocketConfig::send_buffer) bytes (1 MiB; each
//!   message counts its payload plus 64 bytes). A send that finds it full
//!   waits up to the [`send_timeout`](WebSocketConfig::send_timeout) (10 s),
//!   and a message whose write to the socket takes longer than that also
//!   counts: the client is then disconnected as a slow consumer
//!   ([`CloseReason::SlowConsumer`]) and every pending send fails with
//!   [`WsError::SlowConsumer`]. Per connection the server holds at most the
//!   send buffer, plus the one message being written (tungstenite's copy of
//!   its frame), plus tungstenite's 128 KiB read buffer and
//!   [`receive_queue`](WebSocketConfig::receive_queue) incoming messages of
//!   at most [`max_message_size`](WebSocketConfig::max_message_size).
//! - **Broadcast.** [`Hub`] fans messages out to the subscribers of a topic
//!   with bounded per-subscriber lag; a laggard is dropped (closed with
//!   `1013`) rather than buffered for. Feed it from the message bus to reach
//!   clients of every instance.
//! - **Documentation.** WebSocket routes are not OpenAPI operations: they
//!   are left out of the document's `paths`, listed under its `x-websockets`
//!   extension, and described by the AsyncAPI 3.0 document at
//!   `/asyncapi.json` ([`App::asyncapi_url`](crate::App::asyncapi_url)),
//!   with the message types declared on the route: `receives = [T, …]`
//!   and `sends = [T, …]` on the route attribute, or
//!   [`Route::websocket_receives`](crate::Route::websocket_receives) and
//!   [`websocket_sends`](crate::Route::websocket_sends).
//! - **Testing.** [`TestServer::websocket`](crate::testing::TestServer::websocket)
//!   connects a [`TestWebSocket`](crate::testing::TestWebSocket) client.
//!
//! The machinery is axum's `WebSocketUpgrade` over tokio-tungstenite; one
//! task per connection runs the handler's callback and the socket.

pub(crate) mod client;
mod hub;
mod socket;

pub use hub::{Hub, Subscription};
pub use socket::{
    CloseFrame, CloseReason, Message, Utf8Bytes, WebSocket, WebSocketConfig, WsError, WsReceiver,
    WsSender, close_code,
};

use crate::extract::{FromRequestParts, Rejection, Request, RequestContext};
use crate::openapi::{DescribeInput, DescribeOutput, OperationBuilder};
use crate::response::{Responder, Response};
use crate::routing::Route;
use axum::extract::ws as axum_ws;
use ferrapi_core::HttpError;
use http::StatusCode;
use http::request::Parts;
use http_body_util::BodyExt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The handshake of a WebSocket route, waiting for the handler to accept
/// it ([`on_upgrade`](Self::on_upgrade)) or refuse it
/// ([`close`](Self::close)). Taking it as a parameter makes the route a
/// WebSocket route (see the [module docs](self)).
pub struct WebSocketUpgrade {
    slot: Arc<UpgradeSlot>,
    config: WebSocketConfig,
}

impl std::fmt::Debug for WebSocketUpgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketUpgrade")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The pending handshake, shared by the route's wrapper (which closes the
/// socket when the handler fails) and the extractor.
struct UpgradeSlot(Mutex<Option<axum_ws::WebSocketUpgrade>>);

impl UpgradeSlot {
    fn take(&self) -> Option<axum_ws::WebSocketUpgrade> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
    fn put(&self, upgrade: axum_ws::WebSocketUpgrade) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(upgrade);
    }
}

/// `WebSocketUpgrade` was used outside a WebSocket route's handler (in a
/// custom extractor, say): a programming error, answered 500 and logged.
#[derive(Debug, thiserror::Error)]
#[error("WebSocketUpgrade can only be taken by a route's handler")]
pub struct NotAWebSocketRoute;

impl FromRequestParts for WebSocketUpgrade {
    async fn from_request_parts(parts: &mut Parts, cx: &RequestContext) -> Result<Self, Rejection> {
        let slot = parts
            .extensions
            .get::<Arc<UpgradeSlot>>()
            .cloned()
            .ok_or_else(|| Rejection::Error(crate::Error::new(NotAWebSocketRoute)))?;
        let config = cx.state::<WebSocketConfig>().cloned().unwrap_or_default();
        Ok(Self { slot, config })
    }
}

impl DescribeInput for WebSocketUpgrade {
    fn describe(op: &mut OperationBuilder<'_>) {
        describe_websocket(op);
    }
}

/// Marks the operation as a WebSocket handshake: the application build
/// reads the `101` response as "WebSocket route".
fn describe_websocket(op: &mut OperationBuilder<'_>) {
    op.response(StatusCode::SWITCHING_PROTOCOLS, "Switching Protocols", None);
}

/// Whether a described operation is a WebSocket route's.
pub(crate) fn is_websocket(operation: &crate::openapi::Operation) -> bool {
    operation.responses.contains_key("101")
}

impl WebSocketUpgrade {
    /// This connection's settings (the default is the application's
    /// `WebSocketConfig` state, else [`WebSocketConfig::default`]).
    #[must_use]
    pub fn config(mut self, config: WebSocketConfig) -> Self {
        self.config = config;
        self
    }

    /// The subprotocols the server supports, in order of preference: the
    /// first one the client also asked for (`Sec-WebSocket-Protocol`) is
    /// selected.
    #[must_use]
    pub fn protocols<I>(self, protocols: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<std::borrow::Cow<'static, str>>,
    {
        if let Some(upgrade) = self.slot.take() {
            self.slot.put(upgrade.protocols(protocols));
        }
        self
    }

    /// Accepts the connection: answers `101 Switching Protocols`, then runs
    /// `callback` with the socket. The connection is closed (code `1000`)
    /// when the callback has returned and every [`WsSender`] is dropped.
    pub fn on_upgrade<C, Fut>(self, callback: C) -> WebSocketResponse
    where
        C: FnOnce(WebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Some(upgrade) = self.slot.take() else {
            tracing::error!("WebSocketUpgrade used twice in one request");
            return WebSocketResponse(crate::routing::internal_error());
        };
        let config = self.config;
        let upgrade = upgrade
            .max_message_size(config.max_message_size)
            .max_frame_size(config.max_message_size);
        WebSocketResponse(upgrade.on_upgrade(move |socket| async move {
            let (ws, driver) = WebSocket::start(socket, &config);
            let ((), ()) = tokio::join!(driver, callback(ws));
        }))
    }

    /// Completes the handshake, then closes the connection with `code` and
    /// `reason` (cut to 123 bytes): how a handler refuses a client, as
    /// FastAPI's `websocket.close(code=1008)` before `accept()`.
    pub fn close(self, code: u16, reason: &str) -> WebSocketResponse {
        match self.slot.take() {
            Some(upgrade) => WebSocketResponse(close_after_handshake(
                upgrade,
                CloseFrame::new(code, reason),
            )),
            None => WebSocketResponse(crate::routing::internal_error()),
        }
    }
}

/// The handshake answer of a WebSocket route (`101 Switching Protocols`).
#[must_use = "the connection is only accepted when the handler returns this response"]
pub struct WebSocketResponse(Response);

impl std::fmt::Debug for WebSocketResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("WebSocketResponse")
            .field(&self.0.status())
            .finish()
    }
}

impl Responder for WebSocketResponse {
    fn respond(self, _cx: &RequestContext) -> Response {
        self.0
    }
}

impl DescribeOutput for WebSocketResponse {
    fn describe(op: &mut OperationBuilder<'_>, _status: StatusCode) {
        describe_websocket(op);
    }
}

/// How long a refused connection waits for the client's close reply.
const CLOSE_REPLY_TIMEOUT: Duration = Duration::from_secs(5);

fn close_after_handshake(upgrade: axum_ws::WebSocketUpgrade, frame: CloseFrame) -> Response {
    upgrade.on_upgrade(move |mut socket| async move {
        let close = axum_ws::Message::Close(Some(axum_ws::CloseFrame {
            code: frame.code,
            reason: frame.reason.into(),
        }));
        let _ = tokio::time::timeout(CLOSE_REPLY_TIMEOUT, async {
            if socket.send(close).await.is_ok() {
                while let Some(Ok(_)) = socket.recv().await {}
            }
        })
        .await;
    })
}

/// Turns `route` into a WebSocket route: the handshake is checked before
/// the handler runs, and a handler that answers an error has the socket
/// accepted and closed (`1008`, or `1011` for a 5xx) instead.
pub(crate) fn websocket_route(mut route: Route) -> Route {
    let inner = route.handler.clone();
    route.handler = Arc::new(move |req: Request, cx: Arc<RequestContext>| {
        let inner = inner.clone();
        Box::pin(async move {
            use axum::extract::FromRequestParts as _;
            let (mut parts, body) = req.into_parts();
            let upgrade = match axum_ws::WebSocketUpgrade::from_request_parts(&mut parts, &()).await
            {
                Ok(u) => u,
                Err(rejection) => {
                    let error = HttpError::new(rejection.status(), rejection.body_text());
                    return cx.render_error(error.into());
                }
            };
            let slot = Arc::new(UpgradeSlot(Mutex::new(Some(upgrade))));
            parts.extensions.insert(slot.clone());
            let res = inner(Request::from_parts(parts, body), cx).await;
            let status = res.status();
            if !(status.is_client_error() || status.is_server_error()) {
                return res;
            }
            match slot.take() {
                Some(upgrade) => {
                    let code = if status.is_server_error() {
                        close_code::ERROR
                    } else {
                        close_code::POLICY
                    };
                    let reason = reason_of(res).await;
                    close_after_handshake(upgrade, CloseFrame::new(code, reason))
                }
                None => res,
            }
        })
    });
    route
}

/// The close reason for an error response: its `detail` (for a list of
/// validation errors, the first as `loc: msg`), else the status's reason.
async fn reason_of(res: Response) -> String {
    let status = res.status();
    let fallback = || status.canonical_reason().unwrap_or("error").to_owned();
    let Ok(body) = http_body_util::Limited::new(res.into_body(), 16 * 1024)
        .collect()
        .await
    else {
        return fallback();
    };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&body.to_bytes()) else {
        return fallback();
    };
    match value.get("detail") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Array(items)) => items
            .first()
            .map(|item| {
                let loc = item
                    .get("loc")
                    .and_then(serde_json::Value::as_array)
                    .map(|parts| {
                        parts
                            .iter()
                            .map(|p| match p {
                                serde_json::Value::String(s) => s.clone(),
                                other => other.to_string(),
                            })
                            .collect::<Vec<_>>()
                            .join(".")
                    })
                    .unwrap_or_default();
                let msg = item
                    .get("msg")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("invalid");
                format!("{loc}: {msg}")
            })
            .unwrap_or_else(fallback),
        _ => fallback(),
    }
}
