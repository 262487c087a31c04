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

#[derive(Clone)]
struct Pool(String);

#[get("/pool")]
async fn pool(State(pool): State<Pool>) -> String {
    pool.0
}

/// A pool opened with `.await` in a startup hook is application state.
#[tokio::test]
async fn a_startup_hook_makes_state_the_routes_read() {
    let app = App::new()
        .on_startup_state("open the pool", || async {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            Ok(Pool("pool from the hook".into()))
        })
        .route(pool);
    // The build's state check counts the promised state as registered.
    app_builds(
        App::new()
            .on_startup_state("p", || async { Ok(Pool(String::new())) })
            .route(pool),
    );
    let server = TestServer::start(app).await;
    assert_eq!(get(server.addr(), "/pool").await, "pool from the hook");
    server.stop().await.unwrap();
}

fn app_builds(app: App) {
    app.build().unwrap();
}

/// A mounted app's hooks run after its parent's startup hooks and before
/// its parent's shutdown hooks; the state its hook makes is its own.
#[tokio::test]
async fn mounted_apps_hooks_run_inside_the_parents() {
    let log: Events = Arc::default();
    let (a, b, c, d) = (log.clone(), log.clone(), log.clone(), log.clone());
    let v2 = App::new()
        .route(pool)
        .on_startup_state("v2 pool", move || async move {
            a.lock().unwrap().push("v2 open".into());
            Ok(Pool("v2 pool".into()))
        })
        .on_shutdown("v2 close", move || async move {
            b.lock().unwrap().push("v2 close".into());
            Ok(())
        });
    let main = App::new()
        .state(log.clone())
        .route(events)
        .on_startup("main open", move || async move {
            c.lock().unwrap().push("main open".into());
            Ok(())
        })
        .on_shutdown("main close", move || async move {
            d.lock().unwrap().push("main close".into());
            Ok(())
        })
        .mount("/v2", v2);
    let server = TestServer::start(main).await;
    assert_eq!(get(server.addr(), "/v2/pool").await, "v2 pool");
    server.stop().await.unwrap();
    assert_eq!(
        log.lock().unwrap().join(","),
        "main open,v2 open,v2 close,main close"
    );
}

/// A route mistake found after the startup hooks ran: the shutdown hooks
/// clean up, and the build error is returned.
#[tokio::test]
async fn a_build_error_after_startup_runs_the_shutdown_hooks() {
    let log: Events = Arc::default();
    let (a, b) = (log.clone(), log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let result = App::new()
        .route(pool) // no `Pool` state: a build error
        .on_startup("open", move || async move {
            a.lock().unwrap().push("open".into());
            Ok(())
        })
        .on_shutdown("close", move || async move {
            b.lock().unwrap().push("close".into());
            Ok(())
        })
        .serve_with(listener, ferrapi::ServeConfig::default(), async {})
        .await;
    assert!(
        matches!(result, Err(ferrapi::ServeError::Build(_))),
        "{result:?}"
    );
    assert_eq!(log.lock().unwrap().join(","), "open,close");
}
