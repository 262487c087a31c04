//! Configuration from the environment, in two stages: raw strings, then a
//! validated [`Config`] that fails with one line naming the bad variable.
//!
//! This is the one place the service reads its environment: the rest of the
//! service takes what it needs from the [`Config`] (the binary reads it once
//! and passes it on).

use std::io::IsTerminal;
use std::path::PathBuf;

/// The longest `DRAIN_DELAY` accepted: the listener must close within
/// 5 s of SIGTERM, and it closes when the drain ends.
const MAX_DRAIN_DELAY: std::time::Duration = std::time::Duration::from_secs(4);

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
    /// A PostgreSQL server (`postgres://…`).
    Postgres,
    /// A MySQL or MariaDB server (`mysql://…`, `mariadb://…`).
    MySql,
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
    /// `DATABASE_URL` as given (checked by [`parse_database_url`]; masked
    /// when shown).
    pub database_url: String,
    /// The server's own settings, read by [`ferrapi::ServeConfig::from_env`]:
    /// `HOST`, `PORT`, `WORKERS`, `BODY_READ_TIMEOUT`, `BODY_TOTAL_TIMEOUT`
    /// and `DRAIN_DELAY` (at most 4 s).
    pub serve: ferrapi::ServeConfig,
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
    /// `FORWARDED_ALLOW_IPS` as given (empty when unset), as
    /// `/internal/config` shows it.
    pub forwarded_allow_ips_text: String,
    /// `JWT_SECRET`: the HS256 key (random per process when unset).
    pub jwt_secret: Secret,
    /// Whether `jwt_secret` was generated because `JWT_SECRET` is unset.
    pub jwt_secret_generated: bool,
    /// `ACCESS_TOKEN_TTL`, in seconds.
    pub access_token_ttl: u64,
    /// `ADMIN_EMAIL`.
    pub admin_email: String,
    /// `ADMIN_PASSWORD`.
    pub admin_password: Secret,
    /// Whether `ADMIN_PASSWORD` is the default (`admin`).
    pub admin_password_default: bool,
    /// `INTERNAL_TOKEN` (unset: `/internal/*` answers 403).
    pub internal_token: Option<Secret>,
    /// `REDIS_URL`.
    pub redis_url: Option<String>,
    /// `NATS_URL`.
    pub nats_url: Option<String>,
    /// `STORAGE_URL`.
    pub storage_url: String,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub otel_endpoint: Option<String>,
    /// `ACCESS_LOG`: one log line per request (default on).
    pub access_log: bool,
    /// `SHARED_NAMESPACE`: prefix of cache keys, rate-limit keys and bus
    /// subjects in Redis and NATS (default `ferrapi`).
    pub namespace: String,
    /// `NOTIFICATION_DELAY_MS`: the earliest a welcome task runs after the
    /// user's creation (default 0).
    pub notification_delay: std::time::Duration,
    /// Where the metrics are also pushed over StatsD (`STATSD_HOST`, …);
    /// `None`: Prometheus only.
    pub statsd: Option<ferrapi::statsd::StatsdConfig>,
}

/// A secret value: never printed by `Debug`, shown masked.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The value itself (for the code that needs it, never for display).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

/// `scheme://user:password@host/…` with the password replaced by `***`.
pub fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{path}")
            } else {
                format!("{scheme}://{user}@{host}{path}")
            }
        }
        None => url.to_owned(),
    }
}

