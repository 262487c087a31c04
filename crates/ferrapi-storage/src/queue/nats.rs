//! The NATS JetStream backend: a work-queue stream per queue, one durable
//! pull consumer shared by every worker, a second stream for dead letters.
//!
//! | queue operation | JetStream |
//! |---|---|
//! | enqueue | publish to `ferrapi.q.<name>`; the idempotency key is `Nats-Msg-Id` (deduplicated within the stream's duplicate window) |
//! | claim, lease | fetch from the consumer; the lease is its `ack_wait` (the visibility timeout), renewed with `+WPI` (in progress) |
//! | complete | ack (work-queue retention removes the message) |
//! | delay | a message whose `run-at` header is in the future is `nak`ed with the remaining delay |
//! | retry | republish with the attempt count and error, then ack the old message |
//! | dead letter | publish to `ferrapi.dead.<name>` (its own stream, kept), then ack |
//! | re-drive | republish the dead message with attempts reset, delete it from the dead stream |
//!
//! Attempts: a retry's copy carries the count of failed attempts; expired
//! leases are the message's extra deliveries (JetStream counts them),
//! less the one re-delivery of a delayed message falling due. So, as on
//! SQL, a task whose handler kills its worker is dead-lettered after
//! `max_attempts`.
//!
//! Limits, compared with the SQL backend: the idempotency key deduplicates
//! only within the duplicate window (2 min); `stats` cannot tell scheduled
//! and retrying tasks apart from the others.

use super::{
    DeadTask, Enqueued, Job, NewTask, QueueConfig, QueueError, QueueStats, Receipt, now_ms,
};
use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind, consumer, stream};
use futures_util::StreamExt;
use std::time::Duration;

const KIND: &str = "Ferrapi-Kind";
const ATTEMPTS: &str = "Ferrapi-Attempts";
const MAX_ATTEMPTS: &str = "Ferrapi-Max-Attempts";
const RUN_AT: &str = "Ferrapi-Run-At";
const KEY: &str = "Ferrapi-Key";
const ERROR: &str = "Ferrapi-Error";
const DIED_AT: &str = "Ferrapi-Died-At";

fn nats_err(e: impl std::fmt::Display) -> QueueError {
    QueueError::Nats(e.to_string())
}

pub(crate) struct NatsQueue {
    js: jetstream::Context,
    subject: String,
    dead_subject: String,
    dead: stream::Stream,
    tasks: stream::Stream,
    consumer: consumer::Consumer<consumer::pull::Config>,
}

fn header<'a>(headers: Option<&'a HeaderMap>, name: &str) -> Option<&'a str> {
    headers.and_then(|h| h.get(name)).map(|v| v.as_str())
}

