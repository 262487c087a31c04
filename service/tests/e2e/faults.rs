//! Fault injection with a real PostgreSQL: a private server (initdb in a
//! temporary folder, its own port, run as the `postgres` user) is stopped
//! and restarted under the running service. Readiness reports the outage
//! and the recovery by itself; requests that need the database fail fast
//! with 503 JSON, and everything works again without a restart.

use crate::Service;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn pg_bin(name: &str) -> Option<PathBuf> {
    let dir = std::fs::read_dir("/usr/lib/postgresql").ok()?;
    let mut versions: Vec<PathBuf> = dir.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    versions.sort();
    versions
        .into_iter()
        .rev()
        .map(|v| v.join("bin").join(name))
        .find(|p| p.exists())
}

/// `cmd` as the postgres user when we are root (PostgreSQL refuses root).
fn as_postgres(program: &Path) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if root {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

struct PrivatePg {
    dir: PathBuf,
    port: u16,
    pg_ctl: PathBuf,
}

impl PrivatePg {
    fn start() -> Option<PrivatePg> {
        let (Some(initdb), Some(pg_ctl)) = (pg_bin("initdb"), pg_bin("pg_ctl")) else {
            eprintln!("skipped: no PostgreSQL server binaries under /usr/lib/postgresql");
            return None;
        };
        let dir = std::env::temp_dir().join(format!("ferrapi-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let _ = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&dir)
            .status();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let out = as_postgres(&initdb)
            .args(["-D"])
            .arg(dir.join("data"))
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8"])
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb: {out:?}");
        let pg = PrivatePg { dir, port, pg_ctl };
        pg.up();
        Some(pg)
    }

    fn up(&self) {
        let out = as_postgres(&self.pg_ctl)
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-o")
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1",
                self.port,
                self.dir.display()
            ))
            .arg("-l")
            .arg(self.dir.join("log"))
            .args(["-w", "-t", "30", "start"])
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl start: {out:?}");
    }

    fn down(&self) {
        let out = as_postgres(&self.pg_ctl)
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "-t", "30", "stop"])
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl stop: {out:?}");
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = as_postgres(&self.pg_ctl)
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Polls `/health/ready` until it answers `want` (at most `secs`).
async fn ready_becomes(svc: &Service, want: u16, secs: u64) -> (u16, f64) {
    let start = Instant::now();
    loop {
        let res = svc.get("/health/ready").await;
        if res.status == want || start.elapsed() > Duration::from_secs(secs) {
            return (res.status, start.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn postgres_outage_is_reported_and_recovered_without_restart() {
    if std::env::var("TEST_POSTGRES_URL").is_err() {
        eprintln!("skipped: TEST_POSTGRES_URL not set");
        return;
    }
    let Some(pg) = PrivatePg::start() else {
        return;
    };
    let url = pg.url();
    let svc = Service::start(&[("DATABASE_URL", url.as_str())]).await;
    svc.login_admin().await;
    let (status, _) = ready_becomes(&svc, 200, 10).await;
    assert_eq!(status, 200);
    // Read once: the user (and the caller's principal) are now cached.
    assert_eq!(svc.get("/api/v1/users/1").await.status, 200);

    pg.down();
    let (status, after) = ready_becomes(&svc, 503, 10).await;
    assert_eq!(
        status, 503,
        "readiness still {status} {after:.1} s after the stop"
    );
    let res = svc.get("/health/ready").await;
    assert!(res.json()["checks"]["database"] != "ok", "{}", res.body);
    assert!(res.json()["detail"].as_str().unwrap().contains("database"));
    // A cached read costs no database query at all: it is still answered
    // with the database gone (the request's transaction never begins).
    let res = svc.get("/api/v1/users/1").await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json()["email"], "admin@example.com");
    // An uncached read needs the database: 503, fast.
    let res = svc.get("/api/v1/users/2").await;
    assert_eq!(res.status, 503, "{}", res.body);
    // A write that needs the database fails fast, as JSON, not a 500 storm.
    let start = Instant::now();
    let res = svc
        .post_json(
            "/api/v1/users",
            &json!({"name": "During Outage", "email": "outage@example.com", "age": 30}),
        )
        .await;
    assert_eq!(res.status, 503, "{}", res.body);
    assert!(res.json()["detail"].is_string(), "{}", res.body);
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "took {:?}",
        start.elapsed()
    );

    pg.up();
    let (status, after) = ready_becomes(&svc, 200, 30).await;
    assert_eq!(
        status, 200,
        "readiness still {status} {after:.1} s after the restart"
    );
    let res = svc
        .post_json(
            "/api/v1/users",
            &json!({"name": "After Outage", "email": "after@example.com", "age": 30}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.body);
}
