//! The NATS bus (core pub/sub).

use super::{BusBackend, BusError, DEFAULT_CAPACITY, Fanout};
use crate::common::url::mask_url;
use async_nats::connection::State;
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// How long a publish or subscribe may wait on the client's queue.
const OP_TIMEOUT: Duration = Duration::from_secs(2);
/// How often an idle server subscription checks for remaining subscribers.
const IDLE_CHECK: Duration = Duration::from_secs(5);

/// The NATS [`BusBackend`] (core NATS pub/sub, subjects = topic names):
/// every instance connected to the same NATS server (or cluster) sees every
/// event. See the [module docs](super) for reconnection.
///
/// ```no_run
/// use ferrapi_storage::bus::{Bus, NatsBus};
///
/// # async fn f() -> Result<(), ferrapi_storage::bus::BusError> {
/// let bus = Bus::new(NatsBus::connect("nats://127.0.0.1:4222").await?);
/// # Ok(()) }
/// ```
pub struct NatsBus {
    client: async_nats::Client,
    fanout: Arc<Fanout>,
    url: String,
}

impl fmt::Debug for NatsBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsBus")
            .field("url", &self.url)
            .field("state", &self.client.connection_state())
            .finish_non_exhaustive()
    }
}

impl NatsBus {
    /// Connects to `url` (`nats://[user:password@]host:port`, several
    /// separated by commas), in the background: only a malformed URL fails.
    ///
    /// # Errors
    /// [`BusError::InvalidUrl`].
    pub async fn connect(url: &str) -> Result<Self, BusError> {
        Self::connect_with_capacity(url, DEFAULT_CAPACITY).await
    }

    /// As [`connect`](Self::connect), with `capacity` events buffered per
    /// subscription.
    ///
    /// # Errors
    /// [`BusError::InvalidUrl`].
    pub async fn connect_with_capacity(url: &str, capacity: usize) -> Result<Self, BusError> {
        let masked = mask_url(url);
        let client = async_nats::ConnectOptions::new()
            .name("ferrapi")
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(2))
            // 0, 100, 200, 400 ms, … capped at 2 s: back soon after a restart.
            .reconnect_delay_callback(|attempts| {
                let exp = u32::try_from(attempts.min(6)).unwrap_or(6);
                if attempts == 0 {
                    Duration::ZERO
                } else {
                    Duration::from_millis((50u64 << exp).min(2000))
                }
            })
            .connect(url)
            .await
            .map_err(|e| BusError::InvalidUrl {
                url: masked.clone(),
                reason: e.to_string(),
            })?;
        Ok(Self::from_client(client, &masked, capacity))
    }

    /// A bus over an existing client (to share one connection with the task
    /// queue).
    pub fn from_client(client: async_nats::Client, url: &str, capacity: usize) -> Self {
        Self {
            client,
            fanout: Arc::new(Fanout::new(capacity)),
            url: mask_url(url),
        }
    }

    /// The client.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }
}

/// Forwards one server subscription to the topic's local subscribers until
/// none is left.
async fn forward(mut sub: async_nats::Subscriber, fanout: Arc<Fanout>, topic: String) {
    loop {
        match tokio::time::timeout(IDLE_CHECK, sub.next()).await {
            Ok(Some(msg)) => {
                if !fanout.deliver(&topic, msg.payload) {
                    break;
                }
            }
            // The client is gone.
            Ok(None) => break,
            Err(_idle) => {
                if fanout.release(&topic) {
                    break;
                }
            }
        }
    }
    // Dropping `sub` unsubscribes on the server.
    tracing::debug!(%topic, "NATS subscription closed: no subscriber left");
}

impl BusBackend for NatsBus {
    fn publish<'a>(
        &'a self,
        topic: &'a str,
        payload: Bytes,
    ) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async move {
            match tokio::time::timeout(OP_TIMEOUT, self.client.publish(topic.to_owned(), payload))
                .await
            {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(BusError::Backend(e.to_string())),
                Err(_) => Err(BusError::Unavailable(format!(
                    "NATS at {}: the client's queue is full (disconnected?)",
                    self.url
                ))),
            }
        })
    }

    fn subscribe<'a>(
        &'a self,
        topic: &'a str,
    ) -> BoxFuture<'a, Result<broadcast::Receiver<Bytes>, BusError>> {
        Box::pin(async move {
            let (rx, new) = self.fanout.receiver(topic);
            if new {
                let sub =
                    tokio::time::timeout(OP_TIMEOUT, self.client.subscribe(topic.to_owned())).await;
                let sub = match sub {
                    Ok(Ok(sub)) => sub,
                    Ok(Err(e)) => {
                        self.fanout.forget(topic);
                        return Err(BusError::Backend(e.to_string()));
                    }
                    Err(_) => {
                        self.fanout.forget(topic);
                        return Err(BusError::Unavailable(format!(
                            "NATS at {}: subscribing timed out",
                            self.url
                        )));
                    }
                };
                tokio::spawn(forward(sub, self.fanout.clone(), topic.to_owned()));
            }
            Ok(rx)
        })
    }

    fn health(&self) -> BoxFuture<'_, Result<(), BusError>> {
        let state = self.client.connection_state();
        Box::pin(std::future::ready(match state {
            State::Connected => Ok(()),
            other => Err(BusError::Unavailable(format!(
                "NATS at {}: {other:?}",
                self.url
            ))),
        }))
    }

    fn name(&self) -> &'static str {
        "nats"
    }
}
