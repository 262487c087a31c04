//! The WebSocket client of [`TestServer`](crate::testing::TestServer).

use crate::testing::TestServer;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{self, Message as RawMessage, client::IntoClientRequest};

/// A frame as the test client sees it (tungstenite's message type): text,
/// binary, ping, pong or close.
pub type WsFrame = RawMessage;

/// Why [`TestServer::try_websocket`] could not connect.
#[derive(Debug, thiserror::Error)]
pub enum WebSocketConnectError {
    /// The server answered the handshake with an HTTP response.
    #[error("the server refused the handshake with {status}: {body}")]
    Refused {
        /// Its status.
        status: http::StatusCode,
        /// Its body (lossy UTF-8).
        body: String,
    },
    /// Anything else (connection, URI, protocol).
    #[error("WebSocket connection failed: {0}")]
    Other(String),
}

/// A WebSocket client connected to a [`TestServer`], for tests. Every
/// receive waits at most the timeout (10 s unless
/// [`set_timeout`](Self::set_timeout)) and panics when nothing came, so a
/// test never hangs.
///
/// ```
/// use ferrapi::prelude::*;
/// use ferrapi::testing::TestServer;
/// use ferrapi::ws::{WebSocketUpgrade, WebSocketResponse};
///
/// #[get("/echo")]
/// async fn echo(ws: WebSocketUpgrade) -> WebSocketResponse {
///     ws.on_upgrade(|mut socket| async move {
///         while let Some(message) = socket.recv().await {
///             if socket.send(message).await.is_err() {
///                 break;
///             }
///         }
///     })
/// }
///
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let server = TestServer::start(App::new().route(echo)).await;
/// let mut ws = server.websocket("/echo").await;
/// ws.send_json(&serde_json::json!({"n": 1})).await;
/// assert_eq!(ws.recv_json::<serde_json::Value>().await["n"], 1);
/// # });
/// ```
#[derive(Debug)]
pub struct TestWebSocket {
    stream: WebSocketStream<TcpStream>,
    timeout: Duration,
}

impl TestServer {
    /// Connects a WebSocket client to `uri` (a path with an optional query:
    /// `/ws/events?token=…`).
    ///
    /// # Panics
    /// When the connection or the handshake fails (the message says why).
    pub async fn websocket(&self, uri: &str) -> TestWebSocket {
        match self.try_websocket(uri, &[]).await {
            Ok(ws) => ws,
            Err(e) => panic!("{e}"),
        }
    }

    /// Connects a WebSocket client to `uri` with extra request headers.
    ///
    /// # Errors
    /// [`WebSocketConnectError::Refused`] when the server answered the
    /// handshake with an HTTP response (its status and body).
    pub async fn try_websocket(
        &self,
        uri: &str,
        headers: &[(&str, &str)],
    ) -> Result<TestWebSocket, WebSocketConnectError> {
        let other = |e: &dyn std::fmt::Display| WebSocketConnectError::Other(e.to_string());
        let url = format!("ws://{}{}", self.addr(), uri);
        let mut request = url.into_client_request().map_err(|e| other(&e))?;
        for (name, value) in headers {
            let name = http::HeaderName::try_from(*name).map_err(|e| other(&e))?;
            let value = http::HeaderValue::try_from(*value).map_err(|e| other(&e))?;
            request.headers_mut().append(name, value);
        }
        let tcp = TcpStream::connect(self.addr())
            .await
            .map_err(|e| other(&e))?;
        match tokio::time::timeout(
            Duration::from_secs(10),
            tokio_tungstenite::client_async(request, tcp),
        )
        .await
        {
            Ok(Ok((stream, _))) => Ok(TestWebSocket {
                stream,
                timeout: Duration::from_secs(10),
            }),
            Ok(Err(tungstenite::Error::Http(res))) => Err(WebSocketConnectError::Refused {
                status: res.status(),
                body: String::from_utf8_lossy(res.body().as_deref().unwrap_or_default())
                    .into_owned(),
            }),
            Ok(Err(e)) => Err(other(&e)),
            Err(_) => Err(WebSocketConnectError::Other("handshake timed out".into())),
        }
    }
}

