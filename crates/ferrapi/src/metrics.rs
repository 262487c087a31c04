//! Prometheus metrics: `http_requests_total{method,route,status}`,
//! `http_request_duration_seconds` and `http_response_size_bytes`
//! histograms, `http_requests_in_flight`, process metrics, and custom
//! metrics — rendered in the Prometheus text format by the app's metrics
//! route.
//!
//! Built on `metrics-exporter-prometheus`'s recorder, used as a registry of
//! this application (not installed globally: two apps in one process — a
//! test suite — keep separate counts; [`Metrics::install_global`] makes
//! the `metrics::counter!` macros record into it). The handles of a
//! (route, method, status) series are resolved once and cached, so a
//! request costs a map lookup and a few atomic increments. `route` is
//! always the route template; requests that match no route share the value
//! `unmatched`, so label cardinality is bounded by the routes.
//!
//! With the `statsd` feature, [`Metrics::statsd`] also pushes every metric
//! to a StatsD agent over UDP (see [`statsd`](crate::statsd)).

use http::Method;
use metrics::{Counter, Gauge, Histogram, Key, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// Latency buckets, in seconds.
const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Response size buckets, in bytes.
const SIZE_BUCKETS: &[f64] = &[
    64.0,
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
];

/// A request series: route template, method, status.
type SeriesKey = (Arc<str>, Method, u16);

#[derive(Clone)]
struct Series {
    requests: Counter,
    duration: Histogram,
    size: Histogram,
}

/// An application's metrics registry.
///
/// ```
/// use ferrapi::metrics::Metrics;
///
/// let metrics = Metrics::new();
/// metrics.counter("jobs_done_total", &[("kind", "email")]).increment(1);
/// assert!(metrics.render().contains("jobs_done_total{kind=\"email\"} 1"));
/// ```
pub struct Metrics {
    recorder: Registry,
    /// Shared with the upkeep thread (a weak reference: it ends with the registry).
    handle: Arc<PrometheusHandle>,
    in_flight: Gauge,
    /// Per (route, method, status): looked up on every request, so hashed
    /// with foldhash (already in the tree through metrics-util) rather than SipHash.
    series: RwLock<HashMap<SeriesKey, Series, foldhash::fast::RandomState>>,
    started: std::time::SystemTime,
}

/// Where handles come from: the Prometheus recorder, and with a StatsD push
/// the push's cells too (each handle then records into both).
#[derive(Clone)]
struct Registry {
    prometheus: Arc<PrometheusRecorder>,
    #[cfg(feature = "statsd")]
    statsd: Option<Arc<crate::statsd::Statsd>>,
}

impl Registry {
    fn counter(&self, key: &Key) -> Counter {
        let counter = self.prometheus.register_counter(key, &META);
        #[cfg(feature = "statsd")]
        if let Some(statsd) = &self.statsd {
            return statsd.counter(key, counter);
        }
        counter
    }

    fn gauge(&self, key: &Key) -> Gauge {
        let gauge = self.prometheus.register_gauge(key, &META);
        #[cfg(feature = "statsd")]
        if let Some(statsd) = &self.statsd {
            return statsd.gauge(key, gauge);
        }
        gauge
    }

    fn histogram(&self, key: &Key) -> Histogram {
        let histogram = self.prometheus.register_histogram(key, &META);
        #[cfg(feature = "statsd")]
        if let Some(statsd) = &self.statsd {
            return statsd.histogram(key, histogram);
        }
        histogram
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics(..)")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// How often histogram samples are folded into their buckets.
const UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// The exporter keeps every histogram sample in a lock-free bucket until
/// they are folded into the histogram's buckets, which it does only on a
/// render (a scrape) or an upkeep: without a scraper, memory would grow by
/// every request. A thread folds them every [`UPKEEP_INTERVAL`], and ends
/// within an interval of the registry being dropped.
fn spawn_upkeep(handle: std::sync::Weak<PrometheusHandle>) {
    let spawned = std::thread::Builder::new()
        .name("ferrapi-metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                match handle.upgrade() {
                    Some(handle) => handle.run_upkeep(),
                    None => break,
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the metrics upkeep thread: histogram samples are folded only when /metrics is scraped");
    }
}

static META: Metadata<'static> = Metadata::new("ferrapi", metrics::Level::INFO, Some("ferrapi"));

static IN_FLIGHT: Key = Key::from_static_name("http_requests_in_flight");

impl Metrics {
    /// A registry with the HTTP metrics' buckets.
    pub fn new() -> Self {
        let builder = PrometheusBuilder::new();
        let builder = builder
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full("http_request_duration_seconds".into()),
                DURATION_BUCKETS,
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full("http_response_size_bytes".into()),
                    SIZE_BUCKETS,
                )
            })
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = Arc::new(recorder.handle());
        spawn_upkeep(Arc::downgrade(&handle));
        let recorder = Registry {
            prometheus: Arc::new(recorder),
            #[cfg(feature = "statsd")]
            statsd: None,
        };
        let in_flight = recorder.gauge(&IN_FLIGHT);
        Self {
            recorder,
            handle,
            in_flight,
            series: RwLock::new(HashMap::default()),
            started: std::time::SystemTime::now(),
        }
    }

    /// The key of a series: `name` with `labels`.
    pub(crate) fn key(name: &str, labels: &[(&str, &str)]) -> Key {
        let labels: Vec<Label> = labels
            .iter()
            .map(|(k, v)| Label::new((*k).to_owned(), (*v).to_owned()))
            .collect();
        Key::from_parts(name.to_owned(), labels)
    }

    /// Also pushes every metric of this registry to a StatsD agent (see
    /// [`statsd`](crate::statsd)): starts the push thread. Call it on a new
    /// registry, before handles are taken: a handle taken earlier records
    /// for Prometheus only.
    ///
    /// ```
    /// use ferrapi::metrics::Metrics;
    /// use ferrapi::statsd::StatsdConfig;
    ///
    /// # fn main() -> Result<(), ferrapi::statsd::StatsdError> {
    /// let metrics = Metrics::new().statsd(StatsdConfig::new("127.0.0.1", 8125).prefix("api"))?;
    /// metrics.counter("jobs_done_total", &[("kind", "email")]).increment(1);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The push thread cannot be started.
    #[cfg(feature = "statsd")]
    pub fn statsd(
        mut self,
        config: crate::statsd::StatsdConfig,
    ) -> Result<Self, crate::statsd::StatsdError> {
        let datagrams = |result: &'static str| {
            let key = Key::from_parts("statsd_datagrams_total", vec![Label::new("result", result)]);
            // Prometheus only: the push does not report on itself.
            self.recorder.prometheus.register_counter(&key, &META)
        };
        let (sent, failed) = (datagrams("sent"), datagrams("failed"));
        self.recorder.statsd = Some(Arc::new(config.start(sent, failed)?));
        self.in_flight = self.recorder.gauge(&IN_FLIGHT);
        self.series
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        Ok(self)
    }

    /// A custom counter (resolve it once, keep the handle).
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> Counter {
        self.recorder.counter(&Self::key(name, labels))
    }

    /// A custom gauge.
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Gauge {
        self.recorder.gauge(&Self::key(name, labels))
    }

    /// A custom histogram.
    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Histogram {
        self.recorder.histogram(&Self::key(name, labels))
    }

    /// Makes this registry the process's global recorder, so that the
    /// `metrics::counter!` family of macros records into it. Only the first
    /// call in a process succeeds.
    pub fn install_global(&self) -> bool {
        struct Shared(Registry);
        impl Recorder for Shared {
            fn describe_counter(
                &self,
                k: metrics::KeyName,
                u: Option<metrics::Unit>,
                d: metrics::SharedString,
            ) {
                self.0.prometheus.describe_counter(k, u, d)
            }
            fn describe_gauge(
                &self,
                k: metrics::KeyName,
                u: Option<metrics::Unit>,
                d: metrics::SharedString,
            ) {
                self.0.prometheus.describe_gauge(k, u, d)
            }
            fn describe_histogram(
                &self,
                k: metrics::KeyName,
                u: Option<metrics::Unit>,
                d: metrics::SharedString,
            ) {
                self.0.prometheus.describe_histogram(k, u, d)
            }
            fn register_counter(&self, k: &Key, _: &Metadata<'_>) -> Counter {
                self.0.counter(k)
            }
            fn register_gauge(&self, k: &Key, _: &Metadata<'_>) -> Gauge {
                self.0.gauge(k)
            }
            fn register_histogram(&self, k: &Key, _: &Metadata<'_>) -> Histogram {
                self.0.histogram(k)
            }
        }
        metrics::set_global_recorder(Shared(self.recorder.clone())).is_ok()
    }

    /// Runs `record` on the series of (`route`, `method`, `status`),
    /// registering it the first time.
    fn with_series(
        &self,
        route: &Arc<str>,
        method: &Method,
        status: u16,
        record: impl FnOnce(&Series),
    ) {
        let key = (route.clone(), method.clone(), status);
        if let Some(s) = self
            .series
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return record(s);
        }
        let status_text = status.to_string();
        let labels = [
            ("method", method.as_str()),
            ("route", &**route),
            ("status", status_text.as_str()),
        ];
        let series = Series {
            requests: self.counter("http_requests_total", &labels),
            duration: self.histogram("http_request_duration_seconds", &labels[..2]),
            size: self.histogram("http_response_size_bytes", &labels[..2]),
        };
        record(
            self.series
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .entry(key)
                .or_insert(series),
        );
    }

    /// Starts measuring one request of `route`.
    pub(crate) fn start(self: &Arc<Self>, route: Arc<str>, method: Method) -> InFlight {
        self.in_flight.increment(1.0);
        InFlight {
            metrics: self.clone(),
            route,
            method,
            started: Instant::now(),
            done: false,
        }
    }

    /// The Prometheus text exposition of every metric, process metrics included.
    pub fn render(&self) -> String {
        let mut out = self.handle.render();
        process_metrics(&mut out, self.started);
        out
    }
}

