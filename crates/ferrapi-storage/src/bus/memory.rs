//! The in-process bus.

use super::{BusBackend, BusError, DEFAULT_CAPACITY, Fanout};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use std::fmt;
use tokio::sync::broadcast;

/// The in-process [`BusBackend`]: one tokio broadcast channel per topic.
/// Every subscriber in this process receives every event published in this
/// process; other processes see nothing (use NATS or Redis for that).
///
/// ```
/// use ferrapi_storage::bus::{Bus, InProcessBus};
///
/// let bus = Bus::new(InProcessBus::with_capacity(64));
/// ```
pub struct InProcessBus {
    fanout: Fanout,
}

impl fmt::Debug for InProcessBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InProcessBus").finish_non_exhaustive()
    }
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self::new()
    }
}

impl InProcessBus {
    /// Subscriptions buffer [`DEFAULT_CAPACITY`] events.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// Subscriptions buffer `capacity` events before the oldest are dropped.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            fanout: Fanout::new(capacity),
        }
    }
}

impl BusBackend for InProcessBus {
    fn publish<'a>(
        &'a self,
        topic: &'a str,
        payload: Bytes,
    ) -> BoxFuture<'a, Result<(), BusError>> {
        // No subscriber: nobody to tell, as with a server.
        self.fanout.deliver(topic, payload);
        Box::pin(std::future::ready(Ok(())))
    }

    fn subscribe<'a>(
        &'a self,
        topic: &'a str,
    ) -> BoxFuture<'a, Result<broadcast::Receiver<Bytes>, BusError>> {
        let (rx, _) = self.fanout.receiver(topic);
        Box::pin(std::future::ready(Ok(rx)))
    }

    fn health(&self) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn name(&self) -> &'static str {
        "in-process"
    }
}
