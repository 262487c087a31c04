//! The message bus: in process, and across two separate clients over NATS
//! (`TEST_NATS_URL`) and Redis (`TEST_REDIS_URL`).
#![cfg_attr(not(any(feature = "nats", feature = "redis")), allow(dead_code))]

use ferrapi_storage::bus::{Bus, BusError, InProcessBus, Subscription, Topic};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
enum Event {
    /// Sent until the subscriber sees one: the subscription is live.
    Probe,
    #[serde(rename = "user.created")]
    UserCreated { id: i64, name: String },
}

const EVENTS: Topic<Event> = Topic::new("events");

/// A namespace no other run or test uses.
fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("test.{name}.{}.{nanos}", std::process::id())
}

fn user(id: i64) -> Event {
    Event::UserCreated {
        id,
        name: format!("user {id}"),
    }
}

async fn recv_within(sub: &mut Subscription<Event>, d: Duration) -> Option<Event> {
    tokio::time::timeout(d, sub.recv()).await.ok().flatten()
}

/// Publishes probes through `publisher` until `sub` receives one (the
/// server has the subscription), for at most `limit`.
async fn until_live(publisher: &Bus, sub: &mut Subscription<Event>, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        assert!(Instant::now() < deadline, "subscription never became live");
        // While the server is down a publish may fail: keep trying.
        let _ = publisher.publish(&EVENTS, &Event::Probe).await;
        if recv_within(sub, Duration::from_millis(200)).await == Some(Event::Probe) {
            break;
        }
    }
    // Drain the probes still in flight.
    while recv_within(sub, Duration::from_millis(200)).await.is_some() {}
}

/// Events published on `a` reach `b`'s subscriber, in order, exactly once.
async fn crosses_instances(a: Bus, b: Bus) {
    let mut sub = b.subscribe(&EVENTS).await.unwrap();
    let mut sub2 = b.subscribe(&EVENTS).await.unwrap();
    until_live(&a, &mut sub, Duration::from_secs(10)).await;
    while recv_within(&mut sub2, Duration::from_millis(100))
        .await
        .is_some()
    {}
    for id in 1..=5 {
        a.publish(&EVENTS, &user(id)).await.unwrap();
    }
    for id in 1..=5 {
        assert_eq!(
            recv_within(&mut sub, Duration::from_secs(5)).await,
            Some(user(id))
        );
        assert_eq!(
            recv_within(&mut sub2, Duration::from_secs(5)).await,
            Some(user(id))
        );
    }
    assert_eq!(
        recv_within(&mut sub, Duration::from_millis(300)).await,
        None
    );
    // Another topic is not delivered here.
    let other: Topic<Event> = Topic::new("other");
    a.publish(&other, &user(99)).await.unwrap();
    assert_eq!(
        recv_within(&mut sub, Duration::from_millis(300)).await,
        None
    );
    assert!(a.health().await.is_ok() && b.health().await.is_ok());
}

// ---------------------------------------------------------------- in process

#[tokio::test]
async fn in_process_reaches_every_subscriber() {
    let bus = Bus::in_process();
    let mut subs = Vec::new();
    for _ in 0..3 {
        subs.push(bus.subscribe(&EVENTS).await.unwrap());
    }
    for id in 1..=4 {
        bus.publish(&EVENTS, &user(id)).await.unwrap();
    }
    for sub in &mut subs {
        for id in 1..=4 {
            assert_eq!(sub.recv().await, Some(user(id)));
        }
    }
    // A late subscriber sees only later events.
    let mut late = bus.subscribe(&EVENTS).await.unwrap();
    bus.publish(&EVENTS, &user(5)).await.unwrap();
    assert_eq!(late.recv().await, Some(user(5)));
    assert!(bus.health().await.is_ok());
    assert_eq!(bus.backend_name(), "in-process");
}

#[tokio::test]
async fn in_process_slow_subscriber_loses_the_oldest() {
    let bus = Bus::new(InProcessBus::with_capacity(4));
    let mut sub = bus.subscribe(&EVENTS).await.unwrap();
    for id in 1..=10 {
        bus.publish(&EVENTS, &user(id)).await.unwrap();
    }
    for id in 7..=10 {
        assert_eq!(sub.recv().await, Some(user(id)));
    }
    assert_eq!(sub.lagged(), 6);
}

#[tokio::test]
async fn in_process_skips_events_that_do_not_decode() {
    let bus = Bus::in_process();
    let numbers: Topic<i64> = Topic::new("shared");
    let strings: Topic<String> = Topic::new("shared");
    let mut sub = bus.subscribe(&numbers).await.unwrap();
    bus.publish(&strings, &"not a number".to_owned())
        .await
        .unwrap();
    bus.publish(&numbers, &42).await.unwrap();
    assert_eq!(sub.recv().await, Some(42));
}

#[tokio::test]
async fn topics_and_namespaces() {
    let bus = Bus::in_process();
    for bad in ["", "a b", "users.*", "users.>", "a..b"] {
        let topic: Topic<Event> = Topic::named(bad);
        assert!(matches!(
            bus.publish(&topic, &Event::Probe).await,
            Err(BusError::InvalidTopic(_))
        ));
        assert!(matches!(
            bus.subscribe(&topic).await,
            Err(BusError::InvalidTopic(_))
        ));
    }
    let a = bus.clone().namespace("tenant-a").unwrap();
    let b = bus.clone().namespace("tenant-b").unwrap();
    let mut sub_b = b.subscribe(&EVENTS).await.unwrap();
    assert_eq!(sub_b.topic(), "tenant-b.events");
    a.publish(&EVENTS, &user(1)).await.unwrap();
    b.publish(&EVENTS, &user(2)).await.unwrap();
    assert_eq!(sub_b.recv().await, Some(user(2)));
    assert!(bus.namespace("bad name").is_err());
}

