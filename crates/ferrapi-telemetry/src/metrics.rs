//! Prometheus metrics: `http_requests_total{method,route,status}`,
//! `http_request_duration_seconds` and `http_response_size_bytes`
//! histograms, `http_requests_in_flight`, process metrics, and custom
//! metrics — rendered in the Prometheus text format by the app's metrics
//! route.
//!
//! Custom metrics are built on `metrics-exporter-prometheus`'s recorder,
//! used as a registry of this application (not installed globally: two
//! apps in one process — a test suite — keep separate counts;
//! [`Metrics::install_global`] makes the `metrics::counter!` macros record
//! into it).
//!
//! The four HTTP metrics are kept by hand, beside it: each (route
//! template, method) has its series resolved when the app is built, with
//! fixed-bucket histograms of atomic counters. A request costs a few
//! relaxed atomic additions and no lookup, and memory stays the same
//! whatever the traffic. (The exporter's histograms keep every sample
//! until the next scrape or upkeep, and recording one costs an epoch pin;
//! at 100k requests/s that was ~10 MiB of samples between upkeeps and
//! several hundred instructions per request.) `route` is always the route
//! template; requests that match no route share the value `unmatched`, so
//! label cardinality is bounded by the routes.
//!
//! With the `statsd` feature, [`Metrics::statsd`] also pushes every metric
//! to a StatsD agent over UDP (see [`statsd`](crate::statsd)).

use ferrapi_core::extract::MatchedRoute;
use http::Method;
use metrics::{Counter, Gauge, Histogram, Key, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
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

/// The HTTP series of one route template and method: requests per status,
/// the duration and response size histograms. Lock-free but for a new
/// status (a write lock, once per status).
#[doc(hidden)]
pub struct RouteSeries {
    route: Arc<str>,
    method: Method,
    http: Arc<HttpShared>,
    /// `http_requests_total` per status (a handful per route), each with
    /// its StatsD twin when pushing.
    statuses: RwLock<Vec<StatusCount>>,
    /// Nanoseconds.
    duration: Buckets,
    /// Bytes.
    size: Buckets,
    #[cfg(feature = "statsd")]
    statsd: Option<(Histogram, Histogram)>,
}

struct StatusCount {
    status: u16,
    count: AtomicU64,
    #[cfg(feature = "statsd")]
    statsd: Option<Counter>,
}

impl StatusCount {
    fn add_one(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "statsd")]
        if let Some(c) = &self.statsd {
            c.increment(1);
        }
    }
}

/// The series by (route template, method).
type SeriesMap = HashMap<(Arc<str>, Method), Arc<RouteSeries>, foldhash::fast::RandomState>;

/// What every route's series shares: the in-flight gauge, and the StatsD
/// push when there is one.
struct HttpShared {
    in_flight: AtomicI64,
    #[cfg(feature = "statsd")]
    statsd: Option<(Arc<crate::statsd::Statsd>, Gauge)>,
}

impl HttpShared {
    /// One more (`1`) or one fewer (`-1`) request in flight.
    fn in_flight(&self, delta: i64) {
        self.in_flight.fetch_add(delta, Ordering::Relaxed);
        #[cfg(feature = "statsd")]
        if let Some((_, gauge)) = &self.statsd {
            gauge.increment(delta as f64);
        }
    }
}

/// A fixed-bucket histogram of integer observations (nanoseconds, bytes).
struct Buckets {
    /// Upper bounds in the observation's unit, ascending.
    bounds: Box<[u64]>,
    /// The bounds as rendered (`le`), in the exposition's unit.
    les: &'static [f64],
    /// Per bucket (not cumulative), then `+Inf`.
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
    /// Observation units per exposition unit (1e9 for seconds from nanoseconds).
    scale: f64,
}