fn parse_url(var: &'static str, value: &str, schemes: &[&str]) -> Result<String, ConfigError> {
    let ok = value
        .split_once("://")
        .is_some_and(|(scheme, rest)| schemes.contains(&scheme) && !rest.is_empty());
    if ok {
        Ok(value.to_owned())
    } else {
        Err(ConfigError {
            var,
            reason: format!(
                "`{value}` is not a URL with scheme {}",
                schemes
                    .iter()
                    .map(|s| format!("{s}://"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        })
    }
}

/// 32 random bytes, hex: the per-process JWT key when `JWT_SECRET` is unset.
fn random_secret() -> String {
    let a = uuid::Uuid::new_v4();
    let b = uuid::Uuid::new_v4();
    format!("{}{}", a.simple(), b.simple())
}

/// The variables `--help` lists: name, default, meaning.
pub const VARIABLES: &[(&str, &str, &str)] = &[
    ("HOST", "0.0.0.0", "listen address"),
    ("PORT", "8000", "listen port"),
    ("WORKERS", "number of cores", "runtime worker threads"),
    (
        "DATABASE_URL",
        "sqlite://data/app.db",
        "sqlite://<path> (relative or absolute; created if missing), sqlite::memory:, postgres://…, mysql://… or mariadb://…",
    ),
    ("MAX_BODY_BYTES", "1048576", "larger request bodies get 413"),
    (
        "BODY_READ_TIMEOUT",
        "30",
        "seconds a request body may stall between two reads before 408 (0: no limit)",
    ),
    (
        "BODY_TOTAL_TIMEOUT",
        "0 (no limit)",
        "seconds a whole request body may take before 408",
    ),
    (
        "DRAIN_DELAY",
        "1",
        "seconds (at most 4) of draining on SIGTERM (readiness 503, Connection: close) before the listener closes",
    ),
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
    (
        "JWT_SECRET",
        "random per process (warning in the log)",
        "HS256 signing key; set it so that several instances accept each other's tokens",
    ),
    (
        "ACCESS_TOKEN_TTL",
        "3600",
        "access token lifetime in seconds",
    ),
    (
        "ADMIN_EMAIL",
        "admin@example.com",
        "bootstrap administrator",
    ),
    (
        "ADMIN_PASSWORD",
        "admin (warning in the log)",
        "bootstrap administrator's password",
    ),
    (
        "INTERNAL_TOKEN",
        "unset: /internal/* answers 403",
        "shared secret for /internal/* (header X-Internal-Token)",
    ),
    (
        "REDIS_URL",
        "unset: in-memory cache and rate limiter",
        "redis://… shared cache, rate limiter and pub/sub",
    ),
    (
        "NATS_URL",
        "unset: in-process bus",
        "nats://… event bus and durable task queue",
    ),
    (
        "STORAGE_URL",
        "file://data/uploads",
        "where uploads go: file://<path>, memory://",
    ),
    (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "unset",
        "export traces over OTLP when set",
    ),
    (
        "NOTIFICATION_DELAY_MS",
        "0",
        "the earliest a welcome notification runs after the user's creation, in ms",
    ),
    (
        "SHARED_NAMESPACE",
        "ferrapi",
        "prefix of keys and subjects in Redis and NATS: deployments sharing one server use different ones",
    ),
    (
        "ACCESS_LOG",
        "on",
        "one log line per request (method, route, status, latency, …): on or off",
    ),
    (
        "STATSD_HOST",
        "unset: no StatsD push",
        "StatsD agent the metrics are also pushed to over UDP (STATSD_PORT 8125, STATSD_PREFIX, STATSD_INTERVAL seconds 10, STATSD_TAGS dogstatsd|name, STATSD_HISTOGRAM h|ms)",
    ),
];

/// Parses a `DATABASE_URL`: every scheme ferrapi-storage's pool opens
/// (its [`Backend::from_url`]: `sqlite:`, `postgres://`, `postgresql://`,
/// `mysql://`, `mariadb://`, in any case), with what the pool would refuse
/// later caught here: a server URL naming no server, a SQLite URL naming no
/// file. SQLite URLs are `sqlite://rel/path`, `sqlite:///abs/path`,
/// `sqlite:path`, `sqlite::memory:` (a query string is ignored).
///
/// [`Backend::from_url`]: ferrapi_storage::db::Backend::from_url
pub fn parse_database_url(url: &str) -> Result<Database, String> {
    use ferrapi_storage::db::Backend;
    let backend = Backend::from_url(url).map_err(|_| {
        format!(
            "`{}` is not a supported database URL (expected sqlite://<path>, postgres://…, mysql://… or mariadb://…)",
            mask_url(url)
        )
    })?;
    if backend != Backend::Sqlite {
        let host = url
            .split_once("://")
            .map(|(_, rest)| rest.rsplit_once('@').map_or(rest, |(_, h)| h));
        return match host {
            Some(host) if !host.is_empty() && !host.starts_with('/') => Ok(match backend {
                Backend::MySql => Database::MySql,
                _ => Database::Postgres,
            }),
            _ => Err(format!("`{}` names no server", mask_url(url))),
        };
    }
    // As the pool reads it (ferrapi-storage's `sqlite_target`).
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return Err(format!(
            "`{url}` is not a SQLite URL (expected sqlite://<path> or sqlite::memory:)"
        ));
    };
    let path = rest.split('?').next().unwrap_or(rest);
    if path == ":memory:" || (path.is_empty() && rest.contains("mode=memory")) {
        return Ok(Database::SqliteMemory);
    }
    if path.is_empty() {
        return Err(format!("`{url}` names no database file"));
    }
    Ok(Database::SqliteFile(PathBuf::from(path)))
}

/// Parses `FORWARDED_ALLOW_IPS` as given: IPs, CIDRs or `*`, comma-separated;
/// unset, empty or blank trusts no proxy.
pub fn parse_forwarded_allow_ips(
    text: &str,
) -> Result<ferrapi::middleware::TrustedProxies, ConfigError> {
    if text.trim().is_empty() {
        return Ok(ferrapi::middleware::TrustedProxies::none());
    }
    text.parse().map_err(
        |e: <ferrapi::middleware::TrustedProxies as std::str::FromStr>::Err| ConfigError {
            var: "FORWARDED_ALLOW_IPS",
            reason: e.to_string(),
        },
    )
}

impl Config {
    /// Reads and validates the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads and validates the service's variables through `lookup` (the
    /// process environment for [`Config::from_env`], a map in tests); unset,
    /// empty and blank values mean the default. The framework's own
    /// settings are read from the process environment by the framework:
    /// the server's ([`ferrapi::ServeConfig::from_env`]) and StatsD's
    /// ([`ferrapi::statsd::StatsdConfig::from_env`]).
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let database_url = var("DATABASE_URL").unwrap_or_else(|| "sqlite://data/app.db".to_owned());
        parse_database_url(&database_url).map_err(|reason| ConfigError {
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
        let forwarded_allow_ips_text = lookup("FORWARDED_ALLOW_IPS").unwrap_or_default();
        let forwarded_allow_ips = parse_forwarded_allow_ips(&forwarded_allow_ips_text)?;
        // The server's own variables are checked here too, so that a bad
        // value stops the program before anything starts.
        let serve = ferrapi::ServeConfig::from_env().map_err(|e| match e {
            ferrapi::ServeError::Config { var, reason } => ConfigError { var, reason },
            other => ConfigError {
                var: "HOST",
                reason: other.to_string(),
            },
        })?;
        // The contract: the listener closes within 5 s of SIGTERM, and it
        // closes after the drain.
        if serve.drain_delay > MAX_DRAIN_DELAY {
            return Err(ConfigError {
                var: "DRAIN_DELAY",
                reason: format!(
                    "at most {} seconds: the listener must close within 5 s of SIGTERM",
                    MAX_DRAIN_DELAY.as_secs()
                ),
            });
        }
        let (jwt_secret, jwt_secret_generated) = match var("JWT_SECRET") {
            Some(s) if s.len() < 16 => {
                return Err(ConfigError {
                    var: "JWT_SECRET",
                    reason: "must be at least 16 characters".to_owned(),
                });
            }
            Some(s) => (Secret(s), false),
            None => (Secret(random_secret()), true),
        };
        let access_token_ttl = match var("ACCESS_TOKEN_TTL") {
            None => 3600,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if (1..=31_536_000).contains(&n) => n,
                _ => {
                    return Err(ConfigError {
                        var: "ACCESS_TOKEN_TTL",
                        reason: format!("`{v}` is not a number of seconds between 1 and 31536000"),
                    });
                }
            },
        };
        let admin_email = var("ADMIN_EMAIL").unwrap_or_else(|| "admin@example.com".to_owned());
        let plausible = admin_email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        });
        if !plausible || admin_email.chars().any(char::is_whitespace) {
            return Err(ConfigError {
                var: "ADMIN_EMAIL",
                reason: format!("`{admin_email}` is not an e-mail address"),
            });
        }
        let (admin_password, admin_password_default) = match var("ADMIN_PASSWORD") {
            Some(p) if p.chars().count() > 128 => {
                return Err(ConfigError {
                    var: "ADMIN_PASSWORD",
                    reason: "longer than 128 characters".to_owned(),
                });
            }
            Some(p) => (Secret(p), false),
            None => (Secret("admin".to_owned()), true),
        };
        let internal_token = var("INTERNAL_TOKEN").map(Secret);
        let redis_url = var("REDIS_URL")
            .map(|v| parse_url("REDIS_URL", &v, &["redis", "rediss"]))
            .transpose()?;
        let nats_url = var("NATS_URL")
            .map(|v| parse_url("NATS_URL", &v, &["nats", "tls"]))
            .transpose()?;
        let storage_url = var("STORAGE_URL").unwrap_or_else(|| "file://data/uploads".to_owned());
        if storage_url != "memory://" {
            parse_url("STORAGE_URL", &storage_url, &["file", "s3"])?;
        }
        let otel_endpoint = var("OTEL_EXPORTER_OTLP_ENDPOINT")
            .map(|v| parse_url("OTEL_EXPORTER_OTLP_ENDPOINT", &v, &["http"]))
            .transpose()?;
        let access_log = match var("ACCESS_LOG").as_deref() {
            None | Some("on" | "1" | "true") => true,
            Some("off" | "0" | "false") => false,
            Some(other) => {
                return Err(ConfigError {
                    var: "ACCESS_LOG",
                    reason: format!("`{other}` is not `on` or `off`"),
                });
            }
        };
        let notification_delay = match var("NOTIFICATION_DELAY_MS") {
            None => std::time::Duration::ZERO,
            Some(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms <= 86_400_000)
                .map(std::time::Duration::from_millis)
                .ok_or_else(|| ConfigError {
                    var: "NOTIFICATION_DELAY_MS",
                    reason: format!("`{v}` is not a number of milliseconds up to one day"),
                })?,
        };
        let namespace = var("SHARED_NAMESPACE").unwrap_or_else(|| "ferrapi".to_owned());
        if namespace.len() > 64
            || !namespace
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(ConfigError {
                var: "SHARED_NAMESPACE",
                reason: format!("`{namespace}` is not 1 to 64 of A-Z a-z 0-9 _ -"),
            });
        }
        let statsd = ferrapi::statsd::StatsdConfig::from_env().map_err(|e| match e {
            ferrapi::statsd::StatsdError::Config { setting, message } => ConfigError {
                var: setting,
                reason: message,
            },
            other => ConfigError {
                var: "STATSD_HOST",
                reason: other.to_string(),
            },
        })?;
        Ok(Self {
            statsd,
            namespace,
            notification_delay,
            access_log,
            database_url,
            serve,
            max_body_bytes,
            log_format,
            rate_limit,
            cors_origins,
            forwarded_allow_ips,
            forwarded_allow_ips_text,
            jwt_secret,
            jwt_secret_generated,
            access_token_ttl,
            admin_email,
            admin_password,
            admin_password_default,
            internal_token,
            redis_url,
            nats_url,
            storage_url,
            otel_endpoint,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
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
        assert_eq!(
            parse_database_url("postgres://postgres@127.0.0.1:5432/test"),
            Ok(Database::Postgres)
        );
        assert_eq!(
            parse_database_url("mysql://root@db/test"),
            Ok(Database::MySql)
        );
        assert!(parse_database_url("postgres://").is_err());
        assert!(parse_database_url("ftp://x").is_err());
        assert!(parse_database_url("sqlite://").is_err());
    }

    #[test]
    fn mariadb_and_every_other_scheme_the_pool_opens_are_accepted() {
        assert_eq!(
            parse_database_url("mariadb://root:secret@127.0.0.1:3306/test"),
            Ok(Database::MySql)
        );
        assert_eq!(
            parse_database_url("postgresql://app@db/app"),
            Ok(Database::Postgres)
        );
        assert_eq!(
            parse_database_url("POSTGRES://app@db/app"),
            Ok(Database::Postgres)
        );
        assert_eq!(
            parse_database_url("sqlite:app.db"),
            Ok(Database::SqliteFile("app.db".into()))
        );
        assert_eq!(
            parse_database_url("sqlite://:memory:"),
            Ok(Database::SqliteMemory)
        );
        // What ferrapi-storage's pool accepts, the service accepts.
        for url in [
            "sqlite://data/app.db",
            "sqlite::memory:",
            "postgres://db/app",
            "postgresql://db/app",
            "mysql://db/app",
            "mariadb://db/app",
            "MariaDB://db/app",
        ] {
            assert!(ferrapi_storage::db::Backend::from_url(url).is_ok(), "{url}");
            assert!(parse_database_url(url).is_ok(), "{url}");
        }
        // A server URL still has to name the server; the error hides the
        // password.
        let err = parse_database_url("mariadb://root:secret@").unwrap_err();
        assert!(
            err.contains("names no server") && !err.contains("secret"),
            "{err}"
        );
        assert!(parse_database_url("oracle://db/app").is_err());
    }

    /// The configuration `vars` gives (the framework's `HOST`, `STATSD_*`, …
    /// come from the process environment, where the tests set none).
    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_vars(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn a_mariadb_database_url_is_accepted_and_kept_as_given() {
        let config = config(&[("DATABASE_URL", "mariadb://app:pw@db:3306/app")]).unwrap();
        assert_eq!(config.database_url, "mariadb://app:pw@db:3306/app");
        let err = self::config(&[("DATABASE_URL", "ftp://db/app")]).unwrap_err();
        assert_eq!(err.var, "DATABASE_URL");
    }

    #[test]
    fn forwarded_allow_ips_is_parsed_once_and_kept_as_given() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let config = config(&[("FORWARDED_ALLOW_IPS", "10.0.0.0/8, 127.0.0.1")]).unwrap();
        assert!(config.forwarded_allow_ips.is_trusted(ip("10.1.2.3")));
        assert!(config.forwarded_allow_ips.is_trusted(ip("127.0.0.1")));
        assert!(!config.forwarded_allow_ips.is_trusted(ip("192.0.2.1")));
        assert_eq!(config.forwarded_allow_ips_text, "10.0.0.0/8, 127.0.0.1");

        let all = self::config(&[("FORWARDED_ALLOW_IPS", "*")]).unwrap();
        assert!(all.forwarded_allow_ips.is_trusted(ip("192.0.2.1")));
        assert_eq!(all.forwarded_allow_ips_text, "*");

        // Unset or blank: no proxy trusted.
        for vars in [&[][..], &[("FORWARDED_ALLOW_IPS", " ")][..]] {
            let config = self::config(vars).unwrap();
            assert!(!config.forwarded_allow_ips.is_trusted(ip("127.0.0.1")));
        }
        assert_eq!(self::config(&[]).unwrap().forwarded_allow_ips_text, "");

        let err = self::config(&[("FORWARDED_ALLOW_IPS", "not-an-ip")]).unwrap_err();
        assert_eq!(err.var, "FORWARDED_ALLOW_IPS");
    }
}