#[tokio::test]
async fn bus_urls() {
    assert_eq!(
        Bus::connect("memory://").await.unwrap().backend_name(),
        "in-process"
    );
    for bad in ["nothing", "ftp://x"] {
        assert!(matches!(
            Bus::connect(bad).await,
            Err(BusError::InvalidUrl { .. })
        ));
    }
}

// ---------------------------------------------------------------- servers

/// A private server (redis-server or nats-server) on `port`, to stop and
/// restart mid-test without disturbing the shared one.
struct PrivateServer(Option<std::process::Child>);

impl PrivateServer {
    fn start(program: &str, args: &[String], port: u16) -> Option<Self> {
        let child = std::process::Command::new(program)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let mut server = Self(Some(child));
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                server.stop();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A subscriber keeps receiving after its server restarts: stop the
/// private server, start it again on the same port, and wait for events
/// published by another client to arrive again.
async fn survives_restart(url: &str, start: impl Fn() -> Option<PrivateServer>) {
    let Some(mut server) = start() else {
        println!("skipped: no server binary to restart");
        return;
    };
    let ns = unique("restart");
    let a = Bus::connect(url).await.unwrap().namespace(&ns).unwrap();
    let b = Bus::connect(url).await.unwrap().namespace(&ns).unwrap();
    let mut sub = b.subscribe(&EVENTS).await.unwrap();
    until_live(&a, &mut sub, Duration::from_secs(10)).await;

    server.stop();
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.health().await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "health still ok with the server down"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _server = start().expect("restart");
    until_live(&a, &mut sub, Duration::from_secs(20)).await;
    a.publish(&EVENTS, &user(1)).await.unwrap();
    assert_eq!(
        recv_within(&mut sub, Duration::from_secs(5)).await,
        Some(user(1))
    );
    assert!(b.health().await.is_ok());
}

#[cfg(feature = "nats")]
mod nats {
    use super::*;

    fn nats_url() -> Option<String> {
        let url = std::env::var("TEST_NATS_URL").ok();
        if url.is_none() {
            println!("skipped: TEST_NATS_URL not set");
        }
        url
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nats_event_reaches_another_instance() {
        let Some(url) = nats_url() else { return };
        let ns = unique("nats");
        let a = Bus::connect(&url).await.unwrap().namespace(&ns).unwrap();
        let b = Bus::connect(&url).await.unwrap().namespace(&ns).unwrap();
        assert_eq!(a.backend_name(), "nats");
        crosses_instances(a, b).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nats_subscriber_survives_a_server_restart() {
        if nats_url().is_none() {
            return;
        }
        let port = free_port();
        let args: Vec<String> = ["-a", "127.0.0.1", "-p", &port.to_string()]
            .map(str::to_owned)
            .to_vec();
        survives_restart(&format!("nats://127.0.0.1:{port}"), || {
            PrivateServer::start("nats-server", &args, port)
        })
        .await;
    }

    #[tokio::test]
    async fn nats_unreachable_is_reported_not_fatal() {
        let url = format!("nats://127.0.0.1:{}", free_port());
        let bus = Bus::connect(&url).await.unwrap();
        assert!(matches!(bus.health().await, Err(BusError::Unavailable(_))));
        assert!(matches!(
            Bus::connect("nats://[::1").await,
            Err(BusError::InvalidUrl { .. })
        ));
    }
}

#[cfg(feature = "redis")]
mod redis {
    use super::*;

    fn redis_url() -> Option<String> {
        let url = std::env::var("TEST_REDIS_URL").ok();
        if url.is_none() {
            println!("skipped: TEST_REDIS_URL not set");
        }
        url
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_event_reaches_another_instance() {
        let Some(url) = redis_url() else { return };
        let ns = unique("redis");
        let a = Bus::connect(&url).await.unwrap().namespace(&ns).unwrap();
        let b = Bus::connect(&url).await.unwrap().namespace(&ns).unwrap();
        assert_eq!(a.backend_name(), "redis");
        crosses_instances(a, b).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_subscriber_survives_a_server_restart() {
        if redis_url().is_none() {
            return;
        }
        let port = free_port();
        let args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        .map(str::to_owned)
        .to_vec();
        survives_restart(&format!("redis://127.0.0.1:{port}"), || {
            PrivateServer::start("redis-server", &args, port)
        })
        .await;
    }

    #[tokio::test]
    async fn redis_unreachable_is_reported_not_fatal() {
        let url = format!("redis://127.0.0.1:{}", free_port());
        let bus = Bus::connect(&url).await.unwrap();
        assert!(matches!(bus.health().await, Err(BusError::Unavailable(_))));
        assert!(matches!(
            bus.publish(&EVENTS, &Event::Probe).await,
            Err(BusError::Unavailable(_))
        ));
        assert!(matches!(
            bus.subscribe(&EVENTS).await,
            Err(BusError::Unavailable(_))
        ));
    }
}
