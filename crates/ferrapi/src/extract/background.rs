//! [`BackgroundTasks`]: work a handler schedules to run after its response
//! has been sent (FastAPI's `BackgroundTasks`).
//!
//! # What a FastAPI user should expect
//!
//! - A handler (or one of its dependencies) takes `BackgroundTasks` and
//!   [`add`](BackgroundTasks::add)s futures. They start once the response
//!   body has been handed to the connection in full (its last frame was
//!   read by the server), or when the server drops the body (a `HEAD`
//!   request, a `204`, a client that went away mid-body), never before:
//!   the client is not kept waiting for them.
//! - They run one after the other, in the order added, on a task of their
//!   own, inside a `background_tasks` tracing span carrying the request id
//!   (the [`RequestId`] the request-id middleware set, when installed).
//! - A task that returns `Err` or panics is logged (`ERROR`, with the
//!   request id, the task's position and the error or panic message) and
//!   does not affect the response, which has already been sent. Unlike
//!   Starlette, which stops at the first failing task, the following tasks
//!   still run: they were scheduled independently.
//! - **Only for a successful response.** FastAPI attaches the tasks to the
//!   response the handler returns; when the handler raises instead, the
//!   exception handler's response carries no tasks and they never run.
//!   ferrapi does the same: the tasks run when the response the route
//!   answers has a status below 400. When the handler returns an error
//!   (`Err`, answered 4xx/5xx through the exception handlers), when
//!   extraction fails (422) or when the handler panics, the tasks are
//!   dropped unrun (logged at `DEBUG`). A handler that wants work done
//!   whatever happens runs it itself, or uses a durable queue.
//! - Graceful shutdown waits for them: [`App::serve`](crate::App::serve)
//!   finishes the in-flight requests, then the background tasks already
//!   started (in the whole process), within the same grace period (as uvicorn waits for Starlette's
//!   background tasks, which run inside the request). Code with its own
//!   shutdown sequence awaits [`BackgroundTasks::wait_all`].
//! - They are not durable: a task scheduled when the process is killed is
//!   lost. Work that must survive a crash belongs in a task queue.
//!
//! ```
//! use ferrapi::prelude::*;
//! use ferrapi::extract::BackgroundTasks;
//!
//! async fn send_welcome(email: String) -> Result<(), std::io::Error> {
//!     // … talk to the mail server …
//!     Ok(())
//! }
//!
//! #[derive(Deserialize, JsonSchema, Validate)]
//! struct Signup {
//!     #[garde(email)]
//!     email: String,
//! }
//!
//! #[post("/users", status = 201)]
//! async fn create_user(tasks: BackgroundTasks, Json(signup): Json<Signup>) -> Text {
//!     tasks.add(send_welcome(signup.email.clone()));
//!     Text(signup.email)
//! }
//!
//! let app = App::new().route(create_user);
//! ```

use super::{FromRequestParts, Rejection, Request, RequestContext};
use crate::middleware::RequestId;
use crate::openapi::{DescribeInput, OperationBuilder};
use crate::response::Response;
use crate::routing::Route;
use bytes::Bytes;
use ferrapi_core::HttpError;
use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use http::request::Parts;
use http_body::{Frame, SizeHint};
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tracing::Instrument as _;

/// What a background task's future may return: `()`, or a `Result` whose
/// `Err` is logged.
pub trait TaskOutput: Send + 'static {
    /// `Err` with the message to log when the task failed.
    fn into_result(self) -> Result<(), String>;
}

