//! OpenTelemetry traces over OTLP, HTTP/protobuf or gRPC (feature `otel`).
//!
//! [`from_env`] (or [`OtlpConfig`] for explicit settings) builds a
//! [`Telemetry`]: an OTLP exporter behind the SDK's batch span
//! processor, and a `tracing_subscriber` layer ([`Telemetry::layer`]) that
//! turns `tracing` spans into OpenTelemetry spans. The [`Telemetry`] value is
//! the guard: dropping it (or [`Telemetry::shutdown`]) flushes what is
//! queued, within a bounded time.
//!
//! ```no_run
//! use tracing_subscriber::EnvFilter;
//! use tracing_subscriber::layer::SubscriberExt as _;
//! use tracing_subscriber::util::SubscriberInitExt as _;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // `None` when OTEL_EXPORTER_OTLP_ENDPOINT is not set: nothing is exported.
//! // A malformed variable is an error naming it.
//! let telemetry = ferrapi::telemetry::from_env("users-api")?;
//! tracing_subscriber::registry()
//!     .with(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
//!     .with(telemetry.as_ref().map(|t| t.layer()))
//!     .with(
//!         tracing_subscriber::fmt::layer()
//!             .json()
//!             .flatten_event(true)
//!             .with_current_span(true),
//!     )
//!     .init();
//! // ... serve (the app needs `RequestIdLayer`, as `Stack::defaults()` has) ...
//! drop(telemetry); // after the server stopped: flushes the last spans
//! # Ok(()) }
//! ```
//!
//! # The server span
//!
//! There is no extra layer to install: the request span that
//! `RequestIdLayer` opens around every
//! request *is* the server span, when (and only when) the current
//! subscriber has this module's layer. Then that span is opened with
//! `otel.kind = "server"`, and the layer:
//!
//! - makes the caller's W3C `traceparent` (and `tracestate`) its parent, so
//!   the exported trace id is the caller's and its parent span id the
//!   caller's span;
//! - names it `GET` at first and `GET /api/v1/users/{user_id}` (method and
//!   route template) once the router has matched a route;
//! - sets the HTTP semantic-convention attributes `http.request.method`,
//!   `url.path`, `url.scheme`, `server.address`, `server.port`,
//!   `user_agent.original`, `network.protocol.version`, `client.address`
//!   (the peer, then the client address through trusted proxies when
//!   `ClientIpLayer` runs), `http.route`
//!   and `http.response.status_code`; a 5xx answer sets the span's status
//!   to error with `error.type`;
//! - puts a [`TraceContext`] with the exported span's ids on the request,
//!   so the `traceparent` that
//!   `TraceContextLayer` answers
//!   and the `trace_id`/`span_id` it writes into every log line of the
//!   request are the exported span's, and outgoing calls through
//!   `client` become its children.
//!
//! Spans opened inside the request (`#[tracing::instrument]`, and the
//! database and cache spans of ferrapi-storage's `otel` feature, which are
//! opened only when [`exporting`] says so) are exported as its children. The query string, headers other
//! than `User-Agent` and bodies are never exported.
//!
//! Why the request span and not a layer of its own: one span per request
//! (a second one would double the cost and show up in every log line), and
//! the span every log line of the request already belongs to is the one
//! the trace shows.
//!
//! # Cost
//!
//! Without the feature nothing of this is compiled. With the feature but
//! without the layer installed, a request pays one look-up of the current
//! subscriber (a few type-id comparisons) and its span is exactly what it
//! is without the feature: logs do not change. With the layer, the request
//! span's log fields gain `otel.kind = "server"`; the other attributes are
//! set on the OpenTelemetry span only, not in the logs.
//!
//! # The request path never waits for the collector
//!
//! Finished spans go into the batch processor's bounded queue
//! (`OTEL_BSP_MAX_QUEUE_SIZE`, 2048 by default) without blocking; a
//! background thread sends them in batches (every `OTEL_BSP_SCHEDULE_DELAY`
//! ms or when `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` spans are waiting). When the
//! collector is down or slow, each export gives up after
//! `OTEL_EXPORTER_OTLP_TIMEOUT` (10 s), and spans that find the queue full
//! are dropped and counted: the SDK logs the first drop at `warn` and the
//! total at shutdown (target `opentelemetry_sdk`); this module logs the
//! first failed export and the recovery (target `ferrapi::telemetry`).
//!
//! # Transport
//!
//! Both OTLP transports send the same protobuf `ExportTraceServiceRequest`,
//! through ferrapi's own hyper client on a one-thread runtime of its own (so
//! it works whether or not the application's runtime is still running, and a
//! flush at exit does not depend on it):
//!
//! - **HTTP/protobuf** (the default, collector port 4318):
//!   `POST {endpoint}/v1/traces`, `content-type: application/x-protobuf`.
//! - **gRPC** (`OTEL_EXPORTER_OTLP_PROTOCOL=grpc`, [`OtlpProtocol::Grpc`],
//!   collector port 4317): HTTP/2 with prior knowledge over plain TCP,
//!   `POST /opentelemetry.proto.collector.trace.v1.TraceService/Export`,
//!   `content-type: application/grpc`, the message in gRPC's frame (a
//!   compressed flag of 0, a big-endian 32-bit length, the protobuf), a
//!   `grpc-timeout` of the export timeout, and the answer's `grpc-status`
//!   read from the trailers (or the headers of a trailers-only answer). The
//!   endpoint is the collector's `http://host:port`; its path, if any, is
//!   not used. A status other than `OK` fails the export, and the statuses
//!   OTLP calls retryable (`UNAVAILABLE`, `DEADLINE_EXCEEDED`, …) are
//!   reported to the SDK as retryable.
//!
//! gRPC is spoken directly over hyper's HTTP/2 client (already in the
//! build through hyper), not through tonic, which would add about ten
//! crates for one unary call. Plain `http://` only: a collector is normally
//! a local agent or sidecar; for TLS, export to a local collector that
//! forwards. This keeps reqwest and a second TLS stack out of the build.
//! `http/json` in `OTEL_EXPORTER_OTLP_PROTOCOL` is refused with a clear
//! error.
//!
//! # Environment
//!
//! | variable | effect |
//! |---|---|
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | base URL (`http://collector:4318`, or `http://collector:4317` for gRPC); over HTTP `/v1/traces` is appended. Unset: [`from_env`] returns `None`, unless `OTEL_TRACES_EXPORTER=otlp` is set explicitly: then the specification's default, `http://localhost:4318` (`http://localhost:4317` for gRPC) |
//! | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` | full URL of the traces endpoint, used as is over HTTP (its host and port over gRPC); wins over the above |
//! | `OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` | `http/protobuf` (the default) or `grpc`; anything else is an error |
//! | `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` | export timeout in ms (10000) |
//! | `OTEL_EXPORTER_OTLP_HEADERS` | `key=value,…` sent with every export |
//! | `OTEL_SERVICE_NAME` | `service.name` (else the default given to [`from_env`]) |
//! | `OTEL_RESOURCE_ATTRIBUTES` | more resource attributes |
//! | `OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_SCHEDULE_DELAY`, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` | the batch processor |
//! | `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG` | sampling (default: follow the caller's sampled flag, else sample) |
//! | `OTEL_SDK_DISABLED=true`, `OTEL_TRACES_EXPORTER=none` | [`from_env`] returns `None` |
//!
//! # Filters
//!
//! The layer only sees spans the subscriber enables: a global `RUST_LOG=warn`
//! filter would disable the `info` request span and so the trace. Give the
//! log output its own filter (`fmt_layer.with_filter(EnvFilter::from_default_env())`)
//! and leave the telemetry layer unfiltered, or filter it separately.

