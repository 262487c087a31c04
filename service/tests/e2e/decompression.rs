//! Compressed request bodies: decoded for the handlers, bombs refused
//! (docs/reliability.md, finding 4).

use crate::Service;
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::json;
use std::io::Write;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(data).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}

#[tokio::test]
async fn gzip_json_is_decoded_and_a_bomb_is_413() {
    let svc = Service::start(&[]).await;
    svc.login_admin().await;
    let gz = [
        ("content-type", "application/json"),
        ("content-encoding", "gzip"),
    ];

    // A gzip-encoded create works like a plain one.
    let body = json!({"name": "Gzip Body", "email": "gzip@example.com", "age": 30});
    let res = svc
        .request_bytes(
            "POST",
            "/api/v1/users",
            &gz,
            &gzip(body.to_string().as_bytes()),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(res.json()["email"], "gzip@example.com");
    let id = res.json()["id"].clone();
    let res = svc.get(&format!("/api/v1/users/{id}")).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json()["name"], "Gzip Body");

    // 64 MiB of zeros in about 64 KiB: refused by the body limit (1 MiB by
    // default) as it inflates, never held whole.
    let bomb = gzip(&vec![0u8; 64 << 20]);
    assert!(bomb.len() < 128 << 10, "{} bytes", bomb.len());
    let res = svc.request_bytes("POST", "/api/v1/users", &gz, &bomb).await;
    assert_eq!(res.status, 413, "{}", res.body);
    assert!(res.json()["detail"].is_string(), "{}", res.body);

    // A body that is not gzip at all, and an encoding the service does not
    // take, are refused before any handler runs.
    let res = svc
        .request_bytes("POST", "/api/v1/users", &gz, body.to_string().as_bytes())
        .await;
    assert_eq!(res.status, 400, "{}", res.body);
    let res = svc
        .request_bytes(
            "POST",
            "/api/v1/users",
            &[
                ("content-type", "application/json"),
                ("content-encoding", "br"),
            ],
            b"\x0b\x00\x80",
        )
        .await;
    assert_eq!(res.status, 415, "{}", res.body);
    assert_eq!(res.json()["email"], serde_json::Value::Null);

    // The service still serves.
    assert_eq!(svc.get("/health/live").await.status, 200);
}
