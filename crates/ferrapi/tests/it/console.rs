//! The console lines of a server without a tracing subscriber: the startup
//! line on stderr, one access line per request on stdout. The server runs in
//! a child process (this test binary, running only `console_child`), so that
//! no subscriber another test installed is in the way and its real standard
//! streams can be read.

use ferrapi::prelude::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[get("/items/{id}")]
async fn item(Path(id): Path<i64>) -> Json<i64> {
    Json(id)
}

/// The child: serves on `HOST`/`PORT` from the environment until killed.
/// Does nothing unless started by the parent test.
#[test]
fn console_child() {
    if std::env::var_os("FERRAPI_CONSOLE_CHILD").is_none() {
        return;
    }
    if let Err(e) = App::new().route(item).run() {
        eprintln!("child error: {e}");
    }
}

/// Starts the child with `env`; its stderr and stdout lines come through
/// the channels.
struct Child {
    process: std::process::Child,
    stderr: mpsc::Receiver<String>,
    stdout: mpsc::Receiver<String>,
}

impl Child {
    fn start(env: &[(&str, &str)]) -> Self {
        let exe = std::env::current_exe().unwrap();
        let mut cmd = Command::new(exe);
        cmd.args(["--exact", "console::console_child", "--nocapture"])
            .env("FERRAPI_CONSOLE_CHILD", "1")
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env("WORKERS", "1")
            .env_remove("FERRAPI_CONSOLE_LOG")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut process = cmd.spawn().unwrap();
        let lines = |r: Box<dyn Read + Send>| {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(r).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            rx
        };
        let stderr = lines(Box::new(process.stderr.take().unwrap()));
        let stdout = lines(Box::new(process.stdout.take().unwrap()));
        Self {
            process,
            stderr,
            stdout,
        }
    }

    /// The first line of `rx` containing `needle`, within 60 s.
    fn wait_for(rx: &mpsc::Receiver<String>, needle: &str) -> Option<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Some(line),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// One GET over HTTP/1.1; the status line.
fn get(addr: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.lines().next().unwrap_or_default().to_owned()
}

/// The address in the startup line: `… listening on http://ADDR (…`.
fn listening_addr(line: &str) -> String {
    let rest = line.split("listening on http://").nth(1).unwrap();
    rest.split_whitespace().next().unwrap().to_owned()
}

#[test]
fn server_without_subscriber_prints_startup_and_access_lines() {
    let child = Child::start(&[]);
    let line = Child::wait_for(&child.stderr, "listening on").expect("a startup line on stderr");
    assert!(
        line.starts_with("INFO:     ferrapi listening on http://127.0.0.1:"),
        "{line}"
    );
    let addr = listening_addr(&line);
    assert!(
        line.contains(&format!("docs: http://{addr}/docs")),
        "{line}"
    );
    assert!(get(&addr, "/items/5?token=secret").contains("200"));
    let access = Child::wait_for(&child.stdout, "\"GET /items/5 HTTP/1.1\"")
        .expect("an access line on stdout");
    assert!(access.starts_with("INFO:     127.0.0.1:"), "{access}");
    assert!(access.contains("\" 200 OK ("), "{access}");
    assert!(
        !access.contains("secret"),
        "the query is left out: {access}"
    );
    get(&addr, "/nowhere");
    let access = Child::wait_for(&child.stdout, "/nowhere").expect("a 404 access line");
    assert!(access.contains("\" 404 Not Found ("), "{access}");
}

#[test]
fn console_log_startup_prints_no_access_lines() {
    let child = Child::start(&[("FERRAPI_CONSOLE_LOG", "startup")]);
    let line = Child::wait_for(&child.stderr, "listening on").expect("a startup line");
    let addr = listening_addr(&line);
    assert!(get(&addr, "/items/1").contains("200"));
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.stdout.try_iter().all(|l| !l.contains("/items/1")),
        "no access line"
    );
}

#[test]
fn console_log_off_by_environment_prints_nothing() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let port = port.to_string();
    let child = Child::start(&[("FERRAPI_CONSOLE_LOG", "off"), ("PORT", &port)]);
    let addr = format!("127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the child never listened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(get(&addr, "/items/1").contains("200"));
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.stderr.try_iter().all(|l| !l.contains("listening on")),
        "no startup line"
    );
    assert!(
        child.stdout.try_iter().all(|l| !l.contains("/items/1")),
        "no access line"
    );
}

#[test]
fn console_log_bad_environment_value_is_a_config_error() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "console::console_child", "--nocapture"])
        .env("FERRAPI_CONSOLE_CHILD", "1")
        .env("PORT", "0")
        .env("FERRAPI_CONSOLE_LOG", "loud")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "child error: FERRAPI_CONSOLE_LOG: `loud` is not one of auto, on, startup, off"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("listening on"), "{stderr}");
}