use bytes::Bytes;
use ferrapi_core::trace_context::{TRACEPARENT, TRACESTATE, TraceContext};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use opentelemetry::trace::{
    SpanContext, SpanId, Status, TraceContextExt as _, TraceFlags, TraceId, TraceState,
    TracerProvider as _,
};
use opentelemetry::{Context as OtelContext, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

/// The default export timeout (`OTEL_EXPORTER_OTLP_TIMEOUT`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest collector answer read (the OTLP answer is a few bytes).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The gRPC method of OTLP trace export.
pub const GRPC_TRACE_EXPORT_PATH: &str =
    "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// The collector the specification names when no endpoint is given, over
/// HTTP/protobuf.
pub const DEFAULT_HTTP_ENDPOINT: &str = "http://localhost:4318";

/// The collector the specification names when no endpoint is given, over
/// gRPC.
pub const DEFAULT_GRPC_ENDPOINT: &str = "http://localhost:4317";

/// How spans travel to the collector (`OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OtlpProtocol {
    /// `http/protobuf`: `POST {endpoint}/v1/traces` (collector port 4318).
    #[default]
    HttpProtobuf,
    /// `grpc`: the `TraceService/Export` call over HTTP/2 (collector port
    /// 4317).
    Grpc,
}

impl OtlpProtocol {
    /// The specification's default endpoint for this protocol.
    pub fn default_endpoint(self) -> &'static str {
        match self {
            OtlpProtocol::HttpProtobuf => DEFAULT_HTTP_ENDPOINT,
            OtlpProtocol::Grpc => DEFAULT_GRPC_ENDPOINT,
        }
    }
}

/// Telemetry could not be set up. Each names the setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// A setting (an environment variable or an explicit value) is invalid.
    #[error("{setting}: {message}")]
    Config {
        /// The variable or setting.
        setting: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The exporter could not be built.
    #[error("OTLP exporter: {0}")]
    Exporter(String),
    /// The export thread could not be started.
    #[error("cannot start the OTLP export thread: {0}")]
    Runtime(#[source] std::io::Error),
    /// Flushing or shutting down failed (spans may be lost).
    #[error("OTLP shutdown: {0}")]
    Shutdown(String),
}

fn config_error(setting: &'static str, message: impl Into<String>) -> TelemetryError {
    TelemetryError::Config {
        setting,
        message: message.into(),
    }
}

/// Where and how spans are exported: explicit settings, or
/// [`OtlpConfig::from_env`] for the standard `OTEL_*` variables.
///
/// ```
/// use ferrapi::telemetry::OtlpConfig;
/// use std::time::Duration;
///
/// # fn main() -> Result<(), ferrapi::telemetry::TelemetryError> {
/// let telemetry = OtlpConfig::new("http://127.0.0.1:4318")
///     .service_name("users-api")
///     .timeout(Duration::from_secs(2))
///     .max_queue_size(4096)
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct OtlpConfig {
    /// The base URL, or (`signal_endpoint`) the full URL of the traces
    /// endpoint.
    endpoint: String,
    signal_endpoint: bool,
    protocol: OtlpProtocol,
    service_name: Option<String>,
    timeout: Duration,
    headers: HashMap<String, String>,
    max_queue_size: Option<usize>,
    max_export_batch_size: Option<usize>,
    scheduled_delay: Option<Duration>,
    shutdown_timeout: Duration,
}

/// Reads a variable; unset and empty are the same.
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The traces URL for a base endpoint: `/v1/traces` appended to its path.
fn traces_url(base: &str) -> String {
    format!("{}/v1/traces", base.trim_end_matches('/'))
}

/// The gRPC URL for an endpoint: its scheme and authority, and the
/// method's path.
fn grpc_url(endpoint: &str) -> String {
    match endpoint.parse::<http::Uri>() {
        Ok(uri) => match (uri.scheme_str(), uri.authority()) {
            (Some(scheme), Some(authority)) => {
                format!("{scheme}://{authority}{GRPC_TRACE_EXPORT_PATH}")
            }
            _ => endpoint.to_owned(),
        },
        Err(_) => endpoint.to_owned(),
    }
}

fn check_url(setting: &'static str, url: &str) -> Result<(), TelemetryError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| config_error(setting, format!("`{url}` is not a URL: {e}")))?;
    match uri.scheme_str() {
        Some("http") if uri.host().is_some() => Ok(()),
        Some("https") => Err(config_error(
            setting,
            format!(
                "`{url}`: only plain http:// is supported (export to a local collector that forwards over TLS)"
            ),
        )),
        _ => Err(config_error(
            setting,
            format!("`{url}` is not an http:// URL with a host"),
        )),
    }
}

fn parse_protocol(setting: &'static str, value: &str) -> Result<OtlpProtocol, TelemetryError> {
    match value.trim() {
        "http/protobuf" => Ok(OtlpProtocol::HttpProtobuf),
        "grpc" => Ok(OtlpProtocol::Grpc),
        other => Err(config_error(
            setting,
            format!("`{other}` is not supported: `http/protobuf` and `grpc` are built in"),
        )),
    }
}

fn parse_millis(setting: &'static str, value: &str) -> Result<Duration, TelemetryError> {
    value
        .trim()
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| {
            config_error(
                setting,
                format!("`{value}` is not a number of milliseconds"),
            )
        })
}

