//! [`Hub`]: broadcast to topics (rooms), with bounded queues and laggards
//! dropped.

use super::Message;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::broadcast;

/// Broadcast of messages to the subscribers of a topic (a room): what a
/// WebSocket route forwards to its clients.
///
/// Each topic is a bounded ring of `capacity` messages (tokio's
/// `broadcast`): a message is serialized once and shared by every
/// subscriber, and a subscriber may fall at most `capacity` messages behind.
/// One that falls further is dropped: its [`Subscription`] ends with
/// [`lagged`](Subscription::lagged) set, and
/// [`WebSocket::forward`](super::WebSocket::forward) closes its connection
/// with code `1013` (try again later), so a slow client never makes the
/// hub buffer without bound.
///
/// The hub is local to the process. To reach the clients of every instance,
/// publish each event to the message bus, and let one task per instance
/// feed what the bus delivers into its hub with [`publish`](Self::publish)
/// or [`publish_message`](Self::publish_message).
///
/// ```
/// use ferrapi::ws::Hub;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let hub = Hub::new();
/// let mut sub = hub.subscribe("users");
/// let delivered = hub.publish("users", &serde_json::json!({"type": "user.created"})).unwrap();
/// assert_eq!(delivered, 1);
/// let message = sub.recv().await.unwrap();
/// assert_eq!(message.as_text(), Some(r#"{"type":"user.created"}"#));
/// # });
/// ```
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    topics: Mutex<HashMap<String, broadcast::Sender<Message>>>,
    capacity: usize,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("capacity", &self.inner.capacity)
            .finish_non_exhaustive()
    }
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    /// A hub whose subscribers may fall 256 messages behind.
    pub fn new() -> Self {
        Self::with_capacity(256)
    }

    /// A hub whose subscribers may fall `capacity` messages behind (at
    /// least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                topics: Mutex::new(HashMap::new()),
                capacity: capacity.max(1),
            }),
        }
    }

    /// Subscribes to `topic`: the subscription receives every message
    /// published to it from now on.
    pub fn subscribe(&self, topic: &str) -> Subscription {
        let mut topics = self.topics();
        let rx = match topics.get(topic) {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = broadcast::channel(self.inner.capacity);
                topics.insert(topic.to_owned(), tx);
                rx
            }
        };
        Subscription { rx: Some(rx) }
    }

    /// Publishes `value` as a JSON text message to `topic`, serialized
    /// once; returns how many subscribers it was queued for.
    ///
    /// # Errors
    /// When `value` cannot be serialized.
    pub fn publish<T: Serialize + ?Sized>(
        &self,
        topic: &str,
        value: &T,
    ) -> Result<usize, serde_json::Error> {
        Ok(self.publish_message(topic, Message::json(value)?))
    }

    /// Publishes a message (for instance JSON text received from the
    /// message bus, already serialized) to `topic`; returns how many
    /// subscribers it was queued for.
    pub fn publish_message(&self, topic: &str, message: impl Into<Message>) -> usize {
        let tx = {
            let mut topics = self.topics();
            match topics.get(topic) {
                Some(tx) if tx.receiver_count() > 0 => tx.clone(),
                Some(_) => {
                    // Everyone left: forget the topic (and its ring).
                    topics.remove(topic);
                    return 0;
                }
                None => return 0,
            }
        };
        tx.send(message.into()).unwrap_or(0)
    }

    /// How many messages the slowest subscriber of `topic` has not received
    /// yet (0 without subscribers). A publisher feeding a burst (a message
    /// bus delivering what it buffered during an outage) can wait while this
    /// is near [`capacity`](Self::capacity), so that the burst does not
    /// count as the clients' lag.
    ///
    /// ```
    /// use ferrapi::ws::Hub;
    ///
    /// let hub = Hub::with_capacity(8);
    /// let _sub = hub.subscribe("users");
    /// hub.publish_message("users", "one");
    /// hub.publish_message("users", "two");
    /// assert_eq!(hub.queued("users"), 2);
    /// assert_eq!(hub.queued("other"), 0);
    /// assert_eq!(hub.capacity(), 8);
    /// ```
    pub fn queued(&self, topic: &str) -> usize {
        self.topics().get(topic).map_or(0, broadcast::Sender::len)
    }

    /// How far a subscriber may fall behind before it is dropped.
    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }

    /// How many subscriptions `topic` has.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        self.topics()
            .get(topic)
            .map_or(0, broadcast::Sender::receiver_count)
    }

    fn topics(&self) -> std::sync::MutexGuard<'_, HashMap<String, broadcast::Sender<Message>>> {
        // The map stays consistent whatever panicked while holding it.
        self.inner
            .topics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A subscription to one topic of a [`Hub`].
#[derive(Debug)]
pub struct Subscription {
    /// `None` once dropped for lagging (it then no longer counts as a
    /// subscriber).
    rx: Option<broadcast::Receiver<Message>>,
}

impl Subscription {
    /// The next message; `None` when the hub is gone or when this
    /// subscriber fell too far behind and was dropped (then
    /// [`lagged`](Self::lagged) is true).
    pub async fn recv(&mut self) -> Option<Message> {
        let rx = self.rx.as_mut()?;
        match rx.recv().await {
            Ok(message) => Some(message),
            Err(broadcast::error::RecvError::Closed) => None,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::debug!(missed, "broadcast subscriber lagged and was dropped");
                self.rx = None;
                None
            }
        }
    }

    /// True once this subscriber has been dropped for falling behind.
    pub fn lagged(&self) -> bool {
        self.rx.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_laggard_is_dropped_and_stops_counting() {
        let hub = Hub::with_capacity(2);
        let mut slow = hub.subscribe("t");
        let mut fast = hub.subscribe("t");
        for n in 0..2 {
            assert_eq!(hub.publish("t", &n).unwrap_or(0), 2);
            assert_eq!(fast.recv().await.map(|m| m.len()), Some(1));
        }
        // `slow` read nothing: two more messages push it past the ring.
        for n in 2..4 {
            hub.publish("t", &n).unwrap_or(0);
            assert!(fast.recv().await.is_some());
        }
        assert_eq!(slow.recv().await, None);
        assert!(slow.lagged());
        assert_eq!(slow.recv().await, None);
        assert_eq!(hub.subscriber_count("t"), 1);
        assert!(!fast.lagged());
    }

    #[tokio::test]
    async fn topics_are_separate_and_forgotten_when_empty() {
        let hub = Hub::new();
        let mut a = hub.subscribe("a");
        let b = hub.subscribe("b");
        assert_eq!(hub.publish_message("a", "for a"), 1);
        assert_eq!(
            a.recv().await.as_ref().and_then(Message::as_text),
            Some("for a")
        );
        drop(b);
        assert_eq!(hub.publish_message("b", "nobody"), 0);
        assert_eq!(hub.subscriber_count("b"), 0);
        drop(hub);
        // The hub is gone: the subscription ends.
        assert_eq!(a.recv().await, None);
        assert!(!a.lagged());
    }
}
