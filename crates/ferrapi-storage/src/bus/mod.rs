//! The message bus: publish/subscribe of typed events, in process (the
//! embedded default) or across instances over NATS (feature `nats`) or
//! Redis pub/sub (feature `redis`).
//!
//! A [`Topic<E>`] ties a name to the event type carried on it, so that
//! publishers and subscribers cannot disagree on the type. [`Bus::publish`]
//! sends one event (as JSON) to every current subscriber of the topic, on
//! every instance connected to the same server; [`Bus::subscribe`] returns
//! a [`Subscription`] whose [`recv`](Subscription::recv) yields them. This
//! is what makes a WebSocket on one instance see a user created through
//! another:
//!
//! ```
//! use ferrapi_storage::bus::{Bus, Topic};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! #[serde(tag = "type", content = "data")]
//! enum UserEvent {
//!     #[serde(rename = "user.created")]
//!     Created { id: i64, name: String },
//!     #[serde(rename = "user.deleted")]
//!     Deleted { id: i64 },
//! }
//!
//! const USER_EVENTS: Topic<UserEvent> = Topic::new("users");
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let bus = Bus::in_process();                 // or Bus::connect(&std::env::var("NATS_URL")?).await?
//! let mut events = bus.subscribe(&USER_EVENTS).await?;     // in the WebSocket handler
//! bus.publish(&USER_EVENTS, &UserEvent::Deleted { id: 7 }).await?; // in the DELETE handler
//! assert_eq!(events.recv().await, Some(UserEvent::Deleted { id: 7 }));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! In handlers the bus is application state (`App::state(bus)`, then
//! `State<Bus>`); a WebSocket handler subscribes and forwards what
//! [`Subscription::recv`] yields, a write handler publishes:
//!
//! ```
//! use ferrapi::prelude::*;
//! use ferrapi_storage::bus::{Bus, Topic};
//!
//! const PINGS: Topic<String> = Topic::new("pings");
//!
//! #[post("/ping", status = 204)]
//! async fn ping(State(bus): State<Bus>) -> Result<NoContent, HttpError> {
//!     bus.publish(&PINGS, &"ping".to_owned()).await.map_err(|e| {
//!         tracing::warn!(error = %e, "event not published");
//!         HttpError::new(ferrapi::http::StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
//!     })?;
//!     Ok(NoContent)
//! }
//!
//! let app = App::new().state(Bus::in_process()).route(ping);
//! ```
//!
//! # Semantics (the same on every backend)
//!
//! - At most once, fire and forget, as FastAPI users know from
//!   `broadcaster` or Redis pub/sub: an event reaches the subscribers that
//!   exist when it is published; nothing is stored. Work that must not be
//!   lost belongs in the task queue.
//! - Each subscription has a bounded buffer (default 1024 events). A
//!   subscriber that falls behind loses the oldest events (counted in
//!   [`Subscription::lagged`], logged) rather than making the bus buffer
//!   without bound; a WebSocket handler can close such a slow client.
//! - Events that do not decode as the topic's type are skipped and logged.
//! - Topic names are 1..=200 characters of `A-Z a-z 0-9 _ - .`; with
//!   [`Bus::namespace`] every name is prefixed (`ferrapi.users`).
//! - One server subscription per topic per instance, shared by that
//!   instance's subscribers; it is dropped once they are all gone.
//!
//! # Reconnection
//!
//! - **NATS**: async-nats reconnects by itself, forever, with a back-off
//!   capped at 2 s, and re-sends the subscriptions on the new connection;
//!   events published while the connection is down are buffered by the
//!   client (up to its capacity) and sent after it is back. Startup does not
//!   wait for the server ([`Bus::connect`] fails only for a malformed URL);
//!   [`Bus::health`] reports whether the connection is up.
//! - **Redis**: one RESP3 connection (redis-rs's connection manager) carries
//!   the subscriptions and the publishes. After it drops, the manager
//!   reconnects and re-subscribes every channel (its automatic
//!   resubscription); a keep-alive `PING` every second makes the reconnection
//!   happen even when the instance publishes nothing. A publish while Redis
//!   is down fails with [`BusError::Unavailable`] (Redis has no client-side
//!   buffer). Events published during the outage are lost for this instance's
//!   subscribers, as Redis pub/sub does not store them.