impl OtlpConfig {
    /// Exports to the collector at `endpoint` (its base URL, such as
    /// `http://127.0.0.1:4318`; over HTTP `/v1/traces` is appended).
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self::with_endpoint(endpoint.into(), false)
    }

    /// Exports to exactly this URL (`http://collector:4318/v1/traces`; over
    /// gRPC only its host and port are used).
    pub fn with_traces_endpoint(url: impl Into<String>) -> Self {
        Self::with_endpoint(url.into(), true)
    }

    fn with_endpoint(endpoint: String, signal_endpoint: bool) -> Self {
        Self {
            endpoint,
            signal_endpoint,
            protocol: OtlpProtocol::HttpProtobuf,
            service_name: None,
            timeout: DEFAULT_TIMEOUT,
            headers: HashMap::new(),
            max_queue_size: None,
            max_export_batch_size: None,
            scheduled_delay: None,
            shutdown_timeout: Duration::from_secs(5),
        }
    }

    /// The settings the `OTEL_*` variables give (see the
    /// [module docs](self#environment)); `None` when no endpoint is set or
    /// the SDK is disabled.
    ///
    /// # Errors
    /// A malformed variable, named in the error.
    pub fn from_env() -> Result<Option<Self>, TelemetryError> {
        Self::from_vars(var)
    }

    /// [`from_env`](Self::from_env) over any source of variables (`var`
    /// answers `None` for unset or empty ones).
    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, TelemetryError> {
        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        // A comma-separated list; only `otlp` and `none` mean something here.
        let exporters = var("OTEL_TRACES_EXPORTER").unwrap_or_default();
        let mut exporters = exporters.split(',').map(str::trim);
        if exporters.clone().any(|e| e == "none") {
            return Ok(None);
        }
        let explicit_otlp = exporters.any(|e| e == "otlp");
        let mut protocol = OtlpProtocol::HttpProtobuf;
        for name in [
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ] {
            if let Some(value) = var(name) {
                protocol = parse_protocol(name, &value)?;
                break;
            }
        }
        let config = if let Some(url) = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            check_url("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &url)?;
            Self::with_traces_endpoint(url.trim())
        } else if let Some(base) = var("OTEL_EXPORTER_OTLP_ENDPOINT") {
            check_url("OTEL_EXPORTER_OTLP_ENDPOINT", &base)?;
            Self::new(base.trim())
        } else if explicit_otlp {
            // `OTEL_TRACES_EXPORTER=otlp` asked for export explicitly: the
            // specification's default collector. Without it, no endpoint
            // means no export (a service does not start sending spans to
            // localhost because a protocol variable was set globally).
            Self::new(protocol.default_endpoint())
        } else {
            return Ok(None);
        };
        let mut config = config.protocol(protocol);
        for name in [
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        ] {
            if let Some(value) = var(name) {
                config.timeout = parse_millis(name, &value)?;
                break;
            }
        }
        if let Some(name) = var("OTEL_SERVICE_NAME") {
            config.service_name = Some(name.trim().to_owned());
        }
        for name in ["OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"] {
            if let Some(value) = var(name) {
                let n = value.trim().parse::<usize>().ok().filter(|n| *n > 0);
                if n.is_none() {
                    return Err(config_error(
                        name,
                        format!("`{value}` is not a positive number"),
                    ));
                }
            }
        }
        if let Some(value) = var("OTEL_BSP_SCHEDULE_DELAY") {
            parse_millis("OTEL_BSP_SCHEDULE_DELAY", &value)?;
        }
        // The headers, the batch settings and the resource variables are
        // read by the exporter and the SDK themselves.
        Ok(Some(config))
    }

    /// The transport: HTTP/protobuf (the default) or gRPC.
    #[must_use]
    pub fn protocol(mut self, protocol: OtlpProtocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// `service.name` of the resource (`OTEL_SERVICE_NAME` wins when set
    /// through [`from_env`]).
    #[must_use]
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// How long one export may take, retries included (10 s by default).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// A header sent with every export (authentication to a collector).
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// How many finished spans may wait for export; more are dropped
    /// (2048, or `OTEL_BSP_MAX_QUEUE_SIZE`).
    #[must_use]
    pub fn max_queue_size(mut self, spans: usize) -> Self {
        self.max_queue_size = Some(spans.max(1));
        self
    }

    /// The most spans sent in one export (512, or
    /// `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`).
    #[must_use]
    pub fn max_export_batch_size(mut self, spans: usize) -> Self {
        self.max_export_batch_size = Some(spans.max(1));
        self
    }

    /// How long spans wait before a batch is sent (5 s, or
    /// `OTEL_BSP_SCHEDULE_DELAY`).
    #[must_use]
    pub fn scheduled_delay(mut self, delay: Duration) -> Self {
        self.scheduled_delay = Some(delay);
        self
    }

    /// How long [`Telemetry::shutdown`] (and the drop of [`Telemetry`])
    /// waits for the last export (5 s).
    #[must_use]
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// The URL spans are posted to: `…/v1/traces` over HTTP, the
    /// `TraceService/Export` method over gRPC.
    pub fn traces_endpoint(&self) -> String {
        match (self.protocol, self.signal_endpoint) {
            (OtlpProtocol::HttpProtobuf, true) => self.endpoint.clone(),
            (OtlpProtocol::HttpProtobuf, false) => traces_url(&self.endpoint),
            (OtlpProtocol::Grpc, _) => grpc_url(&self.endpoint),
        }
    }

    /// Starts the exporter: its thread, the batch processor, the tracer.
    ///
    /// # Errors
    /// An invalid endpoint, or the export thread cannot start.
    pub fn build(self) -> Result<Telemetry, TelemetryError> {
        let url = self.traces_endpoint();
        check_url("endpoint", &url)?;
        let grpc = self.protocol == OtlpProtocol::Grpc;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ferrapi-otlp")
            .enable_all()
            .build()
            .map_err(TelemetryError::Runtime)?;
        let failures = Arc::new(ExportHealth::default());
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(self.timeout));
        connector.set_nodelay(true);
        let client = ExportClient {
            inner: HyperClient::builder(hyper_util::rt::TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                // gRPC: HTTP/2 with prior knowledge on plain TCP.
                .http2_only(grpc)
                .build(connector),
            runtime: Arc::new(OwnedRuntime(Some(runtime))),
            timeout: self.timeout,
            health: failures.clone(),
            grpc,
        };
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_endpoint(url)
            .with_protocol(Protocol::HttpBinary)
            .with_timeout(self.timeout);
        if !self.headers.is_empty() {
            exporter = exporter.with_headers(self.headers.clone());
        }
        let exporter = exporter
            .build()
            .map_err(|e| TelemetryError::Exporter(e.to_string()))?;

        // `default()` reads the OTEL_BSP_* variables; explicit settings win.
        let mut batch = BatchConfigBuilder::default();
        if let Some(n) = self.max_queue_size {
            batch = batch.with_max_queue_size(n);
        }
        if let Some(n) = self.max_export_batch_size {
            batch = batch.with_max_export_batch_size(n);
        }
        if let Some(d) = self.scheduled_delay {
            batch = batch.with_scheduled_delay(d);
        }
        let batch = batch.build();
        let processor = BatchSpanProcessor::builder(exporter)
            .with_batch_config(batch)
            .build();

        let mut resource = opentelemetry_sdk::Resource::builder();
        if var("OTEL_SERVICE_NAME").is_none()
            && let Some(name) = &self.service_name
        {
            resource = resource.with_service_name(name.clone());
        }
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(resource.build())
            .build();
        Ok(Telemetry {
            provider,
            shutdown_timeout: self.shutdown_timeout,
            done: AtomicBool::new(false),
            health: failures,
        })
    }
}