impl Buckets {
    fn new(les: &'static [f64], scale: f64) -> Self {
        Self {
            bounds: les.iter().map(|le| (le * scale).round() as u64).collect(),
            les,
            counts: (0..=les.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            scale,
        }
    }

    fn observe(&self, value: u64) {
        // `le` is inclusive: the first bound not below the value.
        let i = self.bounds.partition_point(|b| *b < value);
        if let Some(count) = self.counts.get(i) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// `<name>_bucket`, `_sum`, `_count` lines with `labels` (already
    /// escaped, without braces).
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        use std::fmt::Write as _;
        let mut cumulative = 0u64;
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            match self.les.get(i) {
                Some(le) => {
                    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
                }
                None => {
                    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {cumulative}");
                }
            }
        }
        let sum = self.sum.load(Ordering::Relaxed) as f64 / self.scale;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        // The count is the buckets' total, so that the two always agree.
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
}

/// A label value escaped for the text exposition.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl RouteSeries {
    fn record(&self, status: u16, nanos: u64, size: Option<u64>) {
        let counted = {
            let statuses = self.statuses.read().unwrap_or_else(|p| p.into_inner());
            match statuses.iter().find(|s| s.status == status) {
                Some(s) => {
                    s.add_one();
                    true
                }
                None => false,
            }
        };
        if !counted {
            self.new_status(status);
        }
        self.duration.observe(nanos);
        if let Some(size) = size {
            self.size.observe(size);
        }
        #[cfg(feature = "statsd")]
        if let Some((duration, bytes)) = &self.statsd {
            duration.record(nanos as f64 / 1e9);
            if let Some(size) = size {
                bytes.record(size as f64);
            }
        }
    }

    /// Counts the first request of `status` (or a racing one).
    #[cold]
    fn new_status(&self, status: u16) {
        let mut statuses = self.statuses.write().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = statuses.iter().find(|s| s.status == status) {
            s.add_one();
            return;
        }
        #[cfg(feature = "statsd")]
        let statsd = self.http.statsd.as_ref().map(|(statsd, _)| {
            let status = status.to_string();
            let key = Metrics::key(
                "http_requests_total",
                &[
                    ("method", self.method.as_str()),
                    ("route", &self.route),
                    ("status", &status),
                ],
            );
            let c = statsd.counter(&key, Counter::noop());
            c.increment(1);
            c
        });
        statuses.push(StatusCount {
            status,
            count: AtomicU64::new(1),
            #[cfg(feature = "statsd")]
            statsd,
        });
        statuses.sort_by_key(|s| s.status);
    }
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
    http: Arc<HttpShared>,
    /// Per (route, method): resolved once per route when the app is built
    /// (and on each request of the fallback, which names no route: hashed
    /// with foldhash, already in the tree through metrics-util).
    series: RwLock<SeriesMap>,
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
/// `after_each` runs after every upkeep (tests count them).
fn spawn_upkeep(
    handle: std::sync::Weak<PrometheusHandle>,
    interval: std::time::Duration,
    mut after_each: impl FnMut() + Send + 'static,
) -> Option<std::thread::JoinHandle<()>> {
    let spawned = std::thread::Builder::new()
        .name("ferrapi-metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(interval);
                match handle.upgrade() {
                    Some(handle) => handle.run_upkeep(),
                    None => break,
                }
                after_each();
            }
        });
    spawned
        .map_err(|e| tracing::warn!(error = %e, "cannot start the metrics upkeep thread: histogram samples are folded only when /metrics is scraped"))
        .ok()
}