mod memory;
#[cfg(feature = "nats")]
mod nats_bus;
#[cfg(feature = "redis")]
mod redis_bus;

pub use memory::InProcessBus;
#[cfg(feature = "nats")]
pub use nats_bus::NatsBus;
#[cfg(feature = "redis")]
pub use redis_bus::RedisBus;

use crate::common::url::mask_url;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Events buffered per subscription before the oldest are dropped.
pub const DEFAULT_CAPACITY: usize = 1024;

/// A bus operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The server cannot be reached.
    #[error("message bus unavailable: {0}")]
    Unavailable(String),
    /// The server refused the operation.
    #[error("message bus error: {0}")]
    Backend(String),
    /// The event could not be encoded as JSON.
    #[error("cannot encode the event: {0}")]
    Encode(#[source] serde_json::Error),
    /// Not a usable topic name.
    #[error("invalid topic `{0}`: expected 1 to 200 characters of A-Z, a-z, 0-9, `_`, `-` and `.`")]
    InvalidTopic(String),
    /// The bus URL is not usable.
    #[error("invalid message bus URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL (any password masked).
        url: String,
        /// Why.
        reason: String,
    },
}

/// A topic carrying events of type `E`.
///
/// ```
/// use ferrapi_storage::bus::Topic;
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct OrderPaid { order: u64 }
///
/// const ORDERS: Topic<OrderPaid> = Topic::new("orders.paid");
/// let per_tenant: Topic<OrderPaid> = Topic::named(format!("orders.paid.{}", 42));
/// assert_eq!(per_tenant.name(), "orders.paid.42");
/// ```
pub struct Topic<E> {
    name: Cow<'static, str>,
    _event: PhantomData<fn() -> E>,
}

impl<E> Topic<E> {
    /// A topic with a fixed name (usable in a `const`).
    pub const fn new(name: &'static str) -> Self {
        Self {
            name: Cow::Borrowed(name),
            _event: PhantomData,
        }
    }

    /// A topic with a name built at run time.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: Cow::Owned(name.into()),
            _event: PhantomData,
        }
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl<E> Clone for Topic<E> {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            _event: PhantomData,
        }
    }
}

impl<E> fmt::Debug for Topic<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Topic({:?})", self.name)
    }
}

/// Carries encoded events between instances. Implemented by
/// [`InProcessBus`], `NatsBus` and `RedisBus`; [`Bus`] adds types, JSON and
/// topic checks on top.
pub trait BusBackend: Send + Sync + 'static {
    /// Sends `payload` to every subscriber of `topic` (a checked name).
    fn publish<'a>(&'a self, topic: &'a str, payload: Bytes)
    -> BoxFuture<'a, Result<(), BusError>>;
    /// A new receiver of `topic`'s events.
    fn subscribe<'a>(
        &'a self,
        topic: &'a str,
    ) -> BoxFuture<'a, Result<broadcast::Receiver<Bytes>, BusError>>;
    /// Whether the connection to the server is up.
    fn health(&self) -> BoxFuture<'_, Result<(), BusError>>;
    /// A short name for logs and health reports (`in-process`, `nats`,
    /// `redis`).
    fn name(&self) -> &'static str;
}

/// The typed bus (cheap to clone). See the [module docs](self).
#[derive(Clone)]
pub struct Bus {
    backend: Arc<dyn BusBackend>,
    namespace: String,
}

