//! StatsD push of the application's metrics (feature `statsd`).
//!
//! [`Metrics::statsd`](crate::metrics::Metrics::statsd) makes every metric
//! of the registry — the HTTP metrics, the storage gauges, your own — also
//! go to a StatsD agent over UDP, while `/metrics` keeps serving them to
//! Prometheus:
//!
//! ```no_run
//! use ferrapi::metrics::Metrics;
//! use ferrapi::prelude::*;
//! use ferrapi::statsd::StatsdConfig;
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! # fn main() -> Result<(), ferrapi::statsd::StatsdError> {
//! let metrics = Metrics::new().statsd(
//!     StatsdConfig::new("127.0.0.1", 8125)
//!         .prefix("users_api")
//!         .interval(Duration::from_secs(10)),
//! )?;
//! let app = App::new().metrics("/metrics", Arc::new(metrics));
//! # Ok(()) }
//! ```
//!
//! [`StatsdConfig::from_env`] reads the same settings from the environment
//! (`None` when `STATSD_HOST` is unset):
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `STATSD_HOST` | the agent's host name or IP address; unset: no push | unset |
//! | `STATSD_PORT` | its UDP port | `8125` |
//! | `STATSD_PREFIX` | prepended to every name, with a `.` | none |
//! | `STATSD_INTERVAL` | seconds between pushes (fractions allowed) | `10` |
//! | `STATSD_TAGS` | `dogstatsd`: labels as DogStatsD tags (`\|#route:/users/{id},status:200`); `name`: labels folded into the name (`http_requests_total.method_GET.status_200`), for agents without tags | `dogstatsd` |
//! | `STATSD_HISTOGRAM` | `h`: histogram samples as DogStatsD histograms; `ms`: as StatsD timers, `*_seconds` values converted to milliseconds | `h` |
//! | `STATSD_MAX_PACKET_SIZE` | the largest datagram, in bytes (64 to 1432) | `1432` |
//!
//! # What is sent
//!
//! Every interval, one line per series and kind, in the plain StatsD text
//! format that DogStatsD, Telegraf and the Etsy daemon read:
//!
//! - counters: the increase since the last push, `name:3|c` (nothing when
//!   it did not move);
//! - gauges: the current value, `name:12|g` (a negative value is sent as
//!   `name:0|g` then `name:-5|g`, since a leading sign means "add" to
//!   StatsD);
//! - histograms: the samples recorded since the last push, `name:0.012|h`
//!   (or `|ms`). At most [`StatsdConfig::max_samples`] per series and push
//!   are kept, drawn uniformly (reservoir sampling) when there are more;
//!   the lines then carry the sample rate (`|@0.25`) so that the agent
//!   scales the counts back.
//!
//! Lines are packed into datagrams of at most 1432 bytes (what fits an
//! Ethernet MTU with IP and UDP headers, the size DogStatsD recommends); a
//! line that would not fit alone is dropped.
//!
//! # Never in the way of requests
//!
//! Recording stays what it is for Prometheus plus one atomic operation (a
//! short uncontended lock for a histogram sample). Pushing happens on a
//! thread of its own, over a non-blocking UDP socket: a send that would
//! block, an agent that is down (the kernel reports the refused datagram
//! on a later send) or a name that does not resolve only count as errors,
//! logged at most once per interval (target `ferrapi::statsd`). Dropping
//! the [`Metrics`](crate::metrics::Metrics) pushes what is left and stops
//! the thread. `statsd_datagrams_total{result="sent"|"failed"}`, in the
//! Prometheus output only, counts the datagrams.

