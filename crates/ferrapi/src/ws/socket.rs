//! [`WebSocket`]: an accepted connection, driven by one task that writes the
//! bounded send queue, reads incoming frames, and keeps the connection alive.

use axum::extract::ws as axum_ws;
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::time::Instant;

pub use axum_ws::Utf8Bytes;

/// Close codes (RFC 6455 § 7.4.1) as `u16` constants.
pub mod close_code {
    pub use axum::extract::ws::close_code::*;
}

/// What each queued message costs besides its payload, in bytes: the queue's
/// byte bound is also a bound on its length.
pub(crate) const MESSAGE_OVERHEAD: usize = 64;

/// The longest close reason a close frame can carry (125 − 2 bytes).
const MAX_REASON: usize = 123;

/// A data message: text or binary. Pings, pongs and close frames are handled
/// by the connection itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message (valid UTF-8).
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl Message {
    /// A text message.
    pub fn text(text: impl Into<Utf8Bytes>) -> Self {
        Message::Text(text.into())
    }

    /// A binary message.
    pub fn binary(data: impl Into<Bytes>) -> Self {
        Message::Binary(data.into())
    }

    /// A text message holding `value` as JSON.
    ///
    /// # Errors
    /// When `value` cannot be serialized (a map with non-string keys, a
    /// failing `Serialize` implementation).
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::to_string(value).map(Message::text)
    }

    /// The text, if this is a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(t) => Some(t.as_str()),
            Message::Binary(_) => None,
        }
    }

    /// The payload's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(t) => t.as_str().as_bytes(),
            Message::Binary(b) => b,
        }
    }

    /// The payload's length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// True for an empty payload.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn into_axum(self) -> axum_ws::Message {
        match self {
            Message::Text(t) => axum_ws::Message::Text(t),
            Message::Binary(b) => axum_ws::Message::Binary(b),
        }
    }
}

impl From<String> for Message {
    fn from(text: String) -> Self {
        Message::text(text)
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Self {
        Message::text(text)
    }
}

impl From<Utf8Bytes> for Message {
    fn from(text: Utf8Bytes) -> Self {
        Message::Text(text)
    }
}

impl From<Bytes> for Message {
    fn from(data: Bytes) -> Self {
        Message::Binary(data)
    }
}

impl From<Vec<u8>> for Message {
    fn from(data: Vec<u8>) -> Self {
        Message::Binary(data.into())
    }
}

/// A close frame: code and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The close code ([`close_code`]).
    pub code: u16,
    /// The reason, at most 123 bytes.
    pub reason: String,
}

impl CloseFrame {
    /// A close frame; a reason longer than a close frame can carry (123
    /// bytes) is cut at a character boundary.
    pub fn new(code: u16, reason: impl Into<String>) -> Self {
        let mut reason = reason.into();
        if reason.len() > MAX_REASON {
            let mut end = MAX_REASON;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
        }
        Self { code, reason }
    }

    fn into_axum(self) -> axum_ws::CloseFrame {
        axum_ws::CloseFrame {
            code: self.code,
            reason: self.reason.into(),
        }
    }

