//! The server: HTTP/1.1 (keep-alive) and HTTP/2 (h2c) on hyper, with an
//! idle-connection timeout against slow clients, and graceful shutdown.
//!
//! The accept loop is written here over hyper-util's `auto::Builder` and
//! `GracefulShutdown` (the pattern of axum's "serve with hyper" example):
//! each connection's requests go straight to the application's dispatcher
//! (or, when the app has layers, to its axum router), and each request
//! carries the peer address as axum's `ConnectInfo<SocketAddr>`.
//!
//! # Slow clients
//!
//! [`ServeConfig::header_read_timeout`] bounds how long an HTTP/1
//! connection may sit with no request in progress: waiting for its first
//! request head, for the rest of a head a client is trickling in
//! (slowloris), or idle between keep-alive requests. Such a connection is
//! closed between one and one and a half times the timeout after it went
//! idle. A request being handled, its body being read, or its response
//! being written (a stream included, however long) keeps the connection
//! open; HTTP/2 connections, which multiplex requests, are left to the
//! client once they sent one.
//!
//! hyper's own `header_read_timeout` does this per request: it reads the
//! clock and registers a timer in tokio's timer wheel for every request
//! head, and polls the socket once more after every request. Here one task
//! per server looks at every connection once per half timeout instead, and
//! a request costs three relaxed atomic operations.
//!
//! A request whose body is being read is not idle, so the reaper leaves a
//! slow *body* alone; [`ServeConfig::body_read_timeout`] bounds it instead
//! (nginx's `client_body_timeout`): every request body is wrapped so that a
//! read waiting longer than the timeout for the next bytes fails with
//! [`BodyTimeout::Idle`]. The extractors (`Json`, `Form`, `Bytes`,
//! `String`, `Multipart`) answer it `408 Request Timeout` as
//! `{"detail": "…"}`, and the server adds `Connection: close` to the
//! HTTP/1 answer, whatever the handler made of the error: the rest of the
//! body is never read. The clock starts only when a read has to wait, so
//! a body that arrives with its head costs no timer.
//! [`ServeConfig::body_total_timeout`] (off by default, as in nginx) also
//! caps the whole body, against a client trickling one byte per interval.
//!
//! # Header limits
//!
//! An HTTP/1 request head with more than [`ServeConfig::max_headers`]
//! fields (default 100) or larger than [`ServeConfig::max_header_bytes`]
//! (default 408 KiB) is answered `431 Request Header Fields Too Large` and
//! the connection closed, before the application sees it (hyper's limits;
//! HTTP/2 keeps hyper's 16 KiB header list limit).
//!
//! # `Host`
//!
//! An HTTP/1.1 request without a `Host` header, or with more than one, is
//! answered `400 Bad Request` (`{"detail": "…"}`) and its connection
//! closed, before the application sees it, as RFC 9112 (section 3.2)
//! requires and uvicorn (h11) does; hyper does not check it. HTTP/1.0
//! requests may omit it; HTTP/2 requests carry `:authority` instead.
//!
//! # Shutdown: drain, then close
//!
//! When the shutdown future resolves (SIGTERM or SIGINT for
//! [`App::serve`]), the server does not close its listener at once. It
//! first *drains* for [`ServeConfig::drain_delay`] (`DRAIN_DELAY`, default
//! 1 s): the app's [`Draining`] handle reports it, so that a readiness
//! check can answer `503` and a load balancer stops sending new
//! connections; the server keeps accepting and serving, and adds
//! `Connection: close` to every HTTP/1 response, so that each keep-alive
//! client leaves its connection after an answer rather than have the
//! connection closed under its next request. Then the listener closes (new
//! connections are refused), a connection accepted just before that gets
//! its first request served (for at most a second), and the graceful
//! shutdown follows: idle connections are closed, requests in flight finish
//! within [`ServeConfig::grace_period`], then background tasks, then the
//! [`on_shutdown`](App::on_shutdown) hooks. HTTP/2 connections get their
//! `GOAWAY` at that last step. A drain delay of zero closes the listener at
//! once, as before.

use crate::App;
use crate::middleware::stack::Fused;
use axum::extract::ConnectInfo;
use ferrapi_core::middleware::{HookFuture, HookService};
use futures_util::task::AtomicWaker;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::net::TcpListener;

