//! Integration tests of ferrapi-storage: one binary (link time dominates
//! on two cores), one module per backend family. The suites that need a
//! server read its URL from `TEST_POSTGRES_URL`, `TEST_MYSQL_URL`,
//! `TEST_REDIS_URL`, `TEST_NATS_URL` (and `TEST_S3_URL`, or a
//! `moto_server` on `PATH`) and skip it when unset; `.ci/run` sets them.
#![allow(clippy::unwrap_used)]

mod bus;
mod cache;
mod db;
mod files;
mod queue;
#[cfg(feature = "redis")]
mod rate_limit;
mod telemetry;