impl TestWebSocket {
    /// How long each receive waits before the test fails.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Sends a raw message (text, binary, ping, close).
    ///
    /// # Panics
    /// When the connection is closed.
    pub async fn send(&mut self, message: RawMessage) {
        if let Err(e) = self.stream.send(message).await {
            panic!("WebSocket send failed: {e}");
        }
    }

    /// Sends a text message.
    pub async fn send_text(&mut self, text: &str) {
        self.send(RawMessage::text(text)).await;
    }

    /// Sends `value` as a JSON text message.
    pub async fn send_json<T: Serialize + ?Sized>(&mut self, value: &T) {
        let text = serde_json::to_string(value).unwrap_or_default();
        self.send(RawMessage::text(text)).await;
    }

    /// Sends a binary message.
    pub async fn send_binary(&mut self, data: impl Into<bytes::Bytes>) {
        self.send(RawMessage::binary(data)).await;
    }

    /// The next frame of any kind (pings and pongs included); `None` when
    /// the connection has ended.
    ///
    /// # Panics
    /// When nothing arrives within the timeout.
    pub async fn next_frame(&mut self) -> Option<RawMessage> {
        match tokio::time::timeout(self.timeout, self.stream.next()).await {
            Ok(Some(Ok(message))) => Some(message),
            Ok(Some(Err(_)) | None) => None,
            Err(_) => panic!("no WebSocket frame within {:?}", self.timeout),
        }
    }

    /// The next text or binary message, skipping pings and pongs; `None`
    /// once a close frame came or the connection ended.
    ///
    /// # Panics
    /// When nothing arrives within the timeout.
    pub async fn recv(&mut self) -> Option<RawMessage> {
        loop {
            match self.next_frame().await? {
                m @ (RawMessage::Text(_) | RawMessage::Binary(_)) => return Some(m),
                RawMessage::Close(_) => return None,
                RawMessage::Ping(_) | RawMessage::Pong(_) | RawMessage::Frame(_) => {}
            }
        }
    }

    /// The next message as text.
    ///
    /// # Panics
    /// When the connection closed, or the message is binary.
    pub async fn recv_text(&mut self) -> String {
        match self.recv().await {
            Some(RawMessage::Text(t)) => t.as_str().to_owned(),
            Some(other) => panic!("expected a text message, got {other:?}"),
            None => panic!("the WebSocket closed while a message was expected"),
        }
    }

    /// The next message parsed as JSON.
    ///
    /// # Panics
    /// When the connection closed, or the message is not JSON of type `T`.
    pub async fn recv_json<T: DeserializeOwned>(&mut self) -> T {
        let text = self.recv_text().await;
        match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => panic!("WebSocket message is not the expected JSON ({e}): {text}"),
        }
    }

    /// Reads until the server's close frame and returns its code and
    /// reason, skipping other messages; `None` when the connection ended
    /// without a close frame.
    ///
    /// # Panics
    /// When nothing arrives within the timeout.
    pub async fn recv_close(&mut self) -> Option<(u16, String)> {
        loop {
            match self.next_frame().await? {
                RawMessage::Close(Some(frame)) => {
                    return Some((u16::from(frame.code), frame.reason.as_str().to_owned()));
                }
                RawMessage::Close(None) => return Some((1005, String::new())),
                _ => {}
            }
        }
    }

    /// Sends a close frame with `code` and `reason`.
    pub async fn close(&mut self, code: u16, reason: &str) {
        let frame = tungstenite::protocol::CloseFrame {
            code: code.into(),
            reason: reason.into(),
        };
        let _ = self.stream.close(Some(frame)).await;
    }

    /// The underlying tokio-tungstenite stream.
    pub fn into_inner(self) -> WebSocketStream<TcpStream> {
        self.stream
    }
}
