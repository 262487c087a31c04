//! Background tasks: they start only once the response body has been sent,
//! do not hold the response back, are logged with the request id when they
//! fail or panic, and are dropped when the handler answers an error.

use ferrapi::axum::body::Body;
use ferrapi::extract::BackgroundTasks;
use ferrapi::middleware::RequestIdLayer;
use ferrapi::prelude::*;
use ferrapi::testing::{TestClient, TestServer};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Notify, mpsc};

/// What the tasks and the streamed body of a test coordinate through.
#[derive(Clone)]
struct Probe {
    events: mpsc::UnboundedSender<&'static str>,
    /// Holds the response body between its two chunks.
    body_gate: Arc<Notify>,
    /// Holds the task once started.
    task_gate: Arc<Notify>,
}

fn probe() -> (Probe, mpsc::UnboundedReceiver<&'static str>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let probe = Probe {
        events: tx,
        body_gate: Arc::new(Notify::new()),
        task_gate: Arc::new(Notify::new()),
    };
    (probe, rx)
}

/// A response streamed in two chunks, the second held until the test
/// opens `body_gate`; its task reports when it starts and when it ends,
/// and waits for `task_gate` in between.
#[get("/stream")]
async fn stream(tasks: BackgroundTasks, State(probe): State<Probe>) -> ferrapi::response::Response {
    let task_probe = probe.clone();
    tasks.add(async move {
        let _ = task_probe.events.send("started");
        task_probe.task_gate.notified().await;
        let _ = task_probe.events.send("finished");
    });
    let gate = probe.body_gate.clone();
    let chunks = futures_util::stream::unfold(0u8, move |state| {
        let gate = gate.clone();
        async move {
            match state {
                0 => Some((Ok::<_, Infallible>(bytes::Bytes::from("first;")), 1)),
                1 => {
                    gate.notified().await;
                    Some((Ok(bytes::Bytes::from("second;")), 2))
                }
                _ => None,
            }
        }
    });
    ferrapi::response::Response::new(Body::from_stream(chunks))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_start_after_the_body_was_sent_and_do_not_hold_the_response() {
    let (probe, mut events) = probe();
    let server = TestServer::start(App::new().state(probe.clone()).route(stream)).await;
    let mut conn = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    conn.write_all(b"GET /stream HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    // The head and the first chunk arrive; the body is not finished.
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&received).contains("first;") {
        let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf))
            .await
            .expect("no first chunk")
            .unwrap();
        assert!(n > 0, "closed early");
        received.extend_from_slice(&buf[..n]);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        events.try_recv().is_err(),
        "a task started before the response body was finished"
    );
    // Let the body finish: the client reads all of it while the task is
    // still held, so the response did not wait for the task.
    probe.body_gate.notify_one();
    tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut received))
        .await
        .expect("the response did not end")
        .unwrap();
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.contains("second;") && text.ends_with("0\r\n\r\n"),
        "{text}"
    );
    let first = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("the task did not start after the body was sent");
    assert_eq!(first, Some("started"));
    assert!(events.try_recv().is_err(), "the task should still be held");
    probe.task_gate.notify_one();
    let second = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("the task did not finish");
    assert_eq!(second, Some("finished"));
    server.stop().await.unwrap();
}

#[post("/flaky")]
async fn flaky(tasks: BackgroundTasks, State(probe): State<Probe>) -> Json<Value> {
    tasks.add(async { Err::<(), _>("smtp server down") });
    tasks.add(async {
        if true {
            panic!("task exploded");
        }
    });
    let events = probe.events.clone();
    tasks.add(async move {
        let _ = events.send("third ran");
    });
    assert_eq!(tasks.len(), 3);
    Json(json!({"ok": true}))
}

#[get("/fails")]
async fn fails(tasks: BackgroundTasks, State(probe): State<Probe>) -> Result<Text, HttpError> {
    let events = probe.events.clone();
    tasks.add(async move {
        let _ = events.send("ran");
    });
    Err(HttpError::not_found("Nothing here"))
}

#[delete("/empty", status = 204)]
async fn empty(tasks: BackgroundTasks, State(probe): State<Probe>) -> NoContent {
    let events = probe.events.clone();
    tasks.add(async move {
        let _ = events.send("ran after 204");
    });
    NoContent
}

/// Log output captured as JSON lines.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn lines(&self) -> Vec<Value> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

