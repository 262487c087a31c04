//! Prometheus metrics: route templates as labels, unmatched requests
//! collapsed, histograms, in-flight gauge, process and custom metrics.

use ferrapi::http::Method;
use ferrapi::metrics::Metrics;
use ferrapi::prelude::*;
use ferrapi::statsd::StatsdConfig;
use ferrapi::testing::TestClient;
use std::sync::Arc;

#[get("/users/{user_id}")]
async fn read_user(Path(user_id): Path<i64>) -> String {
    user_id.to_string()
}

#[get("/boom")]
async fn boom() -> &'static str {
    panic!("boom")
}

#[get("/work")]
async fn work(State(metrics): State<Arc<Metrics>>) -> &'static str {
    metrics
        .counter("jobs_total", &[("kind", "email")])
        .increment(2);
    "ok"
}

/// The value of the sample line starting with `prefix`.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn http_metrics_use_route_templates() {
    let metrics = Arc::new(Metrics::new());
    let client = TestClient::new(
        App::new()
            .metrics("/metrics", metrics.clone())
            .route(read_user)
            .route(boom)
            .route(work),
    );
    for id in [1, 2, 3] {
        client.get(&format!("/users/{id}")).send().await;
    }
    client.get("/users/abc").send().await;
    client.request(Method::HEAD, "/users/1").send().await;
    client.get("/nowhere/1").send().await;
    client.get("/nowhere/2").send().await;
    client.get("/boom").send().await;
    client.get("/work").send().await;
    let res = client.get("/metrics").send().await;
    assert_eq!(res.status(), 200);
    assert!(
        res.header("content-type")
            .unwrap_or_default()
            .starts_with("text/plain")
    );
    let text = res.text();
    let requests = |labels: &str| sample(&text, &format!("http_requests_total{{{labels}}}"));
    assert_eq!(
        requests(r#"method="GET",route="/users/{user_id}",status="200""#),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        requests(r#"method="GET",route="/users/{user_id}",status="422""#),
        Some(1.0)
    );
    assert_eq!(
        requests(r#"method="HEAD",route="/users/{user_id}",status="200""#),
        Some(1.0),
        "a HEAD answered by the GET route has its own series"
    );
    assert_eq!(
        requests(r#"method="GET",route="unmatched",status="404""#),
        Some(2.0)
    );
    assert_eq!(
        requests(r#"method="GET",route="/boom",status="500""#),
        Some(1.0),
        "a panic counts as 500"
    );
    assert!(
        !text.contains("/users/1\""),
        "raw paths never become labels"
    );
    assert!(!text.contains("/nowhere"), "unknown paths collapse");
    assert_eq!(
        sample(
            &text,
            r#"http_request_duration_seconds_count{method="GET",route="/users/{user_id}"}"#
        ),
        Some(4.0)
    );
    assert!(text.contains(
        r#"http_request_duration_seconds_bucket{method="GET",route="/users/{user_id}",le="0.005"}"#
    ));
    assert!(text.contains("http_response_size_bytes_bucket"));
    assert_eq!(
        sample(&text, "http_requests_in_flight"),
        Some(1.0),
        "the scrape itself is in flight"
    );
    assert_eq!(sample(&text, r#"jobs_total{kind="email"}"#), Some(2.0));
    for process in [
        "process_start_time_seconds",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
    ] {
        assert!(
            sample(&text, process).is_some(),
            "{process} missing:\n{text}"
        );
    }
}

/// A StatsD agent: a UDP socket on 127.0.0.1 keeping every datagram.
struct Agent {
    socket: std::net::UdpSocket,
    datagrams: Vec<Vec<u8>>,
}

impl Agent {
    fn start() -> Self {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(std::time::Duration::from_millis(50)))
            .unwrap();
        Agent {
            socket,
            datagrams: Vec::new(),
        }
    }

    fn port(&self) -> u16 {
        self.socket.local_addr().unwrap().port()
    }

    /// The lines received so far.
    fn lines(&self) -> Vec<String> {
        self.datagrams
            .iter()
            .flat_map(|d| {
                String::from_utf8_lossy(d)
                    .lines()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The sum of the counter lines named `name` with exactly `tags`.
    fn count(&self, name: &str, tags: &str) -> u64 {
        self.lines()
            .iter()
            .filter_map(|l| l.strip_prefix(&format!("{name}:")))
            .filter_map(|l| l.strip_suffix(&format!("|c|#{tags}")))
            .filter_map(|v| v.parse::<u64>().ok())
            .sum()
    }

    /// Receives (on a blocking thread, at most 10 s) until `done` holds.
    async fn wait_until(mut self, done: impl Fn(&Agent) -> bool + Send + 'static) -> Self {
        tokio::task::spawn_blocking(move || {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            let mut buf = [0u8; 65_536];
            while !done(&self) {
                assert!(
                    std::time::Instant::now() < deadline,
                    "not received; lines: {:?}",
                    self.lines()
                );
                if let Ok(n) = self.socket.recv(&mut buf) {
                    self.datagrams.push(buf[..n].to_vec());
                }
            }
            self
        })
        .await
        .unwrap()
    }
}

#[tokio::test]
async fn metrics_are_pushed_to_statsd() {
    let agent = Agent::start();
    let metrics = Metrics::new()
        .statsd(
            StatsdConfig::new("127.0.0.1", agent.port())
                .prefix("it")
                .interval(std::time::Duration::from_millis(50)),
        )
        .unwrap();
    let metrics = Arc::new(metrics);
    let client = TestClient::new(
        App::new()
            .metrics("/metrics", metrics.clone())
            .route(read_user)
            .route(work),
    );
    for id in [1, 2, 3] {
        assert_eq!(
            client.get(&format!("/users/{id}")).send().await.status(),
            200
        );
    }
    client.get("/nowhere").send().await;
    client.get("/work").send().await;

    let ok = "method:GET,route:/users/{user_id},status:200";
    let agent = agent
        .wait_until(move |a| {
            a.count("it.http_requests_total", ok) == 3
                && a.count(
                    "it.http_requests_total",
                    "method:GET,route:unmatched,status:404",
                ) == 1
                && a.count("it.jobs_total", "kind:email") == 2
        })
        .await;
    // Pushed again and again, the counters still add up to the requests
    // made (deltas, not totals).
    let agent = agent
        .wait_until(|a| a.datagrams.len() >= 3 && a.lines().iter().any(|l| l.contains("|g")))
        .await;
    assert_eq!(agent.count("it.http_requests_total", ok), 3);
    let lines = agent.lines();
    // One histogram sample per request, in seconds, tagged by route.
    let durations: Vec<f64> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("it.http_request_duration_seconds:"))
        .filter_map(|l| l.strip_suffix("|h|#method:GET,route:/users/{user_id}"))
        .map(|v| v.parse::<f64>().unwrap())
        .collect();
    assert_eq!(durations.len(), 3, "{lines:?}");
    assert!(
        durations.iter().all(|d| (0.0..1.0).contains(d)),
        "{durations:?}"
    );
    // The in-flight gauge, as a gauge.
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("it.http_requests_in_flight:") && l.ends_with("|g")),
        "{lines:?}"
    );
    assert!(agent.datagrams.iter().all(|d| d.len() <= 1432));
    // Prometheus still sees everything, and the datagrams sent (counted
    // just after each send: the agent may have read the third first).
    let mut text = String::new();
    for _ in 0..100 {
        text = client.get("/metrics").send().await.text();
        if sample(&text, r#"statsd_datagrams_total{result="sent"}"#).is_some_and(|n| n >= 3.0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        text.contains(
            r#"http_requests_total{method="GET",route="/users/{user_id}",status="200"} 3"#
        ),
        "{text}"
    );
    assert!(
        sample(&text, r#"statsd_datagrams_total{result="sent"}"#).is_some_and(|n| n >= 3.0),
        "{text}"
    );
}

#[tokio::test]
async fn an_absent_statsd_agent_does_not_slow_requests() {
    // A port nobody listens on: every push is refused.
    let port = Agent::start().port();
    let metrics = Metrics::new()
        .statsd(StatsdConfig::new("127.0.0.1", port).interval(std::time::Duration::from_millis(10)))
        .unwrap();
    let client = TestClient::new(
        App::new()
            .metrics("/metrics", Arc::new(metrics))
            .route(read_user),
    );
    let failed = r#"statsd_datagrams_total{result="failed"}"#;
    let start = std::time::Instant::now();
    for i in 0..200 {
        assert_eq!(
            client.get(&format!("/users/{i}")).send().await.status(),
            200
        );
        if i % 50 == 0 {
            // Let several pushes fail meanwhile.
            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        }
    }
    assert!(
        start.elapsed() < std::time::Duration::from_secs(5),
        "200 requests took {:?}",
        start.elapsed()
    );
    // The pushes were made, and refused (the kernel reports the refusal of
    // a datagram to a closed port on a later send).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let text = client.get("/metrics").send().await.text();
        if sample(&text, failed).is_some_and(|n| n >= 1.0) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{text}");
        client.get("/users/1").send().await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