impl fmt::Debug for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bus")
            .field("backend", &self.backend.name())
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl Bus {
    /// A bus over any backend.
    pub fn new(backend: impl BusBackend) -> Self {
        Self {
            backend: Arc::new(backend),
            namespace: String::new(),
        }
    }

    /// A bus within this process (tokio broadcast channels).
    pub fn in_process() -> Self {
        Self::new(InProcessBus::new())
    }

    /// The backend a URL names: `memory://` (in process), `nats://…`
    /// (feature `nats`), `redis://…` (feature `redis`). Does not wait for
    /// the server: only a malformed URL (or a backend not built in) fails.
    ///
    /// # Errors
    /// [`BusError::InvalidUrl`].
    pub async fn connect(url: &str) -> Result<Self, BusError> {
        let invalid = |reason: &str| BusError::InvalidUrl {
            url: mask_url(url),
            reason: reason.to_owned(),
        };
        let scheme = url
            .split_once("://")
            .map(|(s, _)| s)
            .ok_or_else(|| invalid("expected `memory://`, `nats://host:port` or `redis://…`"))?;
        match scheme {
            "memory" => Ok(Self::in_process()),
            #[cfg(feature = "nats")]
            "nats" | "tls" | "ws" | "wss" => Ok(Self::new(NatsBus::connect(url).await?)),
            #[cfg(feature = "redis")]
            "redis" | "rediss" => Ok(Self::new(RedisBus::open(url)?)),
            #[cfg(not(feature = "nats"))]
            "nats" | "tls" | "ws" | "wss" => Err(invalid(
                "this build has no NATS support (enable the `nats` feature of ferrapi-storage)",
            )),
            #[cfg(not(feature = "redis"))]
            "redis" | "rediss" => Err(invalid(
                "this build has no Redis support (enable the `redis` feature of ferrapi-storage)",
            )),
            _ => Err(invalid(
                "expected `memory://`, `nats://host:port` or `redis://…`",
            )),
        }
    }

    /// Prefixes every topic with `namespace` and `.`.
    ///
    /// # Errors
    /// [`BusError::InvalidTopic`] when the prefix is not a valid topic name.
    pub fn namespace(mut self, namespace: &str) -> Result<Self, BusError> {
        check_topic(namespace)?;
        self.namespace = format!("{namespace}.");
        Ok(self)
    }

    /// The backend's name.
    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    fn full_topic(&self, name: &str) -> Result<String, BusError> {
        check_topic(name)?;
        Ok(format!("{}{name}", self.namespace))
    }

    /// Publishes `event` on `topic`.
    ///
    /// # Errors
    /// The event does not encode, the topic name is invalid, or the server
    /// cannot take it (Redis down).
    pub async fn publish<E: Serialize>(&self, topic: &Topic<E>, event: &E) -> Result<(), BusError> {
        let full = self.full_topic(topic.name())?;
        let payload = serde_json::to_vec(event).map_err(BusError::Encode)?;
        self.backend.publish(&full, Bytes::from(payload)).await
    }

    /// Subscribes to `topic`: events published from now on.
    ///
    /// # Errors
    /// The topic name is invalid, or the server cannot be reached.
    pub async fn subscribe<E: DeserializeOwned>(
        &self,
        topic: &Topic<E>,
    ) -> Result<Subscription<E>, BusError> {
        let full = self.full_topic(topic.name())?;
        let rx = self.backend.subscribe(&full).await?;
        Ok(Subscription {
            rx,
            topic: full,
            lagged: 0,
            _event: PhantomData,
        })
    }

    /// Whether the backend's connection is up (for the readiness check).
    ///
    /// # Errors
    /// [`BusError::Unavailable`] while disconnected.
    pub async fn health(&self) -> Result<(), BusError> {
        self.backend.health().await
    }
}

/// The events of one topic, as they arrive. Dropping it unsubscribes.
pub struct Subscription<E> {
    rx: broadcast::Receiver<Bytes>,
    topic: String,
    lagged: u64,
    _event: PhantomData<fn() -> E>,
}

impl<E> fmt::Debug for Subscription<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("topic", &self.topic)
            .field("lagged", &self.lagged)
            .finish()
    }
}