static META: Metadata<'static> = Metadata::new("ferrapi", metrics::Level::INFO, Some("ferrapi"));

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
        spawn_upkeep(Arc::downgrade(&handle), UPKEEP_INTERVAL, || {});
        let recorder = Registry {
            prometheus: Arc::new(recorder),
            #[cfg(feature = "statsd")]
            statsd: None,
        };
        Self {
            recorder,
            handle,
            http: Arc::new(HttpShared {
                in_flight: AtomicI64::new(0),
                #[cfg(feature = "statsd")]
                statsd: None,
            }),
            series: RwLock::new(HashMap::default()),
            started: std::time::SystemTime::now(),
        }
    }

    /// The key of a series: `name` with `labels`.
    #[doc(hidden)]
    pub fn key(name: &str, labels: &[(&str, &str)]) -> Key {
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
        let statsd = Arc::new(config.start(sent, failed)?);
        let in_flight = statsd.gauge(
            &Key::from_static_name("http_requests_in_flight"),
            Gauge::noop(),
        );
        self.recorder.statsd = Some(statsd.clone());
        self.http = Arc::new(HttpShared {
            in_flight: AtomicI64::new(0),
            statsd: Some((statsd, in_flight)),
        });
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

    /// The series of (`route`, `method`), registered the first time.
    #[doc(hidden)]
    pub fn series(&self, route: &Arc<str>, method: &Method) -> Arc<RouteSeries> {
        let key = (route.clone(), method.clone());
        if let Some(s) = self
            .series
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return s.clone();
        }
        self.series
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_insert_with(|| {
                #[cfg(feature = "statsd")]
                let statsd = self.http.statsd.as_ref().map(|(statsd, _)| {
                    let labels = [("method", method.as_str()), ("route", &**route)];
                    let histogram =
                        |name| statsd.histogram(&Self::key(name, &labels), Histogram::noop());
                    (
                        histogram("http_request_duration_seconds"),
                        histogram("http_response_size_bytes"),
                    )
                });
                Arc::new(RouteSeries {
                    route: route.clone(),
                    method: method.clone(),
                    http: self.http.clone(),
                    statuses: RwLock::new(Vec::new()),
                    duration: Buckets::new(DURATION_BUCKETS, 1e9),
                    size: Buckets::new(SIZE_BUCKETS, 1.0),
                    #[cfg(feature = "statsd")]
                    statsd,
                })
            })
            .clone()
    }

    /// Starts measuring one request of `route` (looked up: see
    /// [`start_series`](Self::start_series) for a route resolved earlier).
    #[doc(hidden)]
    pub fn start(&self, route: &Arc<str>, method: &Method) -> InFlight {
        Self::start_series(self.series(route, method))
    }

    /// Starts measuring one request of a series resolved earlier.
    #[doc(hidden)]
    pub fn start_series(series: Arc<RouteSeries>) -> InFlight {
        series.http.in_flight(1);
        InFlight {
            series,
            started: Instant::now(),
            done: false,
        }
    }

    /// The HTTP metrics in the text exposition, series in route and method
    /// order.
    fn render_http(&self, out: &mut String) {
        use std::fmt::Write as _;
        let mut all: Vec<Arc<RouteSeries>> = self
            .series
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| (&a.route, a.method.as_str()).cmp(&(&b.route, b.method.as_str())));
        let labels: Vec<String> = all
            .iter()
            .map(|s| {
                format!(
                    "method=\"{}\",route=\"{}\"",
                    escape_label(s.method.as_str()),
                    escape_label(&s.route)
                )
            })
            .collect();
        out.push_str("# TYPE http_requests_total counter\n");
        for (s, labels) in all.iter().zip(&labels) {
            for status in s.statuses.read().unwrap_or_else(|p| p.into_inner()).iter() {
                let _ = writeln!(
                    out,
                    "http_requests_total{{{labels},status=\"{}\"}} {}",
                    status.status,
                    status.count.load(Ordering::Relaxed)
                );
            }
        }
        out.push_str("# TYPE http_request_duration_seconds histogram\n");
        for (s, labels) in all.iter().zip(&labels) {
            s.duration
                .render(out, "http_request_duration_seconds", labels);
        }
        out.push_str("# TYPE http_response_size_bytes histogram\n");
        for (s, labels) in all.iter().zip(&labels) {
            s.size.render(out, "http_response_size_bytes", labels);
        }
        let _ = writeln!(
            out,
            "# TYPE http_requests_in_flight gauge\nhttp_requests_in_flight {}",
            self.http.in_flight.load(Ordering::Relaxed)
        );
    }

    /// The Prometheus text exposition of every metric, process metrics included.
    pub fn render(&self) -> String {
        let mut out = self.handle.render();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        self.render_http(&mut out);
        process_metrics(&mut out, self.started);
        out
    }
}

/// The HTTP metrics of an application's routes, resolved once when the app
/// is built: a request of a route finds its series by the route's
/// [`RouteId`](ferrapi_core::extract::RouteId), an index, without hashing
/// the template. The application's dispatcher starts one [`InFlight`] per
/// routed request with [`start`](Self::start) and finishes it with the
/// response.
#[doc(hidden)]
pub struct RouteMetrics {
    metrics: Arc<Metrics>,
    /// By route id.
    series: Vec<Arc<RouteSeries>>,
}

