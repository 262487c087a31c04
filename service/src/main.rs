//! The reference service's entry point: `serve` (default), `migrate`,
//! `openapi`, `asyncapi`, `--help`. This is the one place that decides how an error is
//! printed and which exit code it gets.

use ferrapi_service::config::{self, Config, LogFormat};
use ferrapi_service::db;
use std::process::ExitCode;

const USAGE: &str = "ferrapi-service — the ferrapi reference service (a users API)

USAGE:
    ferrapi-service [COMMAND]

COMMANDS:
    serve      run migrations, then serve HTTP until SIGTERM/SIGINT (default)
    migrate    run the database migrations and exit
    worker     run migrations, then only the task-queue worker (no HTTP) until SIGTERM/SIGINT
    openapi    print the OpenAPI document and exit
    asyncapi   print the AsyncAPI document (WebSocket routes, bus events) and exit
    help       print this help (also -h, --help)

ENVIRONMENT (all optional):";

fn usage() -> String {
    let mut out = String::from(USAGE);
    for (name, default, meaning) in config::VARIABLES {
        out.push_str(&format!("\n    {name:<16} {meaning} (default: {default})"));
    }
    out
}

enum Command {
    Serve,
    Worker,
    Migrate,
    OpenApi,
    AsyncApi,
}

/// Logs (JSON or pretty) and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set,
/// OpenTelemetry traces over OTLP/HTTP. The returned guard flushes the last
/// spans when dropped.
fn init_logging(
    format: LogFormat,
) -> Result<Option<ferrapi::telemetry::Telemetry>, ferrapi::telemetry::TelemetryError> {
    use tracing_subscriber::{EnvFilter, layer::SubscriberExt as _, util::SubscriberInitExt as _};
    let telemetry = ferrapi::telemetry::from_env("ferrapi-service")?;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(telemetry.as_ref().map(|t| t.layer()));
    match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true),
            )
            .init(),
        LogFormat::Pretty => registry.with(tracing_subscriber::fmt::layer()).init(),
    }
    Ok(telemetry)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match args.first().map(String::as_str) {
        None | Some("serve") => Command::Serve,
        Some("migrate") => Command::Migrate,
        Some("worker") => Command::Worker,
        Some("openapi") => Command::OpenApi,
        Some("asyncapi") => Command::AsyncApi,
        Some("help" | "-h" | "--help") => {
            println!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!("error: unknown command `{other}`\n\n{}", usage());
            return ExitCode::from(2);
        }
    };
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let telemetry = match init_logging(config.log_format) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = config.serve.workers {
        runtime.worker_threads(n);
    }
    let runtime = match runtime.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = match runtime.block_on(run(command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "fatal");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    };
    // Flushes the spans still queued (bounded wait).
    drop(telemetry);
    code
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    if let Command::OpenApi | Command::AsyncApi = command {
        let pool = db::connect("sqlite::memory:").await?;
        // Nothing outside the process: no files, no servers.
        let mut offline = config.clone();
        offline.storage_url = "memory://".to_owned();
        offline.redis_url = None;
        offline.nats_url = None;
        let resources = ferrapi_service::Resources::connect(pool, &offline).await?;
        let built = ferrapi_service::app(resources, &offline).build()?;
        let document = match command {
            Command::AsyncApi => serde_json::to_string_pretty(built.asyncapi())?,
            _ => serde_json::to_string_pretty(built.openapi())?,
        };
        println!("{document}");
        return Ok(());
    }
    let pool = db::connect(&config.database_url)
        .await
        .map_err(|e| anyhow::anyhow!("DATABASE_URL: {e}"))?;
    if config.jwt_secret_generated {
        tracing::warn!(
            "warning: JWT_SECRET is not set: tokens are signed with a random per-process key, \
             so they stop working on restart and other instances refuse them"
        );
    }
    if config.admin_password_default {
        tracing::warn!(
            admin = %config.admin_email,
            "warning: the admin account {} uses the default password `admin`: set ADMIN_PASSWORD",
            config.admin_email
        );
    }
    match command {
        Command::Migrate => {
            migrate_and_bootstrap(&pool, &config).await?;
            pool.close().await;
            Ok(())
        }
        Command::Worker => {
            migrate_and_bootstrap(&pool, &config).await?;
            let resources = ferrapi_service::Resources::connect(pool.clone(), &config).await?;
            let worker = resources.notifications.start_worker(pool.clone());
            tracing::info!("worker running");
            ferrapi::shutdown_signal().await;
            worker.stop().await;
            pool.close().await;
            tracing::info!("stopped");
            Ok(())
        }
        Command::Serve | Command::OpenApi | Command::AsyncApi => serve(pool, config).await,
    }
}

/// Migrations, then the administrator bootstrap.
async fn migrate_and_bootstrap(
    pool: &ferrapi_storage::db::DbPool,
    config: &Config,
) -> anyhow::Result<()> {
    db::migrate(pool).await?;
    tracing::info!(
        database = %ferrapi_service::config::mask_url(&config.database_url),
        "migrations applied"
    );
    let hasher = ferrapi::middleware::password::PasswordHasher::new();
    if ferrapi_service::auth::bootstrap_admin(
        pool,
        &config.admin_email,
        config.admin_password.expose(),
        &hasher,
    )
    .await?
    {
        tracing::info!(admin = %config.admin_email, "admin account created");
    }
    Ok(())
}

/// Listens at once (`/health/startup` answers 503 meanwhile), migrates and
/// bootstraps, then opens the API and starts the task worker; serves until
/// SIGTERM/SIGINT, or stops if migrations fail.
async fn serve(pool: ferrapi_storage::db::DbPool, config: Config) -> anyhow::Result<()> {
    let serve_config = config.serve.clone();
    let addr = std::net::SocketAddr::new(serve_config.host, serve_config.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let resources = ferrapi_service::Resources::connect(pool.clone(), &config).await?;
    let startup = resources.startup.clone();
    let notifications = resources.notifications.clone();
    let worker = std::sync::Arc::new(tokio::sync::Mutex::new(None));
    let (failed_tx, failed_rx) = tokio::sync::oneshot::channel::<anyhow::Error>();
    {
        let (pool, config, worker) = (pool.clone(), config.clone(), worker.clone());
        tokio::spawn(async move {
            match migrate_and_bootstrap(&pool, &config).await {
                Ok(()) => {
                    // Welcome tasks run here too; a `worker` process adds capacity.
                    *worker.lock().await = Some(notifications.start_worker(pool));
                    startup.mark_done();
                    tracing::info!("started");
                }
                Err(e) => {
                    let _ = failed_tx.send(e);
                }
            }
        });
    }
    let failure = std::sync::Arc::new(std::sync::Mutex::new(None));
    let failed = failure.clone();
    let shutdown = async move {
        tokio::select! {
            () = ferrapi::shutdown_signal() => {}
            Ok(e) = failed_rx => {
                if let Ok(mut slot) = failed.lock() {
                    *slot = Some(e);
                }
            }
        }
    };
    ferrapi_service::app(resources, &config)
        .serve_with(listener, serve_config, shutdown)
        .await?;
    // Running tasks finish (or are left to their lease); queued ones wait
    // in the database for the next start or another instance.
    if let Some(worker) = worker.lock().await.take() {
        worker.stop().await;
    }
    pool.close().await;
    let failure = failure.lock().ok().and_then(|mut f| f.take());
    if let Some(e) = failure {
        return Err(e.context("startup failed"));
    }
    tracing::info!("stopped");
    Ok(())
}
