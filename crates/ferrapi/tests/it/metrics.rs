//! Prometheus metrics: route templates as labels, unmatched requests
//! collapsed, histograms, in-flight gauge, process and custom metrics.

use ferrapi::metrics::Metrics;
use ferrapi::prelude::*;
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