// current_thread: the tasks run on this thread, where the capturing
// subscriber is the default.
#[tokio::test]
async fn a_failing_or_panicking_task_is_logged_with_the_request_id_and_the_response_is_unaffected()
{
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (probe, mut events) = probe();
    let app = App::new()
        .state(probe)
        .route(flaky)
        .layer(RequestIdLayer::new());
    let client = TestClient::new(app);
    let res = client
        .post("/flaky")
        .header("x-request-id", "req-bg-7")
        .send()
        .await;
    assert_eq!(res.status(), 200, "{}", res.text());
    assert_eq!(res.json::<Value>(), json!({"ok": true}));
    assert_eq!(res.header("x-request-id"), Some("req-bg-7"));
    // The third task still runs after the first failed and the second panicked.
    let ran = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("the third task did not run");
    assert_eq!(ran, Some("third ran"));

    let lines = logs.lines();
    let failed = lines
        .iter()
        .find(|l| l["fields"]["message"] == "background task failed")
        .unwrap_or_else(|| panic!("no failure logged: {lines:?}"));
    assert_eq!(failed["level"], "ERROR");
    assert_eq!(failed["fields"]["request_id"], "req-bg-7");
    assert_eq!(failed["fields"]["error"], "smtp server down");
    assert_eq!(failed["fields"]["task"], 0);
    let panicked = lines
        .iter()
        .find(|l| l["fields"]["message"] == "background task panicked")
        .unwrap_or_else(|| panic!("no panic logged: {lines:?}"));
    assert_eq!(panicked["level"], "ERROR");
    assert_eq!(panicked["fields"]["request_id"], "req-bg-7");
    assert_eq!(panicked["fields"]["panic"], "task exploded");
    assert_eq!(panicked["fields"]["task"], 1);
}

#[tokio::test]
async fn tasks_are_dropped_when_the_handler_answers_an_error_and_run_after_a_204() {
    let (probe, mut events) = probe();
    let app = App::new().state(probe).route(fails).route(empty);
    let client = TestClient::new(app);
    let res = client.get("/fails").send().await;
    assert_eq!(res.status(), 404);
    assert_eq!(res.json::<Value>(), json!({"detail": "Nothing here"}));
    // A 204 has no body to stream: the tasks start when it is dropped.
    let res = client.delete("/empty").send().await;
    assert_eq!(res.status(), 204);
    let ran = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("the task of the 204 did not run");
    // Only the 204's task ran: the 404's was dropped (it was scheduled first
    // and the tasks of one process run in the order their responses end).
    assert_eq!(ran, Some("ran after 204"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(events.try_recv().is_err());
}

/// A dependency that schedules work of its own (FastAPI allows
/// `BackgroundTasks` in dependencies too): the handler's and the
/// dependency's tasks share the request's queue, in the order added.
#[derive(Clone)]
struct Audit(BackgroundTasks);

#[ferrapi::dependency]
async fn audit(tasks: BackgroundTasks, State(probe): State<Probe>) -> Audit {
    let events = probe.events.clone();
    tasks.add(async move {
        let _ = events.send("audit from the dependency");
    });
    Audit(tasks)
}

/// Takes no `BackgroundTasks` itself: the dependency's is enough for the
/// route to get a queue.
#[post("/audited")]
async fn audited(Depends(audit): Depends<Audit>, State(probe): State<Probe>) -> &'static str {
    let events = probe.events.clone();
    audit.0.add(async move {
        let _ = events.send("from the handler");
    });
    assert_eq!(audit.0.len(), 2, "one queue per request");
    "ok"
}

#[tokio::test]
async fn a_dependency_can_schedule_tasks_on_the_same_queue() {
    let (probe, mut events) = probe();
    let client = TestClient::new(App::new().state(probe).route(audited));
    for _ in 0..2 {
        let res = client.post("/audited").send().await;
        assert_eq!(res.status(), 200, "{}", res.text());
        for expected in ["audit from the dependency", "from the handler"] {
            let got = tokio::time::timeout(Duration::from_secs(5), events.recv())
                .await
                .expect("a task did not run");
            assert_eq!(got, Some(expected));
        }
    }
    assert!(events.try_recv().is_err());
}

#[post("/slow-task")]
async fn slow_task(
    tasks: BackgroundTasks,
    State(done): State<Arc<std::sync::atomic::AtomicBool>>,
) -> &'static str {
    tasks.add(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        done.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    "accepted"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_waits_for_running_background_tasks() {
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = TestServer::start(App::new().state(done.clone()).route(slow_task)).await;
    let mut conn = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    conn.write_all(
        b"POST /slow-task HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut response))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&response).ends_with("accepted"));
    assert!(
        !done.load(std::sync::atomic::Ordering::SeqCst),
        "the task runs after the response"
    );
    server.stop().await.unwrap();
    assert!(
        done.load(std::sync::atomic::Ordering::SeqCst),
        "the server stopped before its background task finished"
    );
}
