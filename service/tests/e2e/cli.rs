//! The command line: `--help`, subcommands, one clear line per bad variable.

use crate::BIN;
use std::process::Command;

#[test]
fn help_lists_the_variables() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for var in [
        "HOST",
        "PORT",
        "DATABASE_URL",
        "MAX_BODY_BYTES",
        "LOG_FORMAT",
        "WORKERS",
        "JWT_SECRET",
        "ACCESS_TOKEN_TTL",
        "ADMIN_EMAIL",
        "ADMIN_PASSWORD",
        "INTERNAL_TOKEN",
        "REDIS_URL",
        "NATS_URL",
        "STORAGE_URL",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "CORS_ORIGINS",
        "RATE_LIMIT",
        "FORWARDED_ALLOW_IPS",
        "BODY_READ_TIMEOUT",
        "BODY_TOTAL_TIMEOUT",
        "DRAIN_DELAY",
    ] {
        assert!(text.contains(var), "--help does not mention {var}:\n{text}");
    }
    for cmd in ["serve", "migrate", "worker", "openapi"] {
        assert!(text.contains(cmd), "--help does not mention {cmd}");
    }
}

#[test]
fn a_malformed_variable_stops_the_program_with_one_line_naming_it() {
    for (var, value) in [
        ("PORT", "not-a-port"),
        ("HOST", "somewhere"),
        ("WORKERS", "many"),
        ("WORKERS", "0"),
        ("LOG_FORMAT", "xml"),
        ("MAX_BODY_BYTES", "lots"),
        ("DATABASE_URL", "ftp://nowhere"),
        ("DATABASE_URL", "postgres://"),
        ("RATE_LIMIT", "lots"),
        ("FORWARDED_ALLOW_IPS", "not-an-ip"),
        ("CORS_ORIGINS", "not a url"),
        ("ACCESS_TOKEN_TTL", "soon"),
        ("ACCESS_TOKEN_TTL", "0"),
        ("JWT_SECRET", "short"),
        ("ADMIN_EMAIL", "not-an-email"),
        ("REDIS_URL", "localhost:6379"),
        ("NATS_URL", "http://x"),
        ("STORAGE_URL", "ftp://x"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector"),
        ("ACCESS_LOG", "maybe"),
        ("NOTIFICATION_DELAY_MS", "soon"),
        ("DRAIN_DELAY", "soon"),
        ("DRAIN_DELAY", "4.5"),
    ] {
        let out = Command::new(BIN)
            .env(var, value)
            .env(
                "DATABASE_URL",
                if var == "DATABASE_URL" {
                    value
                } else {
                    "sqlite::memory:"
                },
            )
            .output()
            .unwrap();
        assert!(!out.status.success(), "{var}={value} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{var}={value}: {err}");
        assert!(err.contains(var), "{var}={value}: {err}");
    }
}

#[test]
fn unknown_command_is_refused() {
    let out = Command::new(BIN).arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn openapi_and_migrate_subcommands() {
    let doc: serde_json::Value =
        serde_json::from_slice(&crate::print_document("openapi", &[])).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/v1/users/{user_id}"]["get"].is_object());

    let dir = crate::temp_dir();
    let db = dir.join("nested/folder/app.db");
    let out = Command::new(BIN)
        .arg("migrate")
        .env("LOG_FORMAT", "json")
        .env("DATABASE_URL", format!("sqlite://{}", db.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(db.exists(), "the database file and its folders are created");
    let _ = std::fs::remove_dir_all(dir);
}
