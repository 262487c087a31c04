//! `WebSocket /ws/events` and the cache, over real sockets.

use crate::Service;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(svc: &Service, query: &str) -> Ws {
    let url = format!("ws://{}/ws/events{query}", svc.addr);
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(url),
    )
    .await
    .expect("handshake timed out")
    .expect("handshake failed");
    ws
}

/// The next text frame as JSON, skipping pings.
async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("no event within 10 s")
            .expect("socket closed")
            .expect("socket error");
        match msg {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

async fn close_code(ws: &mut Ws) -> u16 {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("no close within 10 s");
        match msg {
            Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
            Some(Ok(Message::Close(None))) | None => panic!("closed without a code"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("socket error {e}"),
        }
    }
}

#[tokio::test]
async fn websocket_clients_see_user_events() {
    let svc = Service::start(&[]).await;
    let token = svc.login_admin().await;

    // Bad or missing token: the handshake completes, then 1008.
    let mut ws = connect(&svc, "").await;
    assert_eq!(close_code(&mut ws).await, 1008);
    let mut ws = connect(&svc, "?token=not-a-token").await;
    assert_eq!(close_code(&mut ws).await, 1008);

    let mut a = connect(&svc, &format!("?token={token}")).await;
    let mut b = connect(&svc, &format!("?token={token}")).await;
    // Subscriptions are set up when the socket opens; give them a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let res = svc
        .post_json(
            "/api/v1/users",
            &json!({"name": "Event Person", "email": "event@example.com", "age": 30}),
        )
        .await;
    assert_eq!(res.status, 201);
    let user = res.json();
    for ws in [&mut a, &mut b] {
        let event = next_json(ws).await;
        assert_eq!(event, json!({"type": "user.created", "data": user}));
    }
    let id = user["id"].as_i64().unwrap();
    let res = svc
        .request("DELETE", &format!("/api/v1/users/{id}"), &[], "")
        .await;
    assert_eq!(res.status, 204);
    let event = next_json(&mut a).await;
    assert_eq!(event, json!({"type": "user.deleted", "data": {"id": id}}));
    // The client may ping; the server answers.
    a.send(Message::Ping(vec![1, 2, 3].into())).await.unwrap();
}

#[tokio::test]
async fn reads_are_cached_and_writes_invalidate() {
    let svc = Service::start(&[]).await;
    svc.login_admin().await;
    let res = svc
        .post_json(
            "/api/v1/users",
            &json!({"name": "Cached", "email": "cached@example.com", "age": 30}),
        )
        .await;
    let id = res.json()["id"].as_i64().unwrap();
    let path = format!("/api/v1/users/{id}");
    assert_eq!(svc.get(&path).await.json()["name"], "Cached");
    // The row changes behind the service's back (another process): a
    // cached read still answers the cached value, so it made no query.
    crate::sql_behind_the_back(
        &svc.dir,
        &format!("UPDATE users SET name = 'Changed' WHERE id = {id}"),
    )
    .await;
    assert_eq!(svc.get(&path).await.json()["name"], "Cached");
    // A PATCH through the API invalidates the entry: the next read comes
    // from the database again.
    let res = svc
        .request(
            "PATCH",
            &path,
            &[("content-type", "application/json")],
            &json!({"age": 31}).to_string(),
        )
        .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json()["name"], "Changed");
    assert_eq!(svc.get(&path).await.json()["name"], "Changed");
    // A delete too: 404 at once.
    svc.request("DELETE", &path, &[], "").await;
    let res = svc.get(&path).await;
    assert_eq!(res.status, 404);
    assert_eq!(res.json(), json!({"detail": "User not found"}));
}

async fn notifications(svc: &Service, id: i64) -> crate::Response {
    svc.get(&format!("/api/v1/users/{id}/notifications")).await
}

/// Polls until the user has `n` notifications (at most `secs` seconds).
async fn wait_for_notifications(svc: &Service, id: i64, n: usize, secs: u64) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let res = notifications(svc, id).await;
        assert_eq!(res.status, 200, "{}", res.body);
        let list = res.json();
        if list.as_array().unwrap().len() >= n || std::time::Instant::now() > deadline {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn creating_a_user_sends_exactly_one_welcome() {
    let svc = Service::start(&[]).await;
    svc.login_admin().await;
    let res = svc
        .post_json(
            "/api/v1/users",
            &json!({"name": "Welcome Me", "email": "welcome@example.com", "age": 30}),
        )
        .await;
    let id = res.json()["id"].as_i64().unwrap();
    let list = wait_for_notifications(&svc, id, 1, 10).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["kind"], "welcome");
    assert!(list[0]["created_at"].as_str().unwrap().ends_with('Z'));
    // Still one a moment later.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        notifications(&svc, id)
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // A missing user: 404.
    let res = notifications(&svc, 999_999).await;
    assert_eq!(res.status, 404);
    assert_eq!(res.json(), json!({"detail": "User not found"}));
}