/// One request being measured; dropped without `finish` (a panic, a client
/// that went away) it counts as a 500.
pub(crate) struct InFlight {
    metrics: Arc<Metrics>,
    route: Arc<str>,
    method: Method,
    started: Instant,
    done: bool,
}

impl InFlight {
    pub(crate) fn finish(mut self, status: u16, size: Option<u64>) {
        self.record(status, size);
    }

    fn record(&mut self, status: u16, size: Option<u64>) {
        if self.done {
            return;
        }
        self.done = true;
        let seconds = self.started.elapsed().as_secs_f64();
        self.metrics
            .with_series(&self.route, &self.method, status, |series| {
                series.requests.increment(1);
                series.duration.record(seconds);
                if let Some(size) = size {
                    series.size.record(size as f64);
                }
            });
        self.metrics.in_flight.decrement(1.0);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.record(500, None);
    }
}

/// `process_*` metrics from `/proc/self` (Linux; elsewhere only the start time).
fn process_metrics(out: &mut String, started: std::time::SystemTime) {
    use std::fmt::Write as _;
    let start = started
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds {start}"
    );
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the command name (which may contain spaces): utime is
        // the 14th field overall, stime the 15th, rss (pages) the 24th.
        if let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks = 100.0; // USER_HZ on Linux
            let utime = fields
                .get(11)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
            let stime = fields
                .get(12)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
            let rss_pages = fields
                .get(21)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
            let _ = writeln!(
                out,
                "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {}",
                (utime + stime) / ticks
            );
            let _ = writeln!(
                out,
                "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {}",
                rss_pages * 4096.0
            );
        }
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        let _ = writeln!(
            out,
            "# TYPE process_open_fds gauge\nprocess_open_fds {}",
            dir.count()
        );
    }
}