/// Reads the `OTEL_*` variables and starts the exporter when an endpoint
/// is set: `Ok(None)` means tracing is off. `default_service_name` is the
/// `service.name` unless `OTEL_SERVICE_NAME` is set.
///
/// # Errors
/// A malformed variable (named in the error), or the exporter cannot start.
pub fn from_env(default_service_name: &str) -> Result<Option<Telemetry>, TelemetryError> {
    match OtlpConfig::from_env()? {
        Some(config) => config.service_name(default_service_name).build().map(Some),
        None => Ok(None),
    }
}

/// A running exporter: hands out the tracing layer, and flushes on drop.
///
/// Keep it alive for as long as spans should be exported (until the end of
/// `main`); [`shutdown`](Self::shutdown) flushes explicitly.
pub struct Telemetry {
    provider: SdkTracerProvider,
    shutdown_timeout: Duration,
    done: AtomicBool,
    health: Arc<ExportHealth>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("failed_exports", &self.failed_exports())
            .finish_non_exhaustive()
    }
}

/// Marks a subscriber that has [`Telemetry::layer`]: the request span
/// carries the server-span fields only then.
#[derive(Debug, Clone, Copy, Default)]
pub struct OtelMarker {
    _private: (),
}

impl<S: tracing::Subscriber> Layer<S> for OtelMarker {}

impl Telemetry {
    /// The `tracing_subscriber` layer exporting spans through this exporter
    /// (tracing-opentelemetry's, with the marker ferrapi's request span
    /// looks for). Add it to the registry next to the log output.
    pub fn layer<S>(&self) -> impl Layer<S> + 'static
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    {
        let tracer = self.provider.tracer("ferrapi");
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_threads(false)
            .and_then(OtelMarker::default())
    }

    /// The tracer provider, for spans made with the OpenTelemetry API
    /// directly, or to install as the global provider.
    pub fn provider(&self) -> &SdkTracerProvider {
        &self.provider
    }

    /// Exports everything queued now, waiting for the collector (at most
    /// the export timeout). Blocks: call it from a blocking context.
    ///
    /// # Errors
    /// The export failed.
    pub fn force_flush(&self) -> Result<(), TelemetryError> {
        self.provider
            .force_flush()
            .map_err(|e| TelemetryError::Shutdown(e.to_string()))
    }

    /// How many exports failed so far (collector down, refused, slow).
    pub fn failed_exports(&self) -> u64 {
        self.health.failed.load(Ordering::Relaxed)
    }

    /// Flushes the queue and stops the exporter, waiting at most the
    /// shutdown timeout. Blocks.
    ///
    /// # Errors
    /// The last export failed or did not finish in time.
    pub fn shutdown(self) -> Result<(), TelemetryError> {
        self.shutdown_inner()
    }

    fn shutdown_inner(&self) -> Result<(), TelemetryError> {
        if self.done.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.provider
            .shutdown_with_timeout(self.shutdown_timeout)
            .map_err(|e| TelemetryError::Shutdown(e.to_string()))
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown_inner() {
            tracing::warn!(target: "ferrapi::telemetry", error = %e, "OTLP shutdown incomplete; spans may be lost");
        }
    }
}

// ---------------------------------------------------------------------------
// The export transport: hyper-util's client on a runtime of its own.

/// A runtime dropped without blocking (the drop may happen inside another
/// runtime, where a blocking drop panics).
#[derive(Debug)]
struct OwnedRuntime(Option<tokio::runtime::Runtime>);

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

