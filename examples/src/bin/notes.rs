//! `cargo run -p ferrapi-examples --bin notes`: the notes service of
//! `ferrapi_examples::notes` on `HOST`:`PORT` (default `0.0.0.0:8000`),
//! SQLite in `data/notes.db` unless `DATABASE_URL` says otherwise; JSON logs
//! filtered by `RUST_LOG`; traces exported when `OTEL_EXPORTER_OTLP_ENDPOINT`
//! is set.

use ferrapi_examples::notes::{Resources, Settings, app};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

fn main() -> ExitCode {
    // Everything the environment says is checked before anything starts.
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let telemetry = match ferrapi::telemetry::from_env("notes") {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::registry()
        .with(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with(telemetry.as_ref().map(|t| t.layer()))
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(true),
        )
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(async {
        let resources = Resources::connect(&settings).await?;
        app(resources).serve().await?;
        Ok::<(), Box<dyn std::error::Error>>(())
    });
    drop(runtime);
    // After the server stopped: flushes the last spans.
    drop(telemetry);
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
