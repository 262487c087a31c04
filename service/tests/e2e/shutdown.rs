//! SIGTERM while a request is in flight: the listener closes, the request
//! (an upload half sent) completes, the process exits 0.

use crate::{Service, read_response};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn send_signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

#[tokio::test]
async fn sigterm_finishes_the_request_in_flight_and_exits_zero() {
    let mut svc = Service::start(&[]).await;
    let pid = svc.child.id().unwrap();
    let token = svc.login("admin@example.com", "admin").await;
    let body = r#"{"name": "Grace Hopper", "email": "grace@example.com", "age": 85}"#;
    let (first, rest) = body.split_at(20);

    let mut stream = TcpStream::connect(&svc.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/users HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    send_signal(pid, "TERM");

    // The listener closes within 5 s: new connections are refused.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if TcpStream::connect(&svc.addr).await.is_err() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still accepting connections 5 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The half-sent upload completes and is answered.
    stream.write_all(rest.as_bytes()).await.unwrap();
    let res = read_response(&mut stream).await;
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(res.json()["email"], "grace@example.com");

    let status = tokio::time::timeout(Duration::from_secs(30), svc.child.wait())
        .await
        .expect("the process did not exit")
        .unwrap();
    assert_eq!(status.code(), Some(0));
}