#[tokio::test]
async fn a_welcome_survives_a_sigkill_before_it_ran() {
    // The task may run no earlier than 3 s after the response: kill the
    // process well before that.
    let env = [
        ("NOTIFICATION_DELAY_MS", "3000"),
        ("JWT_SECRET", "kill-test-secret-0123456789"),
    ];
    let mut svc = Service::start(&env).await;
    svc.login_admin().await;
    let res = svc
        .post_json(
            "/api/v1/users",
            &json!({"name": "Survivor", "email": "survivor@example.com", "age": 30}),
        )
        .await;
    assert_eq!(res.status, 201);
    let id = res.json()["id"].as_i64().unwrap();
    svc.child.start_kill().unwrap();
    svc.child.wait().await.unwrap();

    // Same database, new process: the task runs there.
    let again = Service::start_in(
        svc.dir.clone(),
        &[("JWT_SECRET", "kill-test-secret-0123456789")],
    )
    .await;
    *again.token.lock().unwrap() = svc.token.lock().unwrap().clone();
    let list = wait_for_notifications(&again, id, 1, 15).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["kind"], "welcome");
}

/// A multipart body with one part.
fn multipart(name: &str, content_type: &str, data: &[u8]) -> (String, Vec<u8>) {
    let boundary = "ferrapi-e2e-boundary";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"a\"\r\nContent-Type: {content_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn put_avatar(svc: &Service, id: i64, part: &str, ct: &str, data: &[u8]) -> crate::Response {
    let (content_type, body) = multipart(part, ct, data);
    svc.request_bytes(
        "PUT",
        &format!("/api/v1/users/{id}/avatar"),
        &[("content-type", &content_type)],
        &body,
    )
    .await
}

#[tokio::test]
async fn avatars_round_trip_with_type_and_size_limits() {
    let svc = Service::start(&[("MAX_BODY_BYTES", "1024")]).await;
    let admin = svc.login_admin().await;
    let res = svc
        .post_json(
            "/api/v1/users",
            &json!({"name": "Pic", "email": "pic@example.com", "age": 30, "password": "pic-password"}),
        )
        .await;
    let id = res.json()["id"].as_i64().unwrap();
    let png: Vec<u8> = b"\x89PNG\r\n\x1a\n"
        .iter()
        .copied()
        .chain((0..200_000u32).map(|i| (i % 251) as u8))
        .collect();

    // None yet.
    let res = svc.get(&format!("/api/v1/users/{id}/avatar")).await;
    assert_eq!(res.status, 404);
    // 200 KB, over MAX_BODY_BYTES (1 KiB) but under 5 MiB: accepted.
    let res = put_avatar(&svc, id, "file", "image/png", &png).await;
    assert_eq!(res.status, 204, "{}", res.body);
    let res = svc.get_bytes(&format!("/api/v1/users/{id}/avatar")).await;
    assert_eq!(res.0, 200);
    assert_eq!(res.1.as_deref(), Some("image/png"));
    assert_eq!(res.2, png);
    // A GIF: 415, and the PNG is still there.
    let res = put_avatar(&svc, id, "file", "image/gif", b"GIF89a").await;
    assert_eq!(res.status, 415, "{}", res.body);
    assert!(res.json()["detail"].is_string());
    assert_eq!(
        svc.get_bytes(&format!("/api/v1/users/{id}/avatar")).await.2,
        png
    );
    // Over 5 MiB: 413, nothing replaced.
    let big = vec![7u8; 5 * 1024 * 1024 + 10];
    let res = put_avatar(&svc, id, "file", "image/jpeg", &big).await;
    assert_eq!(res.status, 413, "{}", res.body);
    assert_eq!(
        svc.get_bytes(&format!("/api/v1/users/{id}/avatar")).await.2,
        png
    );
    // No `file` part: 422 in FastAPI's shape.
    let res = put_avatar(&svc, id, "other", "image/png", b"x").await;
    assert_eq!(res.status, 422, "{}", res.body);
    assert_eq!(res.json()["detail"][0]["loc"], json!(["body", "file"]));
    // Another user may read it but not set it.
    let pic = svc.login("pic@example.com", "pic-password").await;
    *svc.token.lock().unwrap() = Some(pic);
    let res = put_avatar(&svc, 1, "file", "image/png", &png).await;
    assert_eq!(res.status, 403, "{}", res.body);
    let res = put_avatar(&svc, id, "file", "image/jpeg", b"\xff\xd8\xff jpeg").await;
    assert_eq!(res.status, 204, "{}", res.body);
    let res = svc.get_bytes(&format!("/api/v1/users/{id}/avatar")).await;
    assert_eq!(res.1.as_deref(), Some("image/jpeg"));
    // Deleting the user removes it.
    *svc.token.lock().unwrap() = Some(admin);
    svc.request("DELETE", &format!("/api/v1/users/{id}"), &[], "")
        .await;
    assert_eq!(
        svc.get(&format!("/api/v1/users/{id}/avatar")).await.status,
        404
    );
}
