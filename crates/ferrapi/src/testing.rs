//! [`TestClient`]: calls the application in-process, without a socket, as
//! FastAPI's `TestClient` does. Requests go through the same middleware and
//! router as in production.
//!
//! ```
//! use ferrapi::prelude::*;
//! use ferrapi::testing::TestClient;
//!
//! #[get("/hello/{name}")]
//! async fn hello(Path(name): Path<String>) -> Text {
//!     Text(format!("Hello, {name}"))
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let client = TestClient::new(App::new().route(hello));
//! let res = client.get("/hello/ada").send().await;
//! assert_eq!(res.status(), 200);
//! assert_eq!(res.text(), "Hello, ada");
//! # });
//! ```

use crate::App;
use axum::body::Body;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use http_body_util::BodyExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::net::SocketAddr;
use tower::ServiceExt;

#[cfg(feature = "ws")]
pub use crate::ws::client::{TestWebSocket, WebSocketConnectError, WsFrame};

/// An in-process client for an [`App`].
#[derive(Debug, Clone)]
pub struct TestClient {
    router: axum::Router,
}

impl TestClient {
    /// A client for `app`.
    ///
    /// # Panics
    /// When the app's route declarations have mistakes (the message lists
    /// them all): a test of a broken app should fail loudly.
    pub fn new(app: App) -> Self {
        match app.build() {
            Ok(built) => Self {
                router: built.router,
            },
            Err(e) => panic!("{e}"),
        }
    }

    /// A request with any method.
    pub fn request(&self, method: Method, uri: &str) -> TestRequest {
        TestRequest {
            router: self.router.clone(),
            builder: http::Request::builder().method(method).uri(uri),
            body: Body::empty(),
        }
    }

    /// A `GET` request.
    pub fn get(&self, uri: &str) -> TestRequest {
        self.request(Method::GET, uri)
    }
    /// A `POST` request.
    pub fn post(&self, uri: &str) -> TestRequest {
        self.request(Method::POST, uri)
    }
    /// A `PUT` request.
    pub fn put(&self, uri: &str) -> TestRequest {
        self.request(Method::PUT, uri)
    }
    /// A `PATCH` request.
    pub fn patch(&self, uri: &str) -> TestRequest {
        self.request(Method::PATCH, uri)
    }
    /// A `DELETE` request.
    pub fn delete(&self, uri: &str) -> TestRequest {
        self.request(Method::DELETE, uri)
    }
}

/// A request being built; [`send`](TestRequest::send) runs it.
#[derive(Debug)]
pub struct TestRequest {
    router: axum::Router,
    builder: http::request::Builder,
    body: Body,
}

impl TestRequest {
    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    /// A JSON body (sets `content-type: application/json`).
    #[must_use]
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        self.builder = self
            .builder
            .header(header::CONTENT_TYPE, "application/json");
        self.body = Body::from(bytes);
        self
    }

    /// A form body (sets `content-type: application/x-www-form-urlencoded`).
    #[must_use]
    pub fn form<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        let text = serde_urlencoded_like(body);
        self.builder = self
            .builder
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        self.body = Body::from(text);
        self
    }

    /// A raw body; set the content type with [`header`](Self::header).
    #[must_use]
    pub fn body(mut self, body: impl Into<Body>) -> Self {
        self.body = body.into();
        self
    }

    /// Sends the request through the application and reads the whole response.
    ///
    /// # Panics
    /// When the request cannot be built (an invalid header or URI in the
    /// test itself).
    pub async fn send(self) -> TestResponse {
        let mut req = match self.builder.body(self.body) {
            Ok(r) => r,
            Err(e) => panic!("invalid test request: {e}"),
        };
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(SocketAddr::from((
                [127, 0, 0, 1],
                50000,
            ))));
        let res = match self.router.oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let (parts, body) = res.into_parts();
        let body = match body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => panic!("failed to read the response body: {e}"),
        };
        TestResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }
}

/// Encodes a serializable map or struct of strings/numbers as a form body.
fn serde_urlencoded_like<T: Serialize + ?Sized>(body: &T) -> String {
    let value = serde_json::to_value(body).unwrap_or_default();
    let mut out = form_urlencoded::Serializer::new(String::new());
    if let serde_json::Value::Object(map) = value {
        for (k, v) in map {
            let items = match v {
                serde_json::Value::Array(a) => a,
                other => vec![other],
            };
            for item in items {
                let text = match item {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                out.append_pair(&k, &text);
            }
        }
    }
    out.finish()
}

/// A response read in full.
#[derive(Debug, Clone)]
pub struct TestResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: bytes::Bytes,
}

impl TestResponse {
    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }
    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
    /// One header as text, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = HeaderName::try_from(name).ok()?;
        self.headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    }
    /// The body bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.body
    }
    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The body parsed as JSON.
    ///
    /// # Panics
    /// When the body is not JSON of that shape (the message shows the body).
    pub fn json<T: DeserializeOwned>(&self) -> T {
        match serde_json::from_slice(&self.body) {
            Ok(v) => v,
            Err(e) => panic!(
                "response body is not the expected JSON ({e}): {}",
                self.text()
            ),
        }
    }
}

/// The application served on a real socket at `127.0.0.1` on a free port,
/// for end-to-end tests that need one (timeouts, keep-alive, HTTP/2,
/// shutdown). Stops when [`stop`](TestServer::stop) is called or when dropped.
///
/// ```
/// use ferrapi::prelude::*;
/// use ferrapi::testing::TestServer;
///
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let server = TestServer::start(App::new()).await;
/// let addr = server.addr();
/// assert!(addr.ip().is_loopback());
/// server.stop().await.unwrap();
/// # });
/// ```
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), crate::ServeError>>>,
}

impl TestServer {
    /// Serves `app` with the default [`ServeConfig`](crate::ServeConfig),
    /// but no drain delay: [`stop`](Self::stop) closes the listener at
    /// once. Use [`start_with`](Self::start_with) to test the drain.
    pub async fn start(app: App) -> Self {
        let config = crate::ServeConfig {
            drain_delay: std::time::Duration::ZERO,
            ..crate::ServeConfig::default()
        };
        Self::start_with(app, config).await
    }

    /// Serves `app` with `config` (its host and port are ignored: the server
    /// listens on `127.0.0.1` on a free port).
    ///
    /// # Panics
    /// When no loopback port can be bound.
    ///
    /// The server prints no console lines unless the app or `config` asks
    /// for them ([`App::console_log`](crate::App::console_log)).
    pub async fn start_with(app: App, config: crate::ServeConfig) -> Self {
        let app = if app.console_log.is_none() && config.console_log.is_none() {
            app.console_log(crate::console::ConsoleLog::Off)
        } else {
            app
        };
        let listener = match tokio::net::TcpListener::bind(("127.0.0.1", 0)).await {
            Ok(l) => l,
            Err(e) => panic!("cannot bind 127.0.0.1: {e}"),
        };
        let addr = match listener.local_addr() {
            Ok(a) => a,
            Err(e) => panic!("no local address: {e}"),
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.serve_with(listener, config, async {
            let _ = rx.await;
        }));
        Self {
            addr,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts a graceful shutdown and waits until the server has stopped.
    ///
    /// # Errors
    /// The server's own error, if it stopped with one.
    pub async fn stop(mut self) -> Result<(), crate::ServeError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(task) => match task.await {
                Ok(result) => result,
                Err(e) => Err(crate::ServeError::Io {
                    context: "the server task failed".into(),
                    source: std::io::Error::other(e.to_string()),
                }),
            },
            None => Ok(()),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
