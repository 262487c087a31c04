//! Dependency injection: nested resolution cached once per request,
//! cleanup with the outcome, router-level dependencies, overrides, cycles,
//! and documentation of what dependencies read.

use ferrapi::extract::{Dependency, Depends, Outcome, Rejection, RequestContext, defer};
use ferrapi::http::request::Parts;
use ferrapi::prelude::*;
use ferrapi::testing::TestClient;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Counts constructions and records cleanups, per app.
#[derive(Clone, Default)]
struct Probe {
    settings: Arc<AtomicUsize>,
    db: Arc<AtomicUsize>,
    users: Arc<AtomicUsize>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Probe {
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

#[derive(Clone, Debug)]
struct Settings {
    prefix: String,
}

impl Dependency for Settings {
    async fn resolve(_parts: &mut Parts, cx: &RequestContext) -> Result<Self, Rejection> {
        let probe = cx.state::<Probe>().unwrap();
        probe.settings.fetch_add(1, Ordering::SeqCst);
        Ok(Settings {
            prefix: "user-".into(),
        })
    }
}

/// A request-scoped "transaction": committed on success, rolled back otherwise.
#[derive(Clone, Debug)]
struct Db {
    id: usize,
    prefix: String,
}

#[ferrapi::dependency]
async fn open_db(Depends(settings): Depends<Settings>, State(probe): State<Probe>) -> Db {
    let id = probe.db.fetch_add(1, Ordering::SeqCst);
    Db {
        id,
        prefix: settings.prefix,
    }
}

/// Cleanup is registered by a dependency of its own, to show order.
#[derive(Clone, Debug)]
struct Tx;

impl Dependency for Tx {
    async fn resolve(parts: &mut Parts, cx: &RequestContext) -> Result<Self, Rejection> {
        use ferrapi::FromRequestParts;
        let Depends(db) = Depends::<Db>::from_request_parts(parts, cx).await?;
        let probe = cx.state::<Probe>().unwrap().clone();
        probe.log.lock().unwrap().push(format!("begin {}", db.id));
        defer(parts, move |outcome| async move {
            let what = if outcome.is_success() {
                "commit"
            } else {
                "rollback"
            };
            probe
                .log
                .lock()
                .unwrap()
                .push(format!("{what} {:?}", outcome));
            Ok(())
        });
        Ok(Tx)
    }
}

#[derive(Deserialize, JsonSchema, Validate)]
struct AuthHeader {
    /// The caller's name.
    x_user: String,
}

#[derive(Clone, Debug)]
struct CurrentUser {
    name: String,
    db_id: usize,
}

#[ferrapi::dependency]
async fn current_user(
    Depends(db): Depends<Db>,
    Depends(_tx): Depends<Tx>,
    Header(h): Header<AuthHeader>,
    State(probe): State<Probe>,
) -> Result<CurrentUser, HttpError> {
    probe.users.fetch_add(1, Ordering::SeqCst);
    if h.x_user == "nobody" {
        return Err(HttpError::unauthorized("Not authenticated"));
    }
    let probe_log = probe.log.clone();
    let name = format!("{}{}", db.prefix, h.x_user);
    probe_log.lock().unwrap().push(format!("user {name}"));
    Ok(CurrentUser { name, db_id: db.id })
}

#[derive(Deserialize, JsonSchema, Validate)]
struct Mode {
    #[serde(default)]
    fail: Option<String>,
}

/// Three parameters need `Db` (two through `CurrentUser` and `Tx`).
#[get("/me")]
async fn me(
    Depends(db): Depends<Db>,
    Depends(user): Depends<CurrentUser>,
    Depends(_tx): Depends<Tx>,
    Query(mode): Query<Mode>,
) -> Result<Json<Value>, HttpError> {
    match mode.fail.as_deref() {
        Some("http") => Err(HttpError::conflict("nope")),
        Some("panic") => panic!("handler panicked"),
        Some("slow") => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(Json(json!({})))
        }
        _ => Ok(Json(
            json!({"user": user.name, "db": db.id, "same_db": db.id == user.db_id}),
        )),
    }
}

fn app(probe: &Probe) -> App {
    App::new().state(probe.clone()).route(me)
}

#[tokio::test]
async fn a_chain_is_resolved_once_per_request() {
    let probe = Probe::default();
    let client = TestClient::new(app(&probe));
    let res = client.get("/me").header("x-user", "ada").send().await;
    assert_eq!(res.status(), 200, "{}", res.text());
    assert_eq!(
        res.json::<Value>(),
        json!({"user": "user-ada", "db": 0, "same_db": true})
    );
    assert_eq!(probe.settings.load(Ordering::SeqCst), 1);
    assert_eq!(probe.db.load(Ordering::SeqCst), 1);
    assert_eq!(probe.users.load(Ordering::SeqCst), 1);
    // A second request resolves everything again, once.
    let res = client.get("/me").header("x-user", "bob").send().await;
    assert_eq!(res.json::<Value>()["db"], 1);
    assert_eq!(probe.db.load(Ordering::SeqCst), 2);
    assert_eq!(probe.settings.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn cleanup_commits_on_success_and_rolls_back_on_errors() {
    let probe = Probe::default();
    let client = TestClient::new(app(&probe));
    client.get("/me").header("x-user", "ada").send().await;
    assert_eq!(probe.log(), ["begin 0", "user user-ada", "commit Success"]);

    probe.log.lock().unwrap().clear();
    let res = client
        .get("/me?fail=http")
        .header("x-user", "ada")
        .send()
        .await;
    assert_eq!(res.status(), 409);
    assert_eq!(probe.log(), ["begin 1", "user user-ada", "rollback Error"]);

    // A dependency failing with an HttpError short-circuits the request;
    // what was begun is rolled back.
    probe.log.lock().unwrap().clear();
    let res = client.get("/me").header("x-user", "nobody").send().await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.header("www-authenticate"), Some("Bearer"));
    assert_eq!(probe.log(), ["begin 2", "rollback Error"]);

    // Validation errors of a dependency's inputs are a 422, and roll back too.
    probe.log.lock().unwrap().clear();
    let res = client.get("/me").send().await;
    assert_eq!(res.status(), 422);
    assert_eq!(
        res.json::<Value>()["detail"][0]["loc"],
        json!(["header", "x-user"])
    );
    assert_eq!(probe.log(), ["begin 3", "rollback Error"]);
}

#[tokio::test]
async fn cleanup_runs_after_a_panic() {
    let probe = Probe::default();
    let client = TestClient::new(app(&probe));
    let res = client
        .get("/me?fail=panic")
        .header("x-user", "ada")
        .send()
        .await;
    assert_eq!(res.status(), 500);
    wait_for(&probe, "rollback Panicked").await;
}

#[tokio::test]
async fn cleanup_runs_when_the_request_is_dropped() {
    let probe = Probe::default();
    let client = TestClient::new(app(&probe));
    let request = client.get("/me?fail=slow").header("x-user", "ada").send();
    assert!(
        tokio::time::timeout(Duration::from_millis(200), request)
            .await
            .is_err()
    );
    wait_for(&probe, "rollback Cancelled").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_runs_when_the_client_disconnects() {
    use tokio::io::AsyncWriteExt;
    let probe = Probe::default();
    let server = ferrapi::testing::TestServer::start(app(&probe)).await;
    let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    stream
        .write_all(b"GET /me?fail=slow HTTP/1.1\r\nhost: x\r\nx-user: ada\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(stream);
    wait_for(&probe, "rollback Cancelled").await;
    server.stop().await.unwrap();
}

async fn wait_for(probe: &Probe, line: &str) {
    for _ in 0..100 {
        if probe.log().iter().any(|l| l == line) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no `{line}` in {:?}", probe.log());
}

/// Router-level dependency: checks an API key for every route under it.
#[derive(Clone)]
struct ApiKeyCheck;

#[derive(Deserialize, JsonSchema, Validate)]
struct KeyHeader {
    x_key: String,
}

impl Dependency for ApiKeyCheck {
    async fn resolve(parts: &mut Parts, cx: &RequestContext) -> Result<Self, Rejection> {
        use ferrapi::FromRequestParts;
        let Header(h) = Header::<KeyHeader>::from_request_parts(parts, cx).await?;
        let probe = cx.state::<Probe>().unwrap();
        probe.users.fetch_add(1, Ordering::SeqCst);
        if h.x_key == "secret" {
            Ok(ApiKeyCheck)
        } else {
            Err(HttpError::forbidden("Bad key").into())
        }
    }
    fn describe(op: &mut ferrapi::openapi::OperationBuilder<'_>) {
        <Header<KeyHeader> as ferrapi::openapi::DescribeInput>::describe(op);
    }
}

#[get("/a")]
async fn route_a() -> &'static str {
    "a"
}

#[get("/b")]
async fn route_b(Depends(_k): Depends<ApiKeyCheck>) -> &'static str {
    "b"
}

#[get("/open")]
async fn open() -> &'static str {
    "open"
}

#[tokio::test]
async fn router_dependencies_run_for_every_route_under_them() {
    let probe = Probe::default();
    let app = App::new()
        .state(probe.clone())
        .include(
            Router::new()
                .prefix("/keyed")
                .dependency::<ApiKeyCheck>()
                .route(route_a)
                .route(route_b),
        )
        .route(open);
    let doc = serde_json::to_value(app.build().unwrap().openapi()).unwrap();
    assert_eq!(
        doc["paths"]["/keyed/a"]["get"]["parameters"][0]["name"],
        "x-key"
    );
    assert!(doc["paths"]["/open"]["get"].get("parameters").is_none());

    let app = App::new()
        .state(probe.clone())
        .include(
            Router::new()
                .prefix("/keyed")
                .dependency::<ApiKeyCheck>()
                .route(route_a)
                .route(route_b),
        )
        .route(open);
    let client = TestClient::new(app);
    assert_eq!(
        client
            .get("/keyed/a")
            .header("x-key", "wrong")
            .send()
            .await
            .status(),
        403
    );
    assert_eq!(client.get("/keyed/a").send().await.status(), 422);
    assert_eq!(
        client
            .get("/keyed/a")
            .header("x-key", "secret")
            .send()
            .await
            .text(),
        "a"
    );
    // The parameter asking for it again gets the cached value: one check.
    let before = probe.users.load(Ordering::SeqCst);
    assert_eq!(
        client
            .get("/keyed/b")
            .header("x-key", "secret")
            .send()
            .await
            .text(),
        "b"
    );
    assert_eq!(probe.users.load(Ordering::SeqCst), before + 1);
    assert_eq!(client.get("/open").send().await.text(), "open");
}

#[tokio::test]
async fn overrides_replace_a_nested_dependency() {
    let probe = Probe::default();
    let client = TestClient::new(app(&probe).override_dependency(Db {
        id: 42,
        prefix: "test-".into(),
    }));
    let res = client.get("/me").header("x-user", "ada").send().await;
    assert_eq!(
        res.json::<Value>(),
        json!({"user": "test-ada", "db": 42, "same_db": true})
    );
    // Neither Db nor Settings was built.
    assert_eq!(probe.db.load(Ordering::SeqCst), 0);
    assert_eq!(probe.settings.load(Ordering::SeqCst), 0);

    let client = TestClient::new(app(&probe).override_dependency(CurrentUser {
        name: "root".into(),
        db_id: 0,
    }));
    let res = client.get("/me").send().await;
    assert_eq!(res.json::<Value>()["user"], "root");
}

#[test]
fn dependency_inputs_are_documented_on_every_route_using_them() {
    let probe = Probe::default();
    let doc = serde_json::to_value(app(&probe).build().unwrap().openapi()).unwrap();
    let params = &doc["paths"]["/me"]["get"]["parameters"];
    assert_eq!(
        *params,
        json!([
            {"name": "x-user", "in": "header", "required": true, "schema": {"type": "string"}, "description": "The caller's name."},
            {"name": "fail", "in": "query", "required": false, "schema": {"type": ["string", "null"], "default": null}}
        ])
    );
}

// A cycle: Egg needs Chicken needs Egg.
#[derive(Clone)]
struct Chicken;
#[derive(Clone)]
struct Egg;

#[ferrapi::dependency]
async fn chicken(Depends(_e): Depends<Egg>) -> Chicken {
    Chicken
}

#[ferrapi::dependency]
async fn egg(Depends(_c): Depends<Chicken>) -> Egg {
    Egg
}

#[get("/farm")]
async fn farm(Depends(_e): Depends<Egg>) -> &'static str {
    "farm"
}

#[test]
fn a_cycle_is_reported_at_build_with_its_names() {
    let err = App::new().route(farm).build().unwrap_err();
    let text = err.to_string();
    assert!(text.contains("GET /farm (farm"), "{text}");
    assert!(text.contains("dependency cycle"), "{text}");
    assert!(
        text.contains("Egg -> ") && text.contains("Chicken -> ") && text.ends_with("Egg\n"),
        "{text}"
    );
}

#[test]
fn outcome_helpers() {
    assert!(Outcome::Success.is_success());
    assert!(!Outcome::Cancelled.is_success());
}

// Session scope: the user loaded once per token.
#[derive(Clone, Debug)]
struct SessionUser {
    name: String,
}

static LOADS: AtomicUsize = AtomicUsize::new(0);

impl ferrapi::extract::SessionDependency for SessionUser {
    fn key(parts: &Parts) -> Option<String> {
        parts
            .headers
            .get("authorization")?
            .to_str()
            .ok()
            .map(str::to_owned)
    }
    async fn load(parts: &mut Parts, _cx: &RequestContext) -> Result<Self, Rejection> {
        LOADS.fetch_add(1, Ordering::SeqCst);
        let token = Self::key(parts).unwrap_or_default();
        Ok(SessionUser {
            name: format!("user of {token}"),
        })
    }
    const TTL: Duration = Duration::from_millis(300);
    const CAPACITY: usize = 2;
}

#[get("/session")]
async fn session_me(
    ferrapi::extract::Session(user): ferrapi::extract::Session<SessionUser>,
) -> String {
    user.name
}

#[post("/logout")]
async fn logout(
    store: ferrapi::extract::SessionStore<SessionUser>,
    Header(h): Header<TokenHeader>,
) -> String {
    store.invalidate(&h.authorization);
    store.len().to_string()
}

#[derive(Deserialize, JsonSchema, Validate)]
struct TokenHeader {
    authorization: String,
}

#[tokio::test]
async fn session_values_are_loaded_once_per_principal() {
    let client = TestClient::new(App::new().route(session_me).route(logout));
    let loads = || LOADS.load(Ordering::SeqCst);
    let start = loads();
    for _ in 0..5 {
        let res = client
            .get("/session")
            .header("authorization", "t1")
            .send()
            .await;
        assert_eq!(res.text(), "user of t1");
    }
    assert_eq!(loads() - start, 1, "five requests, one load");
    client
        .get("/session")
        .header("authorization", "t2")
        .send()
        .await;
    assert_eq!(loads() - start, 2);
    // Invalidation: the next request loads again.
    let res = client
        .post("/logout")
        .header("authorization", "t1")
        .send()
        .await;
    assert_eq!(res.text(), "1");
    client
        .get("/session")
        .header("authorization", "t1")
        .send()
        .await;
    assert_eq!(loads() - start, 3);
    // Bounded: a third principal evicts the oldest (capacity 2).
    client
        .get("/session")
        .header("authorization", "t3")
        .send()
        .await;
    assert_eq!(loads() - start, 4);
    client
        .get("/session")
        .header("authorization", "t2")
        .send()
        .await;
    assert_eq!(loads() - start, 5, "t2 was the oldest and was evicted");
    // TTL: after it passes, the value is loaded again.
    tokio::time::sleep(Duration::from_millis(350)).await;
    client
        .get("/session")
        .header("authorization", "t3")
        .send()
        .await;
    assert_eq!(loads() - start, 6);
}

#[derive(Deserialize, Serialize, JsonSchema, Validate)]
#[garde(allow_unvalidated)]
struct Note {
    text: String,
}

#[post("/notes")]
async fn add_note(Depends(db): Depends<Db>, Json(note): Json<Note>) -> String {
    format!("{} in {}", note.text, db.id)
}

#[tokio::test]
async fn a_buffered_body_is_read_before_dependencies_are_resolved() {
    let probe = Probe::default();
    let client = TestClient::new(
        App::new()
            .state(probe.clone())
            .body_limit(32)
            .route(add_note),
    );
    let res = client
        .post("/notes")
        .json(&json!({"text": "x".repeat(64)}))
        .send()
        .await;
    assert_eq!(res.status(), 413);
    assert_eq!(
        probe.db.load(Ordering::SeqCst),
        0,
        "no dependency work for a refused body"
    );
    let res = client
        .post("/notes")
        .json(&json!({"text": "hi"}))
        .send()
        .await;
    assert_eq!(res.text(), "hi in 0");
    assert_eq!(probe.db.load(Ordering::SeqCst), 1);
}