    fn from_axum(frame: axum_ws::CloseFrame) -> Self {
        Self {
            code: frame.code,
            reason: frame.reason.as_str().to_owned(),
        }
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer closed it: with a close frame (its code and reason), or by
    /// dropping the TCP connection (`None`).
    Peer(Option<CloseFrame>),
    /// The server closed it with this frame: [`WebSocket::close`], or `1000`
    /// when every handle of the connection was dropped (the handler ended).
    Server(CloseFrame),
    /// The peer did not read fast enough: the send buffer stayed full, or a
    /// message could not be written, for longer than the send timeout. The
    /// connection was dropped without a close frame (the peer is not reading).
    SlowConsumer,
    /// No pong (nor any other frame) answered a keep-alive ping within the
    /// pong timeout; the server sent close code `1011` and dropped it.
    KeepAliveTimeout,
    /// A protocol or I/O error.
    Error(String),
}

/// Why a send or receive failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WsError {
    /// The connection is closed ([`WsSender::close_reason`] says why).
    #[error("the WebSocket connection is closed")]
    Closed,
    /// The peer did not read fast enough and was disconnected.
    #[error("the WebSocket client did not read fast enough and was disconnected")]
    SlowConsumer,
    /// The message is larger than the connection's whole send buffer.
    #[error("message of {size} bytes does not fit the send buffer of {limit} bytes")]
    MessageTooLarge {
        /// The message's size with its bookkeeping overhead.
        size: usize,
        /// The send buffer's size.
        limit: usize,
    },
    /// A message could not be serialized, or a received one is not JSON of
    /// the expected shape.
    #[error("invalid JSON message: {0}")]
    Json(#[from] serde_json::Error),
    /// A broadcast subscription fell too far behind and was dropped.
    #[error("the subscriber fell behind the broadcast and was dropped")]
    Lagged,
}

/// How a WebSocket connection behaves. Set per route with
/// [`WebSocketUpgrade::config`](super::WebSocketUpgrade::config), or for
/// the whole application by registering one as state
/// (`App::new().state(WebSocketConfig::default().ping_interval(…))`).
///
/// ```
/// use ferrapi::ws::WebSocketConfig;
/// use std::time::Duration;
///
/// let config = WebSocketConfig::default()
///     .ping_interval(Some(Duration::from_secs(15)))
///     .pong_timeout(Duration::from_secs(10))
///     .send_buffer(256 * 1024);
/// assert_eq!(config.send_buffer_bytes(), 256 * 1024);
/// ```
#[derive(Debug, Clone)]
pub struct WebSocketConfig {
    pub(crate) ping_interval: Option<Duration>,
    pub(crate) pong_timeout: Duration,
    pub(crate) send_buffer: usize,
    pub(crate) send_timeout: Duration,
    pub(crate) max_message_size: usize,
    pub(crate) receive_queue: usize,
}

impl Default for WebSocketConfig {
    /// Pings every 20 s, 20 s pong timeout (uvicorn's defaults), a 1 MiB
    /// send buffer, a 10 s send timeout, incoming messages up to 1 MiB, 8
    /// incoming messages queued.
    fn default() -> Self {
        Self {
            ping_interval: Some(Duration::from_secs(20)),
            pong_timeout: Duration::from_secs(20),
            send_buffer: 1024 * 1024,
            send_timeout: Duration::from_secs(10),
            max_message_size: 1024 * 1024,
            receive_queue: 8,
        }
    }
}

impl WebSocketConfig {
    /// How often the server pings the client (`None`: never).
    #[must_use]
    pub fn ping_interval(mut self, interval: Option<Duration>) -> Self {
        self.ping_interval = interval.filter(|d| !d.is_zero());
        self
    }

    /// How long the server waits for the pong that answers a ping before it
    /// closes the connection (code `1011`).
    #[must_use]
    pub fn pong_timeout(mut self, timeout: Duration) -> Self {
        self.pong_timeout = timeout;
        self
    }

    /// The per-connection send buffer, in bytes: messages waiting to be
    /// written (each counted as its payload plus 64 bytes). A sender that
    /// finds it full waits up to the send timeout, then the client is
    /// disconnected as a slow consumer.
    #[must_use]
    pub fn send_buffer(mut self, bytes: usize) -> Self {
        self.send_buffer = bytes.clamp(
            MESSAGE_OVERHEAD,
            Semaphore::MAX_PERMITS.min(u32::MAX as usize),
        );
        self
    }

    /// How long a send may wait for room in the send buffer, and how long
    /// one message may take to be written to the socket, before the client
    /// is disconnected as a slow consumer.
    #[must_use]
    pub fn send_timeout(mut self, timeout: Duration) -> Self {
        self.send_timeout = timeout;
        self
    }

    /// The largest incoming message (and frame), in bytes; a larger one
    /// ends the connection (code `1009`).
    #[must_use]
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes.max(1);
        self
    }

    /// How many received messages wait for the handler to read them before
    /// the connection stops reading from the socket (TCP back-pressure).
    #[must_use]
    pub fn receive_queue(mut self, messages: usize) -> Self {
        self.receive_queue = messages.max(1);
        self
    }

    /// The send buffer's size in bytes.
    pub fn send_buffer_bytes(&self) -> usize {
        self.send_buffer
    }
}

/// What the handles send to the connection's task.
enum Out {
    Message(axum_ws::Message, OwnedSemaphorePermit),
    Close(CloseFrame),
}

/// What the connection's task hands to the receiver.
enum Incoming {
    Message(Message),
    Close(Option<CloseFrame>),
}

/// State shared by the handles and the connection's task.
struct Shared {
    budget: Arc<Semaphore>,
    capacity: usize,
    send_timeout: Duration,
    high_water: AtomicUsize,
    abort: Notify,
    ended: watch::Sender<Option<CloseReason>>,
}

