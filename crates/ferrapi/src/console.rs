//! The console lines a server prints without any logging set up, as
//! uvicorn does: one startup line, and one access line per request.
//!
//! ```text
//! INFO:     ferrapi listening on http://0.0.0.0:8000 (docs: http://127.0.0.1:8000/docs; Ctrl+C to stop)      ← stderr
//! INFO:     127.0.0.1:52814 - "GET /items/5 HTTP/1.1" 200 OK (0.4 ms)                                      ← stdout
//! ```
//!
//! The startup line goes to standard error and the access lines to standard
//! output, where uvicorn writes them. The access line carries the path
//! without its query string (a query may carry a token), the status, and
//! the time until the response head was ready.
//!
//! By default ([`ConsoleLog::Auto`]) both are printed only when no
//! [`tracing`] subscriber is installed when the server starts: an
//! application that set up logging gets the `listening` event and
//! [`AccessLogLayer`](crate::middleware::AccessLogLayer)'s lines through
//! it instead. [`App::console_log`](crate::App::console_log) chooses
//! otherwise, and the `FERRAPI_CONSOLE_LOG` environment variable (`auto`,
//! `on`, `startup`, `off`) overrides both.
//!
//! When the access line is off (a subscriber is installed, or it was
//! switched off), a request costs one test of a flag: nothing is gathered.
//! [`TestServer`](crate::testing::TestServer) prints nothing unless told to.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Instant;

/// What the server prints to the console (see the [module docs](self)).
///
/// ```
/// use ferrapi::console::ConsoleLog;
/// use ferrapi::prelude::*;
///
/// // Only the startup line, even with a tracing subscriber installed.
/// let app = App::new().console_log(ConsoleLog::Startup);
/// assert_eq!("off".parse::<ConsoleLog>(), Ok(ConsoleLog::Off));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConsoleLog {
    /// The startup line and the access lines when no `tracing` subscriber
    /// is installed; nothing otherwise (the default).
    #[default]
    Auto,
    /// The startup line and the access lines, subscriber or not.
    On,
    /// The startup line only.
    Startup,
    /// Nothing.
    Off,
}

/// A `FERRAPI_CONSOLE_LOG` value that is none of `auto`, `on`, `startup`, `off`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not one of auto, on, startup, off")]
pub struct ParseConsoleLogError(String);

impl std::str::FromStr for ConsoleLog {
    type Err = ParseConsoleLogError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "on" | "1" | "true" => Ok(Self::On),
            "startup" => Ok(Self::Startup),
            "off" | "0" | "false" => Ok(Self::Off),
            _ => Err(ParseConsoleLogError(s.to_owned())),
        }
    }
}

/// Which console lines a server prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Lines {
    pub(crate) startup: bool,
    pub(crate) access: bool,
}

impl ConsoleLog {
    /// The lines printed: the environment's choice over the app's, `Auto`
    /// decided by whether a subscriber is installed.
    pub(crate) fn lines(env: Option<Self>, app: Option<Self>, subscriber: bool) -> Lines {
        match env.or(app).unwrap_or_default() {
            Self::Auto => Lines {
                startup: !subscriber,
                access: !subscriber,
            },
            Self::On => Lines {
                startup: true,
                access: true,
            },
            Self::Startup => Lines {
                startup: true,
                access: false,
            },
            Self::Off => Lines::default(),
        }
    }
}

/// Whether a `tracing` subscriber is installed (globally, or for this thread).
pub(crate) fn subscriber_installed() -> bool {
    tracing::dispatcher::get_default(|d| !d.is::<tracing::subscriber::NoSubscriber>())
}

