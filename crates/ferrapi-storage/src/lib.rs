//! # ferrapi-storage
//!
//! The storage layer of ferrapi, as framework integrations behind cargo
//! features. Embedded defaults serve one machine with no setup (SQLite,
//! in-memory cache, in-process bus, SQL-table task queue, files on disk);
//! real engines serve many instances (PostgreSQL/MySQL, Redis, NATS, S3).
//! Each piece is usable as a dependency in handlers and has a health check.
//!
//! | module | embedded default | shared engines |
//! |---|---|---|
//! | [`db`] | SQLite file, WAL ([`db::DbPool`], request transaction [`db::Db`]) | PostgreSQL (`postgres`), MySQL/MariaDB (`mysql`) |
//! | [`queue`] | SQL table in the same database ([`queue::Queue::sql`]) | the same on PostgreSQL/MySQL, NATS JetStream (`nats`) |
//! | [`cache`] | [`cache::MemoryCache`] (moka) | Redis (`redis`) |
//! | [`bus`] | [`bus::InProcessBus`] (tokio broadcast) | NATS (`nats`), Redis pub/sub (`redis`) |
//! | [`files`] | [`files::LocalFileStore`], [`files::MemoryFileStore`] | S3 and compatibles (`s3`) |
//! | `rate_limit` | the facade's `MemoryStore` | Redis (`redis`): `RedisRateLimitStore` |
//!
//! | feature | what it adds |
//! |---|---|
//! | `sqlite` (default), `postgres`, `mysql`, `db-tls` | database drivers (sqlx) |
//! | `redis` | Redis cache, bus and rate-limit store (redis-rs connection manager) |
//! | `nats` | NATS bus and task queue (async-nats, ring TLS) |
//! | `s3` | S3 file storage (object_store, rustls with ring) |
//! | `metrics` | pool and task-queue gauges in ferrapi's Prometheus registry |
//! | `otel` | database and cache spans in the request's exported trace (ferrapi's `otel`) |
#![deny(missing_docs)]

pub mod bus;
pub mod cache;
mod common;
pub mod db;
pub mod files;
pub mod queue;
#[cfg(feature = "redis")]
pub mod rate_limit;
mod telemetry;
