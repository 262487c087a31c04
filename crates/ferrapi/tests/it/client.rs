//! `ferrapi::client`: outgoing calls carry the request's trace to another
//! app, over real sockets.

use crate::telemetry::{Receiver, attr, telemetry_to};
use ferrapi::client::{Client, ClientError};
use ferrapi::middleware::{Stack, TraceContext};
use ferrapi::prelude::*;
use ferrapi::testing::TestServer;
use serde_json::{Value, json};
use tracing_subscriber::layer::SubscriberExt as _;

/// The downstream app: tells what trace it was called in.
#[get("/echo")]
async fn echo(trace: TraceContext) -> Json<Value> {
    Json(json!({
        "trace_id": trace.trace_id(),
        "parent_id": trace.parent_id(),
        "span_id": trace.span_id(),
        "tracestate": trace.tracestate().and_then(|v| v.to_str().ok()),
    }))
}

#[derive(Clone)]
struct Downstream {
    http: Client,
    url: String,
}

/// The upstream app: calls the downstream one, passing its trace on.
#[get("/call")]
async fn call(trace: TraceContext, State(down): State<Downstream>) -> Json<Value> {
    let res = down.http.get(&down.url).trace(&trace).send().await.unwrap();
    Json(res.json::<Value>().unwrap())
}

/// The same, relying on the current span (feature `otel`, layer installed).
#[get("/call-implicit")]
async fn call_implicit(State(down): State<Downstream>) -> Json<Value> {
    let res = down.http.get(&down.url).send().await.unwrap();
    Json(res.json::<Value>().unwrap())
}

async fn two_apps() -> (TestServer, TestServer) {
    let downstream = TestServer::start(App::new().route(echo).middleware(Stack::defaults())).await;
    let state = Downstream {
        http: Client::new(),
        url: format!("http://{}/echo", downstream.addr()),
    };
    let upstream = TestServer::start(
        App::new()
            .state(state)
            .route(call)
            .route(call_implicit)
            .middleware(Stack::defaults()),
    )
    .await;
    (upstream, downstream)
}

const T: &str = "0af7651916cd43dd8448eb211c80319c";
const P: &str = "b7ad6b7169203331";

#[tokio::test]
async fn the_trace_reaches_the_next_app_with_this_request_as_parent() {
    let (upstream, downstream) = two_apps().await;
    let res = Client::new()
        .get(&format!("http://{}/call", upstream.addr()))
        .header("traceparent", format!("00-{T}-{P}-01"))
        .header("tracestate", "congo=t61rcWkgMzE")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let upstream_span = res
        .header("traceparent")
        .unwrap()
        .split('-')
        .nth(2)
        .unwrap()
        .to_owned();
    let seen: Value = res.json().unwrap();
    assert_eq!(seen["trace_id"], T);
    assert_eq!(seen["parent_id"], upstream_span.as_str());
    assert_ne!(seen["parent_id"], P);
    assert_ne!(seen["span_id"], upstream_span.as_str());
    assert_eq!(seen["tracestate"], "congo=t61rcWkgMzE");

    // A request outside any trace: the handler's extraction starts one,
    // which the call carries (the answer names none: no tracer, no
    // caller's trace).
    let res = Client::new()
        .get(&format!("http://{}/call", upstream.addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.header("traceparent"), None);
    let seen: Value = res.json().unwrap();
    let trace_id = seen["trace_id"].as_str().unwrap();
    assert_eq!(trace_id.len(), 32, "{seen}");
    assert_ne!(trace_id, T);
    assert_ne!(trace_id, "0".repeat(32));
    assert_eq!(seen["tracestate"], Value::Null);

    upstream.stop().await.unwrap();
    downstream.stop().await.unwrap();
}

#[tokio::test]
async fn with_telemetry_each_call_gets_a_client_span_in_the_callers_trace() {
    let mut receiver = Receiver::start();
    let telemetry = telemetry_to(&receiver, "it-client");
    let _default =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(telemetry.layer()));
    let (upstream, downstream) = two_apps().await;
    let res = Client::new()
        .get(&format!("http://{}/call-implicit", upstream.addr()))
        .header("traceparent", format!("00-{T}-{P}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let upstream_span = res
        .header("traceparent")
        .unwrap()
        .split('-')
        .nth(2)
        .unwrap()
        .to_owned();
    let seen: Value = res.json().unwrap();
    assert_eq!(seen["trace_id"], T);

    // The collector has one trace: caller → upstream server span → client
    // span of the call → downstream server span.
    let up = receiver
        .wait_for(|s| s.name == "GET /call-implicit")
        .await
        .span;
    let call = receiver.wait_for(|s| s.kind == 3).await.span;
    let down = receiver.wait_for(|s| s.name == "GET /echo").await.span;
    let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
    assert_eq!(hex(&up.trace_id), T);
    assert_eq!(hex(&up.parent_span_id), P);
    assert_eq!(hex(&up.span_id), upstream_span);
    assert_eq!(call.name, "GET");
    assert_eq!(hex(&call.trace_id), T);
    assert_eq!(hex(&call.parent_span_id), upstream_span);
    assert_eq!(attr(&call, "http.request.method").as_deref(), Some("GET"));
    assert_eq!(attr(&call, "server.address").as_deref(), Some("127.0.0.1"));
    assert_eq!(
        attr(&call, "url.full"),
        Some(format!("http://{}/echo", downstream.addr()))
    );
    let status = call
        .attributes
        .iter()
        .find(|kv| kv.key == "http.response.status_code")
        .map(|kv| format!("{:?}", kv.value));
    assert!(status.is_some_and(|s| s.contains("IntValue(200)")));
    assert_eq!(hex(&down.trace_id), T);
    assert_eq!(hex(&down.parent_span_id), hex(&call.span_id));
    assert_eq!(seen["parent_id"], hex(&call.span_id));
    assert_eq!(hex(&down.span_id), seen["span_id"].as_str().unwrap());

    upstream.stop().await.unwrap();
    downstream.stop().await.unwrap();
    telemetry.shutdown().unwrap();
}

#[tokio::test]
async fn only_plain_http_is_supported() {
    let err = Client::new()
        .get("https://127.0.0.1:1/")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::UnsupportedScheme(_)), "{err}");
    assert!(err.to_string().contains("only plain http://"));
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let accepted = listener.accept().await;
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        drop(accepted);
    });
    let err = Client::new()
        .get(&format!("http://{addr}/"))
        .timeout(std::time::Duration::from_millis(200))
        .send()
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err}");
    held.abort();
}