#[derive(Debug, Default)]
struct ExportHealth {
    failed: AtomicU64,
    failing: AtomicBool,
}

impl ExportHealth {
    fn failed(&self, error: &str) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        if !self.failing.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                target: "ferrapi::telemetry",
                error,
                "OTLP export failed; spans are dropped while the collector is unreachable (logged again when it recovers)"
            );
        } else {
            tracing::debug!(target: "ferrapi::telemetry", error, "OTLP export failed");
        }
    }

    fn succeeded(&self) {
        if self.failing.swap(false, Ordering::Relaxed) {
            tracing::info!(
                target: "ferrapi::telemetry",
                failed_exports = self.failed.load(Ordering::Relaxed),
                "OTLP export recovered"
            );
        }
    }
}

/// `opentelemetry_http::HttpClient` over hyper-util. The batch processor
/// calls it from its own thread, outside any runtime: the request runs on
/// this client's runtime and the processor waits for its result.
///
/// Over gRPC the exporter still hands over its OTLP/HTTP request (the same
/// protobuf body, posted to the gRPC method's URL): [`grpc::request`] turns
/// it into the gRPC call and [`grpc::response`] turns the answer back into
/// what the exporter understands.
#[derive(Debug, Clone)]
struct ExportClient {
    inner: HyperClient<HttpConnector, Full<Bytes>>,
    runtime: Arc<OwnedRuntime>,
    timeout: Duration,
    health: Arc<ExportHealth>,
    grpc: bool,
}

type ExportResult = Result<Response<Bytes>, opentelemetry_http::HttpError>;

impl ExportClient {
    async fn send(
        inner: HyperClient<HttpConnector, Full<Bytes>>,
        request: Request<Bytes>,
        timeout: Duration,
        grpc: bool,
    ) -> ExportResult {
        let request = if grpc {
            grpc::request(request, timeout)?
        } else {
            request
        };
        let (parts, body) = request.into_parts();
        let request = Request::from_parts(parts, Full::new(body));
        let exchange = async {
            let res = inner.request(request).await?;
            let (parts, body) = res.into_parts();
            let body = Limited::new(body, MAX_RESPONSE_BYTES).collect().await?;
            if grpc {
                let trailers = body.trailers().cloned();
                Ok(grpc::response(parts, body.to_bytes(), trailers.as_ref()))
            } else {
                Ok::<_, opentelemetry_http::HttpError>(Response::from_parts(parts, body.to_bytes()))
            }
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer from the collector within {timeout:?}").into()),
        }
    }
}

/// What a failed answer says, for the log: the HTTP status, and the gRPC
/// status and message when there are.
fn describe_failure(res: &Response<Bytes>) -> String {
    let header = |name| res.headers().get(name).and_then(|v| v.to_str().ok());
    match header(grpc::STATUS) {
        Some(code) => format!(
            "the collector answered gRPC status {code} ({})",
            header(grpc::MESSAGE).unwrap_or("no message")
        ),
        None => format!("the collector answered {}", res.status()),
    }
}

impl opentelemetry_http::HttpClient for ExportClient {
    // Written out as `async_trait` expands it: the trait is declared with
    // that macro.
    fn send_bytes<'life0, 'async_trait>(
        &'life0 self,
        request: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = ExportResult> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        let spawned = self.runtime.0.as_ref().map(|rt| {
            rt.spawn(Self::send(
                self.inner.clone(),
                request,
                self.timeout,
                self.grpc,
            ))
        });
        let health = self.health.clone();
        Box::pin(async move {
            let result = match spawned {
                Some(task) => match task.await {
                    Ok(result) => result,
                    Err(e) => Err(format!("the export task failed: {e}").into()),
                },
                None => Err("the export runtime is shut down".into()),
            };
            match &result {
                Ok(res) if res.status().is_success() => health.succeeded(),
                Ok(res) => health.failed(&describe_failure(res)),
                Err(e) => health.failed(&e.to_string()),
            }
            result
        })
    }
}

/// OTLP over gRPC without tonic: one unary call, framed by hand.
mod grpc {
    use bytes::{BufMut as _, Bytes, BytesMut};
    use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
    use std::time::Duration;

    /// The trailer (or, in a trailers-only answer, the header) with the
    /// call's status.
    pub(super) const STATUS: &str = "grpc-status";
    /// The status's message (percent-encoded).
    pub(super) const MESSAGE: &str = "grpc-message";

