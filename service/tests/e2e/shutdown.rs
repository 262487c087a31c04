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

/// `worker` runs the pending welcome tasks of a database without serving
/// HTTP, and stops on SIGTERM with status 0.
#[tokio::test]
async fn the_worker_subcommand_runs_pending_tasks() {
    use tokio::io::AsyncBufReadExt;
    let env = [
        ("NOTIFICATION_DELAY_MS", "1500"),
        ("JWT_SECRET", "worker-test-secret-0123456789"),
    ];
    let mut svc = Service::start(&env).await;
    let token = svc.login_admin().await;
    let res = svc
        .post_json(
            "/api/v1/users",
            &serde_json::json!({"name": "Queued", "email": "queued@example.com", "age": 30}),
        )
        .await;
    let id = res.json()["id"].as_i64().unwrap();
    svc.child.start_kill().unwrap();
    svc.child.wait().await.unwrap();

    // Only a worker: it delivers the welcome once the delay has passed.
    let mut worker_cmd = tokio::process::Command::new(crate::BIN);
    worker_cmd
        .arg("worker")
        .env("LOG_FORMAT", "json")
        .env("DATABASE_URL", crate::database_url_for(&svc.dir).await)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true);
    if let Some(shared) = crate::shared_mode() {
        worker_cmd
            .env("REDIS_URL", &shared.redis)
            .env("NATS_URL", &shared.nats)
            .env("SHARED_NAMESPACE", crate::namespace_for(&svc.dir));
    }
    let mut worker = worker_cmd.spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(worker.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "the worker sent no welcome");
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("no log line")
            .unwrap()
            .expect("the worker exited");
        if line.contains("welcome notification sent") {
            assert!(line.contains(&format!("\"user_id\":{id}")), "{line}");
            break;
        }
    }
    send_signal(worker.id().unwrap(), "TERM");
    let status = tokio::time::timeout(Duration::from_secs(30), worker.wait())
        .await
        .expect("the worker did not stop")
        .unwrap();
    assert_eq!(status.code(), Some(0));

    // A server started afterwards finds the notification already there.
    let again = Service::start_in(svc.dir.clone(), &env).await;
    *again.token.lock().unwrap() = Some(token);
    let list = again
        .get(&format!("/api/v1/users/{id}/notifications"))
        .await
        .json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}