/// How the server listens and stops.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Listen address (`HOST`, default `0.0.0.0`).
    pub host: IpAddr,
    /// Listen port (`PORT`, default `8000`).
    pub port: u16,
    /// Runtime worker threads (`WORKERS`, default: the number of cores);
    /// used by [`App::run`].
    pub workers: Option<usize>,
    /// An HTTP/1 connection with no request in progress (waiting for a
    /// request head, or idle between keep-alive requests) is closed after
    /// this time, give or take half of it (default 10 s): a slowloris client
    /// cannot hold a connection open. Zero disables it.
    pub header_read_timeout: Duration,
    /// A read of a request body that waits this long for the next bytes
    /// fails with [`BodyTimeout::Idle`]: the extractors answer `408` JSON
    /// and the connection is closed (`BODY_READ_TIMEOUT` in seconds,
    /// default 30 s, as nginx's `client_body_timeout`). Zero disables it.
    pub body_read_timeout: Duration,
    /// The whole request body must have arrived this long after the
    /// request head, else [`BodyTimeout::Total`] and a `408`
    /// (`BODY_TOTAL_TIMEOUT` in seconds). Zero, the default, sets no total
    /// (nginx sets none either): a client trickling bytes more often than
    /// [`body_read_timeout`](Self::body_read_timeout) may take as long as
    /// it likes, and a large upload over a slow link is not cut.
    pub body_total_timeout: Duration,
    /// HTTP/1 requests with more header fields than this are answered
    /// `431` (default 100, hyper's; another value costs hyper a heap
    /// allocation per request).
    pub max_headers: usize,
    /// HTTP/1 request heads (request line and header fields) larger than
    /// this many bytes are answered `431` (default 408 KiB, hyper's read
    /// buffer limit; values under 8 KiB count as 8 KiB).
    pub max_header_bytes: usize,
    /// On SIGTERM/SIGINT, in-flight requests get this long to finish
    /// (default 30 s), counted from when the listener closes.
    pub grace_period: Duration,
    /// On SIGTERM/SIGINT, the server first drains for this long before it
    /// closes its listener: [`Draining`] reports it (readiness `503`), new
    /// connections are still served, and every HTTP/1 response carries
    /// `Connection: close` (`DRAIN_DELAY` in seconds, default 1 s; zero
    /// closes the listener at once). Keep it under what the platform
    /// allows for the listener to close (often a few seconds after
    /// SIGTERM) and at least one readiness-probe interval of the load
    /// balancer.
    pub drain_delay: Duration,
    /// The console lines (`FERRAPI_CONSOLE_LOG`: `auto`, `on`, `startup`,
    /// `off`); `None`, the default, leaves it to
    /// [`App::console_log`](crate::App::console_log). See
    /// [`console`](crate::console).
    pub console_log: Option<crate::console::ConsoleLog>,
}

/// hyper's default limit on the number of HTTP/1 header fields.
const HYPER_MAX_HEADERS: usize = 100;
/// hyper's default (and smallest) HTTP/1 read buffer limits.
const HYPER_MAX_BUF: usize = 8192 + 4096 * 100;
const HYPER_MIN_BUF: usize = 8192;

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            host: IpAddr::from([0, 0, 0, 0]),
            port: 8000,
            workers: None,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            body_total_timeout: Duration::ZERO,
            max_headers: HYPER_MAX_HEADERS,
            max_header_bytes: HYPER_MAX_BUF,
            grace_period: Duration::from_secs(30),
            drain_delay: DEFAULT_DRAIN_DELAY,
            console_log: None,
        }
    }
}

/// [`ServeConfig::drain_delay`]'s default.
const DEFAULT_DRAIN_DELAY: Duration = Duration::from_secs(1);

/// How long, once the listener is closed, a connection accepted just
/// before may take to send its first request.
const FIRST_REQUEST_WAIT: Duration = Duration::from_secs(1);

