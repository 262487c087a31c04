//! Configuration from the environment, in two stages: raw strings, then a
//! validated [`Config`] that fails with one line naming the bad variable.

use std::io::IsTerminal;
use std::path::PathBuf;

/// A variable with a value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid {var}: {reason}")]
pub struct ConfigError {
    /// The variable.
    pub var: &'static str,
    /// What is wrong.
    pub reason: String,
}

/// Where the database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file (its folder is created if missing).
    SqliteFile(PathBuf),
    /// An in-memory SQLite database (tests).
    SqliteMemory,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable, for terminals.
    Pretty,
}

/// The service's validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL`.
    pub database: Database,
    /// The URL as given (masked when shown).
    pub database_url: String,
    /// `MAX_BODY_BYTES`.
    pub max_body_bytes: usize,
    /// `LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `RATE_LIMIT`.
    pub rate_limit: ferrapi::middleware::Quota,
    /// `CORS_ORIGINS` (empty: no CORS headers).
    pub cors_origins: Option<String>,
    /// `FORWARDED_ALLOW_IPS` (unset: no proxy trusted).
    pub forwarded_allow_ips: ferrapi::middleware::TrustedProxies,
}

/// The variables `--help` lists: name, default, meaning.
pub const VARIABLES: &[(&str, &str, &str)] = &[
    ("HOST", "0.0.0.0", "listen address"),
    ("PORT", "8000", "listen port"),
    ("WORKERS", "number of cores", "runtime worker threads"),
    (
        "DATABASE_URL",
        "sqlite://data/app.db",
        "sqlite://<path> (relative or absolute; created if missing) or sqlite::memory:",
    ),
    ("MAX_BODY_BYTES", "1048576", "larger request bodies get 413"),
    (
        "RATE_LIMIT",
        "100/1s",
        "requests per window per client: <count>/<n><s|m|h>",
    ),
    (
        "CORS_ORIGINS",
        "empty",
        "comma-separated allowed origins, or *",
    ),
    (
        "FORWARDED_ALLOW_IPS",
        "unset (no proxy trusted)",
        "proxies whose X-Forwarded-For is believed: IPs, CIDRs or *",
    ),
    (
        "LOG_FORMAT",
        "pretty on a terminal, else json",
        "json or pretty",
    ),
    ("RUST_LOG", "info", "log filter (tracing-subscriber syntax)"),
];

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Parses `sqlite://path`, `sqlite:///abs/path` and `sqlite::memory:`.
pub fn parse_database_url(url: &str) -> Result<Database, String> {
    if url == "sqlite::memory:" || url == "sqlite://:memory:" {
        return Ok(Database::SqliteMemory);
    }
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return Err(format!(
            "`{url}` is not a supported database URL (expected sqlite://<path>)"
        ));
    };
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() {
        return Err(format!("`{url}` names no database file"));
    }
    Ok(Database::SqliteFile(PathBuf::from(path)))
}

impl Config {
    /// Reads and validates the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let database_url = var("DATABASE_URL").unwrap_or_else(|| "sqlite://data/app.db".to_owned());
        let database = parse_database_url(&database_url).map_err(|reason| ConfigError {
            var: "DATABASE_URL",
            reason,
        })?;
        let max_body_bytes = match var("MAX_BODY_BYTES") {
            None => ferrapi::DEFAULT_BODY_LIMIT,
            Some(v) => v.trim().parse::<usize>().map_err(|_| ConfigError {
                var: "MAX_BODY_BYTES",
                reason: format!("`{v}` is not a number of bytes"),
            })?,
        };
        let log_format = match var("LOG_FORMAT").as_deref() {
            None if std::io::stdout().is_terminal() => LogFormat::Pretty,
            None => LogFormat::Json,
            Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(other) => {
                return Err(ConfigError {
                    var: "LOG_FORMAT",
                    reason: format!("`{other}` is not `json` or `pretty`"),
                });
            }
        };
        let rate_limit = var("RATE_LIMIT")
            .unwrap_or_else(|| "100/1s".to_owned())
            .parse::<ferrapi::middleware::Quota>()
            .map_err(|e| ConfigError {
                var: "RATE_LIMIT",
                reason: e.to_string(),
            })?;
        let cors_origins = var("CORS_ORIGINS");
        if let Some(origins) = &cors_origins {
            ferrapi::middleware::CorsConfig::new()
                .allow_origin_list(origins)
                .build()
                .map_err(|e| ConfigError {
                    var: "CORS_ORIGINS",
                    reason: e.to_string(),
                })?;
        }
        let forwarded_allow_ips = match var("FORWARDED_ALLOW_IPS") {
            None => ferrapi::middleware::TrustedProxies::none(),
            Some(v) => v.parse().map_err(
                |e: <ferrapi::middleware::TrustedProxies as std::str::FromStr>::Err| ConfigError {
                    var: "FORWARDED_ALLOW_IPS",
                    reason: e.to_string(),
                },
            )?,
        };
        // The server's own variables are checked here too, so that a bad
        // value stops the program before anything starts.
        ferrapi::ServeConfig::from_env().map_err(|e| match e {
            ferrapi::ServeError::Config { var, reason } => ConfigError { var, reason },
            other => ConfigError {
                var: "HOST",
                reason: other.to_string(),
            },
        })?;
        Ok(Self {
            database,
            database_url,
            max_body_bytes,
            log_format,
            rate_limit,
            cors_origins,
            forwarded_allow_ips,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls() {
        assert_eq!(
            parse_database_url("sqlite://data/app.db"),
            Ok(Database::SqliteFile("data/app.db".into()))
        );
        assert_eq!(
            parse_database_url("sqlite:///var/lib/app/app.db"),
            Ok(Database::SqliteFile("/var/lib/app/app.db".into()))
        );
        assert_eq!(
            parse_database_url("sqlite::memory:"),
            Ok(Database::SqliteMemory)
        );
        assert!(parse_database_url("mysql://x").is_err());
        assert!(parse_database_url("sqlite://").is_err());
    }
}
