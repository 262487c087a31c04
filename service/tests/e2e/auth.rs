//! The contract's auth, user management, v2 paging, admin and internal
//! endpoints, over a real socket.

use crate::Service;
use serde_json::{Value, json};

fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

async fn create(svc: &Service, body: Value) -> Value {
    let res = svc.post_json("/api/v1/users", &body).await;
    assert_eq!(res.status, 201, "{}", res.body);
    res.json()
}

/// `POST /api/v1/auth/token` with a form, without a bearer token.
async fn token_request(svc: &Service, form: &str) -> crate::Response {
    svc.request(
        "POST",
        "/api/v1/auth/token",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("authorization", ""),
        ],
        form,
    )
    .await
}

/// `GET /api/v1/users/me` with `Authorization: <auth>`.
async fn get_me(svc: &Service, auth: &str) -> crate::Response {
    svc.request("GET", "/api/v1/users/me", &[("authorization", auth)], "")
        .await
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn login_tokens_and_refusals() {
    let svc = Service::start(&[]).await;
    // Wrong password, unknown user: 401 with the challenge.
    for form in [
        "username=admin%40example.com&password=wrong",
        "username=nobody%40example.com&password=whatever",
    ] {
        let res = token_request(&svc, form).await;
        assert_eq!(res.status, 401, "{}", res.body);
        assert_eq!(res.header("www-authenticate"), Some("Bearer"));
        assert_eq!(
            res.json(),
            json!({"detail": "Incorrect username or password"})
        );
    }
    // A good login.
    let res = token_request(&svc, "username=admin%40example.com&password=admin").await;
    assert_eq!(res.status, 200, "{}", res.body);
    let body = res.json();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().unwrap().to_owned();

    let me = get_me(&svc, &bearer(&token)).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.json()["email"], "admin@example.com");

    // Tampered, alg none, garbage, missing: 401 with a Bearer challenge.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let payload = b64url(br#"{"sub":"1","exp":99999999999}"#);
    let tampered = format!("{}.{}.{}", parts[0], payload, parts[2]);
    let none = format!(
        "{}.{}.",
        b64url(br#"{"alg":"none","typ":"JWT"}"#),
        b64url(br#"{"sub":"1","exp":99999999999}"#)
    );
    parts[2] = parts[2].chars().rev().collect();
    let bad_signature = parts.join(".");
    for bad in [tampered, none, bad_signature, "not-a-token".to_owned()] {
        let res = get_me(&svc, &bearer(&bad)).await;
        assert_eq!(res.status, 401, "{bad}: {}", res.body);
        assert!(
            res.header("www-authenticate")
                .unwrap()
                .starts_with("Bearer"),
            "{:?}",
            res.headers
        );
    }
    let res = svc.get("/api/v1/users/me").await;
    assert_eq!(res.status, 401);
    assert_eq!(res.header("www-authenticate"), Some("Bearer"));
    // Public routes do not look at the token (as in FastAPI): a refused
    // one does not stop a login or a health check.
    let res = svc
        .request(
            "GET",
            "/health/live",
            &[("authorization", "Bearer not-a-token")],
            "",
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let res = svc
        .request(
            "POST",
            "/api/v1/auth/token",
            &[
                ("authorization", "Bearer not-a-token"),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            "username=admin%40example.com&password=admin",
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);

    // A user created without a password cannot log in.
    *svc.token.lock().unwrap() = Some(token.clone());
    create(
        &svc,
        json!({"name": "No Password", "email": "nopw@example.com", "age": 30}),
    )
    .await;
    let res = token_request(&svc, "username=nopw%40example.com&password=").await;
    assert!(res.status == 401 || res.status == 422, "{}", res.body);
    let res = token_request(&svc, "username=nopw%40example.com&password=anything-at-all").await;
    assert_eq!(res.status, 401, "{}", res.body);
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let svc = Service::start(&[("ACCESS_TOKEN_TTL", "1")]).await;
    let token = svc.login("admin@example.com", "admin").await;
    let auth = bearer(&token);
    let res = get_me(&svc, &auth).await;
    assert_eq!(res.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let res = get_me(&svc, &auth).await;
    assert_eq!(res.status, 401, "{}", res.body);
}

#[tokio::test]
async fn tokens_work_across_instances_sharing_the_secret() {
    let env = [("JWT_SECRET", "a-shared-secret-of-some-length")];
    let a = Service::start(&env).await;
    let b = Service::start(&env).await;
    let token = a.login("admin@example.com", "admin").await;
    let res = get_me(&b, &bearer(&token)).await;
    assert_eq!(res.status, 200, "{}", res.body);
    // Without the shared secret, another instance refuses it.
    let c = Service::start(&[]).await;
    let res = get_me(&c, &bearer(&token)).await;
    assert_eq!(res.status, 401);
}

#[tokio::test]
async fn patch_delete_and_permissions() {
    let svc = Service::start(&[]).await;
    let admin = svc.login_admin().await;
    let alice = create(
        &svc,
        json!({"name": "Alice", "email": "alice@example.com", "age": 30, "password": "alice-password"}),
    )
    .await;
    let bob = create(
        &svc,
        json!({"name": "Bob", "email": "bob@example.com", "age": 40, "password": "bob-password"}),
    )
    .await;
    let alice_id = alice["id"].as_i64().unwrap();
    // The password's rules are pydantic's string rules.
    let res = svc
        .post_json(
            "/api/v1/users",
            &json!({"name": "Short", "email": "short@example.com", "age": 30, "password": "short"}),
        )
        .await;
    assert_eq!(res.status, 422);
    assert_eq!(
        res.json()["detail"][0],
        json!({"type": "string_too_short", "loc": ["body", "password"],
               "msg": "String should have at least 8 characters", "input": "short",
               "ctx": {"min_length": 8}})
    );
    // A JSON array is not an object, even one serde could read positionally.
    let res = svc
        .post_json(
            "/api/v1/users",
            &json!(["Array", "array@example.com", 30, "array-password"]),
        )
        .await;
    assert_eq!(res.status, 422, "{}", res.body);
    assert_eq!(res.json()["detail"][0]["type"], "model_attributes_type");
    let bob_id = bob["id"].as_i64().unwrap();
    let alice_token = svc.login("alice@example.com", "alice-password").await;
    *svc.token.lock().unwrap() = Some(alice_token.clone());

    let patch = |id: i64, body: Value| {
        let svc = &svc;
        async move {
            svc.request(
                "PATCH",
                &format!("/api/v1/users/{id}"),
                &[("content-type", "application/json")],
                &body.to_string(),
            )
            .await
        }
    };

    // Alice changes herself; only the fields sent change.
    let res = patch(alice_id, json!({"name": "Alice L."})).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json()["name"], "Alice L.");
    assert_eq!(res.json()["email"], "alice@example.com");
    // Not Bob.
    let res = patch(bob_id, json!({"name": "Robert"})).await;
    assert_eq!(res.status, 403, "{}", res.body);
    // Creation rules apply to the fields sent; null is a 422.
    let res = patch(alice_id, json!({"name": null, "age": 10})).await;
    assert_eq!(res.status, 422);
    let detail = res.json()["detail"].clone();
    assert_eq!(detail[0]["loc"], json!(["body", "name"]));
    assert_eq!(detail[0]["type"], "string_type");
    assert_eq!(detail[1]["loc"], json!(["body", "age"]));
    assert_eq!(detail[1]["type"], "greater_than_equal");
    let res = patch(alice_id, json!({"name": "A"})).await;
    assert_eq!(res.status, 422);
    assert_eq!(res.json()["detail"][0]["type"], "string_too_short");
    // A taken e-mail: 409.
    let res = patch(alice_id, json!({"email": "bob@example.com"})).await;
    assert_eq!(res.status, 409);
    assert_eq!(res.json(), json!({"detail": "Email already registered"}));
    // A new password takes effect for login.
    let res = patch(alice_id, json!({"password": "a-new-password"})).await;
    assert_eq!(res.status, 200);
    svc.login("alice@example.com", "a-new-password").await;
    let res = token_request(&svc, "username=alice%40example.com&password=alice-password").await;
    assert_eq!(res.status, 401);

    // Only admins delete.
    let res = svc
        .request("DELETE", &format!("/api/v1/users/{bob_id}"), &[], "")
        .await;
    assert_eq!(res.status, 403, "{}", res.body);
    let res = svc.get("/admin/stats").await;
    assert_eq!(res.status, 403);

    *svc.token.lock().unwrap() = Some(admin);
    let res = patch(bob_id, json!({"age": 41})).await;
    assert_eq!(res.status, 200, "admin patches anyone: {}", res.body);
    let res = patch(999_999, json!({"age": 41})).await;
    assert_eq!(res.status, 404);
    assert_eq!(res.json(), json!({"detail": "User not found"}));
    let res = svc
        .request("DELETE", &format!("/api/v1/users/{alice_id}"), &[], "")
        .await;
    assert_eq!(res.status, 204);
    assert!(res.body.is_empty());
    let res = svc
        .request("DELETE", &format!("/api/v1/users/{alice_id}"), &[], "")
        .await;
    assert_eq!(res.status, 404);
    assert_eq!(res.json(), json!({"detail": "User not found"}));
    // The deleted user's token stops working; the e-mail is free again.
    let res = get_me(&svc, &bearer(&alice_token)).await;
    assert_eq!(res.status, 401);
    create(
        &svc,
        json!({"name": "Alice Again", "email": "alice@example.com", "age": 31}),
    )
    .await;

    // Admin stats.
    let res = svc.get("/admin/stats").await;
    assert_eq!(res.status, 200, "{}", res.body);
    let stats = res.json();
    assert_eq!(stats["users"], 3, "{stats}");
    assert!(stats["requests_total"].as_u64().unwrap() >= 10, "{stats}");
    assert!(stats["uptime_seconds"].as_f64().unwrap() > 0.0, "{stats}");
    let res = svc
        .request("GET", "/admin/stats", &[("authorization", "")], "")
        .await;
    assert_eq!(res.status, 401);
}

#[tokio::test]
async fn v2_keyset_paging() {
    let svc = Service::start(&[]).await;
    svc.login_admin().await;
    for i in 0..5 {
        create(
            &svc,
            json!({"name": format!("User {i}"), "email": format!("u{i}@example.com"), "age": 20 + i}),
        )
        .await;
    }
    // Six users (the admin first), pages of two.
    let res = svc.get("/api/v2/users?limit=2").await;
    assert_eq!(res.status, 200, "{}", res.body);
    let page = res.json();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items[0].get("age").is_some() && items[0].get("password").is_none());
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    // Deleting a row already returned does not shift the next page.
    let second_id = items[1]["id"].as_i64().unwrap();
    let res = svc
        .request("DELETE", &format!("/api/v1/users/{second_id}"), &[], "")
        .await;
    assert_eq!(res.status, 204);
    let res = svc
        .get(&format!("/api/v2/users?limit=2&cursor={cursor}"))
        .await;
    let page2 = res.json();
    let ids: Vec<i64> = page2["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![second_id + 1, second_id + 2]);
    // Walk to the end: the last page has no cursor.
    let mut cursor = page2["next_cursor"].as_str().map(str::to_owned);
    let mut seen = 0;
    while let Some(c) = cursor.take() {
        seen += 1;
        assert!(seen < 10, "paging does not end");
        let page = svc
            .get(&format!("/api/v2/users?limit=2&cursor={c}"))
            .await
            .json();
        cursor = page["next_cursor"].as_str().map(str::to_owned);
    }
    let res = svc.get("/api/v2/users?cursor=garbage").await;
    assert_eq!(res.status, 422);
    assert_eq!(res.json()["detail"][0]["loc"], json!(["query", "cursor"]));
    let res = svc.get("/api/v2/users?limit=0").await;
    assert_eq!(res.status, 422);
    assert_eq!(res.json()["detail"][0]["loc"], json!(["query", "limit"]));
    let res = svc
        .request("GET", "/api/v2/users", &[("authorization", "")], "")
        .await;
    assert_eq!(res.status, 401);
}

#[tokio::test]
async fn internal_config_needs_the_shared_secret() {
    // Unset: always 403.
    let svc = Service::start(&[]).await;
    let res = svc
        .request(
            "GET",
            "/internal/config",
            &[("x-internal-token", "anything")],
            "",
        )
        .await;
    assert_eq!(res.status, 403);
    assert!(res.json()["detail"].is_string());

    let svc = Service::start(&[
        ("INTERNAL_TOKEN", "internal-secret"),
        ("JWT_SECRET", "jwt-secret-value-0123456789"),
        ("ADMIN_PASSWORD", "admin-secret-password"),
        ("DRAIN_DELAY", "0.5"),
        ("FORWARDED_ALLOW_IPS", "10.0.0.0/8, 127.0.0.1"),
    ])
    .await;
    let res = svc.get("/internal/config").await;
    assert_eq!(res.status, 403);
    let res = svc
        .request(
            "GET",
            "/internal/config",
            &[("x-internal-token", "wrong")],
            "",
        )
        .await;
    assert_eq!(res.status, 403);
    let res = svc
        .request(
            "GET",
            "/internal/config",
            &[("x-internal-token", "internal-secret")],
            "",
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let config = res.json();
    assert_eq!(config["RATE_LIMIT"], "100/1s");
    // The server's own settings, defaults and overrides alike.
    assert_eq!(config["DRAIN_DELAY"], 0.5);
    assert_eq!(config["BODY_READ_TIMEOUT"], 30.0);
    assert_eq!(config["BODY_TOTAL_TIMEOUT"], 0.0);
    assert_eq!(config["ADMIN_EMAIL"], "admin@example.com");
    // As given, from the configuration read at startup.
    assert_eq!(config["FORWARDED_ALLOW_IPS"], "10.0.0.0/8, 127.0.0.1");
    for secret in [
        "internal-secret",
        "jwt-secret-value-0123456789",
        "admin-secret-password",
    ] {
        assert!(!res.body.contains(secret), "{secret} leaked: {}", res.body);
    }
}

#[tokio::test]
async fn startup_warns_about_a_random_secret_and_the_default_admin_password() {
    let svc = Service::start(&[]).await;
    // It listened before migrating (startup answered 503 meanwhile).
    let all = {
        let mut lines = svc.startup_log.clone();
        for _ in 0..50 {
            if svc
                .log
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("\"started\""))
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        lines.extend(svc.log.lock().unwrap().iter().cloned());
        lines
    };
    let at = |msg: &str| all.iter().position(|l| l.contains(msg));
    assert!(
        at("migrations applied") > at("listening") || at("listening").is_none(),
        "{all:?}"
    );
    let log = svc.startup_log.join("\n");
    let warnings: Vec<&String> = svc
        .startup_log
        .iter()
        .filter(|l| l.to_lowercase().contains("warning"))
        .collect();
    assert!(
        warnings.iter().any(|l| l.contains("JWT_SECRET")),
        "no JWT_SECRET warning:\n{log}"
    );
    assert!(
        warnings.iter().any(|l| l.contains("admin@example.com")),
        "no admin account warning:\n{log}"
    );
    assert!(
        !log.contains("\"admin\"}"),
        "the password is logged:\n{log}"
    );

    let svc = Service::start(&[
        ("JWT_SECRET", "a-configured-secret-value"),
        ("ADMIN_PASSWORD", "a-strong-admin-password"),
    ])
    .await;
    let log = svc.startup_log.join("\n");
    assert!(!log.to_lowercase().contains("warning"), "{log}");
    assert!(!log.contains("a-strong-admin-password"), "{log}");
    svc.login("admin@example.com", "a-strong-admin-password")
        .await;
}

#[tokio::test]
async fn access_log_lines_carry_the_request_id_and_no_secrets() {
    let svc = Service::start(&[("ADMIN_PASSWORD", "very-secret-admin-pw")]).await;
    let token = svc.login("admin@example.com", "very-secret-admin-pw").await;
    let res = svc
        .request(
            "GET",
            "/api/v1/users/1",
            &[
                ("authorization", &bearer(&token)),
                ("x-request-id", "e2e-req-1"),
                (
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                ),
            ],
            "",
        )
        .await;
    assert_eq!(res.status, 200);
    assert!(
        res.header("traceparent")
            .unwrap()
            .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-")
    );
    // The line is written when the response head is ready: wait for it.
    let mut line = None;
    for _ in 0..50 {
        line = svc
            .log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["target"] == "ferrapi::access" && l["path"] == "/api/v1/users/1");
        if line.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let line = line.expect("no access log line");
    assert_eq!(line["route"], "/api/v1/users/{user_id}", "{line}");
    assert_eq!(line["status"], 200, "{line}");
    assert_eq!(line["method"], "GET", "{line}");
    let text = line.to_string();
    assert!(text.contains("e2e-req-1"), "{text}");
    assert!(text.contains("4bf92f3577b34da6a3ce929d0e0e4736"), "{text}");
    let all = svc.log.lock().unwrap().join("\n");
    assert!(!all.contains(&token), "a token was logged");
    assert!(
        !all.contains("very-secret-admin-pw"),
        "a password was logged"
    );
}

/// With `OTEL_EXPORTER_OTLP_ENDPOINT` set, the request's span reaches an
/// OTLP/HTTP receiver (a plain TCP listener here) in the caller's trace.
#[tokio::test]
async fn traces_are_exported_over_otlp_in_the_callers_trace() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        for _ in 0..100 {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut raw = Vec::new();
                let mut buf = [0u8; 65536];
                // One request per connection is enough for the check.
                for _ in 0..1000 {
                    let Ok(Ok(n)) = tokio::time::timeout(
                        std::time::Duration::from_millis(500),
                        conn.read(&mut buf),
                    )
                    .await
                    else {
                        break;
                    };
                    if n == 0 {
                        break;
                    }
                    raw.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&raw).to_lowercase();
                    if let Some(head_end) = text.find("\r\n\r\n") {
                        let len = text[..head_end]
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if raw.len() >= head_end + 4 + len {
                            break;
                        }
                    }
                }
                let _ = conn
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
                let _ = tx.send(raw);
            });
        }
    });
    let svc = Service::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ])
    .await;
    let trace_hex = "4bf92f3577b34da6a3ce929d0e0e4736";
    let res = svc
        .request(
            "GET",
            "/health/live",
            &[(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )],
            "",
        )
        .await;
    assert_eq!(res.status, 200);
    let trace_id: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&trace_hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let raw = tokio::time::timeout(left, rx.recv())
            .await
            .expect("no OTLP export within 20 s")
            .unwrap();
        let head = String::from_utf8_lossy(&raw[..raw.len().min(400)]).to_lowercase();
        assert!(head.starts_with("post /v1/traces"), "{head}");
        let has = |needle: &[u8]| raw.windows(needle.len()).any(|w| w == needle);
        if has(&trace_id) && has(b"/health/live") {
            break;
        }
    }
}