impl<E: DeserializeOwned> Subscription<E> {
    /// The next event; `None` once the bus is gone. Events that do not
    /// decode are skipped (logged); events lost because this subscriber
    /// fell behind are counted in [`lagged`](Self::lagged).
    ///
    /// Cancel-safe: in a `tokio::select!` loop (a WebSocket handler waiting
    /// for events and client frames at once) no event is lost when another
    /// branch wins.
    pub async fn recv(&mut self) -> Option<E> {
        loop {
            match self.rx.recv().await {
                Ok(payload) => match serde_json::from_slice(&payload) {
                    Ok(event) => return Some(event),
                    Err(e) => tracing::warn!(topic = %self.topic, error = %e,
                        "bus event does not decode: skipped"),
                },
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    self.lagged += n;
                    tracing::warn!(topic = %self.topic, lost = n,
                        "bus subscriber fell behind: oldest events dropped");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// Events this subscriber lost by falling behind.
    pub fn lagged(&self) -> u64 {
        self.lagged
    }

    /// The topic's full name (namespace included).
    pub fn topic(&self) -> &str {
        &self.topic
    }
}

fn check_topic(name: &str) -> Result<(), BusError> {
    let ok = (1..=200).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..");
    if ok {
        Ok(())
    } else {
        Err(BusError::InvalidTopic(name.to_owned()))
    }
}

/// One broadcast channel per topic: how every backend fans an event out to
/// the subscribers of its instance.
pub(crate) struct Fanout {
    topics: Mutex<HashMap<String, broadcast::Sender<Bytes>>>,
    capacity: usize,
}

impl Fanout {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            topics: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, broadcast::Sender<Bytes>>> {
        self.topics.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A receiver of `topic`, and whether the topic is new here (the
    /// backend then subscribes on the server).
    pub(crate) fn receiver(&self, topic: &str) -> (broadcast::Receiver<Bytes>, bool) {
        let mut topics = self.lock();
        match topics.get(topic) {
            Some(tx) => (tx.subscribe(), false),
            None => {
                let (tx, rx) = broadcast::channel(self.capacity);
                topics.insert(topic.to_owned(), tx);
                (rx, true)
            }
        }
    }

    /// Hands `payload` to the topic's local subscribers; false when it has
    /// none left (the topic is then forgotten).
    pub(crate) fn deliver(&self, topic: &str, payload: Bytes) -> bool {
        let mut topics = self.lock();
        let Some(tx) = topics.get(topic) else {
            return false;
        };
        if tx.send(payload).is_ok() {
            return true;
        }
        topics.remove(topic);
        false
    }

    /// Forgets `topic` (its server subscription failed).
    #[cfg_attr(not(any(feature = "nats", feature = "redis")), allow(dead_code))]
    pub(crate) fn forget(&self, topic: &str) {
        self.lock().remove(topic);
    }

    /// Forgets the topics nobody listens to any more, returning them (to
    /// unsubscribe on the server).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn sweep(&self) -> Vec<String> {
        let mut gone = Vec::new();
        self.lock().retain(|topic, tx| {
            let keep = tx.receiver_count() > 0;
            if !keep {
                gone.push(topic.clone());
            }
            keep
        });
        gone
    }

    /// Forgets `topic` if nobody listens to it any more; whether it did.
    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    pub(crate) fn release(&self, topic: &str) -> bool {
        let mut topics = self.lock();
        let unwanted = topics.get(topic).is_none_or(|tx| tx.receiver_count() == 0);
        if unwanted {
            topics.remove(topic);
        }
        unwanted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        for good in ["users", "user.created", "a-b_c.9", &"x".repeat(200)] {
            assert!(check_topic(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a b",
            "users.*",
            "users.>",
            ".a",
            "a.",
            "a..b",
            "é",
            &"x".repeat(201),
        ] {
            assert!(check_topic(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fanout_forgets_topics_without_subscribers() {
        let fanout = Fanout::new(4);
        let (rx, new) = fanout.receiver("t");
        assert!(new);
        let (rx2, new) = fanout.receiver("t");
        assert!(!new);
        assert!(fanout.deliver("t", Bytes::from_static(b"1")));
        drop((rx, rx2));
        assert!(fanout.sweep() == ["t"]);
        assert!(!fanout.deliver("t", Bytes::from_static(b"2")));
    }
}
