//! An outgoing HTTP client that carries the request's trace (feature
//! `client`).
//!
//! A handler calling another service passes its [`TraceContext`] to
//! [`RequestBuilder::trace`]: the call goes out with `traceparent`
//! (`00-<the trace id>-<this request's span id>-<flags>`) and the caller's
//! `tracestate`, so the other service's spans join the same trace as
//! children of this request. An explicit `traceparent` header is never
//! replaced.
//!
//! With the `otel` feature and the telemetry layer installed
//! ([`telemetry`](crate::telemetry)), each call also gets a client span
//! (kind client, named by its method, with `http.request.method`,
//! `server.address`, `server.port`, `url.full` without the query,
//! `http.response.status_code`, and `error.type` on failure), a child of
//! the current span (the request span, or a span opened inside it), and
//! `traceparent` names that client span; calls made without
//! [`trace`](RequestBuilder::trace) are joined to the current trace all the
//! same. A [`trace`](RequestBuilder::trace) of another trace than the
//! current one is sent as given, without a client span.
//!
//! ```
//! use ferrapi::client::Client;
//! use ferrapi::middleware::TraceContext;
//! use ferrapi::prelude::*;
//!
//! #[get("/orders/{order_id}")]
//! async fn order(
//!     Path(order_id): Path<u64>,
//!     trace: TraceContext,
//!     State(http): State<Client>,
//! ) -> Result<String, HttpError> {
//!     let res = http
//!         .get(&format!("http://127.0.0.1:9000/stock/{order_id}"))
//!         .trace(&trace)
//!         .send()
//!         .await
//!         .map_err(|e| HttpError::new(ferrapi::http::StatusCode::BAD_GATEWAY, e.to_string()))?;
//!     Ok(res.text())
//! }
//!
//! let app = App::new().state(Client::new()).route(order);
//! ```
//!
//! Built on hyper-util's connection-pooling client (already in the tree
//! for the server), HTTP/1.1 over plain TCP: `http://` URLs only. That is
//! what service-to-service calls inside a cluster, sidecars and collectors
//! use; a call over the internet with TLS wants a full client (reqwest),
//! to which [`TraceContext::traceparent`] and [`TraceContext::tracestate`]
//! can be given as headers the same way. Responses are read whole, up to a
//! limit (16 MiB by default); every request has a timeout (30 s by
//! default), connection included.

