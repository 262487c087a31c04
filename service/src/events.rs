//! Real time: user events on the message bus, and `WebSocket /ws/events`.
//!
//! Handlers publish a [`UserEvent`] on the bus (in process by default; NATS
//! with `NATS_URL`, else Redis pub/sub with `REDIS_URL`), so every instance
//! sees it. One task per instance ([`bridge`]) feeds what the bus delivers
//! into the instance's WebSocket [`Hub`], which fans it out to the
//! connected clients with bounded per-client lag: a client that does not
//! keep up is disconnected, never buffered for.

use crate::auth::Auth;
use crate::users::UserResponse;
use ferrapi::prelude::*;
use ferrapi::ws::{Hub, WebSocketResponse, WebSocketUpgrade, close_code};
use ferrapi_storage::bus::{Bus, Topic};
use std::sync::Arc;

/// A user event as WebSocket clients receive it:
/// `{"type": "user.created", "data": {user}}`,
/// `{"type": "user.deleted", "data": {"id": …}}`.
// One type for the bus, the WebSocket clients and the documents: its schema
// is in the AsyncAPI document and the OpenAPI document's `x-websockets`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum UserEvent {
    /// A user was created.
    #[serde(rename = "user.created")]
    Created(UserResponse),
    /// A user was deleted.
    #[serde(rename = "user.deleted")]
    Deleted {
        /// The deleted user's id.
        id: i64,
    },
}

/// The bus topic of user events.
pub const USER_EVENTS: Topic<UserEvent> = Topic::new("users");

/// The hub topic WebSocket clients follow.
const HUB_TOPIC: &str = "users";

/// Publishes `event`; a bus failure is logged, never fails the request
/// (the write it reports has happened).
pub async fn publish(bus: &Bus, event: UserEvent) {
    if let Err(e) = bus.publish(&USER_EVENTS, &event).await {
        tracing::warn!(error = %e, "publishing a user event failed");
    }
}

/// Feeds the bus's user events into `hub`, for as long as the bus lives.
pub async fn bridge(bus: Bus, hub: Hub) {
    let mut events = match bus.subscribe(&USER_EVENTS).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot subscribe to user events: WebSockets get none");
            return;
        }
    };
    while let Some(event) = events.recv().await {
        if let Err(e) = hub.publish(HUB_TOPIC, &event) {
            tracing::warn!(error = %e, "cannot forward a user event");
        }
    }
}

/// How a WebSocket client authenticates: `?token=<access token>`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct WsAuth {
    /// An access token from `POST /api/v1/auth/token`.
    #[serde(default)]
    pub token: Option<String>,
}

/// User events in real time. A missing or invalid token completes the
/// handshake, then closes with code 1008.
#[get("/ws/events", tags = ["events"], sends = [UserEvent])]
pub async fn ws_events(
    ws: WebSocketUpgrade,
    Query(auth): Query<WsAuth>,
    State(keys): State<Arc<Auth>>,
    State(hub): State<Hub>,
) -> WebSocketResponse {
    let valid = auth
        .token
        .as_deref()
        .and_then(|t| keys.user_id(t))
        .is_some();
    if !valid {
        return ws.close(close_code::POLICY, "invalid or missing token");
    }
    ws.on_upgrade(move |socket| async move {
        // Ends when the client goes away, or is dropped as too slow.
        let _ = socket.forward(hub.subscribe(HUB_TOPIC)).await;
    })
}

/// The WebSocket router.
pub fn router() -> Router {
    Router::new().route(ws_events)
}