    /// The exporter's OTLP/HTTP request as the gRPC call: the protobuf body
    /// in one uncompressed frame, gRPC's content type, `te: trailers`, and
    /// the export timeout as `grpc-timeout`. The exporter's other headers
    /// (`OTEL_EXPORTER_OTLP_HEADERS`) go along as metadata.
    pub(super) fn request(
        request: Request<Bytes>,
        timeout: Duration,
    ) -> Result<Request<Bytes>, opentelemetry_http::HttpError> {
        let (mut parts, body) = request.into_parts();
        let len = u32::try_from(body.len())
            .map_err(|_| format!("an export of {} bytes is too large for gRPC", body.len()))?;
        let mut framed = BytesMut::with_capacity(5 + body.len());
        framed.put_u8(0);
        framed.put_u32(len);
        framed.put_slice(&body);
        parts.version = http::Version::HTTP_2;
        let headers = &mut parts.headers;
        headers.remove(http::header::CONTENT_LENGTH);
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        headers.insert(http::header::TE, HeaderValue::from_static("trailers"));
        // At most eight digits: milliseconds up to a day, then seconds.
        let millis = timeout.as_millis();
        let value = if millis < 100_000_000 {
            format!("{millis}m")
        } else {
            format!("{}S", timeout.as_secs().min(99_999_999))
        };
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert("grpc-timeout", value);
        }
        Ok(Request::from_parts(parts, framed.freeze()))
    }

    /// The HTTP status the exporter gets for a gRPC status: 200 for `OK`;
    /// 503 for the statuses OTLP calls retryable, so that the exporter
    /// retries them; a client or server error for the others.
    fn http_status(code: u32) -> StatusCode {
        match code {
            0 => StatusCode::OK,
            // CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE,
            // UNAVAILABLE, DATA_LOSS
            1 | 4 | 10 | 11 | 14 | 15 => StatusCode::SERVICE_UNAVAILABLE,
            8 => StatusCode::TOO_MANY_REQUESTS,
            3 => StatusCode::BAD_REQUEST,
            16 => StatusCode::UNAUTHORIZED,
            7 => StatusCode::FORBIDDEN,
            5 | 12 => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The collector's gRPC answer as the exporter's HTTP answer: the
    /// status from the trailers (or the headers, in a trailers-only
    /// answer), the `ExportTraceServiceResponse` taken out of its frame. An
    /// answer that is not gRPC (a proxy's error page, an HTTP/2 server that
    /// is not a collector) keeps its HTTP status, or becomes a 500.
    pub(super) fn response(
        mut parts: http::response::Parts,
        body: Bytes,
        trailers: Option<&HeaderMap>,
    ) -> Response<Bytes> {
        if !parts.status.is_success() {
            return Response::from_parts(parts, body);
        }
        let status = trailers
            .and_then(|t| t.get(STATUS))
            .or_else(|| parts.headers.get(STATUS))
            .cloned();
        let message = trailers
            .and_then(|t| t.get(MESSAGE))
            .or_else(|| parts.headers.get(MESSAGE))
            .cloned();
        let code = status
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u32>().ok());
        // No status at all: gRPC says UNKNOWN.
        let code = code.unwrap_or(2);
        parts.status = http_status(code);
        parts.headers.insert(STATUS, HeaderValue::from(code));
        if let Some(message) = message {
            parts.headers.insert(MESSAGE, message);
        }
        let payload = if code == 0 {
            unframe(&body).unwrap_or_default()
        } else {
            Bytes::new()
        };
        Response::from_parts(parts, payload)
    }

    /// The message of a body holding one uncompressed frame.
    fn unframe(body: &Bytes) -> Option<Bytes> {
        let header = body.get(..5)?;
        if header[0] != 0 {
            return None;
        }
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
        let end = 5usize.checked_add(usize::try_from(len).ok()?)?;
        (end <= body.len()).then(|| body.slice(5..end))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn requests_are_framed_with_the_grpc_headers() {
            let req = Request::post("http://127.0.0.1:4317/x")
                .header("content-type", "application/x-protobuf")
                .header("content-length", "3")
                .header("api-key", "k")
                .body(Bytes::from_static(b"abc"))
                .unwrap_or_default();
            let req = request(req, Duration::from_secs(2)).ok();
            let req = req.as_ref();
            assert_eq!(
                req.map(|r| r.body().as_ref()),
                Some(&[0u8, 0, 0, 0, 3, b'a', b'b', b'c'][..])
            );
            let header = |name| req.and_then(|r| r.headers().get(name)?.to_str().ok());
            assert_eq!(header("content-type"), Some("application/grpc"));
            assert_eq!(header("te"), Some("trailers"));
            assert_eq!(header("grpc-timeout"), Some("2000m"));
            assert_eq!(header("api-key"), Some("k"));
            assert_eq!(header("content-length"), None);
            assert_eq!(req.map(|r| r.version()), Some(http::Version::HTTP_2));
        }

        fn answer(
            headers: &[(&str, &str)],
            body: &'static [u8],
            trailers: &[(&'static str, &'static str)],
        ) -> Response<Bytes> {
            let mut res = Response::builder().status(200);
            for (k, v) in headers {
                res = res.header(*k, *v);
            }
            let (parts, ()) = res.body(()).unwrap_or_default().into_parts();
            let mut map = HeaderMap::new();
            for (k, v) in trailers {
                map.insert(*k, HeaderValue::from_static(v));
            }
            let trailers = (!trailers.is_empty()).then_some(&map);
            response(parts, Bytes::from_static(body), trailers)
        }

        #[test]
        fn answers_map_to_what_the_exporter_understands() {
            // OK, with the (empty) response message in its frame.
            let ok = answer(&[], &[0, 0, 0, 0, 2, 0x12, 0x00], &[("grpc-status", "0")]);
            assert_eq!(ok.status(), 200);
            assert_eq!(ok.body().as_ref(), &[0x12, 0x00]);
            // A trailers-only refusal, retryable.
            let down = answer(&[("grpc-status", "14"), ("grpc-message", "busy")], b"", &[]);
            assert_eq!(down.status(), 503);
            assert_eq!(
                down.headers().get("grpc-message").map(|v| v.as_bytes()),
                Some(&b"busy"[..])
            );
            assert_eq!(
                super::super::describe_failure(&down),
                "the collector answered gRPC status 14 (busy)"
            );
            // Not retryable.
            let bad = answer(&[], b"", &[("grpc-status", "3")]);
            assert_eq!(bad.status(), 400);
            let unimplemented = answer(&[], b"", &[("grpc-status", "12")]);
            assert_eq!(unimplemented.status(), 404);
            // No status: UNKNOWN, a failure.
            let none = answer(&[], b"", &[]);
            assert_eq!(none.status(), 500);
            assert_eq!(
                none.headers().get("grpc-status").map(|v| v.as_bytes()),
                Some(&b"2"[..])
            );
            // A truncated frame gives an empty message, not a panic.
            assert_eq!(unframe(&Bytes::from_static(&[0, 0, 0, 9, 1])), None);
            assert_eq!(unframe(&Bytes::from_static(&[1, 0, 0, 0, 0])), None);
        }
    }
}

// ---------------------------------------------------------------------------
// Hooks for the request span (called by RequestIdLayer, TraceContextLayer
// and the router).

/// Whether the current subscriber exports spans through [`Telemetry::layer`].
#[doc(hidden)]
pub fn active() -> bool {
    tracing::dispatcher::get_default(|d| d.is::<OtelMarker>())
}

fn span_is_exported(span: &Span) -> bool {
    !span.is_disabled() && span.with_subscriber(|(_, d)| d.is::<OtelMarker>()) == Some(true)
}

