//! The vertical slice: create, read, validation errors, over a real socket.

use crate::Service;
use serde_json::{Value, json};

#[tokio::test]
async fn create_read_and_validation_over_a_socket() {
    let svc = Service::start(&[]).await;

    let res = svc.get("/health/live").await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json(), json!({"status": "ok"}));

    // Users need a token.
    let res = svc.get("/api/v1/users").await;
    assert_eq!(res.status, 401);
    assert_eq!(res.header("www-authenticate"), Some("Bearer"));
    svc.login_admin().await;

    // One 422 listing all three failures.
    let res = svc
        .post_json(
            "/api/v1/users",
            &json!({"name": "J", "email": "x", "age": 10}),
        )
        .await;
    assert_eq!(res.status, 422, "{}", res.body);
    let detail = res.json()["detail"].clone();
    let locs: Vec<Value> = detail
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["loc"].clone())
        .collect();
    assert_eq!(
        locs,
        vec![
            json!(["body", "name"]),
            json!(["body", "email"]),
            json!(["body", "age"])
        ]
    );
    assert_eq!(detail[0]["type"], "string_too_short");
    assert_eq!(detail[1]["type"], "value_error");
    assert_eq!(detail[2]["type"], "greater_than_equal");

    // A valid body: 201, the user, its Location.
    let res = svc
        .post_json(
            "/api/v1/users",
            &json!({"name": "Ada Lovelace", "email": "ada@example.com", "age": "36", "password": "correct horse", "extra": true}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.body);
    let user = res.json();
    let id = user["id"].as_i64().unwrap();
    assert_eq!(user["name"], "Ada Lovelace");
    assert_eq!(user["email"], "ada@example.com");
    assert!(user.get("password").is_none() && user.get("password_hash").is_none());
    let created = user["created_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(created).is_ok(),
        "{created}"
    );
    assert!(created.ends_with('Z') && created.len() == 20, "{created}");
    let location = res.header("location").unwrap().to_owned();
    assert_eq!(location, format!("/api/v1/users/{id}"));

    let res = svc.get(&location).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json(), user);

    // Same e-mail again: 409.
    let res = svc
        .post_json(
            "/api/v1/users",
            &json!({"name": "Ada", "email": "ada@example.com", "age": 36}),
        )
        .await;
    assert_eq!(res.status, 409);
    assert_eq!(res.json(), json!({"detail": "Email already registered"}));

    let res = svc.get("/api/v1/users/abc").await;
    assert_eq!(res.status, 422);
    assert_eq!(res.json()["detail"][0]["loc"], json!(["path", "user_id"]));

    let res = svc.get("/api/v1/users/999999").await;
    assert_eq!(res.status, 404);
    assert_eq!(res.json(), json!({"detail": "User not found"}));

    let res = svc.request("DELETE", "/health/live", &[], "").await;
    assert_eq!(res.status, 405);
    assert_eq!(res.json(), json!({"detail": "Method Not Allowed"}));
    assert!(res.header("allow").unwrap().contains("GET"));

    let res = svc.get("/openapi.json").await;
    assert_eq!(res.json()["openapi"], "3.1.0");
    assert_eq!(
        res.json()["x-websockets"]["/ws/events"]["sends"],
        json!([{"$ref": "#/components/schemas/UserEvent"}])
    );
    // The AsyncAPI document served is the golden one (`asyncapi` command).
    let res = svc.get("/asyncapi.json").await;
    assert_eq!(res.status, 200);
    let mut golden =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/asyncapi.json")).unwrap();
    if crate::shared_mode().is_some() {
        // Shared mode runs under a namespace of its own (the bus subject).
        let namespace = crate::namespace_for(&svc.dir);
        golden = golden.replace("ferrapi.users", &format!("{namespace}.users"));
    }
    assert_eq!(res.json(), serde_json::from_str::<Value>(&golden).unwrap());

    // The list, paged.
    svc.post_json(
        "/api/v1/users",
        &json!({"name": "Grace", "email": "grace@example.com", "age": 85}),
    )
    .await;
    // The bootstrap administrator is user 1; the first created user follows.
    let res = svc.get("/api/v1/users?skip=1&limit=1").await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json().as_array().unwrap().len(), 1);
    assert_eq!(res.json()[0]["id"], id);
    let res = svc.get("/api/v1/users").await;
    let ids: Vec<i64> = res
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let res = svc.get("/api/v1/users?limit=0").await;
    assert_eq!(res.status, 422);
    assert_eq!(res.json()["detail"][0]["loc"], json!(["query", "limit"]));

    // Health.
    assert_eq!(
        svc.get("/health/ready").await.json(),
        json!({"status": "ok", "checks": {"database": "ok", "cache": "ok", "bus": "ok"}})
    );
    assert_eq!(svc.get("/health/startup").await.status, 200);

    // Metrics name route templates, never raw paths.
    let res = svc.get("/metrics").await;
    assert_eq!(res.status, 200);
    assert!(
        res.body.contains(
            r#"http_requests_total{method="GET",route="/api/v1/users/{user_id}",status="200"} 1"#
        ),
        "{}",
        res.body
    );
    assert!(!res.body.contains("/api/v1/users/1\""));
    // Storage gauges: pool, task queue, cache, WebSocket connections.
    for name in [
        "db_pool_connections",
        "task_queue_",
        "cache_operations",
        "websocket_connections",
        "process_resident_memory_bytes",
    ] {
        assert!(
            res.body.contains(name),
            "no {name} in /metrics:\n{}",
            res.body
        );
    }

    // The docs pages are served.
    assert_eq!(svc.get("/docs").await.status, 200);
    assert_eq!(svc.get("/redoc").await.status, 200);
}