/// Behind a trusted proxy the client address and scheme come from
/// `X-Forwarded-For` / `X-Forwarded-Proto`; from anyone else they are ignored.
#[tokio::test]
async fn forwarded_headers_are_believed_from_trusted_proxies_only() {
    async fn access_line(svc: &Service, request_id: &str) -> Value {
        for _ in 0..100 {
            let found = svc
                .log
                .lock()
                .unwrap()
                .iter()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|l| l["target"] == "ferrapi::access" && l.to_string().contains(request_id));
            if let Some(line) = found {
                return line;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("no access line for {request_id}");
    }
    let headers = |id: &'static str| {
        [
            ("x-forwarded-for", "203.0.113.7"),
            ("x-forwarded-proto", "https"),
            ("x-request-id", id),
        ]
    };
    let trusted = Service::start(&[("FORWARDED_ALLOW_IPS", "127.0.0.1")]).await;
    trusted
        .request("GET", "/health/live", &headers("fwd-1"), "")
        .await;
    let line = access_line(&trusted, "fwd-1").await;
    assert_eq!(line["client_ip"], "203.0.113.7", "{line}");
    assert_eq!(line["scheme"], "https", "{line}");

    let untrusted = Service::start(&[]).await;
    untrusted
        .request("GET", "/health/live", &headers("fwd-2"), "")
        .await;
    let line = access_line(&untrusted, "fwd-2").await;
    assert_eq!(line["client_ip"], "127.0.0.1", "{line}");
    assert_eq!(line["scheme"], "http", "{line}");
}
