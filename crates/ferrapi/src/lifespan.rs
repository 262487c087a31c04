//! Lifespan: startup and shutdown hooks (FastAPI's `lifespan` /
//! `on_event("startup")`).
//!
//! [`App::on_startup`] hooks run in order when the server starts, before
//! it accepts the first connection: open pools, warm caches, start
//! workers. A hook that fails stops the server before it serves anything
//! ([`ServeError::Startup`](crate::ServeError::Startup)), as a failing
//! FastAPI lifespan does. [`App::on_shutdown`] hooks run in reverse order
//! of registration once the server has stopped accepting, the in-flight
//! requests have finished (within the grace period) and the background
//! tasks are done: drain queues, flush buffers, close pools. A failing
//! shutdown hook is logged and the others still run.
//!
//! Hooks run for [`App::serve`], [`App::run`], [`App::serve_with`] and
//! [`TestServer`](crate::testing::TestServer) (which serves for real); the
//! in-process [`TestClient`](crate::testing::TestClient) does not run them,
//! as FastAPI's `TestClient` runs the lifespan only inside a `with` block.
//! A value a hook creates becomes application state with
//! [`App::on_startup_state`]: the hook runs before the app is built, and
//! its value is registered as [`State<T>`](crate::State) — the place to
//! open a pool with `.await` and still end `main` with `.run()`. Other
//! hooks reach handlers through state registered beforehand (an `Arc` the
//! hook fills).
//!
//! The startup hooks run before the app is built, so a mistake in the
//! route declarations is reported once they have run (and the shutdown
//! hooks then run too). A mounted app's hooks run after its parent's
//! startup hooks and before its parent's shutdown hooks.

use crate::App;
use futures_util::future::BoxFuture;
use std::any::{Any, TypeId};
use std::future::Future;

/// A state value made by a startup hook, with its type.
pub(crate) type MadeState = (TypeId, Box<dyn Any + Send + Sync>);

type Hook = Box<dyn FnOnce() -> BoxFuture<'static, Result<(), crate::Error>> + Send>;
type StartHook =
    Box<dyn FnOnce() -> BoxFuture<'static, Result<Option<MadeState>, crate::Error>> + Send>;

/// The hooks of an app.
#[derive(Default)]
pub(crate) struct Lifespan {
    startup: Vec<(String, StartHook)>,
    shutdown: Vec<(String, Hook)>,
    /// The state types startup hooks will make ([`App::on_startup_state`]):
    /// the build's state check counts them as registered.
    pub(crate) promised: Vec<TypeId>,
}

impl Lifespan {
    /// Runs the startup hooks in order; the first failure stops them. The
    /// states they made.
    pub(crate) async fn start(&mut self) -> Result<Vec<MadeState>, crate::ServeError> {
        let mut made = Vec::new();
        for (name, hook) in self.startup.drain(..) {
            tracing::info!(hook = %name, "startup hook");
            let state = hook().await.map_err(|error| crate::ServeError::Startup {
                hook: name.clone(),
                error,
            })?;
            made.extend(state);
        }
        Ok(made)
    }

    /// Runs the shutdown hooks in reverse order, logging failures.
    pub(crate) async fn stop(&mut self) {
        while let Some((name, hook)) = self.shutdown.pop() {
            tracing::info!(hook = %name, "shutdown hook");
            if let Err(e) = hook().await {
                tracing::error!(hook = %name, error = %e, "shutdown hook failed");
            }
        }
    }
}

impl App {
    /// Runs `hook` when the server starts, before the first connection is
    /// accepted; an `Err` stops the server (see the
    /// [lifespan](crate::lifespan) docs).
    ///
    /// ```
    /// use ferrapi::prelude::*;
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    ///
    /// let warmed = Arc::new(AtomicBool::new(false));
    /// let flag = warmed.clone();
    /// let app = App::new()
    ///     .state(warmed)
    ///     .on_startup("warm the cache", move || async move {
    ///         flag.store(true, Ordering::SeqCst);
    ///         Ok(())
    ///     })
    ///     .on_shutdown("flush", || async { Ok(()) });
    /// ```
    #[must_use]
    pub fn on_startup<F, Fut>(mut self, name: impl Into<String>, hook: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), crate::Error>> + Send + 'static,
    {
        self.lifespan.startup.push((
            name.into(),
            Box::new(move || Box::pin(async move { hook().await.map(|()| None) })),
        ));
        self
    }

    /// Runs `hook` when the server starts, as [`on_startup`](Self::on_startup)
    /// does, and registers the value it returns as application state, read
    /// with [`State<T>`](crate::State): a pool opened with `.await`, a
    /// client built from a fetched secret. Routes reading `T` pass the
    /// build's state check.
    ///
    /// The in-process [`TestClient`](crate::testing::TestClient) runs no
    /// hooks: register the value with [`state`](Self::state) in tests (or
    /// use [`TestServer`](crate::testing::TestServer)); a request reading it
    /// is answered 500 otherwise.
    ///
    /// ```
    /// use ferrapi::prelude::*;
    /// use ferrapi::testing::TestServer;
    ///
    /// #[derive(Clone)]
    /// struct Pool(&'static str);
    ///
    /// async fn connect() -> Result<Pool, std::io::Error> {
    ///     Ok(Pool("connected"))
    /// }
    ///
    /// #[get("/pool")]
    /// async fn pool(State(pool): State<Pool>) -> &'static str {
    ///     pool.0
    /// }
    ///
    /// let app = App::new()
    ///     .on_startup_state("open the pool", || async { connect().await.map_err(ferrapi::Error::new) })
    ///     .route(pool);
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let server = TestServer::start(app).await;
    /// # use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// # let mut s = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    /// # s.write_all(b"GET /pool HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    /// # let mut answer = String::new();
    /// # s.read_to_string(&mut answer).await.unwrap();
    /// assert!(answer.ends_with("connected"));
    /// # server.stop().await.unwrap();
    /// # });
    /// ```
    #[must_use]
    pub fn on_startup_state<T, F, Fut>(mut self, name: impl Into<String>, hook: F) -> Self
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, crate::Error>> + Send + 'static,
    {
        self.lifespan.promised.push(TypeId::of::<T>());
        self.lifespan.startup.push((
            name.into(),
            Box::new(move || {
                Box::pin(async move {
                    let value = hook().await?;
                    Ok(Some((
                        TypeId::of::<T>(),
                        Box::new(value) as Box<dyn Any + Send + Sync>,
                    )))
                })
            }),
        ));
        self
    }

    /// Runs `hook` after the server stopped: connections drained, background
    /// tasks done. Shutdown hooks run in reverse order of registration.
    #[must_use]
    pub fn on_shutdown<F, Fut>(mut self, name: impl Into<String>, hook: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), crate::Error>> + Send + 'static,
    {
        self.lifespan
            .shutdown
            .push((name.into(), Box::new(move || Box::pin(hook()))));
        self
    }
}
