//! The drain on shutdown, over real sockets: readiness 503 and
//! `Connection: close` while the listener still accepts, then the listener
//! closes; keep-alive clients sending back to back across the signal are
//! always answered.

use ferrapi::http::StatusCode;
use ferrapi::prelude::*;
use ferrapi::testing::TestServer;
use ferrapi::{Draining, ServeConfig};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[get("/hello")]
async fn hello() -> &'static str {
    "hello"
}

#[get("/ready")]
async fn ready(State(draining): State<Draining>) -> (StatusCode, &'static str) {
    if draining.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining")
    } else {
        (StatusCode::OK, "ok")
    }
}

fn config(drain_delay: Duration) -> ServeConfig {
    ServeConfig {
        drain_delay,
        ..ServeConfig::default()
    }
}

/// An HTTP/1.1 response: status and lower-cased head.
struct Answer {
    status: u16,
    head: String,
}

impl Answer {
    fn closes(&self) -> bool {
        self.head.lines().any(|l| l == "connection: close")
    }
}

/// How a request on a connection ended without an answer.
#[derive(Debug, PartialEq)]
enum Unanswered {
    /// Closed or reset before any response byte.
    Cut,
    /// Closed after part of the response.
    Broken,
}

/// Sends `GET path` and reads one `content-length` response (10 s bound).
async fn get(stream: &mut TcpStream, path: &str) -> Result<Answer, Unanswered> {
    let req = format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n");
    if stream.write_all(req.as_bytes()).await.is_err() {
        return Err(Unanswered::Cut);
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let status = head
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                return Ok(Answer { status, head });
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let n = match tokio::time::timeout(left, stream.read(&mut chunk)).await {
            Ok(Ok(n)) => n,
            Ok(Err(_)) => 0,
            Err(_) => panic!("no answer within 10 s"),
        };
        if n == 0 {
            return Err(if buf.is_empty() {
                Unanswered::Cut
            } else {
                Unanswered::Broken
            });
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_answers_503_with_connection_close_then_closes_the_listener() {
    let drain = Duration::from_millis(800);
    let server = TestServer::start_with(App::new().route(hello).route(ready), config(drain)).await;
    let addr = server.addr();
    let mut kept = TcpStream::connect(addr).await.unwrap();
    let before = get(&mut kept, "/hello").await.unwrap();
    assert_eq!(before.status, 200);
    assert!(!before.closes(), "{}", before.head);
    let mut probe = TcpStream::connect(addr).await.unwrap();
    let ok = get(&mut probe, "/ready").await.unwrap();
    assert_eq!(ok.status, 200);
    drop(probe);

    let signalled = Instant::now();
    let stopping = tokio::spawn(server.stop());
    // A readiness probe on a new connection: 503 while the listener still
    // accepts, with `Connection: close`.
    let draining = loop {
        assert!(
            signalled.elapsed() < Duration::from_secs(2),
            "readiness never answered 503"
        );
        let mut probe = TcpStream::connect(addr)
            .await
            .expect("the listener closed before the drain delay");
        let answer = get(&mut probe, "/ready").await.unwrap();
        if answer.status == 503 {
            break answer;
        }
        assert!(!answer.closes(), "{}", answer.head);
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(draining.closes(), "{}", draining.head);
    assert!(signalled.elapsed() < drain, "{:?}", signalled.elapsed());

    // The kept-alive connection is still served, told to close, then closed.
    let last = get(&mut kept, "/hello").await.unwrap();
    assert_eq!(last.status, 200);
    assert!(last.closes(), "{}", last.head);
    let mut rest = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), kept.read(&mut rest))
        .await
        .expect("the server kept the connection open")
        .unwrap_or(0);
    assert_eq!(n, 0, "bytes after a `Connection: close` answer");

    // Then the listener closes: after the drain delay, within a second more.
    let closed = loop {
        let elapsed = signalled.elapsed();
        if TcpStream::connect(addr).await.is_err() {
            break elapsed;
        }
        assert!(
            elapsed < drain + Duration::from_secs(1),
            "still accepting {elapsed:?} after the signal"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(
        closed >= drain,
        "listener closed after {closed:?}, before the drain delay"
    );
    stopping.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_clients_sending_back_to_back_across_the_signal_are_always_answered() {
    let drain = Duration::from_millis(500);
    let server = TestServer::start_with(App::new().route(hello), config(drain)).await;
    let addr = server.addr();

    /// What one client saw.
    #[derive(Default, Debug)]
    struct Seen {
        answered: usize,
        told_to_close: usize,
        /// Requests on a connection that had answered before, cut unanswered.
        cut_on_kept_alive: usize,
        /// Connections accepted but reset unanswered (the accept backlog
        /// when the listener closed: the same as a refused connect).
        cut_on_new: usize,
        broken: usize,
        refused: bool,
    }

    let client = move || async move {
        let mut seen = Seen::default();
        let started = Instant::now();
        let mut conn: Option<(TcpStream, bool)> = None;
        // Until the first refused connect (the listener closed); 10 s bound.
        while started.elapsed() < Duration::from_secs(10) {
            let (mut stream, reused) = match conn.take() {
                Some(c) => c,
                None => match TcpStream::connect(addr).await {
                    Ok(s) => (s, false),
                    Err(_) => {
                        seen.refused = true;
                        break;
                    }
                },
            };
            match get(&mut stream, "/hello").await {
                Ok(answer) => {
                    assert_eq!(answer.status, 200, "{}", answer.head);
                    seen.answered += 1;
                    if answer.closes() {
                        seen.told_to_close += 1;
                    } else {
                        conn = Some((stream, true));
                    }
                }
                Err(Unanswered::Cut) if reused => seen.cut_on_kept_alive += 1,
                Err(Unanswered::Cut) => seen.cut_on_new += 1,
                Err(Unanswered::Broken) => seen.broken += 1,
            }
        }
        seen
    };
    let clients: Vec<_> = (0..8).map(|_| tokio::spawn(client())).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopping = tokio::spawn(server.stop());
    let mut seen = Vec::new();
    for c in clients {
        seen.push(c.await.unwrap());
    }
    stopping.await.unwrap().unwrap();
    for s in &seen {
        assert!(s.refused, "a client never saw the listener close: {s:?}");
        assert!(s.answered > 0 && s.told_to_close > 0, "{s:?}");
        assert_eq!(s.cut_on_kept_alive, 0, "{s:?}");
        assert_eq!(s.broken, 0, "{s:?}");
        assert!(s.cut_on_new <= 1, "{s:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_drain_delay_closes_the_listener_at_once() {
    let server = TestServer::start_with(App::new().route(ready), config(Duration::ZERO)).await;
    let addr = server.addr();
    let mut probe = TcpStream::connect(addr).await.unwrap();
    assert_eq!(get(&mut probe, "/ready").await.unwrap().status, 200);
    let signalled = Instant::now();
    server.stop().await.unwrap();
    assert!(signalled.elapsed() < Duration::from_millis(500));
    assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
    // The kept-alive probe connection was idle: closed by the shutdown.
    assert_eq!(get(&mut probe, "/ready").await.err(), Some(Unanswered::Cut));
}
