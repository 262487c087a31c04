//! Black-box tests: the built binary, started on 127.0.0.1, spoken to over
//! a real socket as any HTTP client would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod cli;
mod decompression;
mod faults;
mod golden;
mod postgres;
mod realtime;
mod shutdown;
mod users;

use serde_json::Value;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_ferrapi-service");

/// A fresh folder for one test's data.
pub fn temp_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ferrapi-e2e-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Shared mode (`E2E_SHARED=1` with `TEST_POSTGRES_URL`, `TEST_REDIS_URL`
/// and `TEST_NATS_URL`): every service of the suite runs on PostgreSQL,
/// Redis and NATS instead of SQLite and in-process backends, each test with
/// its own database and namespace. CI runs the suite in both modes.
pub struct Shared {
    pub postgres: String,
    pub redis: String,
    pub nats: String,
}

pub fn shared_mode() -> Option<Shared> {
    if std::env::var("E2E_SHARED").ok().as_deref() != Some("1") {
        return None;
    }
    let var =
        |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("E2E_SHARED=1 needs {name}"));
    Some(Shared {
        postgres: var("TEST_POSTGRES_URL"),
        redis: var("TEST_REDIS_URL"),
        nats: var("TEST_NATS_URL"),
    })
}

/// The namespace (and database name) of a test's folder.
/// Runs `ferrapi-service <command>` (`openapi`, `asyncapi`) with `env`
/// and returns what it printed, asserting that it succeeded.
pub fn print_document(command: &str, env: &[(&str, &str)]) -> Vec<u8> {
    let out = std::process::Command::new(BIN)
        .arg(command)
        .env("LOG_FORMAT", "json")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub fn namespace_for(dir: &std::path::Path) -> String {
    dir.file_name()
        .map(|n| {
            n.to_string_lossy()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        })
        .unwrap_or_else(|| "e2e".to_owned())
}

/// The `DATABASE_URL` of a test's folder: its SQLite file, or in shared
/// mode a PostgreSQL database created on first use.
pub async fn database_url_for(dir: &std::path::Path) -> String {
    let Some(shared) = shared_mode() else {
        return format!("sqlite://{}/app.db", dir.display());
    };
    use sqlx::Connection;
    let name = namespace_for(dir);
    let mut conn = sqlx::PgConnection::connect(&shared.postgres).await.unwrap();
    let exists = sqlx::query("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_optional(&mut conn)
        .await
        .unwrap()
        .is_some();
    if !exists {
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let base = shared
        .postgres
        .rsplit_once('/')
        .map_or(shared.postgres.as_str(), |(b, _)| b);
    format!("{base}/{name}")
}

/// Runs one SQL statement on a test's database behind the service's back.
pub async fn sql_behind_the_back(dir: &std::path::Path, statement: &str) {
    if shared_mode().is_some() {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&database_url_for(dir).await)
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
            .execute(&mut conn)
            .await
            .unwrap();
    } else {
        let out = std::process::Command::new("sqlite3")
            .arg(dir.join("app.db"))
            .arg(statement)
            .output()
            .expect("sqlite3 (Debian package sqlite3) runs");
        assert!(out.status.success(), "{out:?}");
    }
}

/// The service running on 127.0.0.1 on a free port.
pub struct Service {
    pub child: Child,
    pub addr: String,
    pub dir: PathBuf,
    /// Sent as `Authorization: Bearer …` by every request that does not set
    /// an `authorization` header itself (an empty one sends none).
    pub token: std::sync::Mutex<Option<String>>,
    /// The log lines printed before "listening".
    pub startup_log: Vec<String>,
    /// Every log line printed after "listening", as they come.
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Service {
    /// Starts the binary with a fresh SQLite file and waits until it listens.
    pub async fn start(extra_env: &[(&str, &str)]) -> Service {
        Self::start_in(temp_dir(), extra_env).await
    }

    /// Starts the binary on the database of `dir` (kept between runs): the
    /// SQLite file in it, or in shared mode its PostgreSQL database.
    pub async fn start_in(dir: PathBuf, extra_env: &[(&str, &str)]) -> Service {
        let db = database_url_for(&dir).await;
        let mut cmd = Command::new(BIN);
        cmd.env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env("LOG_FORMAT", "json")
            .env("DATABASE_URL", &db)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some(shared) = shared_mode() {
            cmd.env("REDIS_URL", &shared.redis)
                .env("NATS_URL", &shared.nats)
                .env("SHARED_NAMESPACE", namespace_for(&dir));
        }
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start the service");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut startup_log = Vec::new();
        let addr = loop {
            assert!(
                Instant::now() < deadline,
                "the service did not start listening"
            );
            let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
                .await
                .expect("no log line")
                .expect("read stdout")
                .expect("the service exited before listening");
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && v["message"] == "listening"
            {
                break v["addr"].as_str().unwrap().to_owned();
            }
            startup_log.push(line);
        };
        // Keep draining the log so the service never blocks on a full pipe.
        // It listens while migrating: wait until it has started.
        let started = Instant::now();
        loop {
            let status = probe_status(&addr, "/health/startup").await;
            if status == Some(200) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "/health/startup still {status:?} after 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // In shared mode the Redis and NATS connections come up in the
        // background: wait until the service reports ready (bounded).
        if shared_mode().is_some() && !extra_env.iter().any(|(k, _)| *k == "DATABASE_URL") {
            for _ in 0..100 {
                if probe_status(&addr, "/health/ready").await == Some(200) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        Service {
            child,
            addr,
            dir,
            token: std::sync::Mutex::new(None),
            startup_log,
            log,
        }
    }

    /// Sends a request and reads the response.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Response {
        self.request_bytes(method, path, headers, body.as_bytes())
            .await
    }

    /// Sends a request with a binary body. A server that answers before
    /// reading all of it (413) may close the connection: write errors are
    /// ignored and the response is read.
    pub async fn request_bytes(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let (status, headers, body) = self.exchange(method, path, headers, body).await;
        Response {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// `GET` returning (status, content type, raw body).
    pub async fn get_bytes(&self, path: &str) -> (u16, Option<String>, Vec<u8>) {
        let (status, headers, body) = self.exchange("GET", path, &[], b"").await;
        let content_type = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.clone());
        (status, content_type, body)
    }

    async fn exchange(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let mut stream = TcpStream::connect(&self.addr).await.unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n",
            self.addr
        );
        let explicit_auth = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("authorization"));
        if !explicit_auth && let Some(token) = self.token.lock().unwrap().clone() {
            req.push_str(&format!("authorization: Bearer {token}\r\n"));
        }
        for (k, v) in headers {
            if !v.is_empty() {
                req.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        req.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
        stream.write_all(req.as_bytes()).await.unwrap();
        let _ = stream.write_all(body).await;
        read_raw(&mut stream).await
    }

    /// Logs in with the OAuth2 password flow and returns the access token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let form = format!(
            "username={}&password={}",
            email.replace('@', "%40"),
            password
        );
        let res = self
            .request(
                "POST",
                "/api/v1/auth/token",
                &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("authorization", ""),
                ],
                &form,
            )
            .await;
        assert_eq!(res.status, 200, "login failed: {}", res.body);
        res.json()["access_token"].as_str().unwrap().to_owned()
    }

    /// Logs in as the bootstrap administrator and sends its token from now on.
    pub async fn login_admin(&self) -> String {
        let token = self.login("admin@example.com", "admin").await;
        *self.token.lock().unwrap() = Some(token.clone());
        token
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], "").await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.request(
            "POST",
            path,
            &[("content-type", "application/json")],
            &body.to_string(),
        )
        .await
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(shared) = shared_mode() {
            let _ = self.child.start_kill();
            let name = namespace_for(&self.dir);
            let _ = std::process::Command::new("psql")
                .arg(&shared.postgres)
                .arg("-qc")
                .arg(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .output();
        }
    }
}

/// A response read in full (the server closes the connection).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// The status of `GET path`, or `None` while nothing answers.
async fn probe_status(addr: &str, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.ok()?;
    Some(read_response(&mut stream).await.status)
}

pub async fn read_response(stream: &mut TcpStream) -> Response {
    let (status, headers, body) = read_raw(stream).await;
    Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// Reads a whole response (the server closes the connection): status,
/// headers, raw body (de-chunked when `Transfer-Encoding: chunked`).
pub async fn read_raw(stream: &mut TcpStream) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut raw = Vec::new();
    // A reset after the response (the server refused the rest of a body)
    // still leaves what was read.
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
        .await
        .expect("response timed out");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head: {}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    (status, headers, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..1_000_000 {
        let Some(end) = data.windows(2).position(|w| w == b"\r\n") else {
            break;
        };
        let size_line = String::from_utf8_lossy(&data[..end]);
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or(0);
        data = &data[end + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
    out
}