/// Whether the server is draining before it stops: the server sets it when its shutdown
/// future resolves, [`ServeConfig::drain_delay`] before it closes the
/// listener. Every [`App`] has one as state, so a readiness handler reads
/// it with [`State<Draining>`](crate::State):
///
/// ```
/// use ferrapi::Draining;
/// use ferrapi::http::StatusCode;
/// use ferrapi::prelude::*;
///
/// #[get("/health/ready")]
/// async fn ready(State(draining): State<Draining>) -> (StatusCode, &'static str) {
///     if draining.is_draining() {
///         (StatusCode::SERVICE_UNAVAILABLE, "shutting down")
///     } else {
///         (StatusCode::OK, "ok")
///     }
/// }
///
/// let app = App::new().route(ready);
/// ```
///
/// A handle registered with [`App::state`] replaces the app's own (to
/// share it with code that runs outside the app); clones share the flag.
#[derive(Debug, Clone, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    /// Not draining.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// Marks the shutdown as begun (the server does it; a test or a custom
    /// stop sequence may too). It is never unset.
    pub fn start(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// An environment variable has a value that cannot be used.
    #[error("{var}: {reason}")]
    Config {
        /// The variable.
        var: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// The route declarations have mistakes.
    #[error(transparent)]
    Build(#[from] crate::BuildError),
    /// A startup hook ([`App::on_startup`]) failed: nothing was served.
    #[error("startup hook `{hook}` failed: {error}")]
    Startup {
        /// The hook's name.
        hook: String,
        /// Its error.
        error: crate::Error,
    },
    /// Binding the listener or building the runtime failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl ServeConfig {
    /// Defaults overridden by `HOST`, `PORT`, `WORKERS`,
    /// `BODY_READ_TIMEOUT`, `BODY_TOTAL_TIMEOUT` and `DRAIN_DELAY`
    /// (seconds, decimals allowed, `0` disables) and `FERRAPI_CONSOLE_LOG`
    /// from the environment; a
    /// malformed value is an error naming the variable.
    pub fn from_env() -> Result<Self, ServeError> {
        let mut config = Self::default();
        if let Some(v) = env("HOST") {
            config.host = v.parse().map_err(|_| ServeError::Config {
                var: "HOST",
                reason: format!("`{v}` is not an IP address"),
            })?;
        }
        if let Some(v) = env("PORT") {
            config.port = v.parse().map_err(|_| ServeError::Config {
                var: "PORT",
                reason: format!("`{v}` is not a port number (0-65535)"),
            })?;
        }
        if let Some(v) = env("WORKERS") {
            match v.parse::<usize>() {
                Ok(n) if n > 0 => config.workers = Some(n),
                _ => {
                    return Err(ServeError::Config {
                        var: "WORKERS",
                        reason: format!("`{v}` is not a positive number of threads"),
                    });
                }
            }
        }
        if let Some(t) = env_seconds("BODY_READ_TIMEOUT")? {
            config.body_read_timeout = t;
        }
        if let Some(t) = env_seconds("BODY_TOTAL_TIMEOUT")? {
            config.body_total_timeout = t;
        }
        if let Some(t) = env_seconds("DRAIN_DELAY")? {
            config.drain_delay = t;
        }
        if let Some(v) = env("FERRAPI_CONSOLE_LOG") {
            config.console_log = Some(v.parse().map_err(|e| ServeError::Config {
                var: "FERRAPI_CONSOLE_LOG",
                reason: format!("{e}"),
            })?);
        }
        Ok(config)
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A duration in seconds (`30`, `0.5`) from the environment.
fn env_seconds(var: &'static str) -> Result<Option<Duration>, ServeError> {
    let Some(v) = env(var) else {
        return Ok(None);
    };
    parse_seconds(&v)
        .map(Some)
        .ok_or_else(|| ServeError::Config {
            var,
            reason: format!("`{v}` is not a number of seconds (0 or more)"),
        })
}

fn parse_seconds(v: &str) -> Option<Duration> {
    let secs: f64 = v.trim().parse().ok()?;
    Duration::try_from_secs_f64(secs).ok()
}

/// Resolves when the process receives SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

impl App {
    /// Serves the application on `HOST`:`PORT` (defaults `0.0.0.0:8000`)
    /// until SIGTERM or SIGINT, then finishes in-flight requests (up to the
    /// grace period) and returns.
    pub async fn serve(self) -> Result<(), ServeError> {
        let config = ServeConfig::from_env()?;
        let addr = SocketAddr::new(config.host, config.port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Io {
                context: format!("cannot listen on {addr}"),
                source,
            })?;
        self.serve_with(listener, config, shutdown_signal()).await
    }

    /// Builds a multi-threaded runtime with `WORKERS` threads and serves the
    /// application on it (see [`serve`](Self::serve)): the whole `main` of a
    /// program that needs nothing else.
    pub fn run(self) -> Result<(), ServeError> {
        let config = ServeConfig::from_env()?;
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        if let Some(n) = config.workers {
            builder.worker_threads(n);
        }
        let runtime = builder
            .enable_all()
            .build()
            .map_err(|source| ServeError::Io {
                context: "cannot start the runtime".into(),
                source,
            })?;
        runtime.block_on(self.serve())
    }

    /// Serves on an already bound listener until `shutdown` resolves, then
    /// drains for `config.drain_delay` (see [`ServeConfig::drain_delay`]),
    /// stops accepting, lets in-flight requests finish within
    /// `config.grace_period`, and returns.
    pub async fn serve_with(
        mut self,
        listener: TcpListener,
        config: ServeConfig,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        let draining = self.draining_handle();
        let console = crate::console::ConsoleLog::lines(
            config.console_log,
            self.console_log,
            crate::console::subscriber_installed(),
        );
        // Swagger UI is served only with a document to show.
        let docs_url = self.openapi_url.as_ref().and(self.docs_url.clone());
        // Startup hooks first: the states they make are part of the build.
        // A failure stops the apps already started (their shutdown hooks).
        let mut lifespans = match self.start_lifespans().await {
            Ok(started) => started,
            Err((e, mut started)) => {
                stop_lifespans(&mut started).await;
                return Err(e);
            }
        };
        let built = match self.build() {
            Ok(built) => built,
            Err(e) => {
                stop_lifespans(&mut lifespans).await;
                return Err(e.into());
            }
        };
        let app = built.served;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .keep_alive(true)
            .max_buf_size(config.max_header_bytes.max(HYPER_MIN_BUF));
        if config.max_headers != HYPER_MAX_HEADERS {
            builder.http1().max_headers(config.max_headers);
        }
        let body_timeouts = BodyTimeouts {
            idle: config.body_read_timeout,
            total: config.body_total_timeout,
        };
        builder.http2().timer(TokioTimer::new());
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, docs = docs_url.as_deref(), "listening");
            if console.startup {
                crate::console::print_startup(addr, docs_url.as_deref());
            }
        }
        let reaper = (!config.header_read_timeout.is_zero())
            .then(|| Reaper::start(config.header_read_timeout));
        let server = Arc::new(ServerState {
            draining,
            fresh: AtomicUsize::new(0),
        });
        tokio::pin!(shutdown);
        // Until the shutdown future resolves; then, draining, until the
        // drain delay is over.
        let mut drain_end: Option<Pin<Box<tokio::time::Sleep>>> = None;
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Out of file descriptors and the like: wait, retry.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown, if drain_end.is_none() => {
                    if config.drain_delay.is_zero() {
                        break;
                    }
                    server.draining.start();
                    tracing::info!(
                        drain_delay = ?config.drain_delay,
                        "draining: still serving, with `Connection: close`, until the listener closes"
                    );
                    drain_end = Some(Box::pin(tokio::time::sleep(config.drain_delay)));
                    continue;
                }
                () = async { if let Some(end) = drain_end.as_mut() { end.await } }, if drain_end.is_some() => break,
            };
            let _ = stream.set_nodelay(true);
            server.fresh.fetch_add(1, Ordering::Relaxed);
            let watch = Arc::new(ConnWatch::new(server.clone()));
            if let Some(reaper) = &reaper {
                reaper.track(&watch);
            }
            let service = ConnService {
                app: app.clone(),
                peer,
                watch: watch.clone(),
                body_timeouts,
                access_line: console.access,
            };
            let conn = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            let conn = Killable {
                conn: graceful.watch(conn),
                watch,
                registered: false,
            };
            tokio::spawn(async move {
                let watch = conn.watch.clone();
                if let Some(Err(e)) = conn.await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                watch.ended();
            });
        }
        drop(listener);
        server.draining.start();
        if !config.drain_delay.is_zero() {
            // A client that connected just before the listener closed (one
            // that left its previous connection on `Connection: close`) has
            // its request on the way: the graceful shutdown would close the
            // connection under it. Let it arrive.
            let waiting = std::time::Instant::now();
            while server.fresh.load(Ordering::Relaxed) > 0 && waiting.elapsed() < FIRST_REQUEST_WAIT
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        tracing::info!(
            connections = graceful.count(),
            "shutting down: finishing in-flight requests"
        );
        let draining = std::time::Instant::now();
        tokio::select! {
            () = graceful.shutdown() => tracing::info!("all connections closed"),
            () = tokio::time::sleep(config.grace_period) => {
                tracing::warn!(grace_period = ?config.grace_period, "grace period over; closing remaining connections");
            }
        }
        // Background tasks of answered requests finish too, within the same
        // grace period (uvicorn waits for Starlette's, which run in the request).
        let left = config.grace_period.saturating_sub(draining.elapsed());
        if tokio::time::timeout(left, crate::extract::BackgroundTasks::wait_all())
            .await
            .is_err()
        {
            tracing::warn!("grace period over; abandoning running background tasks");
        }
        drop(reaper);
        stop_lifespans(&mut lifespans).await;
        Ok(())
    }
}

/// Runs the shutdown hooks of started apps: mounted apps' first.
async fn stop_lifespans(started: &mut [crate::lifespan::Lifespan]) {
    for lifespan in started.iter_mut().rev() {
        lifespan.stop().await;
    }
}

/// What a connection's requests are served by: a
/// [`Stack`](crate::middleware::Stack)'s fused outer layers, if any, over
/// the routes, as one generic hook service. The server serves its parts
/// through shared references ([`HookFuture::new`]: the present hook over
/// the routes' own service): no clone of the service per request, no
/// `&mut`, the dispatcher's future (not the size of the router's) on the
/// direct path, and the fused hook's state not wrapped in the optional
/// hook's `Option` (one copy less of it per request). Without any hook (no
/// `Stack`) the server calls the routes alone: even an empty hook future
/// costs a request its copies (about 3 % of a plain request's
/// instructions).
pub(crate) type Served = HookService<Option<Arc<Fused>>, Routes>;

/// The routes as the server calls them: the only choice left in the served
/// service, because only the dispatcher can be called without axum's
/// router (and without a clone per request).
#[derive(Debug, Clone)]
pub(crate) enum Routes {
    /// The dispatcher itself (no tower layer wraps the routes).
    Direct(crate::routing::Dispatch),
    /// The axum router wrapping the dispatcher in the app's tower layers.
    Layered(axum::Router),
}

impl Routes {
    /// Calls the routes through a shared reference.
    #[inline(always)]
    fn call(&self, req: axum::extract::Request) -> RoutesFuture {
        match self {
            Routes::Direct(dispatch) => RoutesFuture::Direct {
                fut: dispatch.call(req),
            },
            Routes::Layered(router) => RoutesFuture::Layered {
                fut: tower::Service::call(&mut router.clone(), req),
            },
        }
    }
}

impl tower::Service<axum::extract::Request> for Routes {
    type Response = http::Response<axum::body::Body>;
    type Error = Infallible;
    type Future = RoutesFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Both are always ready (axum's router says so, the dispatcher too).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: axum::extract::Request) -> RoutesFuture {
        Routes::call(self, req)
    }
}

pin_project_lite::pin_project! {
    /// The future of [`Routes`].
    #[project = RoutesProj]
    pub(crate) enum RoutesFuture {
        Direct { #[pin] fut: crate::routing::DispatchFuture },
        Layered { #[pin] fut: axum::routing::future::RouteFuture<Infallible> },
    }
}

impl Future for RoutesFuture {
    type Output = Result<http::Response<axum::body::Body>, Infallible>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            RoutesProj::Direct { fut } => fut.poll(cx),
            RoutesProj::Layered { fut } => fut.poll(cx),
        }
    }
}

/// One connection's requests: each gets the peer address and is counted
/// for the idle reaper.
struct ConnService {
    app: Served,
    peer: SocketAddr,
    watch: Arc<ConnWatch>,
    body_timeouts: BodyTimeouts,
    /// Whether each request prints a console access line.
    access_line: bool,
}

impl hyper::service::Service<http::Request<hyper::body::Incoming>> for ConnService {
    type Response = http::Response<WatchedBody>;
    type Error = Infallible;
    type Future = ServeFuture;

    fn call(&self, req: http::Request<hyper::body::Incoming>) -> ServeFuture {
        self.watch.begin(req.version());
        if req.version() == http::Version::HTTP_11
            && let Some(detail) = host_fault(req.headers())
        {
            return ServeFuture {
                inner: Inner::Refused {
                    res: Some(bad_request(detail)),
                },
                guard: Some(RequestGuard(self.watch.clone())),
                access: None,
            };
        }
        // A request without a body (most GETs) has nothing to time out.
        let mut req = if self.body_timeouts.is_off() || http_body::Body::is_end_stream(req.body()) {
            req.map(axum::body::Body::new)
        } else {
            req.map(|body| {
                axum::body::Body::new(TimedBody::new(body, self.body_timeouts, self.watch.clone()))
            })
        };
        req.extensions_mut().insert(ConnectInfo(self.peer));
        let access = if self.access_line {
            Some(crate::console::AccessLine::new(&req, self.peer))
        } else {
            None
        };
        let guard = Some(RequestGuard(self.watch.clone()));
        // Each kind of routes has its own future: the dispatcher's is a
        // quarter of the router's, and it is the one of the hot path. Built
        // in place, in the one expression of the returned future: each
        // intermediate value of it would be one more copy per request.
        ServeFuture {
            inner: match (self.app.inner(), self.app.hook()) {
                // No hook at all: the dispatcher's future alone (the hook
                // future's frame, even empty, costs its copies per request).
                (Routes::Direct(dispatch), None) => Inner::Bare {
                    fut: dispatch.call(req),
                },
                // The present hook itself, not the optional one: its state
                // is not wrapped in one more `Option` to copy.
                (Routes::Direct(dispatch), Some(fused)) => Inner::Direct {
                    fut: HookFuture::new(fused, dispatch, req, crate::routing::Dispatch::call),
                },
                (Routes::Layered(router), None) => Inner::LayeredBare {
                    fut: tower::Service::call(&mut router.clone(), req),
                },
                (Routes::Layered(router), Some(fused)) => Inner::Layered {
                    fut: HookFuture::new(fused, router, req, |router, req| {
                        tower::Service::call(&mut router.clone(), req)
                    }),
                },
            },
            guard,
            access,
        }
    }
}

/// What is wrong with an HTTP/1.1 request's `Host` header, if anything:
/// there must be exactly one (RFC 9112, section 3.2).
fn host_fault(headers: &http::HeaderMap) -> Option<&'static str> {
    if !headers.contains_key(http::header::HOST) {
        return Some("Missing Host header");
    }
    // Only when some name repeats (rare) is `Host` looked up again.
    if headers.keys_len() == headers.len() {
        return None;
    }
    let mut hosts = headers.get_all(http::header::HOST).iter();
    hosts.next();
    hosts.next().map(|_| "More than one Host header")
}