impl RouteMetrics {
    /// The series of `routes` (numbered `0..routes.len()` by their ids) in
    /// `metrics`.
    pub fn new(metrics: Arc<Metrics>, routes: &[MatchedRoute]) -> Self {
        let mut series: Vec<(usize, Arc<RouteSeries>)> = routes
            .iter()
            .map(|r| (r.id().index(), metrics.series(r.template_arc(), r.method())))
            .collect();
        series.sort_by_key(|(id, _)| *id);
        Self {
            series: series.into_iter().map(|(_, s)| s).collect(),
            metrics,
        }
    }

    /// Starts measuring one request of `route` whose method is `method`:
    /// the route's series, resolved when the app was built, unless the
    /// request's method is not the route's (a `HEAD` answered by a `GET`
    /// route is counted as `HEAD`: that series is looked up).
    pub fn start(&self, route: &MatchedRoute, method: &Method) -> InFlight {
        match self.series.get(route.id().index()) {
            Some(series) if method == route.method() => Metrics::start_series(series.clone()),
            _ => self.metrics.start(route.template_arc(), method),
        }
    }
}

/// One request being measured; dropped without `finish` (a panic, a client
/// that went away) it counts as a 500.
#[doc(hidden)]
pub struct InFlight {
    series: Arc<RouteSeries>,
    started: Instant,
    done: bool,
}

impl InFlight {
    /// Records the request: answered `status`, with a body of `size`
    /// bytes when known.
    #[doc(hidden)]
    pub fn finish(mut self, status: u16, size: Option<u64>) {
        self.record(status, size);
    }

    fn record(&mut self, status: u16, size: Option<u64>) {
        if self.done {
            return;
        }
        self.done = true;
        let nanos = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.series.record(status, nanos, size);
        self.series.http.in_flight(-1);
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in\n{text}"))
    }