fn number(headers: Option<&HeaderMap>, name: &str) -> i64 {
    header(headers, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Header values are one line: keep an error message to its first line,
/// bounded.
fn one_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("");
    line.chars().take(1000).collect()
}

impl NatsQueue {
    pub(crate) async fn open(
        client: async_nats::Client,
        name: &str,
        config: &QueueConfig,
    ) -> Result<Self, QueueError> {
        let js = jetstream::new(client);
        let subject = format!("ferrapi.q.{name}");
        let dead_subject = format!("ferrapi.dead.{name}");
        let tasks = js
            .get_or_create_stream(stream::Config {
                name: format!("FERRAPI_Q_{name}"),
                subjects: vec![subject.clone()],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .map_err(nats_err)?;
        let dead = js
            .get_or_create_stream(stream::Config {
                name: format!("FERRAPI_DEAD_{name}"),
                subjects: vec![dead_subject.clone()],
                retention: stream::RetentionPolicy::Limits,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(nats_err)?;
        let consumer = tasks
            .get_or_create_consumer(
                "workers",
                consumer::pull::Config {
                    durable_name: Some("workers".into()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: config.visibility_timeout,
                    max_ack_pending: 10_000,
                    ..Default::default()
                },
            )
            .await
            .map_err(nats_err)?;
        Ok(NatsQueue {
            js,
            subject,
            dead_subject,
            dead,
            tasks,
            consumer,
        })
    }

    async fn publish(
        &self,
        subject: &str,
        headers: HeaderMap,
        payload: String,
    ) -> Result<jetstream::publish::PublishAck, QueueError> {
        self.js
            .publish_with_headers(subject.to_owned(), headers, payload.into())
            .await
            .map_err(nats_err)?
            .await
            .map_err(nats_err)
    }

    pub(crate) async fn enqueue(&self, new: NewTask) -> Result<Enqueued, QueueError> {
        let mut headers = HeaderMap::new();
        headers.insert(KIND, new.kind);
        headers.insert(ATTEMPTS, "0");
        headers.insert(MAX_ATTEMPTS, new.max_attempts.to_string().as_str());
        headers.insert(RUN_AT, new.run_at_ms.to_string().as_str());
        if let Some(key) = &new.key {
            headers.insert(KEY, key.as_str());
            headers.insert("Nats-Msg-Id", key.as_str());
        }
        let ack = self.publish(&self.subject, headers, new.payload).await?;
        Ok(Enqueued {
            id: ack.sequence.to_string(),
            duplicate: ack.duplicate,
        })
    }

    pub(crate) async fn claim(&self, max: usize) -> Result<Vec<Job>, QueueError> {
        let mut batch = self
            .consumer
            .fetch()
            .max_messages(max)
            .messages()
            .await
            .map_err(nats_err)?;
        let mut jobs = Vec::new();
        let now = now_ms();
        while let Some(message) = batch.next().await {
            let message = message.map_err(nats_err)?;
            let headers = message.headers.as_ref();
            let run_at = number(headers, RUN_AT);
            if run_at > now {
                // Not due: back to the stream until then.
                let wait = Duration::from_millis(u64::try_from(run_at - now).unwrap_or(0));
                message
                    .ack_with(AckKind::Nak(Some(wait)))
                    .await
                    .map_err(nats_err)?;
                continue;
            }
            let (id, delivered, published_ms) = message
                .info()
                .map(|i| {
                    let published = i.published.unix_timestamp_nanos() / 1_000_000;
                    (
                        i.stream_sequence.to_string(),
                        i.delivered,
                        i64::try_from(published).unwrap_or(0),
                    )
                })
                .map_err(nats_err)?;
            // Deliveries of this message beyond the first are expired
            // leases (a worker died), except the one re-delivery a delayed
            // message gets when it falls due: count the others as attempts,
            // as the SQL backend does.
            let delayed = i64::from(run_at > published_ms);
            let crashed = (delivered - 1 - delayed).max(0);
            let attempt = number(headers, ATTEMPTS) + 1 + crashed;
            let max_attempts = number(headers, MAX_ATTEMPTS).max(1);
            let job = Job {
                id,
                kind: header(headers, KIND).unwrap_or("").to_owned(),
                payload: String::from_utf8_lossy(&message.payload).into_owned(),
                key: header(headers, KEY).map(str::to_owned),
                attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
                max_attempts: u32::try_from(max_attempts).unwrap_or(1),
                receipt: Receipt::Nats(Box::new(message)),
            };
            if attempt > max_attempts {
                tracing::warn!(subject = %self.subject, id = %job.id,
                    "task dead-lettered: its lease expired at every attempt");
                self.bury(
                    job,
                    "the worker stopped before finishing, at every attempt (lease expired)",
                )
                .await?;
                continue;
            }
            jobs.push(job);
        }
        Ok(jobs)
    }

    fn message(job: &Job) -> Result<&jetstream::Message, QueueError> {
        match &job.receipt {
            Receipt::Nats(m) => Ok(m),
            Receipt::Sql { .. } => Err(QueueError::Unsupported("a SQL receipt", "nats")),
        }
    }

    pub(crate) async fn extend(&self, job: &Job) -> Result<bool, QueueError> {
        Self::message(job)?
            .ack_with(AckKind::Progress)
            .await
            .map_err(nats_err)?;
        Ok(true)
    }

    pub(crate) async fn complete(&self, job: Job) -> Result<(), QueueError> {
        Self::message(&job)?.double_ack().await.map_err(nats_err)
    }

    /// The task's headers for a copy of it.
    fn copy_headers(job: &Job, attempts: u32, run_at_ms: i64, error: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(KIND, job.kind.as_str());
        headers.insert(ATTEMPTS, attempts.to_string().as_str());
        headers.insert(MAX_ATTEMPTS, job.max_attempts.to_string().as_str());
        headers.insert(RUN_AT, run_at_ms.to_string().as_str());
        if let Some(key) = &job.key {
            headers.insert(KEY, key.as_str());
        }
        if !error.is_empty() {
            headers.insert(ERROR, one_line(error).as_str());
        }
        headers
    }

    pub(crate) async fn retry(&self, job: Job, at_ms: i64, error: &str) -> Result<(), QueueError> {
        // Publish the next attempt first, then ack: a crash in between
        // leaves two copies (at least once), never none.
        let headers = Self::copy_headers(&job, job.attempt, at_ms, error);
        self.publish(&self.subject, headers, job.payload.clone())
            .await?;
        Self::message(&job)?.double_ack().await.map_err(nats_err)
    }

    pub(crate) async fn bury(&self, job: Job, error: &str) -> Result<(), QueueError> {
        let mut headers = Self::copy_headers(&job, job.attempt, now_ms(), error);
        headers.insert(DIED_AT, now_ms().to_string().as_str());
        self.publish(&self.dead_subject, headers, job.payload.clone())
            .await?;
        Self::message(&job)?.double_ack().await.map_err(nats_err)
    }

    pub(crate) async fn stats(&self) -> Result<QueueStats, QueueError> {
        let mut tasks = self.tasks.clone();
        let messages = tasks.info().await.map_err(nats_err)?.state.messages;
        let mut consumer = self.consumer.clone();
        let running = consumer.info().await.map_err(nats_err)?.num_ack_pending as u64;
        let mut dead = self.dead.clone();
        let dead = dead.info().await.map_err(nats_err)?.state.messages;
        Ok(QueueStats {
            pending: messages.saturating_sub(running),
            scheduled: None,
            retrying: None,
            running,
            dead,
        })
    }

    /// The dead stream's live sequence numbers, oldest first, up to `limit`.
    async fn dead_sequences(
        &self,
        limit: usize,
    ) -> Result<Vec<jetstream::message::StreamMessage>, QueueError> {
        let mut dead = self.dead.clone();
        let state = dead.info().await.map_err(nats_err)?.state.clone();
        let mut out = Vec::new();
        if state.messages == 0 {
            return Ok(out);
        }
        let mut seq = state.first_sequence;
        while seq <= state.last_sequence && out.len() < limit {
            // Deleted sequences (re-driven) answer "not found": skip them.
            if let Ok(message) = self.dead.get_raw_message(seq).await {
                out.push(message);
            }
            seq += 1;
        }
        Ok(out)
    }

    pub(crate) async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadTask>, QueueError> {
        let messages = self.dead_sequences(limit).await?;
        Ok(messages
            .into_iter()
            .map(|m| {
                let h = Some(&m.headers);
                DeadTask {
                    id: m.sequence.to_string(),
                    kind: header(h, KIND).unwrap_or("").to_owned(),
                    payload: String::from_utf8_lossy(&m.payload).into_owned(),
                    key: header(h, KEY).map(str::to_owned),
                    attempts: u32::try_from(number(h, ATTEMPTS)).unwrap_or(0),
                    error: header(h, ERROR).unwrap_or("").to_owned(),
                    died_at_ms: number(h, DIED_AT),
                }
            })
            .collect())
    }

    pub(crate) async fn redrive(&self, id: Option<&str>) -> Result<u64, QueueError> {
        let messages = match id {
            Some(id) => {
                let Ok(seq) = id.parse::<u64>() else {
                    return Ok(0);
                };
                match self.dead.get_raw_message(seq).await {
                    Ok(m) => vec![m],
                    Err(_) => return Ok(0),
                }
            }
            None => self.dead_sequences(usize::MAX).await?,
        };
        let mut n = 0;
        for m in messages {
            let h = Some(&m.headers);
            let mut headers = HeaderMap::new();
            headers.insert(KIND, header(h, KIND).unwrap_or(""));
            headers.insert(ATTEMPTS, "0");
            headers.insert(MAX_ATTEMPTS, header(h, MAX_ATTEMPTS).unwrap_or("1"));
            headers.insert(RUN_AT, now_ms().to_string().as_str());
            if let Some(key) = header(h, KEY) {
                headers.insert(KEY, key);
            }
            let payload = String::from_utf8_lossy(&m.payload).into_owned();
            self.publish(&self.subject, headers, payload).await?;
            // Republished first: a crash here leaves it dead *and* queued
            // (at least once), never lost.
            self.dead
                .delete_message(m.sequence)
                .await
                .map_err(nats_err)?;
            n += 1;
        }
        Ok(n)
    }
}