impl TaskOutput for () {
    fn into_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<T: Send + 'static, E: fmt::Display + Send + 'static> TaskOutput for Result<T, E> {
    fn into_result(self) -> Result<(), String> {
        self.map(|_| ()).map_err(|e| e.to_string())
    }
}

type Task = BoxFuture<'static, Result<(), String>>;

/// The tasks of one request, shared by every `BackgroundTasks` handle of it.
struct Queue {
    tasks: Mutex<Option<Vec<Task>>>,
    request_id: Option<RequestId>,
}

impl Queue {
    /// Takes the tasks out; later `add`s are refused.
    fn close(&self) -> Vec<Task> {
        match self.tasks.lock() {
            Ok(mut tasks) => tasks.take().unwrap_or_default(),
            Err(poisoned) => poisoned.into_inner().take().unwrap_or_default(),
        }
    }
}

/// The queue of the request being served, in the request's extensions.
#[derive(Clone)]
struct Slot(Arc<Queue>);

/// Tasks to run after the response has been sent (see
/// [`BackgroundTasks::add`]). Cheap to clone; every clone adds to the same
/// request's tasks.
///
/// ```
/// use ferrapi::extract::BackgroundTasks;
/// use ferrapi::prelude::*;
///
/// #[get("/ping")]
/// async fn ping(tasks: BackgroundTasks) -> &'static str {
///     tasks.add(async { tracing::info!("pinged") });
///     tasks.add(async { Err::<(), _>("logged with the request id") });
///     "pong"
/// }
/// ```
#[derive(Clone)]
pub struct BackgroundTasks {
    queue: Arc<Queue>,
}

impl fmt::Debug for BackgroundTasks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackgroundTasks")
            .field(
                "request_id",
                &self.queue.request_id.as_ref().map(RequestId::as_str),
            )
            .finish_non_exhaustive()
    }
}

impl BackgroundTasks {
    /// Schedules `task` to run after the response has been sent. A task
    /// added once the response has been produced (from a clone kept beyond
    /// the handler) is not run, and a warning is logged.
    pub fn add<F>(&self, task: F)
    where
        F: Future + Send + 'static,
        F::Output: TaskOutput,
    {
        let mut guard = match self.queue.tasks.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        match guard.as_mut() {
            Some(tasks) => tasks.push(Box::pin(task.map(TaskOutput::into_result))),
            None => tracing::warn!(
                request_id = self.request_id(),
                "background task added after the response was produced: not run"
            ),
        }
    }

    /// The number of tasks scheduled so far.
    pub fn len(&self) -> usize {
        match self.queue.tasks.lock() {
            Ok(g) => g.as_ref().map_or(0, Vec::len),
            Err(poisoned) => poisoned.into_inner().as_ref().map_or(0, Vec::len),
        }
    }

