//! The Redis pub/sub bus.

use super::{BusBackend, BusError, DEFAULT_CAPACITY, Fanout};
use crate::common::redis_conn::{InvalidUrl, RedisConnection, RedisFailure, RedisOptions, query};
use crate::common::url::mask_url;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use redis::{IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, Value};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::task::AbortHandle;

/// How often the subscriber connection is checked (and re-established).
const KEEPALIVE: Duration = Duration::from_secs(1);

impl From<RedisFailure> for BusError {
    fn from(e: RedisFailure) -> Self {
        match e {
            RedisFailure::Down(m) => BusError::Unavailable(m),
            RedisFailure::Error(m) => BusError::Backend(m),
        }
    }
}

impl From<InvalidUrl> for BusError {
    fn from(InvalidUrl { url, reason }: InvalidUrl) -> Self {
        BusError::InvalidUrl { url, reason }
    }
}

/// The Redis pub/sub [`BusBackend`] (channels = topic names): every
/// instance connected to the same Redis sees every event. One RESP3
/// connection carries subscriptions and publishes; see the
/// [module docs](super) for reconnection.
///
/// ```no_run
/// use ferrapi_storage::bus::{Bus, RedisBus};
///
/// # async fn f() -> Result<(), ferrapi_storage::bus::BusError> {
/// let bus = Bus::new(RedisBus::open("redis://127.0.0.1:6379")?);
/// # Ok(()) }
/// ```
pub struct RedisBus {
    conn: RedisConnection,
    fanout: Arc<Fanout>,
    keepalive: AbortHandle,
}

impl fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBus")
            .field("url", &self.conn.url())
            .finish_non_exhaustive()
    }
}

impl Drop for RedisBus {
    fn drop(&mut self) {
        self.keepalive.abort();
    }
}

/// The channel and payload of a pub/sub message.
fn message(info: &PushInfo) -> Option<(&str, Bytes)> {
    if info.kind != PushKind::Message {
        return None;
    }
    let channel = match info.data.first()? {
        Value::BulkString(b) => std::str::from_utf8(b).ok()?,
        Value::SimpleString(s) => s.as_str(),
        _ => return None,
    };
    let payload = match info.data.get(1)? {
        Value::BulkString(b) => Bytes::copy_from_slice(b),
        Value::SimpleString(s) => Bytes::copy_from_slice(s.as_bytes()),
        _ => return None,
    };
    Some((channel, payload))
}

impl RedisBus {
    /// A bus on the Redis at `url`. Connects lazily: only a malformed URL
    /// fails. Must be called inside a Tokio runtime.
    ///
    /// # Errors
    /// [`BusError::InvalidUrl`].
    pub fn open(url: &str) -> Result<Self, BusError> {
        Self::open_with_capacity(url, DEFAULT_CAPACITY)
    }

    /// As [`open`](Self::open), with `capacity` events buffered per
    /// subscription.
    ///
    /// # Errors
    /// [`BusError::InvalidUrl`].
    pub fn open_with_capacity(url: &str, capacity: usize) -> Result<Self, BusError> {
        // Subscriptions on a multiplexed connection need RESP3 (push
        // messages); the connection manager re-subscribes after reconnecting.
        let info = url
            .into_connection_info()
            .map_err(|e| BusError::InvalidUrl {
                url: mask_url(url),
                reason: e.to_string(),
            })?;
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(settings)).map_err(|e| {
            BusError::InvalidUrl {
                url: mask_url(url),
                reason: e.to_string(),
            }
        })?;
        let fanout = Arc::new(Fanout::new(capacity));
        let deliver_to = fanout.clone();
        let push = move |info: PushInfo| -> Result<(), std::convert::Infallible> {
            if let Some((channel, payload)) = message(&info) {
                deliver_to.deliver(channel, payload);
            } else if info.kind == PushKind::Disconnection {
                tracing::warn!("Redis bus connection lost: reconnecting and re-subscribing");
            }
            Ok(())
        };
        let conn = RedisConnection::with_config(client, url, RedisOptions::default(), |c| {
            c.set_push_sender(push).set_automatic_resubscription()
        })?;
        let keepalive = tokio::spawn(keepalive(conn.clone(), fanout.clone())).abort_handle();
        Ok(Self {
            conn,
            fanout,
            keepalive,
        })
    }
}

/// Pings the connection so that a dropped one is re-established (and its
/// channels re-subscribed) even when nothing is published, and unsubscribes
/// from the channels nobody listens to any more.
async fn keepalive(conn: RedisConnection, fanout: Arc<Fanout>) {
    let mut tick = tokio::time::interval(KEEPALIVE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if conn.probe().await.is_err() {
            continue;
        }
        for channel in fanout.sweep() {
            let result = conn
                .run(|mut c| async move { c.unsubscribe(channel).await })
                .await;
            if let Err(e) = result {
                tracing::debug!(error = %e, "Redis bus: unsubscribe failed");
            }
        }
    }
}

impl BusBackend for RedisBus {
    fn publish<'a>(
        &'a self,
        topic: &'a str,
        payload: Bytes,
    ) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("PUBLISH");
            cmd.arg(topic).arg(payload.as_ref());
            self.conn.run(|c| query::<i64>(cmd, c)).await?;
            Ok(())
        })
    }

    fn subscribe<'a>(
        &'a self,
        topic: &'a str,
    ) -> BoxFuture<'a, Result<broadcast::Receiver<Bytes>, BusError>> {
        Box::pin(async move {
            let (rx, new) = self.fanout.receiver(topic);
            if new {
                let channel = topic.to_owned();
                let result = self
                    .conn
                    .run(|mut c| async move { c.subscribe(channel).await })
                    .await;
                if let Err(e) = result {
                    self.fanout.forget(topic);
                    return Err(e.into());
                }
            }
            Ok(rx)
        })
    }

    fn health(&self) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async move { Ok(self.conn.probe().await?) })
    }

    fn name(&self) -> &'static str {
        "redis"
    }
}
