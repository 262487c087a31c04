//! The server: HTTP/1.1 (keep-alive) and HTTP/2 (h2c) on hyper, with a
//! header-read timeout and graceful shutdown.
//!
//! axum's own `serve` does not expose hyper's header-read timeout, so the
//! accept loop is written here over hyper-util's `auto::Builder` and
//! `GracefulShutdown` (the pattern of axum's "serve with hyper" example).

use crate::App;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceExt;

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
    /// A client must send its whole request head within this time (default
    /// 10 s): a slowloris client cannot hold a connection open.
    pub header_read_timeout: Duration,
    /// On SIGTERM/SIGINT, in-flight requests get this long to finish
    /// (default 30 s).
    pub grace_period: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            host: IpAddr::from([0, 0, 0, 0]),
            port: 8000,
            workers: None,
            header_read_timeout: Duration::from_secs(10),
            grace_period: Duration::from_secs(30),
        }
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
    /// Defaults overridden by `HOST`, `PORT` and `WORKERS` from the
    /// environment; a malformed value is an error naming the variable.
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
        Ok(config)
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
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
    /// stops accepting, lets in-flight requests finish within
    /// `config.grace_period`, and returns.
    pub async fn serve_with(
        self,
        listener: TcpListener,
        config: ServeConfig,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        let router = self.build()?.router;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .keep_alive(true)
            .header_read_timeout(config.header_read_timeout);
        builder.http2().timer(TokioTimer::new());
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, "listening");
        }
        tokio::pin!(shutdown);
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
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let router = router.clone();
            let service =
                hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(peer));
                    router.clone().oneshot(req.map(axum::body::Body::new))
                });
            let conn = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            });
        }
        drop(listener);
        tracing::info!(
            connections = graceful.count(),
            "shutting down: finishing in-flight requests"
        );
        tokio::select! {
            () = graceful.shutdown() => tracing::info!("all connections closed"),
            () = tokio::time::sleep(config.grace_period) => {
                tracing::warn!(grace_period = ?config.grace_period, "grace period over; closing remaining connections");
            }
        }
        Ok(())
    }
}
