//! Server-Sent Events: event fields on the wire, resuming after
//! `Last-Event-ID`, keep-alive comments, the OpenAPI description.

use ferrapi::prelude::*;
use ferrapi::sse::{Event, KeepAlive, LastEventId, Sse, json_event};
use ferrapi::testing::TestClient;
use futures_util::{StreamExt, stream};
use serde_json::{Value, json};
use std::time::Duration;

#[derive(Serialize)]
struct Note {
    n: u64,
    text: String,
}

/// Events 1..=5 of a log, after the client's last one.
#[get("/notes")]
async fn notes(last: LastEventId) -> Sse {
    let start = last.parse::<u64>().map_or(1, |n| n + 1);
    Sse::try_new(stream::iter((start..=5).map(|n| {
        let note = Note {
            n,
            text: format!("note {n}"),
        };
        Ok::<_, serde_json::Error>(
            json_event(&note)?
                .id(n.to_string())
                .event("note")
                .retry(Duration::from_millis(1500)),
        )
    })))
    .without_keep_alive()
}

/// One event, a silence long enough for several keep-alive comments, another.
#[get("/slow")]
async fn slow() -> Sse {
    let first = stream::once(async { Event::default().data("first") });
    let second = stream::once(async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        Event::default().data("second")
    });
    Sse::new(first.chain(second)).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_millis(50))
            .text("keep-alive"),
    )
}

/// The `data` of each event in a `text/event-stream` body, with its id.
fn events(body: &str) -> Vec<(Option<String>, String)> {
    body.split("\n\n")
        .filter(|block| block.lines().any(|l| l.starts_with("data:")))
        .map(|block| {
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim_start().to_owned())
            };
            (field("id:"), field("data:").unwrap_or_default())
        })
        .collect()
}

fn app() -> App {
    App::new().route(notes).route(slow)
}

#[tokio::test]
async fn a_stream_carries_id_event_data_and_retry() {
    let client = TestClient::new(app());
    let res = client.get("/notes").send().await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.header("content-type"), Some("text/event-stream"));
    assert_eq!(res.header("cache-control"), Some("no-cache"));
    assert_eq!(res.header("x-accel-buffering"), Some("no"));
    let body = res.text();
    let first = body.split("\n\n").next().unwrap();
    let mut lines: Vec<&str> = first.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            r#"data: {"n":1,"text":"note 1"}"#,
            "event: note",
            "id: 1",
            "retry: 1500"
        ]
    );
    let ids: Vec<_> = events(&body).into_iter().map(|(id, _)| id).collect();
    assert_eq!(
        ids,
        ["1", "2", "3", "4", "5"]
            .map(|s| Some(s.to_owned()))
            .to_vec()
    );
}

#[tokio::test]
async fn a_reconnecting_client_resumes_after_last_event_id() {
    let client = TestClient::new(app());
    let res = client
        .get("/notes")
        .header("Last-Event-ID", "3")
        .send()
        .await;
    assert_eq!(res.status(), 200);
    let got = events(&res.text());
    assert_eq!(
        got,
        vec![
            (Some("4".into()), r#"{"n":4,"text":"note 4"}"#.to_owned()),
            (Some("5".into()), r#"{"n":5,"text":"note 5"}"#.to_owned()),
        ]
    );
    // Past the end: an empty stream, not an error.
    let res = client
        .get("/notes")
        .header("Last-Event-ID", "5")
        .send()
        .await;
    assert!(events(&res.text()).is_empty());
    // An id it cannot read: from the start.
    let res = client
        .get("/notes")
        .header("Last-Event-ID", "garbage")
        .send()
        .await;
    assert_eq!(events(&res.text()).len(), 5);
}

#[tokio::test]
async fn silence_is_filled_with_keep_alive_comments() {
    let client = TestClient::new(app());
    let body = client.get("/slow").send().await.text();
    let data: Vec<_> = events(&body).into_iter().map(|(_, d)| d).collect();
    assert_eq!(data, ["first", "second"]);
    let (_, between) = body.split_once("data: first").unwrap();
    let (between, _) = between.split_once("data: second").unwrap();
    let comments = between.matches(": keep-alive\n").count();
    assert!(
        comments >= 3,
        "{comments} keep-alive comments in 400 ms at 50 ms: {body:?}"
    );
}

#[tokio::test]
async fn the_operation_documents_an_event_stream_and_the_header() {
    let client = TestClient::new(app());
    let doc: Value = client.get("/openapi.json").send().await.json();
    let op = &doc["paths"]["/notes"]["get"];
    assert_eq!(
        op["responses"]["200"]["content"]["text/event-stream"]["schema"]["type"],
        "string"
    );
    assert_eq!(
        op["parameters"],
        json!([{
            "name": "Last-Event-ID",
            "in": "header",
            "required": false,
            "schema": {"type": "string", "title": "Last-Event-Id"}
        }])
    );
}
