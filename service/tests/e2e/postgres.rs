//! Shared mode on PostgreSQL: the same contract as on SQLite, and two
//! instances on one database behaving as one service.

use crate::Service;
use serde_json::json;
use sqlx::Connection;

/// A fresh database on the server of `TEST_POSTGRES_URL`; `None` (with a
/// message) when the variable is unset.
async fn fresh_database() -> Option<String> {
    let Ok(url) = std::env::var("TEST_POSTGRES_URL") else {
        eprintln!("skipped: TEST_POSTGRES_URL not set");
        return None;
    };
    let name = format!(
        "ferrapi_e2e_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let base = url.rsplit_once('/').map_or(url.as_str(), |(b, _)| b);
    Some(format!("{base}/{name}"))
}

#[tokio::test]
async fn the_contract_holds_on_postgres_and_across_two_instances() {
    let Some(db) = fresh_database().await else {
        return;
    };
    // One namespace for both (each test gets its own in shared mode).
    let namespace = db.rsplit('/').next().unwrap_or("e2e").to_owned();
    let env = [
        ("DATABASE_URL", db.as_str()),
        ("JWT_SECRET", "shared-secret-for-two-instances"),
        ("SHARED_NAMESPACE", namespace.as_str()),
    ];
    // Both start and migrate at once.
    let (a, b) = tokio::join!(Service::start(&env), Service::start(&env));
    let token = a.login_admin().await;
    *b.token.lock().unwrap() = Some(token);

    let res = a
        .post_json(
            "/api/v1/users",
            &json!({"name": "Ada", "email": "Ada@Example.com", "age": "36", "password": "ada-password"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.body);
    let id = res.json()["id"].as_i64().unwrap();
    assert!(res.json()["created_at"].as_str().unwrap().ends_with('Z'));
    // The other instance sees the user, and refuses the same e-mail.
    let res = b.get(&format!("/api/v1/users/{id}")).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json()["name"], "Ada");
    let res = b
        .post_json(
            "/api/v1/users",
            &json!({"name": "Ada Two", "email": "ada@example.com", "age": 36}),
        )
        .await;
    assert_eq!(res.status, 409, "{}", res.body);
    // Login on one, use on the other.
    let ada = b.login("ada@example.com", "ada-password").await;
    let res = a
        .request(
            "GET",
            "/api/v1/users/me",
            &[("authorization", &format!("Bearer {ada}"))],
            "",
        )
        .await;
    assert_eq!(res.json()["id"], id);
    // Update, page, delete.
    let res = a
        .request(
            "PATCH",
            &format!("/api/v1/users/{id}"),
            &[("content-type", "application/json")],
            &json!({"age": 37, "name": "Ada L."}).to_string(),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let res = b.get("/api/v2/users?limit=1").await;
    assert_eq!(res.status, 200, "{}", res.body);
    let cursor = res.json()["next_cursor"].as_str().unwrap().to_owned();
    let res = b
        .get(&format!("/api/v2/users?limit=1&cursor={cursor}"))
        .await;
    assert_eq!(res.json()["items"][0]["age"], 37);
    let res = a.get("/admin/stats").await;
    assert_eq!(res.json()["users"], 2);
    let res = b
        .request("DELETE", &format!("/api/v1/users/{id}"), &[], "")
        .await;
    assert_eq!(res.status, 204);
    assert_eq!(a.get(&format!("/api/v1/users/{id}")).await.status, 404);
    assert_eq!(
        a.get("/health/ready").await.json()["checks"]["database"],
        "ok"
    );
}

/// Empties Redis database `db` (only this test uses it).
async fn flush_redis_db(url: &str, db: u8) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(format!("SELECT {db}\r\nFLUSHDB\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    // Two `+OK` replies (SELECT, FLUSHDB); bounded by the read timeout.
    for _ in 0..100 {
        if String::from_utf8_lossy(&got).matches("+OK").count() >= 2 {
            return;
        }
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), conn.read(&mut buf))
            .await
            .expect("redis did not answer")
            .unwrap();
        assert!(n > 0, "redis closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    panic!(
        "unexpected redis replies: {}",
        String::from_utf8_lossy(&got)
    );
}

/// Two instances sharing PostgreSQL, Redis and NATS behave as one: a user
/// created on one reaches the other's WebSocket clients, a cached read on
/// one is invalidated by a write on the other, and the rate limit is global.
#[tokio::test]
async fn two_instances_share_cache_events_and_rate_limit() {
    let (Ok(redis), Ok(nats)) = (
        std::env::var("TEST_REDIS_URL"),
        std::env::var("TEST_NATS_URL"),
    ) else {
        eprintln!("skipped: TEST_REDIS_URL or TEST_NATS_URL not set");
        return;
    };
    let Some(db) = fresh_database().await else {
        return;
    };
    flush_redis_db(&redis, 9).await;
    let namespace = db.rsplit('/').next().unwrap_or("e2e").to_owned();
    let redis_url = format!("{}/9", redis.trim_end_matches('/'));
    let env = [
        ("DATABASE_URL", db.as_str()),
        ("REDIS_URL", redis_url.as_str()),
        ("NATS_URL", nats.as_str()),
        ("JWT_SECRET", "shared-secret-for-two-instances"),
        ("RATE_LIMIT", "30/1m"),
        ("SHARED_NAMESPACE", namespace.as_str()),
    ];
    let (a, b) = tokio::join!(Service::start(&env), Service::start(&env));
    let token = a.login_admin().await;
    *b.token.lock().unwrap() = Some(token.clone());
    for svc in [&a, &b] {
        // The Redis and NATS connections come up in the background after
        // start-up: readiness turns 200 once they are (bounded wait).
        let started = std::time::Instant::now();
        while svc.get("/health/ready").await.status != 200
            && started.elapsed() < std::time::Duration::from_secs(15)
        {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let ready = svc.get("/health/ready").await.json();
        assert_eq!(
            ready["checks"],
            json!({"database": "ok", "cache": "ok", "bus": "ok"}),
            "{ready}"
        );
    }

    // A WebSocket on B sees a user created on A (through NATS).
    let url = format!("ws://{}/ws/events?token={token}", b.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let res = a
        .post_json(
            "/api/v1/users",
            &json!({"name": "Shared", "email": "shared@example.com", "age": 30}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.body);
    let user = res.json();
    let id = user["id"].as_i64().unwrap();
    let event = loop {
        use futures_util::StreamExt;
        let msg = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("no event on B within 10 s")
            .unwrap()
            .unwrap();
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            break serde_json::from_str::<serde_json::Value>(&t).unwrap();
        }
    };
    assert_eq!(event, json!({"type": "user.created", "data": user}));

    // A reads (and caches) the user; B renames it; A sees the new name.
    let path = format!("/api/v1/users/{id}");
    assert_eq!(a.get(&path).await.json()["name"], "Shared");
    let res = b
        .request(
            "PATCH",
            &path,
            &[("content-type", "application/json")],
            &json!({"name": "Renamed"}).to_string(),
        )
        .await;
    assert_eq!(res.status, 200);
    assert_eq!(a.get(&path).await.json()["name"], "Renamed");

    // One limit for both: requests alternate between the instances.
    let mut limited = None;
    for i in 0..40 {
        let svc = if i % 2 == 0 { &a } else { &b };
        let res = svc.get("/api/v1/users/me").await;
        if res.status == 429 {
            limited = Some(i);
            assert!(res.header("retry-after").is_some());
            break;
        }
        assert_eq!(res.header("ratelimit-limit"), Some("30"));
    }
    // 30 per user across both instances, some already spent above.
    let limited = limited.expect("the shared limit never refused a request");
    assert!(limited < 30, "refused only after {limited} requests");
}