    /// True when no task is scheduled.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn request_id(&self) -> &str {
        self.queue.request_id.as_ref().map_or("", RequestId::as_str)
    }

    /// Waits until every request's background tasks that have started in
    /// this process have finished (returns at once when none run). The
    /// server awaits it during graceful shutdown.
    pub async fn wait_all() {
        loop {
            let idle = IDLE.notified();
            tokio::pin!(idle);
            // Registered before the check, so a finish in between is seen.
            idle.as_mut().enable();
            if RUNNING.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// Batches of background tasks running in this process.
static RUNNING: AtomicUsize = AtomicUsize::new(0);
/// Woken when `RUNNING` drops to zero.
static IDLE: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Counts one running batch; uncounts it when dropped (finished or
/// cancelled with the runtime).
struct Running;

impl Running {
    fn start() -> Self {
        RUNNING.fetch_add(1, Ordering::AcqRel);
        Running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if RUNNING.fetch_sub(1, Ordering::AcqRel) == 1 {
            IDLE.notify_waiters();
        }
    }
}

impl FromRequestParts for BackgroundTasks {
    async fn from_request_parts(
        parts: &mut Parts,
        _cx: &RequestContext,
    ) -> Result<Self, Rejection> {
        match parts.extensions.get::<Slot>() {
            Some(slot) => Ok(Self {
                queue: slot.0.clone(),
            }),
            None => {
                // Every route whose extractors describe `BackgroundTasks` gets
                // a queue; reaching this is a framework bug, not a client error.
                tracing::error!("BackgroundTasks extracted on a route without a task queue");
                Err(HttpError::internal().into())
            }
        }
    }
}

impl DescribeInput for BackgroundTasks {
    fn describe(op: &mut OperationBuilder<'_>) {
        op.plan.runs_background_tasks = true;
    }
}

/// Gives `route`'s requests a task queue when `enabled`: the queue goes in
/// the request's extensions, and the tasks ride on the response body.
pub(crate) fn with_background_queue(mut route: Route, enabled: bool) -> Route {
    if !enabled {
        return route;
    }
    let inner = route.handler.clone();
    route.handler = Arc::new(
        move |mut req: Request, cx: Arc<RequestContext>| -> BoxFuture<'static, Response> {
            let queue = Arc::new(Queue {
                tasks: Mutex::new(Some(Vec::new())),
                request_id: req.extensions().get::<RequestId>().cloned(),
            });
            req.extensions_mut().insert(Slot(queue.clone()));
            let handled = inner(req, cx);
            Box::pin(async move {
                let res = handled.await;
                attach(&queue, res)
            })
        },
    );
    route
}

/// Puts the request's tasks on the response body, or drops them when the
/// response is an error (as FastAPI does when the handler raises).
fn attach(queue: &Queue, res: Response) -> Response {
    let tasks = queue.close();
    if tasks.is_empty() {
        return res;
    }
    let request_id = queue.request_id.clone();
    if res.status().as_u16() >= 400 {
        tracing::debug!(
            request_id = request_id.as_ref().map_or("", RequestId::as_str),
            status = res.status().as_u16(),
            count = tasks.len(),
            "background tasks dropped: the response is an error"
        );
        return res;
    }
    let handle = match tokio::runtime::Handle::try_current() {
        Ok(h) => h,
        Err(_) => {
            tracing::error!("no runtime to run background tasks on: not run");
            return res;
        }
    };
    let runner = Runner {
        tasks,
        request_id,
        handle,
    };
    res.map(|body| {
        axum::body::Body::new(WithTasks {
            inner: body,
            runner: Some(runner),
        })
    })
}

/// The tasks of one response, started once.
struct Runner {
    tasks: Vec<Task>,
    request_id: Option<RequestId>,
    handle: tokio::runtime::Handle,
}

impl Runner {
    fn start(self) {
        let Runner {
            tasks,
            request_id,
            handle,
        } = self;
        let id = request_id.as_ref().map_or("", RequestId::as_str).to_owned();
        let span = tracing::info_span!("background_tasks", request_id = %id);
        let running = Running::start();
        handle.spawn(
            async move {
                let _running = running;
                for (index, task) in tasks.into_iter().enumerate() {
                    match AssertUnwindSafe(task).catch_unwind().await {
                        Ok(Ok(())) => {}
                        Ok(Err(error)) => tracing::error!(
                            request_id = %id,
                            task = index,
                            error = %error,
                            "background task failed"
                        ),
                        Err(panic) => tracing::error!(
                            request_id = %id,
                            task = index,
                            panic = panic_message(panic.as_ref()),
                            "background task panicked"
                        ),
                    }
                }
            }
            .instrument(span),
        );
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = panic.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s
    } else {
        "(non-string panic payload)"
    }
}

/// A response body that starts its request's background tasks when its last
/// frame has been read, or when it is dropped, whichever comes first.
struct WithTasks {
    inner: axum::body::Body,
    runner: Option<Runner>,
}

impl http_body::Body for WithTasks {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled
            && let Some(runner) = this.runner.take()
        {
            runner.start();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for WithTasks {
    fn drop(&mut self) {
        if let Some(runner) = self.runner.take() {
            runner.start();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_outputs() {
        assert_eq!(().into_result(), Ok(()));
        assert_eq!(Ok::<i32, String>(3).into_result(), Ok(()));
        assert_eq!(
            Err::<(), _>(std::io::Error::other("disk full")).into_result(),
            Err("disk full".to_owned())
        );
    }

    #[test]
    fn panic_messages() {
        let p: Box<dyn std::any::Any + Send> = Box::new("static");
        assert_eq!(panic_message(p.as_ref()), "static");
        let p: Box<dyn std::any::Any + Send> = Box::new(String::from("owned"));
        assert_eq!(panic_message(p.as_ref()), "owned");
        let p: Box<dyn std::any::Any + Send> = Box::new(3);
        assert_eq!(panic_message(p.as_ref()), "(non-string panic payload)");
    }
}
