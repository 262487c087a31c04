//! WebSocket routes over a real socket: auth failures close with 1008,
//! typed messages round-trip, a client that never reads is dropped with the
//! server's buffer bounded, broadcast to several clients, keep-alive pings.

use ferrapi::extract::{Dependency, Depends, Rejection, RequestContext};
use ferrapi::http::request::Parts;
use ferrapi::prelude::*;
use ferrapi::testing::{TestClient, TestServer, WebSocketConnectError, WsFrame};
use ferrapi::ws::{
    CloseReason, Hub, WebSocketConfig, WebSocketResponse, WebSocketUpgrade, WsError, close_code,
};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The token query parameter: optional, so that a missing token reaches
/// the handler (which closes with 1008) rather than failing validation.
#[derive(Deserialize, JsonSchema, Validate)]
struct TokenQuery {
    token: Option<String>,
}

/// A user authenticated from the `token` query parameter; anything else is
/// a 401, which a WebSocket route turns into close code 1008.
#[derive(Clone, Debug)]
struct User {
    name: String,
}

impl Dependency for User {
    async fn resolve(parts: &mut Parts, _cx: &RequestContext) -> Result<Self, Rejection> {
        let query = parts.uri.query().unwrap_or("");
        match query.strip_prefix("token=") {
            Some("good") => Ok(User { name: "ada".into() }),
            _ => Err(HttpError::unauthorized("Not authenticated").into()),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq, Validate)]
struct Ping {
    seq: u32,
    text: String,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Pong {
    seq: u32,
    text: String,
    user: String,
}

/// Echoes typed messages back, tagged with the authenticated user.
#[get("/ws/echo")]
async fn echo(ws: WebSocketUpgrade, Depends(user): Depends<User>) -> WebSocketResponse {
    ws.on_upgrade(move |mut socket| async move {
        while let Ok(ping) = socket.recv_json::<Ping>().await {
            let pong = json!({"seq": ping.seq, "text": ping.text, "user": user.name});
            if socket.send_json(&pong).await.is_err() {
                break;
            }
        }
    })
}

/// Checks the token itself: the usual shape of a WebSocket route behind a token.
#[get("/ws/events")]
async fn events(
    ws: WebSocketUpgrade,
    Query(q): Query<TokenQuery>,
    State(hub): State<Hub>,
) -> WebSocketResponse {
    if q.token.as_deref() != Some("good") {
        return ws.close(close_code::POLICY, "invalid or missing token");
    }
    ws.on_upgrade(move |socket| async move {
        let _ = socket.forward(hub.subscribe("events")).await;
    })
}

/// A required query parameter: its 422 becomes close code 1008.
#[derive(Deserialize, JsonSchema, Validate)]
struct Required {
    #[allow(dead_code)]
    room: u32,
}

#[get("/ws/room")]
async fn room(ws: WebSocketUpgrade, Query(_q): Query<Required>) -> WebSocketResponse {
    ws.on_upgrade(|socket| async move {
        let _ = socket.send("joined").await;
    })
}

#[get("/plain")]
async fn plain() -> &'static str {
    "plain"
}

fn app() -> App {
    App::new()
        .state(Hub::new())
        .route(echo)
        .route(events)
        .route(room)
        .route(plain)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_bad_token_completes_the_handshake_then_closes_with_1008() {
    let server = TestServer::start(app()).await;
    // Checked by the handler.
    for uri in ["/ws/events", "/ws/events?token=bad"] {
        let mut ws = server.websocket(uri).await;
        let (code, reason) = ws.recv_close().await.expect("a close frame");
        assert_eq!(code, 1008, "{uri}");
        assert_eq!(reason, "invalid or missing token");
    }
    // Refused by a dependency (401): the detail is the reason.
    let mut ws = server.websocket("/ws/echo?token=bad").await;
    assert_eq!(
        ws.recv_close().await,
        Some((1008, "Not authenticated".to_owned()))
    );
    // A validation error (422): the first error as `loc: msg`.
    let mut ws = server.websocket("/ws/room").await;
    assert_eq!(
        ws.recv_close().await,
        Some((1008, "query.room: Field required".to_owned()))
    );
    let mut ws = server.websocket("/ws/room?room=x").await;
    let (code, reason) = ws.recv_close().await.expect("a close frame");
    assert_eq!(code, 1008);
    assert!(reason.starts_with("query.room: "), "{reason}");
    // With a valid parameter the handler runs.
    let mut ws = server.websocket("/ws/room?room=7").await;
    assert_eq!(ws.recv_text().await, "joined");
    assert_eq!(ws.recv_close().await, Some((1000, String::new())));
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_json_messages_round_trip() {
    let server = TestServer::start(app()).await;
    let mut ws = server.websocket("/ws/echo?token=good").await;
    for seq in 0..20 {
        ws.send_json(&Ping {
            seq,
            text: format!("héllo {seq}"),
        })
        .await;
        let pong: Pong = ws.recv_json().await;
        assert_eq!(
            pong,
            Pong {
                seq,
                text: format!("héllo {seq}"),
                user: "ada".into()
            }
        );
    }
    // A message that is not a `Ping` ends the handler's loop: the server
    // closes normally.
    ws.send_text("not json").await;
    assert_eq!(ws.recv_close().await, Some((1000, String::new())));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_plain_request_to_a_websocket_route_is_400_and_the_route_is_not_documented() {
    let client = TestClient::new(app());
    let res = client.get("/ws/echo?token=good").send().await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json();
    assert!(body["detail"].as_str().is_some(), "{body}");

    let doc: Value = client.get("/openapi.json").send().await.json();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.contains_key("/plain"), "{paths:?}");
    assert!(
        paths.keys().all(|p| !p.starts_with("/ws")),
        "WebSocket routes must stay out of paths: {paths:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_handshake_reports_the_status() {
    let server = TestServer::start(app()).await;
    match server.try_websocket("/plain", &[]).await {
        Err(WebSocketConnectError::Refused { status, body }) => {
            assert_eq!(status, 200);
            assert_eq!(body, "plain");
        }
        other => panic!("expected a refused handshake, got {other:?}"),
    }
    server.stop().await.unwrap();
}

/// What the flooding handler saw.
#[derive(Debug)]
struct FloodReport {
    error: WsError,
    accepted_bytes: usize,
    max_queued: usize,
    send_buffer: usize,
    reason: CloseReason,
    elapsed: Duration,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_disconnected_with_the_buffer_bounded() {
    const SEND_BUFFER: usize = 256 * 1024;
    const MESSAGE: usize = 64 * 1024;
    // 1 GiB if nothing stopped it.
    const ATTEMPTS: usize = 16 * 1024;

    let (tx, mut rx) = mpsc::unbounded_channel::<FloodReport>();
    let flood = Route::get(
        "/ws/flood",
        move |ws: WebSocketUpgrade, State(report): State<mpsc::UnboundedSender<FloodReport>>| async move {
            let config = WebSocketConfig::default()
                .send_buffer(SEND_BUFFER)
                .send_timeout(Duration::from_millis(300));
            ws.config(config).on_upgrade(move |socket| async move {
                let started = Instant::now();
                let payload = bytes::Bytes::from(vec![b'x'; MESSAGE]);
                let mut accepted_bytes = 0;
                let mut error = None;
                for _ in 0..ATTEMPTS {
                    match socket.send(payload.clone()).await {
                        Ok(()) => accepted_bytes += MESSAGE,
                        Err(e) => {
                            error = Some(e);
                            break;
                        }
                    }
                }
                let sender = socket.sender();
                let reason = socket.closed().await;
                let _ = report.send(FloodReport {
                    error: error.expect("the flood was never stopped"),
                    accepted_bytes,
                    max_queued: sender.max_queued_bytes(),
                    send_buffer: sender.send_buffer(),
                    reason,
                    elapsed: started.elapsed(),
                });
            })
        },
    );
    let server = TestServer::start(App::new().state(tx).route(flood)).await;
    let ws = server.websocket("/ws/flood").await;

    let report = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("the server never gave up on the client")
        .expect("a report");
    assert!(matches!(report.error, WsError::SlowConsumer), "{report:?}");
    assert_eq!(report.reason, CloseReason::SlowConsumer, "{report:?}");
    // The documented bound: never more than the send buffer queued.
    assert_eq!(report.send_buffer, SEND_BUFFER);
    assert!(report.max_queued <= SEND_BUFFER, "{report:?}");
    assert!(
        report.max_queued > SEND_BUFFER / 2,
        "the buffer never filled: {report:?}"
    );
    // Everything accepted went to the kernel's socket buffers or the queue:
    // a few MiB, far from the 1 GiB attempted.
    assert!(report.accepted_bytes < 64 * 1024 * 1024, "{report:?}");
    assert!(report.elapsed < Duration::from_secs(10), "{report:?}");

    // The client, reading at last, finds the connection dropped.
    let mut ws = ws;
    ws.set_timeout(Duration::from_secs(10));
    let mut frames = 0;
    while ws.recv().await.is_some() {
        frames += 1;
        assert!(frames <= ATTEMPTS, "the connection was never dropped");
    }
    assert!(frames * MESSAGE <= report.accepted_bytes + MESSAGE);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_reaches_every_subscribed_client_in_order() {
    let hub = Hub::new();
    let server = TestServer::start(App::new().state(hub.clone()).route(events).route(echo)).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(server.websocket("/ws/events?token=good").await);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while hub.subscriber_count("events") < 3 {
        assert!(Instant::now() < deadline, "clients never subscribed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for n in 0..5 {
        let delivered = hub
            .publish(
                "events",
                &json!({"type": "user.created", "data": {"id": n}}),
            )
            .unwrap();
        assert_eq!(delivered, 3);
    }
    // Another topic reaches nobody.
    assert_eq!(hub.publish("other", &json!({})).unwrap(), 0);
    for ws in &mut clients {
        for n in 0..5 {
            let event: Value = ws.recv_json().await;
            assert_eq!(event, json!({"type": "user.created", "data": {"id": n}}));
        }
    }
    // A client that leaves is unsubscribed.
    let mut gone = clients.pop().unwrap();
    gone.close(1000, "bye").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while hub.subscriber_count("events") > 2 {
        assert!(
            Instant::now() < deadline,
            "the subscription outlived its client"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_keep_a_reading_client_alive_and_drop_a_silent_one() {
    let (tx, mut rx) = mpsc::unbounded_channel::<CloseReason>();
    let keep = Route::get(
        "/ws/keep",
        move |ws: WebSocketUpgrade, State(report): State<mpsc::UnboundedSender<CloseReason>>| async move {
            let config = WebSocketConfig::default()
                .ping_interval(Some(Duration::from_millis(100)))
                .pong_timeout(Duration::from_millis(300));
            ws.config(config).on_upgrade(move |mut socket| async move {
                // Echo until the connection ends, then say why it did.
                while let Some(message) = socket.recv().await {
                    if socket.send(message).await.is_err() {
                        break;
                    }
                }
                let _ = report.send(socket.closed().await);
            })
        },
    );
    let server = TestServer::start(App::new().state(tx).route(keep)).await;

    // A silent client: never reads, so never answers a ping.
    let silent = server.websocket("/ws/keep").await;
    // A reading client: its pongs go out as it reads.
    let mut alive = server.websocket("/ws/keep").await;
    let started = Instant::now();
    let mut pings = 0;
    while started.elapsed() < Duration::from_millis(1500) {
        if let Some(WsFrame::Ping(_)) = alive.next_frame().await {
            pings += 1;
        }
    }
    assert!(pings >= 5, "only {pings} pings in 1.5 s");

    // The silent one was dropped for the missing pong, long ago.
    let reason = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("the silent client was never dropped")
        .unwrap();
    assert_eq!(reason, CloseReason::KeepAliveTimeout);
    drop(silent);

    // The reading one still works.
    alive.send_text("still here").await;
    assert_eq!(alive.recv_text().await, "still here");
    alive.close(1000, "done").await;
    let reason = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("no report for the reading client")
        .unwrap();
    assert!(
        matches!(&reason, CloseReason::Peer(Some(f)) if f.code == 1000),
        "{reason:?}"
    );
    server.stop().await.unwrap();
}

/// Regression guard: an upgraded connection is no longer an idle HTTP/1
/// connection, so the server's slow-client timeout must not cut a quiet
/// WebSocket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_websocket_outlives_the_idle_connection_timeout() {
    let echo_forever = Route::get("/ws/quiet", |ws: WebSocketUpgrade| async move {
        let config = WebSocketConfig::default().ping_interval(None);
        ws.config(config).on_upgrade(|mut socket| async move {
            while let Some(message) = socket.recv().await {
                if socket.send(message).await.is_err() {
                    break;
                }
            }
        })
    });
    let config = ferrapi::ServeConfig {
        header_read_timeout: Duration::from_millis(200),
        ..Default::default()
    };
    let server = TestServer::start_with(App::new().route(echo_forever), config).await;
    let mut ws = server.websocket("/ws/quiet").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    ws.send_text("still open").await;
    assert_eq!(ws.recv_text().await, "still open");
    server.stop().await.unwrap();
}

#[derive(Deserialize)]
struct Hello {
    token: String,
}

/// Authentication by the first message: the server closes with 1008 itself.
#[get("/ws/first")]
async fn first_message(ws: WebSocketUpgrade) -> WebSocketResponse {
    ws.on_upgrade(|mut socket| async move {
        let hello =
            tokio::time::timeout(Duration::from_millis(500), socket.recv_json::<Hello>()).await;
        match hello {
            Ok(Ok(hello)) if hello.token == "good" => {
                let _ = socket.send_json(&json!({"type": "welcome"})).await;
                while let Some(message) = socket.recv().await {
                    if socket.send(message).await.is_err() {
                        break;
                    }
                }
            }
            _ => {
                socket
                    .close(close_code::POLICY, "authentication required")
                    .await;
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_by_first_message_closes_with_1008_from_the_server() {
    let server = TestServer::start(App::new().route(first_message)).await;
    // A wrong token, a message that is no `Hello`, and silence.
    let mut ws = server.websocket("/ws/first").await;
    ws.send_json(&json!({"token": "bad"})).await;
    assert_eq!(
        ws.recv_close().await,
        Some((1008, "authentication required".to_owned()))
    );
    let mut ws = server.websocket("/ws/first").await;
    ws.send_text("hello?").await;
    assert_eq!(ws.recv_close().await.map(|(code, _)| code), Some(1008));
    let mut ws = server.websocket("/ws/first").await;
    assert_eq!(ws.recv_close().await.map(|(code, _)| code), Some(1008));
    // The right token: welcomed, then an ordinary conversation.
    let mut ws = server.websocket("/ws/first").await;
    ws.send_json(&json!({"token": "good"})).await;
    assert_eq!(ws.recv_json::<Value>().await, json!({"type": "welcome"}));
    ws.send_binary(vec![1u8, 2, 3]).await;
    match ws.recv().await {
        Some(WsFrame::Binary(b)) => assert_eq!(&b[..], &[1, 2, 3]),
        other => panic!("expected the binary echo, got {other:?}"),
    }
    server.stop().await.unwrap();
}