/// Whether the current span is exported through [`Telemetry::layer`].
///
/// Libraries that open client spans inside requests (ferrapi-storage's
/// database and cache spans) open them only when this is true: a child of
/// an exported span is exported in its trace, while outside a traced
/// request (no layer, a background worker's poll) a span would cost its
/// creation and show up in log lines for nothing. Costs a look-up of the
/// current span and its subscriber.
///
/// ```
/// // No subscriber with the telemetry layer: nothing is exported.
/// assert!(!ferrapi::telemetry::exporting());
/// ```
pub fn exporting() -> bool {
    span_is_exported(&Span::current())
}

/// The semantic-convention name of a method: the known ones as they are,
/// any other `_OTHER`.
fn method_name(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::HEAD => "HEAD",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::PATCH => "PATCH",
        http::Method::DELETE => "DELETE",
        http::Method::OPTIONS => "OPTIONS",
        http::Method::TRACE => "TRACE",
        http::Method::CONNECT => "CONNECT",
        _ => "_OTHER",
    }
}

/// The caller's trace as an OpenTelemetry parent context.
fn remote_parent(headers: &http::HeaderMap) -> Option<OtelContext> {
    let (trace_id, parent, flags) = headers
        .get(TRACEPARENT)
        .and_then(|v| TraceContext::parse(v.as_bytes()))?;
    let state = headers
        .get(TRACESTATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<TraceState>().ok())
        .unwrap_or_default();
    let cx = SpanContext::new(
        TraceId::from_bytes(trace_id),
        SpanId::from_bytes(parent),
        TraceFlags::new(flags),
        true,
        state,
    );
    Some(OtelContext::new().with_remote_span_context(cx))
}

/// Starts the server span (the request span, just opened with
/// `otel.kind = "server"`): parent, name, request attributes; puts the
/// [`TraceContext`] with its ids on the request.
#[doc(hidden)]
pub fn start_server_span<B>(span: &Span, req: &mut Request<B>, peer: Option<std::net::SocketAddr>) {
    if !span_is_exported(span) {
        return;
    }
    let parent = remote_parent(req.headers());
    let parent_id = parent
        .as_ref()
        .map(|cx| cx.span().span_context().span_id().to_bytes());
    if let Some(parent) = parent {
        let _ = span.set_parent(parent);
    }
    // Starts the span: from here on its ids are known.
    let cx = span.context();
    let otel = cx.span();
    let method = method_name(req.method());
    otel.update_name(method);
    let mut attrs = Vec::with_capacity(8);
    attrs.push(KeyValue::new("http.request.method", method));
    if method == "_OTHER" {
        attrs.push(KeyValue::new(
            "http.request.method_original",
            req.method().as_str().to_owned(),
        ));
    }
    attrs.push(KeyValue::new("url.path", req.uri().path().to_owned()));
    attrs.push(KeyValue::new(
        "url.scheme",
        req.uri().scheme_str().unwrap_or("http").to_owned(),
    ));
    let authority = req.uri().authority().cloned().or_else(|| {
        req.headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.parse::<http::uri::Authority>().ok())
    });
    if let Some(authority) = authority {
        attrs.push(KeyValue::new("server.address", authority.host().to_owned()));
        if let Some(port) = authority.port_u16() {
            attrs.push(KeyValue::new("server.port", i64::from(port)));
        }
    }
    if let Some(agent) = req
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
    {
        attrs.push(KeyValue::new(
            "user_agent.original",
            agent.chars().take(256).collect::<String>(),
        ));
    }
    let version = match req.version() {
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => "1.1",
    };
    attrs.push(KeyValue::new("network.protocol.version", version));
    if let Some(peer) = peer {
        attrs.push(KeyValue::new("client.address", peer.ip().to_string()));
        attrs.push(KeyValue::new("network.peer.address", peer.ip().to_string()));
    }
    otel.set_attributes(attrs);

    let sc = otel.span_context();
    if sc.is_valid() {
        let tracestate = req.headers().get(TRACESTATE).cloned();
        let trace = TraceContext::from_ids(
            sc.trace_id().to_bytes(),
            sc.span_id().to_bytes(),
            parent_id,
            sc.trace_flags().to_u8(),
            tracestate,
        );
        req.extensions_mut().insert(trace);
    }
}

/// The router matched `route`: the span is named `{METHOD} {route}`, gets
/// `http.route`, and the client address through trusted proxies.
#[doc(hidden)]
pub fn route_matched<B>(req: &Request<B>, route: &str, client: Option<std::net::IpAddr>) {
    let span = Span::current();
    if !span_is_exported(&span) {
        return;
    }
    let cx = span.context();
    let otel = cx.span();
    otel.update_name(format!("{} {route}", method_name(req.method())));
    otel.set_attribute(KeyValue::new("http.route", route.to_owned()));
    if let Some(ip) = client {
        otel.set_attribute(KeyValue::new("client.address", ip.to_string()));
    }
}

/// The answer is ready: `http.response.status_code`, and an error status
/// for a 5xx.
#[doc(hidden)]
pub fn finish_server_span(span: &Span, status: StatusCode) {
    if !span_is_exported(span) {
        return;
    }
    span.set_attribute("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        span.set_attribute("error.type", status.as_str().to_owned());
        span.set_status(Status::error(""));
    }
}