impl Shared {
    fn queued(&self) -> usize {
        self.capacity
            .saturating_sub(self.budget.available_permits())
    }

    /// Disconnects a slow consumer: the connection's task stops at once.
    fn slow_consumer(&self) {
        self.ended.send_if_modified(|reason| {
            if reason.is_none() {
                *reason = Some(CloseReason::SlowConsumer);
                true
            } else {
                false
            }
        });
        self.budget.close();
        self.abort.notify_one();
    }
}

/// An accepted WebSocket connection, handed to the callback of
/// [`WebSocketUpgrade::on_upgrade`](super::WebSocketUpgrade::on_upgrade).
///
/// A task of its own writes queued messages, reads incoming ones, answers
/// pings and sends keep-alive pings (see [`WebSocketConfig`]). Sending waits
/// for room in a bounded send buffer, never buffering without bound: a
/// client that does not read is disconnected. Dropping every handle closes
/// the connection with code `1000`.
///
/// [`split`](Self::split) gives a cloneable [`WsSender`] and a
/// [`WsReceiver`] to send and receive from different tasks.
#[derive(Debug)]
pub struct WebSocket {
    sender: WsSender,
    receiver: WsReceiver,
}

/// The sending half of a [`WebSocket`]; cheap to clone.
#[derive(Clone)]
pub struct WsSender {
    tx: mpsc::UnboundedSender<Out>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for WsSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsSender")
            .field("queued_bytes", &self.shared.queued())
            .field("send_buffer", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

/// The receiving half of a [`WebSocket`].
#[derive(Debug)]
pub struct WsReceiver {
    rx: mpsc::Receiver<Incoming>,
    close: Option<CloseFrame>,
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Incoming::Message(m) => f.debug_tuple("Message").field(m).finish(),
            Incoming::Close(c) => f.debug_tuple("Close").field(c).finish(),
        }
    }
}

impl WebSocket {
    /// Wraps an upgraded socket; the returned future drives it and must be
    /// polled (it resolves when the connection has ended).
    pub(crate) fn start(
        socket: axum_ws::WebSocket,
        config: &WebSocketConfig,
    ) -> (Self, impl std::future::Future<Output = ()> + Send + 'static) {
        let (tx, out_rx) = mpsc::unbounded_channel();
        let (in_tx, rx) = mpsc::channel(config.receive_queue);
        let (ended, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            budget: Arc::new(Semaphore::new(config.send_buffer)),
            capacity: config.send_buffer,
            send_timeout: config.send_timeout,
            high_water: AtomicUsize::new(0),
            abort: Notify::new(),
            ended,
        });
        let driver = drive(socket, out_rx, in_tx, shared.clone(), config.clone());
        let ws = WebSocket {
            sender: WsSender { tx, shared },
            receiver: WsReceiver { rx, close: None },
        };
        (ws, driver)
    }

    /// The two halves, to send and receive from different tasks.
    pub fn split(self) -> (WsSender, WsReceiver) {
        (self.sender, self.receiver)
    }

    /// A handle to send on this connection from elsewhere.
    pub fn sender(&self) -> WsSender {
        self.sender.clone()
    }

    /// See [`WsSender::send`].
    ///
    /// # Errors
    /// As [`WsSender::send`].
    pub async fn send(&self, message: impl Into<Message>) -> Result<(), WsError> {
        self.sender.send(message).await
    }

    /// See [`WsSender::send_json`].
    ///
    /// # Errors
    /// As [`WsSender::send_json`].
    pub async fn send_json<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), WsError> {
        self.sender.send_json(value).await
    }

    /// See [`WsReceiver::recv`].
    pub async fn recv(&mut self) -> Option<Message> {
        self.receiver.recv().await
    }

    /// See [`WsReceiver::recv_json`].
    ///
    /// # Errors
    /// As [`WsReceiver::recv_json`].
    pub async fn recv_json<T: DeserializeOwned>(&mut self) -> Result<T, WsError> {
        self.receiver.recv_json().await
    }

    /// Sends the subscription's messages until it, or the connection, ends
    /// (see [`WsSender::forward`]).
    ///
    /// # Errors
    /// As [`WsSender::forward`].
    pub async fn forward(&self, subscription: super::Subscription) -> Result<(), WsError> {
        self.sender.forward(subscription).await
    }

    /// Closes the connection with `code` and `reason` (after the messages
    /// already queued), and waits until it has ended.
    pub async fn close(self, code: u16, reason: &str) -> CloseReason {
        let WebSocket { sender, receiver } = self;
        drop(receiver);
        sender.close(code, reason);
        sender.closed().await
    }

    /// Resolves when the connection has ended, with the reason.
    pub async fn closed(&self) -> CloseReason {
        self.sender.closed().await
    }
}