    #[test]
    fn the_upkeep_thread_runs_until_the_registry_is_gone() {
        use std::sync::atomic::AtomicUsize;
        use std::time::{Duration, Instant};
        let handle = Arc::new(PrometheusBuilder::new().build_recorder().handle());
        let upkeeps = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&upkeeps);
        let thread = spawn_upkeep(
            Arc::downgrade(&handle),
            Duration::from_millis(10),
            move || {
                counter.fetch_add(1, Ordering::SeqCst);
            },
        )
        .unwrap();
        // Bounded waits: 5 s for three upkeeps, 5 s for the thread to end.
        let deadline = Instant::now() + Duration::from_secs(5);
        while upkeeps.load(Ordering::SeqCst) < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            upkeeps.load(Ordering::SeqCst) >= 3,
            "the upkeep did not run"
        );
        drop(handle);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            thread.is_finished(),
            "the upkeep thread outlived its registry"
        );
        let ran = upkeeps.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            upkeeps.load(Ordering::SeqCst),
            ran,
            "an upkeep after the end"
        );
    }

    #[test]
    fn histogram_buckets_are_inclusive_cumulative_and_agree_with_the_count() {
        let metrics = Metrics::new();
        let route: Arc<str> = Arc::from("/users/{id}");
        let series = metrics.series(&route, &Method::GET);
        // 1 ms exactly is in le="0.001"; 1 ms + 1 ns is not.
        for (nanos, size) in [
            (1_000_000, 64),
            (1_000_001, 65),
            (20_000_000_000, 5_000_000),
        ] {
            series.record(200, nanos, Some(size));
        }
        series.record(404, 10, None);
        // A request in flight, then dropped unfinished (a panic): a 500.
        let other = metrics.series(&Arc::from("/other"), &Method::GET);
        let pending = Metrics::start_series(other);
        assert!(metrics.render().contains("http_requests_in_flight 1\n"));
        drop(pending);
        let text = metrics.render();
        let labels = r#"method="GET",route="/users/{id}""#;
        let bucket = |le: &str| {
            line(
                &text,
                &format!("http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} "),
            )
            .rsplit(' ')
            .next()
            .unwrap()
            .to_owned()
        };
        // 10 ns (the 404), 1 ms, 1 ms + 1 ns, 20 s.
        assert_eq!(bucket("0.0005"), "1");
        assert_eq!(bucket("0.001"), "2");
        assert_eq!(bucket("0.0025"), "3");
        assert_eq!(bucket("10"), "3");
        assert_eq!(bucket("+Inf"), "4");
        assert_eq!(
            line(
                &text,
                &format!("http_request_duration_seconds_count{{{labels}}}")
            ),
            format!("http_request_duration_seconds_count{{{labels}}} 4")
        );
        let sum: f64 = line(
            &text,
            &format!("http_request_duration_seconds_sum{{{labels}}}"),
        )
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
        assert_eq!(sum, 20.002000011);
        // Sizes: 3 observed (the 404 had no known size); 64 is in le="64".
        assert!(text.contains(&format!(
            "http_response_size_bytes_bucket{{{labels},le=\"64\"}} 1\n"
        )));
        assert!(text.contains(&format!("http_response_size_bytes_count{{{labels}}} 3\n")));
        assert!(text.contains(&format!(
            "http_requests_total{{{labels},status=\"200\"}} 3\n"
        )));
        assert!(text.contains(&format!(
            "http_requests_total{{{labels},status=\"404\"}} 1\n"
        )));
        assert!(
            text.contains(
                "http_requests_total{method=\"GET\",route=\"/other\",status=\"500\"} 1\n"
            )
        );
        assert!(text.contains("http_requests_in_flight 0\n"));
        // One TYPE line per family.
        assert_eq!(text.matches("# TYPE http_requests_total ").count(), 1);
    }

    #[test]
    fn one_series_per_route_and_method_and_memory_does_not_grow_with_requests() {
        let metrics = Metrics::new();
        let route: Arc<str> = Arc::from("/a");
        let a = metrics.series(&route, &Method::GET);
        assert!(Arc::ptr_eq(&a, &metrics.series(&route, &Method::GET)));
        assert!(!Arc::ptr_eq(&a, &metrics.series(&route, &Method::HEAD)));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let a = a.clone();
                std::thread::spawn(move || {
                    for i in 0..50_000u64 {
                        a.record(if i % 2 == 0 { 200 } else { 500 }, i, Some(i));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(a.statuses.read().unwrap().len(), 2);
        let text = metrics.render();
        assert!(
            text.contains(r#"http_requests_total{method="GET",route="/a",status="200"} 100000"#)
        );
        assert!(
            text.contains(r#"http_requests_total{method="GET",route="/a",status="500"} 100000"#)
        );
        assert!(
            text.contains(r#"http_request_duration_seconds_count{method="GET",route="/a"} 200000"#)
        );
    }

    #[test]
    fn route_metrics_find_series_by_route_id_and_count_head_on_get_as_head() {
        use ferrapi_core::extract::RouteId;
        let metrics = Arc::new(Metrics::new());
        let routes = [
            MatchedRoute::new(Arc::from("/b"), Method::POST, RouteId::new(1)),
            MatchedRoute::new(Arc::from("/a"), Method::GET, RouteId::new(0)),
        ];
        let by_id = RouteMetrics::new(metrics.clone(), &routes);
        // Resolved when built, in id order, and the registry's own series.
        assert!(Arc::ptr_eq(
            &by_id.series[0],
            &metrics.series(&Arc::from("/a"), &Method::GET)
        ));
        assert!(Arc::ptr_eq(
            &by_id.series[1],
            &metrics.series(&Arc::from("/b"), &Method::POST)
        ));
        by_id.start(&routes[1], &Method::GET).finish(200, Some(2));
        by_id.start(&routes[1], &Method::HEAD).finish(200, None);
        by_id.start(&routes[0], &Method::POST).finish(201, None);
        let text = metrics.render();
        for line in [
            r#"http_requests_total{method="GET",route="/a",status="200"} 1"#,
            r#"http_requests_total{method="HEAD",route="/a",status="200"} 1"#,
            r#"http_requests_total{method="POST",route="/b",status="201"} 1"#,
            "http_requests_in_flight 0",
        ] {
            assert!(text.contains(line), "no `{line}` in\n{text}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"/a"b\c"#), r#"/a\"b\\c"#);
        assert_eq!(escape_label("x\ny"), r"x\ny");
    }
}
