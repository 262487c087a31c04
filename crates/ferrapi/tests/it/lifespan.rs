//! Startup and shutdown hooks around a real server.

use ferrapi::prelude::*;
use ferrapi::testing::TestServer;
use std::sync::{Arc, Mutex};

type Events = Arc<Mutex<Vec<String>>>;

#[get("/events")]
async fn events(State(log): State<Events>) -> String {
    log.lock().unwrap().join(",")
}

fn app(log: &Events) -> App {
    let (a, b, c, d) = (log.clone(), log.clone(), log.clone(), log.clone());
    App::new()
        .state(log.clone())
        .route(events)
        .on_startup("open", move || async move {
            a.lock().unwrap().push("open".into());
            Ok(())
        })
        .on_startup("warm", move || async move {
            // Slow on purpose: no request is served before it finishes.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            b.lock().unwrap().push("warm".into());
            Ok(())
        })
        .on_shutdown("close", move || async move {
            c.lock().unwrap().push("close".into());
            Ok(())
        })
        .on_shutdown("drain", move || async move {
            d.lock().unwrap().push("drain".into());
            Err(HttpError::internal().into())
        })
}

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out.split("\r\n\r\n").nth(1).unwrap_or("").to_owned()
}

#[tokio::test]
async fn startup_hooks_run_before_serving_and_shutdown_hooks_after_in_reverse() {
    let log: Events = Arc::default();
    let server = TestServer::start(app(&log)).await;
    // The first request waits for the startup hooks.
    assert_eq!(get(server.addr(), "/events").await, "open,warm");
    server.stop().await.unwrap();
    // Shutdown hooks ran in reverse order; a failing one does not stop the next.
    assert_eq!(log.lock().unwrap().join(","), "open,warm,drain,close");
}

#[tokio::test]
async fn a_failing_startup_hook_stops_the_server_before_it_serves() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = App::new()
        .state(Events::default())
        .route(events)
        .on_startup("connect to the database", || async {
            Err(HttpError::new(ferrapi::http::StatusCode::SERVICE_UNAVAILABLE, "down").into())
        });
    let result = app
        .serve_with(
            listener,
            ferrapi::ServeConfig::default(),
            std::future::pending(),
        )
        .await;
    match result {
        Err(ferrapi::ServeError::Startup { hook, .. }) => {
            assert_eq!(hook, "connect to the database")
        }
        other => panic!("expected a startup error, got {other:?}"),
    }
}