#[tokio::test]
async fn oversized_body_is_413_and_malformed_json_is_422() {
    let svc = Service::start(&[("MAX_BODY_BYTES", "100")]).await;
    svc.login_admin().await;
    let big = json!({"name": "x".repeat(200), "email": "a@b.co", "age": 30});
    let res = svc.post_json("/api/v1/users", &big).await;
    assert_eq!(res.status, 413);
    assert_eq!(res.json(), json!({"detail": "Request body too large"}));

    let res = svc
        .request(
            "POST",
            "/api/v1/users",
            &[("content-type", "application/json")],
            "{\"name\": ",
        )
        .await;
    assert_eq!(res.status, 422);
    assert_eq!(res.json()["detail"][0]["type"], "json_invalid");

    let res = svc
        .request(
            "POST",
            "/api/v1/users",
            &[("content-type", "text/plain")],
            "hi",
        )
        .await;
    assert_eq!(res.status, 422);
    assert_eq!(res.json()["detail"][0]["type"], "model_attributes_type");
}

#[tokio::test]
async fn every_response_carries_the_cross_cutting_headers() {
    let svc = Service::start(&[
        ("RATE_LIMIT", "5/1m"),
        ("CORS_ORIGINS", "https://app.example.com"),
    ])
    .await;
    svc.login_admin().await;
    let res = svc
        .request("GET", "/health/live", &[("x-request-id", "abc-123")], "")
        .await;
    assert_eq!(res.header("x-request-id"), Some("abc-123"));
    let res = svc
        .request("GET", "/health/live", &[("x-request-id", "has space")], "")
        .await;
    let id = res.header("x-request-id").unwrap().to_owned();
    assert_eq!(id.len(), 36, "{id}");
    assert_eq!(id.matches('-').count(), 4, "{id}");
    let time = res.header("x-process-time").unwrap();
    assert!(time.parse::<f64>().is_ok() && !time.contains('e'), "{time}");
    assert_eq!(res.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(res.header("x-frame-options"), Some("DENY"));
    assert_eq!(res.header("referrer-policy"), Some("no-referrer"));

    // Compression from 1 KiB up.
    let res = svc
        .request("GET", "/openapi.json", &[("accept-encoding", "gzip")], "")
        .await;
    assert_eq!(res.header("content-encoding"), Some("gzip"));
    let res = svc
        .request("GET", "/health/live", &[("accept-encoding", "gzip")], "")
        .await;
    assert_eq!(res.header("content-encoding"), None);

    // CORS: the listed origin is echoed, another gets nothing.
    let res = svc
        .request(
            "OPTIONS",
            "/api/v1/users",
            &[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "POST"),
            ],
            "",
        )
        .await;
    assert!(res.status == 200 || res.status == 204, "{}", res.status);
    assert_eq!(
        res.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    let res = svc
        .request(
            "GET",
            "/api/v1/users",
            &[("origin", "https://evil.example.com")],
            "",
        )
        .await;
    assert_eq!(res.header("access-control-allow-origin"), None);

    // Rate limit: 5 per minute per client; health and metrics exempt.
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let res = svc.get("/api/v1/users").await;
        if res.status == 200 {
            assert_eq!(res.header("ratelimit-limit"), Some("5"));
        }
        statuses.push(res.status);
        if res.status == 429 {
            assert!(res.header("retry-after").is_some());
            assert_eq!(res.json(), json!({"detail": "Too Many Requests"}));
        }
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    for _ in 0..10 {
        assert_eq!(svc.get("/health/live").await.status, 200);
    }
}

/// Several users writing at once on the default SQLite file, each updating
/// itself (which drops its cached principal, so its next request loads the
/// principal again) and creating users: none may fail. Loading the principal
/// inside the request's transaction made a deferred SQLite transaction read
/// first and write next, and a third of such writes answered 500 `database
/// is locked` (docs/reliability.md, finding 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_never_fail() {
    const WRITERS: usize = 6;
    const ROUNDS: usize = 30;
    let svc = Service::start(&[("RATE_LIMIT", "1000000/1s"), ("ACCESS_LOG", "off")]).await;
    svc.login_admin().await;
    let mut users = Vec::new();
    for i in 0..WRITERS {
        let email = format!("writer{i}@example.com");
        let res = svc
            .post_json(
                "/api/v1/users",
                &json!({"name": format!("Writer {i}"), "email": email, "age": 30,
                        "password": "writer-password"}),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.body);
        let user = res.json();
        let token = svc.login(&email, "writer-password").await;
        users.push((user["id"].as_i64().unwrap(), format!("Bearer {token}")));
    }
    let svc = &svc;
    let writers = users.iter().enumerate().map(|(i, (id, auth))| async move {
        let mut failures = Vec::new();
        for n in 0..ROUNDS {
            let headers = [
                ("authorization", auth.as_str()),
                ("content-type", "application/json"),
            ];
            let res = if n % 2 == 0 {
                let body = json!({"age": 18 + n}).to_string();
                svc.request("PATCH", &format!("/api/v1/users/{id}"), &headers, &body)
                    .await
            } else {
                let body = json!({"name": format!("By {i}"),
                                  "email": format!("by{i}-{n}@example.com"), "age": 30})
                .to_string();
                svc.request("POST", "/api/v1/users", &headers, &body).await
            };
            if !matches!(res.status, 200 | 201) {
                failures.push(format!("{} {}", res.status, res.body));
            }
        }
        failures
    });
    let failures: Vec<String> = futures_util::future::join_all(writers)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} writes failed: {:?}",
        failures.len(),
        WRITERS * ROUNDS,
        &failures[..failures.len().min(3)]
    );
}
