//! The access log and W3C trace context, read from real log output.

use crate::middleware::Logs;
use ferrapi::middleware::{AccessLogLayer, Stack, TraceContext};
use ferrapi::prelude::*;
use ferrapi::testing::TestClient;
use serde_json::Value;

#[get("/items/{item_id}")]
async fn item(Path(item_id): Path<u32>, trace: TraceContext) -> String {
    tracing::info!("reading an item");
    format!("{item_id} {}", trace.trace_id())
}

fn app() -> App {
    App::new()
        .route(item)
        .middleware(Stack::defaults().access_log(Some(AccessLogLayer::new())))
}

fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_writer(move || writer.clone())
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}

fn access_lines(logs: &Logs) -> Vec<Value> {
    logs.lines()
        .into_iter()
        .filter(|l| l["target"] == "ferrapi::access")
        .collect()
}

#[tokio::test]
async fn one_access_line_per_request_with_the_route_template() {
    let (logs, _guard) = capture();
    let client = TestClient::new(app());
    let res = client
        .get("/items/7?token=secret-in-query")
        .header("x-request-id", "req-7")
        .header("user-agent", "probe/1.0")
        .header("authorization", "Bearer secret-token")
        .send()
        .await;
    assert_eq!(res.status(), 200);
    client.get("/nowhere").send().await;
    client.get("/items/not-a-number").send().await;

    let lines = access_lines(&logs);
    assert_eq!(lines.len(), 3, "{lines:?}");
    let f = &lines[0]["fields"];
    assert_eq!(f["method"], "GET");
    assert_eq!(f["route"], "/items/{item_id}");
    assert_eq!(f["path"], "/items/7");
    assert_eq!(f["status"], 200);
    assert_eq!(f["user_agent"], "probe/1.0");
    assert!(f["latency_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(lines[0]["span"]["request_id"], "req-7");
    assert_eq!(lines[0]["span"]["trace_id"].as_str().unwrap().len(), 32);
    // A path no route matches shares one label; a 422 keeps its template.
    assert_eq!(lines[1]["fields"]["route"], "unmatched");
    assert_eq!(lines[1]["fields"]["status"], 404);
    assert_eq!(lines[2]["fields"]["route"], "/items/{item_id}");
    assert_eq!(lines[2]["fields"]["status"], 422);
    // Secrets never reach the log.
    let all = String::from_utf8_lossy(&serde_json::to_vec(&logs.lines()).unwrap()).into_owned();
    assert!(!all.contains("secret-token"), "{all}");
    assert!(!all.contains("secret-in-query"), "{all}");
}

#[tokio::test]
async fn the_access_log_is_off_by_default() {
    let (logs, _guard) = capture();
    let client = TestClient::new(App::new().route(item).middleware(Stack::defaults()));
    assert_eq!(client.get("/items/1").send().await.status(), 200);
    assert!(access_lines(&logs).is_empty());
    // The handler's own line still carries the request's ids.
    let line = logs
        .lines()
        .into_iter()
        .find(|l| l["fields"]["message"] == "reading an item")
        .unwrap();
    assert_eq!(
        line["span"]["trace_id"].as_str().unwrap().len(),
        32,
        "{line}"
    );
}

#[tokio::test]
async fn traceparent_is_honoured_and_answered() {
    let (logs, _guard) = capture();
    let client = TestClient::new(app());
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let res = client
        .get("/items/3")
        .header("traceparent", incoming)
        .send()
        .await;
    // The handler sees the caller's trace.
    assert_eq!(res.text(), "3 4bf92f3577b34da6a3ce929d0e0e4736");
    // The answer names the server's span in that trace.
    let answered = res.header("traceparent").unwrap();
    let parts: Vec<&str> = answered.split('-').collect();
    assert_eq!(parts[0], "00");
    assert_eq!(parts[1], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_ne!(parts[2], "00f067aa0ba902b7");
    assert_eq!(parts[2].len(), 16);
    assert_eq!(parts[3], "01");
    let line = logs
        .lines()
        .into_iter()
        .find(|l| l["fields"]["message"] == "reading an item")
        .unwrap();
    assert_eq!(line["span"]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");

    // A malformed one is ignored: the handler that asks for the trace
    // starts a new one, and nothing is answered (no tracer, no caller's
    // trace to join).
    let res = client
        .get("/items/4")
        .header(
            "traceparent",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        )
        .send()
        .await;
    let trace_id = res.text().split(' ').nth(1).unwrap().to_owned();
    assert_eq!(trace_id.len(), 32);
    assert_ne!(trace_id, "00000000000000000000000000000000");
    assert_eq!(res.header("traceparent"), None);
    let line = logs
        .lines()
        .into_iter()
        .filter(|l| l["fields"]["message"] == "reading an item")
        .nth(1)
        .unwrap();
    // Recorded on the request's span from the extraction on.
    assert_eq!(line["span"]["trace_id"], trace_id.as_str());
}

#[tokio::test]
async fn start_traces_gives_every_request_a_trace_and_answers_it() {
    use ferrapi::middleware::TraceContextLayer;
    let (logs, _guard) = capture();
    let app = App::new().route(item).middleware(
        Stack::defaults().trace_context(Some(TraceContextLayer::new().start_traces(true))),
    );
    let client = TestClient::new(app);
    let res = client.get("/items/5").send().await;
    assert_eq!(res.status(), 200);
    let trace_id = res.text().split(' ').nth(1).unwrap().to_owned();
    let answered = res.header("traceparent").unwrap();
    let parts: Vec<&str> = answered.split('-').collect();
    assert_eq!(parts[0], "00");
    assert_eq!(parts[1], trace_id);
    assert_eq!(parts[3], "01");
    let line = logs
        .lines()
        .into_iter()
        .find(|l| l["fields"]["message"] == "reading an item")
        .unwrap();
    assert_eq!(line["span"]["trace_id"], trace_id.as_str());
    assert_eq!(line["span"]["span_id"], parts[2]);
}