impl WsSender {
    /// Queues `message`. When the send buffer is full this waits for room
    /// up to the send timeout; if there is still none, the client is
    /// disconnected as a slow consumer ([`WsError::SlowConsumer`]).
    ///
    /// # Errors
    /// [`WsError::Closed`], [`WsError::SlowConsumer`], or
    /// [`WsError::MessageTooLarge`] for a message larger than the whole
    /// send buffer.
    pub async fn send(&self, message: impl Into<Message>) -> Result<(), WsError> {
        let message = message.into();
        let cost = message.len().saturating_add(MESSAGE_OVERHEAD);
        if cost > self.shared.capacity {
            return Err(WsError::MessageTooLarge {
                size: cost,
                limit: self.shared.capacity,
            });
        }
        if self.tx.is_closed() {
            return Err(self.closed_error());
        }
        let permits = u32::try_from(cost).map_err(|_| WsError::MessageTooLarge {
            size: cost,
            limit: self.shared.capacity,
        })?;
        let acquire = self.shared.budget.clone().acquire_many_owned(permits);
        let permit = match tokio::time::timeout(self.shared.send_timeout, acquire).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(self.closed_error()),
            Err(_) => {
                self.shared.slow_consumer();
                return Err(WsError::SlowConsumer);
            }
        };
        self.shared
            .high_water
            .fetch_max(self.shared.queued(), Ordering::Relaxed);
        self.tx
            .send(Out::Message(message.into_axum(), permit))
            .map_err(|_| self.closed_error())
    }

    /// Sends `value` as a JSON text message.
    ///
    /// # Errors
    /// [`WsError::Json`] when it cannot be serialized, else as
    /// [`send`](Self::send).
    pub async fn send_json<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), WsError> {
        self.send(Message::json(value)?).await
    }

    /// Sends the subscription's messages until the subscription ends (its
    /// hub was dropped: `Ok`) or the connection does. A subscriber that
    /// falls behind the broadcast is closed with code `1013` (try again
    /// later) and `Err(WsError::Lagged)` is returned.
    ///
    /// # Errors
    /// [`WsError::Lagged`], [`WsError::Closed`] (the client went away),
    /// [`WsError::SlowConsumer`].
    pub async fn forward(&self, mut subscription: super::Subscription) -> Result<(), WsError> {
        loop {
            let message = tokio::select! {
                m = subscription.recv() => m,
                _ = self.closed() => return Err(WsError::Closed),
            };
            match message {
                Some(message) => self.send(message).await?,
                None if subscription.lagged() => {
                    self.close(close_code::AGAIN, "too slow for the broadcast");
                    return Err(WsError::Lagged);
                }
                None => return Ok(()),
            }
        }
    }

    /// Queues a close frame with `code` and `reason` (cut to 123 bytes)
    /// after the messages already queued; the connection then ends.
    pub fn close(&self, code: u16, reason: &str) {
        let _ = self.tx.send(Out::Close(CloseFrame::new(code, reason)));
    }

    /// Resolves when the connection has ended, with the reason.
    pub async fn closed(&self) -> CloseReason {
        let mut ended = self.shared.ended.subscribe();
        match ended.wait_for(Option::is_some).await {
            Ok(reason) => reason
                .clone()
                .unwrap_or_else(|| CloseReason::Error("closed".into())),
            // The sender lives in `Shared`, which this handle keeps alive.
            Err(_) => CloseReason::Error("closed".into()),
        }
    }

    /// Why the connection ended, if it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.shared.ended.borrow().clone()
    }

    /// Bytes queued and not yet written (payloads plus 64 bytes each).
    pub fn queued_bytes(&self) -> usize {
        self.shared.queued()
    }

    /// The most bytes ever queued at once on this connection: never more
    /// than [`send_buffer`](Self::send_buffer).
    pub fn max_queued_bytes(&self) -> usize {
        self.shared.high_water.load(Ordering::Relaxed)
    }

    /// The send buffer's size in bytes.
    pub fn send_buffer(&self) -> usize {
        self.shared.capacity
    }

    fn closed_error(&self) -> WsError {
        match self.close_reason() {
            Some(CloseReason::SlowConsumer) => WsError::SlowConsumer,
            _ => WsError::Closed,
        }
    }
}

