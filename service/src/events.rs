//! Real time: user events on the message bus, and `WebSocket /ws/events`.
//!
//! Handlers publish a [`UserEvent`] on the bus (in process by default; NATS
//! with `NATS_URL`, else Redis pub/sub with `REDIS_URL`), so every instance
//! sees it. One task per instance ([`bridge`]) feeds what the bus delivers
//! into the instance's WebSocket [`Hub`], which fans it out to the
//! connected clients with bounded per-client lag: a client that does not
//! keep up is disconnected, never buffered for.
//!
//! A burst from the bus is not the clients' lag. When NATS comes back after
//! an outage, its client delivers every event published meanwhile at once;
//! fed straight into the hub, more than the hub's capacity (256) of them
//! would drop every WebSocket client (`1013`), however fast it reads. So the
//! bridge paces: while the slowest subscriber has half the hub's capacity
//! (or more) still to receive, it waits for the subscribers to take them
//! (polling every 10 ms) before forwarding the next event; the bus
//! subscription buffers the rest (1024 events). Nothing is dropped, only
//! delayed. A subscriber that takes nothing for a whole second is stuck, not
//! busy: the bridge then stops waiting (and stays so until the backlog is
//! below half again), so that one stuck client delays the others by at most
//! a second and is dropped by the hub as before. The backlog is the slowest
//! subscriber's, so while a stuck client is connected during a burst, a
//! reading client slower than the bridge may be dropped with it.

use crate::auth::Auth;
use crate::model::UserResponse;
use ferrapi::prelude::*;
use ferrapi::ws::{Hub, WebSocketResponse, WebSocketUpgrade, close_code};
use ferrapi_storage::bus::{Bus, Topic};
use std::sync::Arc;

/// A user event as WebSocket clients receive it:
/// `{"type": "user.created", "data": {user}}`,
/// `{"type": "user.deleted", "data": {"id": …}}`.
// One type for the bus, the WebSocket clients and the documents: its schema
// is in the AsyncAPI document and the OpenAPI document's `x-websockets`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, Validate)]
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
    let mut pacer = Pacer::default();
    while let Some(event) = events.recv().await {
        pacer.pace(&hub).await;
        if let Err(e) = hub.publish(HUB_TOPIC, &event) {
            tracing::warn!(error = %e, "cannot forward a user event");
        }
    }
}

/// How often the bridge looks at the hub's backlog while it waits.
const PACE_POLL: std::time::Duration = std::time::Duration::from_millis(10);
/// A backlog that has not shrunk for this long is a stuck subscriber.
const PACE_STALL: std::time::Duration = std::time::Duration::from_secs(1);

/// Holds the bridge back while the hub's subscribers work through a burst
/// (see the module docs).
#[derive(Debug, Default)]
struct Pacer {
    /// A subscriber was found stuck: no waiting until the backlog is below
    /// the mark again (the hub drops that subscriber at its capacity).
    stalled: bool,
}

impl Pacer {
    /// Returns once the slowest subscriber has less than half the hub's
    /// capacity to receive, or once the backlog stopped shrinking for
    /// [`PACE_STALL`]. Terminates: each wait either sees the backlog shrink
    /// (at most `capacity` times in a row) or ends at the stall timeout.
    async fn pace(&mut self, hub: &Hub) {
        let mark = (hub.capacity() / 2).max(1);
        let mut backlog = hub.queued(HUB_TOPIC);
        if backlog < mark {
            self.stalled = false;
            return;
        }
        if self.stalled {
            return;
        }
        let mut progress = tokio::time::Instant::now();
        while backlog >= mark {
            if progress.elapsed() >= PACE_STALL {
                tracing::warn!(
                    backlog,
                    "a WebSocket client takes no events: forwarding without waiting for it"
                );
                self.stalled = true;
                return;
            }
            tokio::time::sleep(PACE_POLL).await;
            let now = hub.queued(HUB_TOPIC);
            if now < backlog {
                progress = tokio::time::Instant::now();
            }
            backlog = now;
        }
    }
}

/// How a WebSocket client authenticates: `?token=<access token>`.
#[derive(Debug, Deserialize, JsonSchema, Validate)]
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

#[cfg(test)]
mod tests {
    use super::*;
    use ferrapi_storage::bus::InProcessBus;
    use std::time::Duration;

    /// More events than the hub holds arrive at once (NATS delivering what
    /// it buffered during an outage) while a client reads them, a little
    /// slower than the bridge could forward them: the client gets them all,
    /// in order, and is not dropped.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_from_the_bus_is_not_the_clients_lag() {
        const BURST: i64 = 600;
        let bus = Bus::new(InProcessBus::new());
        let hub = Hub::new();
        let bridge = tokio::spawn(bridge(bus.clone(), hub.clone()));
        let mut reader = hub.subscribe(HUB_TOPIC);
        // Wait (bounded) until the bridge has subscribed to the bus: probe
        // events (id 0) reach the hub.
        let mut bridged = false;
        for _ in 0..200 {
            let _ = bus
                .publish(&USER_EVENTS, &UserEvent::Deleted { id: 0 })
                .await;
            if let Ok(Some(_)) =
                tokio::time::timeout(Duration::from_millis(10), reader.recv()).await
            {
                bridged = true;
                break;
            }
        }
        assert!(bridged, "the bridge never forwarded a probe");
        let client = tokio::spawn(async move {
            let mut ids = Vec::new();
            while ids.len() < BURST as usize {
                let next = tokio::time::timeout(Duration::from_secs(30), reader.recv()).await;
                let Ok(Some(message)) = next else { break };
                let text = message.as_text().unwrap_or_default().to_owned();
                if let Ok(UserEvent::Deleted { id }) = serde_json::from_str(&text)
                    && id > 0
                {
                    ids.push(id);
                }
                // A client on a network: slower than the bridge.
                if ids.len() % 16 == 0 {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
            (ids, reader.lagged())
        });
        for id in 1..=BURST {
            assert!(
                bus.publish(&USER_EVENTS, &UserEvent::Deleted { id })
                    .await
                    .is_ok()
            );
        }
        let (ids, lagged) = client.await.unwrap_or_default();
        assert!(!lagged, "the client was dropped after {} events", ids.len());
        assert_eq!(
            ids,
            (1..=BURST).collect::<Vec<_>>(),
            "every event, in order"
        );
        bridge.abort();
    }
}