/// The startup line: the address, and the docs page when there is one.
pub(crate) fn startup_line(addr: SocketAddr, docs_url: Option<&str>) -> String {
    let mut line = format!("INFO:     ferrapi listening on http://{addr} (");
    if let Some(docs) = docs_url {
        // 0.0.0.0 is where it listens, not an address a browser opens.
        let host = if addr.ip().is_unspecified() {
            SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
        } else {
            addr
        };
        let _ = write!(line, "docs: http://{host}{docs}; ");
    }
    line.push_str("Ctrl+C to stop)");
    line
}

/// Prints the startup line to standard error.
pub(crate) fn print_startup(addr: SocketAddr, docs_url: Option<&str>) {
    let mut line = startup_line(addr, docs_url);
    line.push('\n');
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// What an access line needs from the request, gathered only when the
/// access line is on.
pub(crate) struct AccessLine {
    start: Instant,
    peer: SocketAddr,
    method: http::Method,
    path: String,
    version: http::Version,
}

impl AccessLine {
    pub(crate) fn new<B>(req: &http::Request<B>, peer: SocketAddr) -> Box<Self> {
        Box::new(Self {
            start: Instant::now(),
            peer,
            method: req.method().clone(),
            path: req.uri().path().to_owned(),
            version: req.version(),
        })
    }

    /// The line, once the response's status is known.
    pub(crate) fn format(&self, status: http::StatusCode) -> String {
        let version = match self.version {
            http::Version::HTTP_09 => "0.9",
            http::Version::HTTP_10 => "1.0",
            http::Version::HTTP_2 => "2",
            http::Version::HTTP_3 => "3",
            _ => "1.1",
        };
        let ms = self.start.elapsed().as_secs_f64() * 1000.0;
        format!(
            "INFO:     {} - \"{} {} HTTP/{version}\" {} {} ({ms:.1} ms)\n",
            self.peer,
            self.method,
            self.path,
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
        )
    }

    /// Prints the line to standard output.
    pub(crate) fn print(&self, status: http::StatusCode) {
        let line = self.format(status);
        let _ = std::io::stdout().lock().write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_wins_over_the_app() {
        let on = Lines {
            startup: true,
            access: true,
        };
        let off = Lines::default();
        assert_eq!(ConsoleLog::lines(None, None, false), on);
        assert_eq!(ConsoleLog::lines(None, None, true), off);
        assert_eq!(ConsoleLog::lines(None, Some(ConsoleLog::Off), false), off);
        assert_eq!(
            ConsoleLog::lines(Some(ConsoleLog::On), Some(ConsoleLog::Off), true),
            on
        );
        assert_eq!(
            ConsoleLog::lines(Some(ConsoleLog::Off), Some(ConsoleLog::On), false),
            off
        );
        assert_eq!(
            ConsoleLog::lines(None, Some(ConsoleLog::Startup), false),
            Lines {
                startup: true,
                access: false
            }
        );
    }

    #[test]
    fn startup_line_names_a_browsable_docs_url() {
        let addr: SocketAddr = "0.0.0.0:8000".parse().unwrap_or_else(|_| unreachable!());
        assert_eq!(
            startup_line(addr, Some("/docs")),
            "INFO:     ferrapi listening on http://0.0.0.0:8000 (docs: http://127.0.0.1:8000/docs; Ctrl+C to stop)"
        );
        assert_eq!(
            startup_line(addr, None),
            "INFO:     ferrapi listening on http://0.0.0.0:8000 (Ctrl+C to stop)"
        );
    }

    #[test]
    fn access_line_leaves_the_query_out() {
        let req = http::Request::get("/items/5?token=secret")
            .body(())
            .unwrap_or_default();
        let peer: SocketAddr = "127.0.0.1:52814".parse().unwrap_or_else(|_| unreachable!());
        let line = AccessLine::new(&req, peer).format(http::StatusCode::NOT_FOUND);
        assert!(
            line.starts_with(
                "INFO:     127.0.0.1:52814 - \"GET /items/5 HTTP/1.1\" 404 Not Found ("
            ),
            "{line}"
        );
        assert!(!line.contains("secret"));
    }
}