use metrics::{Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{SocketAddr, ToSocketAddrs as _, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// The largest datagram sent by default, and the most allowed.
pub const MAX_PACKET_SIZE: usize = 1432;

/// The push could not be set up. Each names the setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum StatsdError {
    /// A setting (an environment variable or an explicit value) is invalid.
    #[error("{setting}: {message}")]
    Config {
        /// The variable or setting.
        setting: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The push thread could not be started.
    #[error("cannot start the StatsD thread: {0}")]
    Thread(#[source] std::io::Error),
}

fn config_error(setting: &'static str, message: impl Into<String>) -> StatsdError {
    StatsdError::Config {
        setting,
        message: message.into(),
    }
}

/// How labels travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TagStyle {
    /// DogStatsD tags: `name:1|c|#method:GET,status:200`.
    #[default]
    DogStatsd,
    /// Folded into the name, for agents without tags:
    /// `name.method_GET.status_200:1|c`.
    Name,
}

/// How histogram samples travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HistogramStyle {
    /// `name:0.25|h`, the value as recorded.
    #[default]
    Histogram,
    /// `name:250|ms`: StatsD timers; values of metrics whose name ends in
    /// `_seconds` are converted to milliseconds.
    Timer,
}

/// Where and how metrics are pushed.
///
/// ```
/// use ferrapi::statsd::{HistogramStyle, StatsdConfig, TagStyle};
/// use std::time::Duration;
///
/// let config = StatsdConfig::new("statsd.internal", 8125)
///     .prefix("users_api")
///     .interval(Duration::from_secs(5))
///     .tags(TagStyle::Name)
///     .histograms(HistogramStyle::Timer);
/// assert_eq!(config.address(), "statsd.internal:8125");
/// ```
#[derive(Debug, Clone)]
pub struct StatsdConfig {
    host: String,
    port: u16,
    prefix: String,
    interval: Duration,
    tags: TagStyle,
    histograms: HistogramStyle,
    max_packet_size: usize,
    max_samples: usize,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl StatsdConfig {
    /// Pushes to the agent at `host:port` every 10 s, with DogStatsD tags.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            prefix: String::new(),
            interval: Duration::from_secs(10),
            tags: TagStyle::DogStatsd,
            histograms: HistogramStyle::Histogram,
            max_packet_size: MAX_PACKET_SIZE,
            max_samples: 1000,
        }
    }

    /// The settings the `STATSD_*` variables give (see the
    /// [module docs](self)); `None` when `STATSD_HOST` is unset.
    ///
    /// # Errors
    /// A malformed variable, named in the error.
    pub fn from_env() -> Result<Option<Self>, StatsdError> {
        Self::from_vars(var)
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, StatsdError> {
        let Some(host) = var("STATSD_HOST") else {
            return Ok(None);
        };
        let host = host.trim();
        if host.contains(['/', ' ']) {
            return Err(config_error(
                "STATSD_HOST",
                format!("`{host}` is not a host name or IP address"),
            ));
        }
        let port = match var("STATSD_PORT") {
            None => 8125,
            Some(v) => v
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| config_error("STATSD_PORT", format!("`{v}` is not a port")))?,
        };
        let mut config = Self::new(host, port);
        if let Some(prefix) = var("STATSD_PREFIX") {
            config = config.prefix(prefix.trim());
        }
        if let Some(v) = var("STATSD_INTERVAL") {
            let seconds = v
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.01 && *s <= 86_400.0)
                .ok_or_else(|| {
                    config_error(
                        "STATSD_INTERVAL",
                        format!("`{v}` is not a number of seconds between 0.01 and 86400"),
                    )
                })?;
            config.interval = Duration::from_secs_f64(seconds);
        }
        if let Some(v) = var("STATSD_TAGS") {
            config.tags = match v.trim() {
                "dogstatsd" => TagStyle::DogStatsd,
                "name" => TagStyle::Name,
                other => {
                    return Err(config_error(
                        "STATSD_TAGS",
                        format!("`{other}` is not `dogstatsd` or `name`"),
                    ));
                }
            };
        }
        if let Some(v) = var("STATSD_HISTOGRAM") {
            config.histograms = match v.trim() {
                "h" => HistogramStyle::Histogram,
                "ms" => HistogramStyle::Timer,
                other => {
                    return Err(config_error(
                        "STATSD_HISTOGRAM",
                        format!("`{other}` is not `h` or `ms`"),
                    ));
                }
            };
        }
        if let Some(v) = var("STATSD_MAX_PACKET_SIZE") {
            config.max_packet_size = v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (64..=MAX_PACKET_SIZE).contains(n))
                .ok_or_else(|| {
                    config_error(
                        "STATSD_MAX_PACKET_SIZE",
                        format!("`{v}` is not a number of bytes between 64 and {MAX_PACKET_SIZE}"),
                    )
                })?;
        }
        Ok(Some(config))
    }

    /// Prepended to every name, with a `.` (`users_api.http_requests_total`).
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = sanitize_name(prefix.into().trim_end_matches('.'));
        self
    }

    /// Time between pushes (10 s by default; at least 10 ms).
    #[must_use]
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(10));
        self
    }

    /// How labels are sent (DogStatsD tags by default).
    #[must_use]
    pub fn tags(mut self, style: TagStyle) -> Self {
        self.tags = style;
        self
    }

    /// How histogram samples are sent (`|h` by default).
    #[must_use]
    pub fn histograms(mut self, style: HistogramStyle) -> Self {
        self.histograms = style;
        self
    }

    /// The largest datagram, in bytes (clamped to 64..=1432).
    #[must_use]
    pub fn max_packet_size(mut self, bytes: usize) -> Self {
        self.max_packet_size = bytes.clamp(64, MAX_PACKET_SIZE);
        self
    }

    /// The most samples of one histogram series sent per push (1000);
    /// beyond that a uniform sample is sent with its rate.
    #[must_use]
    pub fn max_samples(mut self, samples: usize) -> Self {
        self.max_samples = samples.max(1);
        self
    }

    /// `host:port` of the agent.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Starts the push thread; it counts the datagrams it sends and those
    /// that fail in `sent` and `failed`.
    #[doc(hidden)]
    pub fn start(self, sent: Counter, failed: Counter) -> Result<Statsd, StatsdError> {
        let shared = Arc::new(Shared {
            config: self,
            series: Mutex::new(Series::default()),
            sent,
            failed,
        });
        let (stop, stopped) = mpsc::channel::<()>();
        let pusher = Pusher {
            shared: shared.clone(),
            socket: None,
        };
        let thread = std::thread::Builder::new()
            .name("ferrapi-statsd".into())
            .spawn(move || pusher.run(&stopped))
            .map_err(StatsdError::Thread)?;
        Ok(Statsd {
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// StatsD's reserved characters out of a name (`:`, `|`, `@`, `#`,
/// spaces): replaced by `_`.
fn sanitize_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A tag's key or value without what would end it (`,`, `|`, `#`,
/// newlines).
fn sanitize_tag(text: &str) -> String {
    text.chars()
        .map(|c| {
            if matches!(c, ',' | '|' | '#' | '\n' | '\r' | ' ') {
                '_'
            } else {
                c
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The series: what each registered metric keeps between pushes.

/// A series' name and tags, as they go on the wire.
#[derive(Debug)]
struct Line {
    name: String,
    tags: String,
    /// Timer style on a `*_seconds` histogram: values × 1000.
    millis: bool,
}

impl Line {
    fn new(config: &StatsdConfig, key: &Key) -> Self {
        let mut name = String::new();
        if !config.prefix.is_empty() {
            name.push_str(&config.prefix);
            name.push('.');
        }
        name.push_str(&sanitize_name(key.name()));
        let mut tags = String::new();
        for label in key.labels() {
            match config.tags {
                TagStyle::DogStatsd => {
                    tags.push(if tags.is_empty() { '#' } else { ',' });
                    tags.push_str(&sanitize_tag(label.key()));
                    tags.push(':');
                    tags.push_str(&sanitize_tag(label.value()));
                }
                TagStyle::Name => {
                    name.push('.');
                    name.push_str(&sanitize_name(label.key()));
                    name.push('_');
                    name.push_str(&sanitize_name(label.value()));
                }
            }
        }
        if !tags.is_empty() {
            tags.insert(0, '|');
        }
        let millis = config.histograms == HistogramStyle::Timer && key.name().ends_with("_seconds");
        Line { name, tags, millis }
    }
}

#[derive(Debug, Default)]
struct CounterCell {
    total: AtomicU64,
    /// The total at the last push (written by the push thread only).
    pushed: AtomicU64,
}

impl CounterFn for CounterCell {
    fn increment(&self, value: u64) {
        self.total.fetch_add(value, Ordering::Relaxed);
    }

    fn absolute(&self, value: u64) {
        self.total.fetch_max(value, Ordering::Relaxed);
    }
}

#[derive(Debug, Default)]
struct GaugeCell {
    bits: AtomicU64,
    set: AtomicBool,
}

impl GaugeCell {
    fn update(&self, f: impl Fn(f64) -> f64) {
        // A compare-and-swap loop: retries only while another thread
        // changes the value in between.
        let _ = self
            .bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some(f(f64::from_bits(bits)).to_bits())
            });
        self.set.store(true, Ordering::Relaxed);
    }
}

impl GaugeFn for GaugeCell {
    fn increment(&self, value: f64) {
        self.update(|v| v + value);
    }

    fn decrement(&self, value: f64) {
        self.update(|v| v - value);
    }

    fn set(&self, value: f64) {
        self.bits.store(value.to_bits(), Ordering::Relaxed);
        self.set.store(true, Ordering::Relaxed);
    }
}

/// The samples of one push interval: a uniform reservoir of at most
/// `capacity` values out of `seen`.
#[derive(Debug)]
struct Reservoir {
    values: Vec<f64>,
    seen: u64,
    /// xorshift64 state, for the reservoir's draws.
    rng: u64,
}

#[derive(Debug)]
struct HistogramCell {
    reservoir: Mutex<Reservoir>,
    capacity: usize,
}

impl HistogramCell {
    fn new(capacity: usize, seed: u64) -> Self {
        HistogramCell {
            reservoir: Mutex::new(Reservoir {
                values: Vec::new(),
                seen: 0,
                rng: seed | 1,
            }),
            capacity,
        }
    }

    /// The samples since the last call, and how many were recorded.
    fn take(&self) -> (Vec<f64>, u64) {
        let mut r = self.reservoir.lock().unwrap_or_else(|p| p.into_inner());
        let seen = std::mem::take(&mut r.seen);
        (std::mem::take(&mut r.values), seen)
    }
}

impl HistogramFn for HistogramCell {
    fn record(&self, value: f64) {
        let mut r = self.reservoir.lock().unwrap_or_else(|p| p.into_inner());
        r.seen += 1;
        if r.values.len() < self.capacity {
            r.values.push(value);
            return;
        }
        // Algorithm R: the n-th sample replaces a kept one with
        // probability capacity / n.
        r.rng ^= r.rng << 13;
        r.rng ^= r.rng >> 7;
        r.rng ^= r.rng << 17;
        let slot = r.rng % r.seen;
        if let Ok(slot) = usize::try_from(slot)
            && slot < self.capacity
        {
            r.values[slot] = value;
        }
    }
}

#[derive(Debug, Default)]
struct Series {
    counters: HashMap<Key, (Line, Arc<CounterCell>)>,
    gauges: HashMap<Key, (Line, Arc<GaugeCell>)>,
    histograms: HashMap<Key, (Line, Arc<HistogramCell>)>,
}

#[derive(Debug)]
struct Shared {
    config: StatsdConfig,
    series: Mutex<Series>,
    /// `statsd_datagrams_total{result="sent"|"failed"}` (Prometheus only).
    sent: Counter,
    failed: Counter,
}

/// A handle that records into the Prometheus registry and the StatsD cell.
struct Both<P, S>(P, Arc<S>);

impl<S: CounterFn> CounterFn for Both<Counter, S> {
    fn increment(&self, value: u64) {
        self.0.increment(value);
        self.1.increment(value);
    }

    fn absolute(&self, value: u64) {
        self.0.absolute(value);
        self.1.absolute(value);
    }
}

impl<S: GaugeFn> GaugeFn for Both<Gauge, S> {
    fn increment(&self, value: f64) {
        self.0.increment(value);
        self.1.increment(value);
    }

    fn decrement(&self, value: f64) {
        self.0.decrement(value);
        self.1.decrement(value);
    }

    fn set(&self, value: f64) {
        self.0.set(value);
        self.1.set(value);
    }
}

impl<S: HistogramFn> HistogramFn for Both<Histogram, S> {
    fn record(&self, value: f64) {
        self.0.record(value);
        self.1.record(value);
    }
}

/// The running push: the series registry and its thread. Dropped, it
/// pushes what is left and stops the thread.
#[derive(Debug)]
#[doc(hidden)]
pub struct Statsd {
    shared: Arc<Shared>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Statsd {
    /// `prometheus`, recording into this push's cell for `key` too.
    #[doc(hidden)]
    pub fn counter(&self, key: &Key, prometheus: Counter) -> Counter {
        let mut series = self.shared.series.lock().unwrap_or_else(|p| p.into_inner());
        let (_, cell) = series
            .counters
            .entry(key.clone())
            .or_insert_with(|| (Line::new(&self.shared.config, key), Arc::default()));
        Counter::from_arc(Arc::new(Both(prometheus, cell.clone())))
    }

    /// `prometheus`, recording into this push's cell for `key` too.
    #[doc(hidden)]
    pub fn gauge(&self, key: &Key, prometheus: Gauge) -> Gauge {
        let mut series = self.shared.series.lock().unwrap_or_else(|p| p.into_inner());
        let (_, cell) = series
            .gauges
            .entry(key.clone())
            .or_insert_with(|| (Line::new(&self.shared.config, key), Arc::default()));
        Gauge::from_arc(Arc::new(Both(prometheus, cell.clone())))
    }

    /// `prometheus`, recording into this push's cell for `key` too.
    #[doc(hidden)]
    pub fn histogram(&self, key: &Key, prometheus: Histogram) -> Histogram {
        let mut series = self.shared.series.lock().unwrap_or_else(|p| p.into_inner());
        let seed = u64::try_from(series.histograms.len()).unwrap_or(0) + 0x9E37_79B9_7F4A_7C15;
        let capacity = self.shared.config.max_samples;
        let (_, cell) = series.histograms.entry(key.clone()).or_insert_with(|| {
            (
                Line::new(&self.shared.config, key),
                Arc::new(HistogramCell::new(capacity, seed)),
            )
        });
        Histogram::from_arc(Arc::new(Both(prometheus, cell.clone())))
    }
}

impl Drop for Statsd {
    fn drop(&mut self) {
        // Closing the channel wakes the thread for its last push.
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ---------------------------------------------------------------------------
// The push thread.

/// Datagrams of whole lines, none larger than `max`.
struct Packer {
    max: usize,
    current: Vec<u8>,
    packets: Vec<Vec<u8>>,
    /// Units dropped because they would not fit one datagram alone.
    oversized: u64,
}

impl Packer {
    fn new(max: usize) -> Self {
        Packer {
            max,
            current: Vec::with_capacity(max),
            packets: Vec::new(),
            oversized: 0,
        }
    }

    /// Adds lines that must travel together (a negative gauge's reset and
    /// value), in one datagram.
    fn push(&mut self, unit: &str) {
        if unit.len() > self.max {
            self.oversized += 1;
            return;
        }
        let needed = unit.len() + usize::from(!self.current.is_empty());
        if self.current.len() + needed > self.max {
            self.packets.push(std::mem::take(&mut self.current));
        }
        if !self.current.is_empty() {
            self.current.push(b'\n');
        }
        self.current.extend_from_slice(unit.as_bytes());
    }

    fn finish(mut self) -> (Vec<Vec<u8>>, u64) {
        if !self.current.is_empty() {
            self.packets.push(self.current);
        }
        (self.packets, self.oversized)
    }
}

/// A value as StatsD reads it: no exponent, no trailing `.0`.
fn number(out: &mut String, value: f64) {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        let _ = write!(out, "{}", value as i64);
    } else {
        let _ = write!(out, "{value}");
    }
}

/// The lines of one push, packed. Reads and resets the counters' deltas
/// and the histograms' samples.
fn collect(shared: &Shared) -> (Vec<Vec<u8>>, u64) {
    let config = &shared.config;
    let mut packer = Packer::new(config.max_packet_size);
    let series = shared.series.lock().unwrap_or_else(|p| p.into_inner());
    let mut unit = String::new();
    for (line, cell) in series.counters.values() {
        let total = cell.total.load(Ordering::Relaxed);
        let delta = total.saturating_sub(cell.pushed.swap(total, Ordering::Relaxed));
        if delta == 0 {
            continue;
        }
        unit.clear();
        let _ = write!(unit, "{}:{delta}|c{}", line.name, line.tags);
        packer.push(&unit);
    }
    for (line, cell) in series.gauges.values() {
        if !cell.set.load(Ordering::Relaxed) {
            continue;
        }
        let value = f64::from_bits(cell.bits.load(Ordering::Relaxed));
        if !value.is_finite() {
            continue;
        }
        unit.clear();
        if value < 0.0 {
            let _ = writeln!(unit, "{}:0|g{}", line.name, line.tags);
        }
        let _ = write!(unit, "{}:", line.name);
        number(&mut unit, value);
        let _ = write!(unit, "|g{}", line.tags);
        packer.push(&unit);
    }
    let kind = match config.histograms {
        HistogramStyle::Histogram => "h",
        HistogramStyle::Timer => "ms",
    };
    for (line, cell) in series.histograms.values() {
        let (values, seen) = cell.take();
        if values.is_empty() {
            continue;
        }
        let rate = values.len() as f64 / seen.max(1) as f64;
        for value in values.into_iter().filter(|v| v.is_finite()) {
            unit.clear();
            let _ = write!(unit, "{}:", line.name);
            number(&mut unit, if line.millis { value * 1000.0 } else { value });
            let _ = write!(unit, "|{kind}");
            if rate < 1.0 {
                let _ = write!(unit, "|@{}", format!("{rate:.6}").trim_end_matches('0'));
            }
            unit.push_str(&line.tags);
            packer.push(&unit);
        }
    }
    drop(series);
    packer.finish()
}

struct Pusher {
    shared: Arc<Shared>,
    socket: Option<UdpSocket>,
}

impl Pusher {
    /// Pushes every interval until the channel closes, then once more.
    fn run(mut self, stopped: &mpsc::Receiver<()>) {
        loop {
            let last = !matches!(
                stopped.recv_timeout(self.shared.config.interval),
                Err(mpsc::RecvTimeoutError::Timeout)
            );
            self.push();
            if last {
                return;
            }
        }
    }

    /// A connected, non-blocking socket to the agent (resolved again
    /// after a failure).
    fn socket(&mut self) -> Result<&UdpSocket, String> {
        if self.socket.is_none() {
            let address = self.shared.config.address();
            let target: SocketAddr = address
                .to_socket_addrs()
                .map_err(|e| format!("cannot resolve {address}: {e}"))?
                .next()
                .ok_or_else(|| format!("{address} has no address"))?;
            let local: SocketAddr = if target.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                ([0u16; 8], 0).into()
            };
            let socket = UdpSocket::bind(local).map_err(|e| e.to_string())?;
            socket.connect(target).map_err(|e| e.to_string())?;
            socket.set_nonblocking(true).map_err(|e| e.to_string())?;
            self.socket = Some(socket);
        }
        self.socket.as_ref().ok_or_else(|| "no socket".to_owned())
    }

    fn push(&mut self) {
        let (packets, oversized) = collect(&self.shared);
        if oversized > 0 {
            tracing::warn!(
                target: "ferrapi::statsd",
                lines = oversized,
                max = self.shared.config.max_packet_size,
                "StatsD lines longer than a datagram were dropped"
            );
        }
        if packets.is_empty() {
            return;
        }
        let mut failed = 0u64;
        let mut first_error = None;
        let total = packets.len() as u64;
        match self.socket() {
            Ok(socket) => {
                for packet in &packets {
                    if let Err(e) = socket.send(packet) {
                        failed += 1;
                        first_error.get_or_insert_with(|| e.to_string());
                    }
                }
            }
            Err(e) => {
                failed = total;
                first_error = Some(e);
            }
        }
        self.shared.sent.increment(total - failed);
        self.shared.failed.increment(failed);
        if let Some(error) = first_error {
            // Resolve and connect again next time (the agent may have
            // moved); one line per push at most.
            self.socket = None;
            tracing::warn!(
                target: "ferrapi::statsd",
                agent = %self.shared.config.address(),
                failed,
                of = packets.len(),
                error,
                "StatsD push failed; the datagrams are dropped"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Result<Option<StatsdConfig>, StatsdError> {
        StatsdConfig::from_vars(|name| {
            list.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    fn key(name: &str, labels: &[(&str, &str)]) -> Key {
        crate::metrics::Metrics::key(name, labels)
    }

    #[test]
    fn the_environment_is_read_and_checked() {
        assert!(matches!(vars(&[]), Ok(None)));
        let config = vars(&[
            ("STATSD_HOST", "agent"),
            ("STATSD_PREFIX", "api."),
            ("STATSD_INTERVAL", "0.5"),
            ("STATSD_TAGS", "name"),
            ("STATSD_HISTOGRAM", "ms"),
            ("STATSD_MAX_PACKET_SIZE", "512"),
        ])
        .ok()
        .flatten();
        let config = config.as_ref();
        assert_eq!(
            config.map(StatsdConfig::address).as_deref(),
            Some("agent:8125")
        );
        assert_eq!(config.map(|c| c.prefix.as_str()), Some("api"));
        assert_eq!(config.map(|c| c.interval), Some(Duration::from_millis(500)));
        assert_eq!(config.map(|c| c.tags), Some(TagStyle::Name));
        assert_eq!(config.map(|c| c.histograms), Some(HistogramStyle::Timer));
        assert_eq!(config.map(|c| c.max_packet_size), Some(512));
        for (name, value) in [
            ("STATSD_PORT", "99999"),
            ("STATSD_INTERVAL", "soon"),
            ("STATSD_TAGS", "influx"),
            ("STATSD_HISTOGRAM", "d"),
            ("STATSD_MAX_PACKET_SIZE", "9000"),
        ] {
            let err = vars(&[("STATSD_HOST", "agent"), (name, value)])
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.starts_with(&format!("{name}: `{value}`")), "{err}");
        }
        assert_eq!(
            StatsdConfig::new("::1", 8125).address(),
            "[::1]:8125",
            "IPv6 literals are bracketed"
        );
    }

    #[test]
    fn lines_carry_tags_or_fold_labels_into_the_name() {
        let k = key(
            "http_requests_total",
            &[("route", "/users/{id}"), ("status", "200|x")],
        );
        let dog = Line::new(&StatsdConfig::new("a", 1).prefix("api"), &k);
        assert_eq!(dog.name, "api.http_requests_total");
        assert_eq!(dog.tags, "|#route:/users/{id},status:200_x");
        let plain = Line::new(&StatsdConfig::new("a", 1).tags(TagStyle::Name), &k);
        assert_eq!(
            plain.name,
            "http_requests_total.route__users__id_.status_200_x"
        );
        assert_eq!(plain.tags, "");
        let timer = StatsdConfig::new("a", 1).histograms(HistogramStyle::Timer);
        assert!(Line::new(&timer, &key("x_seconds", &[])).millis);
        assert!(!Line::new(&timer, &key("x_bytes", &[])).millis);
        assert_eq!(sanitize_name("a:b|c@d#e f"), "a_b_c_d_e_f");
    }

    #[test]
    fn packets_hold_whole_lines_within_the_bound() {
        let mut packer = Packer::new(64);
        for i in 0..20 {
            packer.push(&format!("metric_{i:02}:1|c"));
        }
        packer.push(&"x".repeat(65));
        let (packets, oversized) = packer.finish();
        assert_eq!(oversized, 1);
        assert!(packets.iter().all(|p| p.len() <= 64));
        let lines: Vec<String> = packets
            .iter()
            .flat_map(|p| {
                String::from_utf8_lossy(p)
                    .lines()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(lines.len(), 20);
        assert_eq!(lines[0], "metric_00:1|c");
        assert_eq!(lines[19], "metric_19:1|c");
    }

    #[test]
    fn a_push_sends_deltas_gauges_and_sampled_histograms() {
        let shared = Shared {
            config: StatsdConfig::new("a", 1).max_samples(10),
            series: Mutex::new(Series::default()),
            sent: Counter::noop(),
            failed: Counter::noop(),
        };
        let statsd = Statsd {
            shared: Arc::new(shared),
            stop: None,
            thread: None,
        };
        let counter = statsd.counter(&key("hits", &[]), Counter::noop());
        let gauge = statsd.gauge(&key("temp", &[]), Gauge::noop());
        let histogram = statsd.histogram(&key("lat", &[]), Histogram::noop());
        let lines = || -> Vec<String> {
            let (packets, _) = collect(&statsd.shared);
            packets
                .iter()
                .flat_map(|p| {
                    String::from_utf8_lossy(p)
                        .lines()
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        counter.increment(3);
        gauge.set(-2.5);
        histogram.record(0.25);
        let mut first = lines();
        first.sort();
        assert_eq!(first, ["hits:3|c", "lat:0.25|h", "temp:-2.5|g", "temp:0|g"]);
        // The negative gauge's reset comes first, in the same datagram.
        let (packets, _) = collect(&statsd.shared);
        assert_eq!(
            String::from_utf8_lossy(&packets[0]),
            "temp:0|g\ntemp:-2.5|g"
        );
        // The next push: the counter's increase, the gauge's value, the
        // samples recorded since.
        counter.increment(2);
        gauge.set(7.0);
        for i in 0..40 {
            histogram.record(f64::from(i));
        }
        let second = lines();
        assert!(second.contains(&"hits:2|c".to_owned()), "{second:?}");
        assert!(second.contains(&"temp:7|g".to_owned()), "{second:?}");
        // 40 samples, 10 kept: each line says one in four.
        let sampled: Vec<&String> = second.iter().filter(|l| l.starts_with("lat:")).collect();
        assert_eq!(sampled.len(), 10, "{second:?}");
        assert!(
            sampled.iter().all(|l| l.ends_with("|h|@0.25")),
            "{second:?}"
        );
    }
}