/// A `400` answered by the server itself, closing the connection.
fn bad_request(detail: &'static str) -> http::Response<axum::body::Body> {
    let mut res = crate::response::error_response(&crate::HttpError::new(
        http::StatusCode::BAD_REQUEST,
        detail,
    ));
    res.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    res
}

pin_project_lite::pin_project! {
    #[project = InnerProj]
    enum Inner {
        Refused { res: Option<http::Response<axum::body::Body>> },
        Bare { #[pin] fut: crate::routing::DispatchFuture },
        Direct { #[pin] fut: HookFuture<Arc<Fused>, crate::routing::Dispatch, axum::body::Body> },
        LayeredBare { #[pin] fut: axum::routing::future::RouteFuture<Infallible> },
        Layered { #[pin] fut: HookFuture<Arc<Fused>, axum::Router, axum::body::Body> },
    }
}

pin_project_lite::pin_project! {
    /// A request being served; its response body reports to the
    /// connection's watch when it is dropped (fully written, or abandoned).
    struct ServeFuture {
        #[pin]
        inner: Inner,
        guard: Option<RequestGuard>,
        // The console access line's request data, when it is on.
        access: Option<Box<crate::console::AccessLine>>,
    }
}

impl Future for ServeFuture {
    type Output = Result<http::Response<WatchedBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let res = match this.inner.project() {
            InnerProj::Refused { res } => {
                Ok(res.take().unwrap_or_else(|| bad_request("Bad Request")))
            }
            InnerProj::Bare { fut } => ready!(fut.poll(cx)),
            InnerProj::Direct { fut } => ready!(fut.poll(cx)),
            InnerProj::LayeredBare { fut } => ready!(fut.poll(cx)),
            InnerProj::Layered { fut } => ready!(fut.poll(cx)),
        };
        let Ok(mut res) = res;
        if let Some(line) = this.access.take() {
            line.print(res.status());
        }
        let guard = this.guard.take();
        if let Some(RequestGuard(watch)) = &guard
            // The rest of the body was never read: the connection cannot
            // carry another request. Or the server is draining: the client
            // should leave the connection before the server closes it.
            && (watch.body_timed_out.swap(false, Ordering::Relaxed)
                | watch.server.draining.is_draining())
            && !watch.http2.load(Ordering::Relaxed)
        {
            res.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
        }
        Poll::Ready(Ok(res.map(|body| WatchedBody {
            body,
            _guard: guard,
        })))
    }
}

/// One request in progress on a connection: counted out when dropped,
/// with the response body once it is written (or with the request's
/// future, when the connection went away before the answer).
struct RequestGuard(Arc<ConnWatch>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// A response body that holds its request's [`RequestGuard`].
struct WatchedBody {
    body: axum::body::Body,
    _guard: Option<RequestGuard>,
}

impl http_body::Body for WatchedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Why reading a request body failed on the server's clock (see
/// [`ServeConfig::body_read_timeout`]). The extractors answer it
/// `408 Request Timeout`; a handler streaming the body itself
/// ([`RawBody`](crate::extract::RawBody)) finds it in the body's error:
///
/// ```
/// use ferrapi::BodyTimeout;
/// use ferrapi::extract::RawBody;
/// use ferrapi::prelude::*;
/// use std::error::Error as _;
///
/// #[post("/upload")]
/// async fn upload(RawBody(body): RawBody) -> Result<Text, HttpError> {
///     let mut stream = body.into_data_stream();
///     let mut n = 0;
///     while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
///         match chunk {
///             Ok(bytes) => n += bytes.len(),
///             Err(e) if e.source().is_some_and(|s| s.is::<BodyTimeout>()) => {
///                 return Err(HttpError::new(ferrapi::http::StatusCode::REQUEST_TIMEOUT, "too slow"));
///             }
///             Err(_) => return Err(HttpError::bad_request("Failed to read request body")),
///         }
///     }
///     Ok(Text(n.to_string()))
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyTimeout {
    /// No bytes of the body arrived for this long while the application
    /// waited for them.
    #[error("no request body data received for {0:?}")]
    Idle(Duration),
    /// The body was not complete this long after the request head.
    #[error("request body not complete within {0:?} of the request head")]
    Total(Duration),
}

/// The body timeouts of [`ServeConfig`]; zero is off.
#[derive(Debug, Clone, Copy)]
struct BodyTimeouts {
    idle: Duration,
    total: Duration,
}

impl BodyTimeouts {
    fn is_off(&self) -> bool {
        self.idle.is_zero() && self.total.is_zero()
    }
}

/// A request body whose reads time out (see the module docs).
///
/// The clock is read and the timer armed only when a read has to wait: a
/// body already in the socket buffer with its head (most JSON bodies)
/// costs no timer. The idle deadline restarts at the first wait after each
/// chunk received.
struct TimedBody {
    inner: hyper::body::Incoming,
    timeouts: BodyTimeouts,
    /// When the whole body must be in (`total` non-zero).
    total_deadline: Option<tokio::time::Instant>,
    /// Armed at the first read that waits, with what its firing means.
    timer: Option<(Pin<Box<tokio::time::Sleep>>, BodyTimeout)>,
    /// Data arrived since the timer was last armed.
    progressed: bool,
    /// The timeout fired: the body is over.
    failed: bool,
    watch: Arc<ConnWatch>,
}

impl TimedBody {
    fn new(inner: hyper::body::Incoming, timeouts: BodyTimeouts, watch: Arc<ConnWatch>) -> Self {
        let total_deadline =
            (!timeouts.total.is_zero()).then(|| tokio::time::Instant::now() + timeouts.total);
        Self {
            inner,
            timeouts,
            total_deadline,
            timer: None,
            progressed: false,
            failed: false,
            watch,
        }
    }

    /// The deadline of a read starting to wait now (the earlier of the idle
    /// and the total one), and what passing it means.
    fn deadline(&self) -> Option<(tokio::time::Instant, BodyTimeout)> {
        let idle = (!self.timeouts.idle.is_zero()).then(|| {
            (
                tokio::time::Instant::now() + self.timeouts.idle,
                BodyTimeout::Idle(self.timeouts.idle),
            )
        });
        let total = self
            .total_deadline
            .map(|at| (at, BodyTimeout::Total(self.timeouts.total)));
        match (idle, total) {
            (Some(i), Some(t)) => Some(if t.0 <= i.0 { t } else { i }),
            (i, t) => i.or(t),
        }
    }
}

impl http_body::Body for TimedBody {
    type Data = bytes::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        if this.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.progressed = true;
                return Poll::Ready(Some(Ok(frame)));
            }
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }
        if this.timer.is_none() || this.progressed {
            this.progressed = false;
            let Some((at, kind)) = this.deadline() else {
                return Poll::Pending;
            };
            match &mut this.timer {
                Some((timer, k)) => {
                    timer.as_mut().reset(at);
                    *k = kind;
                }
                None => this.timer = Some((Box::pin(tokio::time::sleep_until(at)), kind)),
            }
        }
        let Some((timer, kind)) = this.timer.as_mut() else {
            return Poll::Pending;
        };
        if timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        let kind = *kind;
        this.failed = true;
        this.watch.body_timed_out.store(true, Ordering::Relaxed);
        tracing::debug!(error = %kind, "request body read timed out");
        Poll::Ready(Some(Err(Box::new(kind))))
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// What every connection of a server shares.
struct ServerState {
    /// Set on the shutdown signal: HTTP/1 answers close their connection.
    draining: Draining,
    /// Connections accepted that have not begun a request yet.
    fresh: AtomicUsize,
}

/// One connection's activity, shared by its requests (which count
/// themselves in and out) and the [`Reaper`] (which reads it).
struct ConnWatch {
    server: Arc<ServerState>,
    /// Requests started on the connection.
    started: AtomicU64,
    /// Requests not yet over (response body not yet written).
    active: AtomicUsize,
    /// An HTTP/2 connection: never reaped.
    http2: AtomicBool,
    /// Set by the reaper: the connection closes at its next poll.
    killed: AtomicBool,
    /// Set when a request body read timed out: the answer to that request
    /// closes the (HTTP/1) connection.
    body_timed_out: AtomicBool,
    /// Wakes the connection's task to close it.
    waker: AtomicWaker,
}

impl ConnWatch {
    fn new(server: Arc<ServerState>) -> Self {
        Self {
            server,
            started: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            http2: AtomicBool::new(false),
            killed: AtomicBool::new(false),
            body_timed_out: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        }
    }

    fn begin(&self, version: http::Version) {
        if self.started.fetch_add(1, Ordering::Relaxed) == 0 {
            self.server.fresh.fetch_sub(1, Ordering::Relaxed);
        }
        self.active.fetch_add(1, Ordering::Relaxed);
        if version == http::Version::HTTP_2 {
            self.http2.store(true, Ordering::Relaxed);
        }
    }

    fn end(&self) {
        self.active.fetch_sub(1, Ordering::Relaxed);
    }

    /// The connection is closed: if it never began a request, it is no
    /// longer one the shutdown waits for.
    fn ended(&self) {
        if self.started.load(Ordering::Relaxed) == 0 {
            self.server.fresh.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.waker.wake();
    }
}

pin_project_lite::pin_project! {
    /// A connection the reaper can close.
    struct Killable<F> {
        #[pin]
        conn: F,
        watch: Arc<ConnWatch>,
        registered: bool,
    }
}

impl<F: Future> Future for Killable<F> {
    /// `None` when the reaper closed the connection.
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if !*this.registered {
            // A task's waker stays the same for the task's life.
            this.watch.waker.register(cx.waker());
            *this.registered = true;
        }
        if this.watch.killed.load(Ordering::Acquire) {
            tracing::debug!("closing a connection idle for longer than the header read timeout");
            return Poll::Ready(None);
        }
        this.conn.poll(cx).map(Some)
    }
}

/// Closes HTTP/1 connections that have had no request in progress for the
/// header read timeout (see the module docs). One task per server: every
/// half timeout it looks at each connection's counters.
struct Reaper {
    tracked: Arc<Mutex<Vec<Tracked>>>,
    task: tokio::task::JoinHandle<()>,
}

struct Tracked {
    watch: Weak<ConnWatch>,
    /// `started` at the previous look.
    last: u64,
    /// Whether a request was in progress at the previous look.
    busy: bool,
    /// Consecutive periods between looks during which the connection was
    /// idle throughout; `None` before the first look.
    idle: Option<u8>,
}

impl Reaper {
    fn start(timeout: Duration) -> Self {
        let tracked: Arc<Mutex<Vec<Tracked>>> = Arc::default();
        let list = tracked.clone();
        let period = (timeout / 2).max(Duration::from_millis(1));
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let mut list = list.lock().unwrap_or_else(|p| p.into_inner());
                list.retain_mut(Tracked::look);
            }
        });
        Self { tracked, task }
    }

    fn track(&self, watch: &Arc<ConnWatch>) {
        self.tracked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Tracked {
                watch: Arc::downgrade(watch),
                last: 0,
                busy: false,
                idle: None,
            });
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Tracked {
    /// One look: `false` once the connection is gone, HTTP/2, or closed
    /// now for having been idle throughout the last two periods (at least
    /// the timeout: a period is half of it).
    ///
    /// A period was idle throughout when no request was in progress at
    /// either end of it and none started within it.
    fn look(&mut self) -> bool {
        let Some(watch) = self.watch.upgrade() else {
            return false;
        };
        if watch.http2.load(Ordering::Relaxed) {
            return false;
        }
        let started = watch.started.load(Ordering::Relaxed);
        let busy = watch.active.load(Ordering::Relaxed) > 0;
        let idle_period = self.idle.is_some() && !busy && !self.busy && started == self.last;
        self.last = started;
        self.busy = busy;
        if !idle_period {
            self.idle = Some(0);
            return true;
        }
        let n = self.idle.unwrap_or(0) + 1;
        if n >= 2 {
            watch.kill();
            return false;
        }
        self.idle = Some(n);
        true
    }
}

/// The answer to a body that a layer of the server refused while the
/// handler read it: the body read timeout (408), a compressed body the
/// decompression layer refused (413 or 400). What the application tells
/// the body reader ([`AppContext::body_failure`](crate::extract::AppContext::body_failure)).
pub(crate) fn body_failure(
    e: &(dyn std::error::Error + 'static),
) -> Option<ferrapi_core::HttpError> {
    use ferrapi_core::extract::{find_in, timed_out};
    if find_in::<BodyTimeout>(e).is_some() {
        return Some(timed_out());
    }
    #[cfg(feature = "decompression")]
    if let Some(refused) = find_in::<crate::middleware::DecompressionError>(e) {
        return Some(refused.into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::parse_seconds;
    use std::time::Duration;

    #[test]
    fn timeouts_from_the_environment_are_seconds() {
        assert_eq!(parse_seconds("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_seconds(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_seconds("0"), Some(Duration::ZERO));
        for bad in ["", "-1", "thirty", "NaN", "inf", "1e30", "30s"] {
            assert_eq!(parse_seconds(bad), None, "{bad:?}");
        }
    }
}