use crate::middleware::{TRACEPARENT, TRACESTATE, TraceContext};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// The default request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The default limit on a response body.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// A call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request could not be built (bad URL, header name or value).
    #[error("invalid request: {0}")]
    Request(#[from] http::Error),
    /// Only `http://` URLs are supported.
    #[error("`{0}`: only plain http:// URLs are supported by ferrapi's client")]
    UnsupportedScheme(String),
    /// Connecting or exchanging failed.
    #[error("request to {uri} failed: {source}")]
    Send {
        /// The URL.
        uri: String,
        /// Why.
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    /// No complete answer within the timeout.
    #[error("request to {uri} timed out after {timeout:?}")]
    Timeout {
        /// The URL.
        uri: String,
        /// The timeout.
        timeout: Duration,
    },
    /// The response body could not be read.
    #[error("reading the response body failed: {0}")]
    Body(String),
    /// The response body is larger than the limit.
    #[error("the response body is larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The request body could not be serialized, or the response body is
    /// not the JSON expected.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// A pooled HTTP/1.1 client; cheap to clone (clones share connections).
/// See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Client {
    inner: HyperClient<HttpConnector, Full<Bytes>>,
    timeout: Duration,
    max_response_bytes: usize,
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

impl Client {
    /// A client with the default timeout and response limit.
    pub fn new() -> Self {
        Self::with_settings(DEFAULT_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES)
    }

    /// A client with this timeout per request (connection included) and
    /// this limit on response bodies.
    pub fn with_settings(timeout: Duration, max_response_bytes: usize) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        Self {
            inner: HyperClient::builder(hyper_util::rt::TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(60))
                .build(connector),
            timeout,
            max_response_bytes,
        }
    }

    /// A request with `method` to `url`.
    pub fn request(&self, method: Method, url: &str) -> RequestBuilder {
        RequestBuilder {
            client: self.clone(),
            request: http::Request::builder().method(method).uri(url),
            url: url.to_owned(),
            body: Ok(Bytes::new()),
            trace: None,
            timeout: self.timeout,
        }
    }

    /// `GET url`.
    pub fn get(&self, url: &str) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    /// `POST url`.
    pub fn post(&self, url: &str) -> RequestBuilder {
        self.request(Method::POST, url)
    }

    /// `PUT url`.
    pub fn put(&self, url: &str) -> RequestBuilder {
        self.request(Method::PUT, url)
    }

    /// `PATCH url`.
    pub fn patch(&self, url: &str) -> RequestBuilder {
        self.request(Method::PATCH, url)
    }

    /// `DELETE url`.
    pub fn delete(&self, url: &str) -> RequestBuilder {
        self.request(Method::DELETE, url)
    }
}

/// One request being built; [`send`](Self::send) sends it.
#[derive(Debug)]
#[must_use = "a request does nothing until sent"]
pub struct RequestBuilder {
    client: Client,
    request: http::request::Builder,
    url: String,
    body: Result<Bytes, serde_json::Error>,
    trace: Option<(HeaderValue, Option<HeaderValue>)>,
    timeout: Duration,
}

impl RequestBuilder {
    /// Adds a header (an invalid name or value fails at [`send`](Self::send)).
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        <K as TryInto<HeaderName>>::Error: Into<http::Error>,
        V: TryInto<HeaderValue>,
        <V as TryInto<HeaderValue>>::Error: Into<http::Error>,
    {
        self.request = self.request.header(name, value);
        self
    }

    /// The body, as is.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = Ok(body.into());
        self
    }

    /// `value` as a JSON body, with `Content-Type: application/json`.
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        self.body = serde_json::to_vec(value).map(Bytes::from);
        self.request = self
            .request
            .header(http::header::CONTENT_TYPE, "application/json");
        self
    }

    /// Joins the call to `trace`: `traceparent` names the request's span as
    /// the parent, `tracestate` is passed on.
    pub fn trace(mut self, trace: &TraceContext) -> Self {
        if let Ok(parent) = HeaderValue::from_str(&trace.traceparent()) {
            self.trace = Some((parent, trace.tracestate().cloned()));
        }
        self
    }

    /// The timeout of this request (instead of the client's).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends the request and reads the whole answer.
    ///
    /// # Errors
    /// See [`ClientError`]; an answer with an error status is not an error.
    pub async fn send(self) -> Result<ClientResponse, ClientError> {
        let body = self.body?;
        let mut request = self.request.body(Full::new(body))?;
        if request.uri().scheme_str() != Some("http") {
            return Err(ClientError::UnsupportedScheme(self.url));
        }
        // With `otel` and the telemetry layer: a client span, child of the
        // current span, names the call in the trace.
        #[cfg(feature = "otel")]
        let client_span = if request.headers().contains_key(TRACEPARENT) {
            None
        } else {
            let explicit = self.trace.as_ref().and_then(|(parent, _)| {
                TraceContext::parse(parent.as_bytes()).map(|(trace_id, _, _)| trace_id)
            });
            crate::telemetry::client_span(request.method(), request.uri(), explicit)
        };
        let headers = request.headers_mut();
        #[cfg(feature = "otel")]
        if let Some((_, parent, state)) = &client_span {
            if let Ok(v) = HeaderValue::from_str(parent) {
                headers.insert(TRACEPARENT, v);
            }
            if let Some(v) = state.as_deref().and_then(|s| HeaderValue::from_str(s).ok()) {
                headers.insert(TRACESTATE, v);
            }
        }
        if !headers.contains_key(TRACEPARENT)
            && let Some((parent, state)) = self.trace
        {
            headers.insert(TRACEPARENT, parent);
            if let Some(state) = state {
                headers.insert(TRACESTATE, state);
            }
        }
        let limit = self.client.max_response_bytes;
        let url = self.url;
        let exchange =
            async {
                let res = self.client.inner.request(request).await.map_err(|source| {
                    ClientError::Send {
                        uri: url.clone(),
                        source,
                    }
                })?;
                let (parts, body) = res.into_parts();
                let body = Limited::new(body, limit).collect().await.map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        ClientError::TooLarge { limit }
                    } else {
                        ClientError::Body(e.to_string())
                    }
                })?;
                Ok(ClientResponse {
                    status: parts.status,
                    headers: parts.headers,
                    body: body.to_bytes(),
                })
            };
        #[cfg(feature = "otel")]
        let exchange = {
            use tracing::Instrument as _;
            let span = client_span
                .as_ref()
                .map_or_else(tracing::Span::none, |(span, _, _)| span.clone());
            exchange.instrument(span)
        };
        let result = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout {
                uri: url,
                timeout: self.timeout,
            }),
        };
        #[cfg(feature = "otel")]
        if let Some((span, _, _)) = &client_span {
            let outcome = match &result {
                Ok(res) => Ok(res.status),
                Err(ClientError::Timeout { .. }) => Err("timeout"),
                Err(ClientError::Send { .. }) => Err("connection"),
                Err(_) => Err("response"),
            };
            crate::telemetry::finish_client_span(span, outcome);
        }
        result
    }
}

/// A complete answer.
#[derive(Debug, Clone)]
pub struct ClientResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl ClientResponse {
    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// One header as text, when present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body.
    pub fn bytes(&self) -> &Bytes {
        &self.body
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    ///
    /// # Errors
    /// The body is not a `T` in JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        Ok(serde_json::from_slice(&self.body)?)
    }
}
