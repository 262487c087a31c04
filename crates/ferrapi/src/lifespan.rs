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
//! Values a hook creates reach handlers through state registered before
//! the app is built (an `Arc` the hook fills, a pool opened lazily), since
//! the route table is fixed once serving starts.

use crate::App;
use futures_util::future::BoxFuture;
use std::future::Future;

type Hook = Box<dyn FnOnce() -> BoxFuture<'static, Result<(), crate::Error>> + Send>;

/// The hooks of an app.
#[derive(Default)]
pub(crate) struct Lifespan {
    startup: Vec<(String, Hook)>,
    shutdown: Vec<(String, Hook)>,
}

impl Lifespan {
    /// Runs the startup hooks in order; the first failure stops them.
    pub(crate) async fn start(&mut self) -> Result<(), crate::ServeError> {
        for (name, hook) in self.startup.drain(..) {
            tracing::info!(hook = %name, "startup hook");
            hook().await.map_err(|error| crate::ServeError::Startup {
                hook: name.clone(),
                error,
            })?;
        }
        Ok(())
    }

    /// Takes a mounted app's hooks: its startup hooks run after this app's,
    /// its shutdown hooks before this app's.
    pub(crate) fn absorb(&mut self, mounted: Lifespan) {
        self.startup.extend(mounted.startup);
        let mut shutdown = mounted.shutdown;
        shutdown.append(&mut self.shutdown);
        self.shutdown = shutdown;
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
        self.lifespan
            .startup
            .push((name.into(), Box::new(move || Box::pin(hook()))));
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