/// An outgoing call's span (kind client), child of the current span, and
/// the `traceparent`/`tracestate` naming it: `None` when the current span
/// is not exported, or when the call was explicitly joined to another
/// trace (`explicit_trace`, whose trace id differs from the current one).
#[doc(hidden)]
pub fn client_span(
    method: &http::Method,
    uri: &http::Uri,
    explicit_trace: Option<[u8; 16]>,
) -> Option<(Span, String, Option<String>)> {
    let current = Span::current();
    if !span_is_exported(&current) {
        return None;
    }
    if let Some(trace_id) = explicit_trace {
        let cx = current.context();
        if cx.span().span_context().trace_id().to_bytes() != trace_id {
            return None;
        }
    }
    let span = tracing::info_span!(parent: &current, "HTTP client", otel.kind = "client");
    let cx = span.context();
    let otel = cx.span();
    let sc = otel.span_context();
    if !sc.is_valid() {
        return None;
    }
    let name = method_name(method);
    otel.update_name(name);
    let mut attrs = Vec::with_capacity(5);
    attrs.push(KeyValue::new("http.request.method", name));
    if let Some(host) = uri.host() {
        attrs.push(KeyValue::new("server.address", host.to_owned()));
    }
    let port = uri.port_u16().unwrap_or(80);
    attrs.push(KeyValue::new("server.port", i64::from(port)));
    // Without the query string: it may carry secrets.
    attrs.push(KeyValue::new(
        "url.full",
        format!(
            "{}://{}{}",
            uri.scheme_str().unwrap_or("http"),
            uri.authority().map(|a| a.as_str()).unwrap_or(""),
            uri.path()
        ),
    ));
    otel.set_attributes(attrs);
    let traceparent = format!(
        "00-{}-{}-{:02x}",
        sc.trace_id(),
        sc.span_id(),
        sc.trace_flags().to_u8()
    );
    let state = sc.trace_state().header();
    Some((span, traceparent, (!state.is_empty()).then_some(state)))
}

/// The outgoing call ended: its status, or why it failed.
#[doc(hidden)]
pub fn finish_client_span(span: &Span, outcome: Result<StatusCode, &'static str>) {
    match outcome {
        Ok(status) => {
            span.set_attribute("http.response.status_code", i64::from(status.as_u16()));
            if status.is_client_error() || status.is_server_error() {
                span.set_attribute("error.type", status.as_str().to_owned());
                span.set_status(Status::error(""));
            }
        }
        Err(kind) => {
            span.set_attribute("error.type", kind);
            span.set_status(Status::error(kind));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_settings_are_checked() {
        assert_eq!(
            OtlpConfig::new("http://127.0.0.1:4318/").traces_endpoint(),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            OtlpConfig::with_traces_endpoint("http://c:4318/custom").traces_endpoint(),
            "http://c:4318/custom"
        );
        // gRPC: the authority of either form, the method's path.
        for config in [
            OtlpConfig::new("http://c:4317/"),
            OtlpConfig::with_traces_endpoint("http://c:4317/v1/traces"),
        ] {
            assert_eq!(
                config.protocol(OtlpProtocol::Grpc).traces_endpoint(),
                "http://c:4317/opentelemetry.proto.collector.trace.v1.TraceService/Export"
            );
        }
        assert!(check_url("x", "http://collector:4318/v1/traces").is_ok());
        let err = check_url("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("OTEL_EXPORTER_OTLP_ENDPOINT: "), "{err}");
        assert!(check_url("x", "collector:4318").is_err());
        assert_eq!(
            parse_protocol("p", "http/protobuf").ok(),
            Some(OtlpProtocol::HttpProtobuf)
        );
        assert_eq!(parse_protocol("p", " grpc").ok(), Some(OtlpProtocol::Grpc));
        assert!(parse_protocol("p", "http/json").is_err());
    }

    fn from_vars(vars: &[(&str, &str)]) -> Result<Option<OtlpConfig>, TelemetryError> {
        OtlpConfig::from_vars(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    fn endpoint_of(vars: &[(&str, &str)]) -> Option<String> {
        from_vars(vars).ok().flatten().map(|c| c.traces_endpoint())
    }

    #[test]
    fn the_protocol_and_endpoint_variables_follow_the_specification() {
        const EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
        // No endpoint: nothing is exported, whatever the protocol.
        assert_eq!(endpoint_of(&[]), None);
        assert_eq!(
            endpoint_of(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]),
            None
        );
        // Export asked for explicitly: the specification's default
        // collector, port 4318 over HTTP and 4317 over gRPC.
        assert_eq!(
            endpoint_of(&[("OTEL_TRACES_EXPORTER", "otlp")]).as_deref(),
            Some("http://localhost:4318/v1/traces")
        );
        assert_eq!(
            endpoint_of(&[
                ("OTEL_TRACES_EXPORTER", "otlp"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
            ]),
            Some(format!("http://localhost:4317{EXPORT}"))
        );
        // gRPC to a given collector; the traces protocol wins over the
        // general one.
        assert_eq!(
            endpoint_of(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
            ]),
            Some(format!("http://collector:4317{EXPORT}"))
        );
        assert_eq!(
            endpoint_of(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")]).as_deref(),
            Some("http://collector:4318/v1/traces")
        );
        assert_eq!(
            endpoint_of(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
                ("OTEL_TRACES_EXPORTER", "otlp,none")
            ]),
            None
        );
        let err = from_vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            err.starts_with("OTEL_EXPORTER_OTLP_PROTOCOL: `http/json`"),
            "{err}"
        );
        assert_eq!(
            parse_millis("t", "250").ok(),
            Some(Duration::from_millis(250))
        );
        assert!(parse_millis("t", "2s").is_err());
    }

    #[test]
    fn methods_follow_the_conventions() {
        assert_eq!(method_name(&http::Method::GET), "GET");
        let custom = http::Method::from_bytes(b"PURGE").ok();
        assert_eq!(custom.as_ref().map(method_name), Some("_OTHER"));
    }

    #[test]
    fn the_remote_parent_is_the_callers_span() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            TRACEPARENT,
            http::HeaderValue::from_static(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        );
        headers.insert(TRACESTATE, http::HeaderValue::from_static("vendor=abc"));
        let cx = remote_parent(&headers);
        let sc = cx.as_ref().map(|cx| cx.span().span_context().clone());
        let sc = sc.filter(SpanContext::is_remote);
        assert_eq!(
            sc.as_ref().map(|sc| sc.trace_id().to_string()),
            Some("4bf92f3577b34da6a3ce929d0e0e4736".to_owned())
        );
        assert_eq!(
            sc.as_ref().map(|sc| sc.trace_state().header()),
            Some("vendor=abc".to_owned())
        );
        headers.insert(TRACEPARENT, http::HeaderValue::from_static("garbage"));
        assert!(remote_parent(&headers).is_none());
    }
}