impl WsReceiver {
    /// The next text or binary message; `None` once the connection is
    /// closed ([`close_frame`](Self::close_frame) then gives the peer's
    /// close frame, if it sent one).
    pub async fn recv(&mut self) -> Option<Message> {
        match self.rx.recv().await? {
            Incoming::Message(m) => Some(m),
            Incoming::Close(frame) => {
                self.close = frame;
                None
            }
        }
    }

    /// The next message parsed as JSON (text or binary), as FastAPI's
    /// `receive_json`.
    ///
    /// # Errors
    /// [`WsError::Closed`] once the connection is closed (FastAPI's
    /// `WebSocketDisconnect`), [`WsError::Json`] when the message is not JSON
    /// of type `T`.
    pub async fn recv_json<T: DeserializeOwned>(&mut self) -> Result<T, WsError> {
        match self.recv().await {
            Some(message) => Ok(serde_json::from_slice(message.as_bytes())?),
            None => Err(WsError::Closed),
        }
    }

    /// The close frame the peer sent, once [`recv`](Self::recv) has
    /// returned `None`.
    pub fn close_frame(&self) -> Option<&CloseFrame> {
        self.close.as_ref()
    }
}

/// The connection's task.
async fn drive(
    mut socket: axum_ws::WebSocket,
    mut out_rx: mpsc::UnboundedReceiver<Out>,
    in_tx: mpsc::Sender<Incoming>,
    shared: Arc<Shared>,
    config: WebSocketConfig,
) {
    let mut in_tx = Some(in_tx);
    let mut ping = config.ping_interval.map(|every| {
        let mut i = tokio::time::interval_at(Instant::now() + every, every);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    });
    let mut pong_deadline: Option<Instant> = None;
    let send_timeout = config.send_timeout;

    let reason = loop {
        // Unbiased: a steady flow of outgoing messages must not starve
        // reading (pongs, the peer's close) or the keep-alive timers.
        tokio::select! {
            () = shared.abort.notified() => break CloseReason::SlowConsumer,
            out = out_rx.recv() => match out {
                Some(Out::Message(message, permit)) => {
                    let sent = write(&mut socket, message, send_timeout, &shared.abort).await;
                    drop(permit);
                    if let Err(reason) = sent {
                        break reason;
                    }
                }
                Some(Out::Close(frame)) => {
                    let message = axum_ws::Message::Close(Some(frame.clone().into_axum()));
                    match write(&mut socket, message, send_timeout, &shared.abort).await {
                        Ok(()) => {
                            finish_close(&mut socket, send_timeout).await;
                            break CloseReason::Server(frame);
                        }
                        Err(reason) => break reason,
                    }
                }
                None => {
                    // Every handle is gone: the handler has finished.
                    let frame = CloseFrame::new(close_code::NORMAL, "");
                    let message = axum_ws::Message::Close(Some(frame.clone().into_axum()));
                    match write(&mut socket, message, send_timeout, &shared.abort).await {
                        Ok(()) => {
                            finish_close(&mut socket, send_timeout).await;
                            break CloseReason::Server(frame);
                        }
                        Err(reason) => break reason,
                    }
                }
            },
            (permit, frame) = read(&mut socket, in_tx.as_ref()) => {
                if permit.is_none() {
                    // The handler dropped its receiver: read and discard.
                    in_tx = None;
                }
                match frame {
                    Some(Ok(axum_ws::Message::Text(t))) => {
                        if let Some(p) = permit {
                            p.send(Incoming::Message(Message::Text(t)));
                        }
                    }
                    Some(Ok(axum_ws::Message::Binary(b))) => {
                        if let Some(p) = permit {
                            p.send(Incoming::Message(Message::Binary(b)));
                        }
                    }
                    Some(Ok(axum_ws::Message::Pong(_))) => pong_deadline = None,
                    // Answered by tungstenite on the next read or write.
                    Some(Ok(axum_ws::Message::Ping(_))) => {}
                    Some(Ok(axum_ws::Message::Close(frame))) => {
                        let frame = frame.map(CloseFrame::from_axum);
                        if let Some(p) = permit {
                            p.send(Incoming::Close(frame.clone()));
                        }
                        // tungstenite has queued the reply; the next read sends it.
                        finish_close(&mut socket, send_timeout).await;
                        break CloseReason::Peer(frame);
                    }
                    Some(Err(e)) => {
                        if too_big(&e) {
                            let frame = axum_ws::CloseFrame {
                                code: close_code::SIZE,
                                reason: "message too big".into(),
                            };
                            let _ = tokio::time::timeout(
                                Duration::from_secs(1),
                                socket.send(axum_ws::Message::Close(Some(frame))),
                            )
                            .await;
                        }
                        break peer_error(e);
                    }
                    None => break CloseReason::Peer(None),
                }
            },
            () = tick(ping.as_mut()) => {
                if pong_deadline.is_none() {
                    pong_deadline = Some(Instant::now() + config.pong_timeout);
                }
                let message = axum_ws::Message::Ping(Bytes::from_static(b"ferrapi"));
                if let Err(reason) = write(&mut socket, message, send_timeout, &shared.abort).await {
                    break reason;
                }
            },
            () = sleep_until(pong_deadline) => {
                // The handler not reading its messages stops us reading the
                // socket, pongs included: that is not the client's fault.
                if in_tx.as_ref().is_some_and(|tx| tx.capacity() == 0) {
                    pong_deadline = Some(Instant::now() + config.pong_timeout);
                    continue;
                }
                let frame = axum_ws::CloseFrame {
                    code: close_code::ERROR,
                    reason: "keepalive ping timeout".into(),
                };
                let _ = tokio::time::timeout(
                    Duration::from_secs(1),
                    socket.send(axum_ws::Message::Close(Some(frame))),
                )
                .await;
                break CloseReason::KeepAliveTimeout;
            },
        }
    };
    if let CloseReason::Error(e) = &reason {
        tracing::debug!(error = %e, "WebSocket connection ended with an error");
    }
    shared.ended.send_if_modified(|ended| {
        if ended.is_none() {
            *ended = Some(reason);
            true
        } else {
            false
        }
    });
    // Pending and future sends fail at once; queued messages are dropped.
    shared.budget.close();
    out_rx.close();
}

