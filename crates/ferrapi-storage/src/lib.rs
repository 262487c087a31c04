//! # ferrapi-storage
//!
//! The storage layer of ferrapi, as framework integrations behind cargo
//! features. Embedded defaults serve one machine with no setup (SQLite,
//! in-memory cache, in-process bus, SQL-table task queue, files on disk);
//! real engines serve many instances (PostgreSQL/MySQL, Redis, NATS, S3).
//! Each piece is usable as a dependency in handlers and has a health check.
#![deny(missing_docs)]

pub mod bus;
pub mod cache;
pub mod db;
pub mod files;
pub mod queue;
#[cfg(feature = "redis")]
pub mod rate_limit;