/// Writes one message within `limit`; a write that does not finish in time
/// means the peer is not reading.
async fn write(
    socket: &mut axum_ws::WebSocket,
    message: axum_ws::Message,
    limit: Duration,
    abort: &Notify,
) -> Result<(), CloseReason> {
    tokio::select! {
        biased;
        () = abort.notified() => Err(CloseReason::SlowConsumer),
        sent = tokio::time::timeout(limit, socket.send(message)) => match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(peer_error(e)),
            Err(_) => Err(CloseReason::SlowConsumer),
        },
    }
}

/// Reads the next frame once the receive queue has room (or the handler no
/// longer reads: then `None` with the frame). Cancel-safe.
async fn read(
    socket: &mut axum_ws::WebSocket,
    in_tx: Option<&mpsc::Sender<Incoming>>,
) -> (
    Option<mpsc::OwnedPermit<Incoming>>,
    Option<Result<axum_ws::Message, axum::Error>>,
) {
    let permit = match in_tx {
        Some(tx) => tx.clone().reserve_owned().await.ok(),
        None => None,
    };
    (permit, socket.recv().await)
}

/// After a close frame went out (or came in): read until the peer's close
/// arrives or the connection ends, within `limit`.
async fn finish_close(socket: &mut axum_ws::WebSocket, limit: Duration) {
    let _ = tokio::time::timeout(limit, async {
        while let Some(Ok(_)) = socket.recv().await {}
    })
    .await;
}

async fn tick(interval: Option<&mut tokio::time::Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn peer_error(e: axum::Error) -> CloseReason {
    use tokio_tungstenite::tungstenite::Error as TsError;
    use tokio_tungstenite::tungstenite::error::ProtocolError;
    let inner = e.into_inner();
    match inner.downcast_ref::<TsError>() {
        // A peer that vanished without a close frame is a normal way to end.
        Some(
            TsError::ConnectionClosed
            | TsError::AlreadyClosed
            | TsError::Io(_)
            | TsError::Protocol(ProtocolError::ResetWithoutClosingHandshake),
        ) => CloseReason::Peer(None),
        _ => CloseReason::Error(inner.to_string()),
    }
}

/// Whether a read error is an incoming message over the size limit.
fn too_big(e: &axum::Error) -> bool {
    use std::error::Error as _;
    e.source()
        .and_then(|s| s.downcast_ref::<tokio_tungstenite::tungstenite::Error>())
        .is_some_and(|e| matches!(e, tokio_tungstenite::tungstenite::Error::Capacity(_)))
}
