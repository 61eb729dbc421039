//! The Kafka side: one consumer-group member per process, on its own thread, handing
//! each assigned partition's records to that partition's worker.
//!
//! Invariants:
//! - On assignment, each partition starts at the position stored in the *target*
//!   (`apply_position.next_offset`), or at its beginning when the target has none; the
//!   group's committed offsets are never used to decide where to start (they are
//!   written after the target commit only so that tools show the group's progress).
//!   The position is read inside the rebalance callback, before `assign`, so no record
//!   is fetched from anywhere else.
//! - On revocation the partition's channel is dropped: its worker finishes (or abandons)
//!   its batch and ends. A late commit of the old worker is harmless, the target's
//!   position row fences it (see `target.rs`).
//! - A full worker queue pauses that partition's fetching instead of blocking the
//!   thread, so one slow partition never stalls the others; it resumes once drained.
//! - A partition whose worker stopped on an error stays paused until the next
//!   rebalance (which retries it from its stored position).
//!
//! Settings: no auto commit, no auto offset store (rdkafka pitfall 1 in INFRA-NOTES), a
//! regex subscription `^<topic_prefix>\.` so new table topics join without a restart.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::Receiver as StdReceiver;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaResult;
use rdkafka::message::{Headers, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::ClientContext;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{error, info, warn, Instrument};

use crate::config::Config;
use crate::error::{chain, ServiceError};
use crate::target::Stored;
use crate::worker::{chunk_header, Done, Outcome, Rec, Shared, Worker};

type Tp = (Arc<str>, i32);

struct Route {
    tx: mpsc::Sender<Rec>,
    pending: VecDeque<Rec>,
    paused: bool,
    stopped: bool,
    task: JoinHandle<Outcome>,
}

/// The consumer's context: owns the routes so the rebalance callback can change them.
pub struct Ctx {
    shared: Arc<Shared>,
    handle: Handle,
    queue: usize,
    routes: Mutex<HashMap<Tp, Route>>,
    /// Workers of revoked partitions, awaited at shutdown.
    retired: Mutex<Vec<JoinHandle<Outcome>>>,
}

impl ClientContext for Ctx {}

impl ConsumerContext for Ctx {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: rdkafka::types::RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        use rdkafka::types::RDKafkaRespErr::*;
        match err {
            RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => self.assign(consumer, tpl),
            RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.revoke_all();
                if let Err(e) = consumer.unassign() {
                    warn!(error = %e, "unassign failed");
                }
            }
            other => {
                warn!(error = ?other, "rebalance error, dropping the assignment");
                self.revoke_all();
                let _ = consumer.unassign();
            }
        }
    }

    fn pre_rebalance(&self, _: &BaseConsumer<Self>, _: &Rebalance<'_>) {}
}

impl Ctx {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Tp, Route>> {
        self.routes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn assign(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        let parts: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        let mut starts = Vec::with_capacity(parts.len());
        for (topic, partition) in &parts {
            let Some(stored) = self.load_stored(topic, *partition) else {
                // Shutting down: take nothing.
                let _ = consumer.assign(&TopicPartitionList::new());
                return;
            };
            let offset = stored
                .as_ref()
                .map_or(Offset::Beginning, |s| Offset::Offset(s.next_offset));
            if let Err(e) = tpl.set_partition_offset(topic, *partition, offset) {
                error!(topic = %topic, partition, error = %e, "cannot set the start offset");
            }
            starts.push(stored);
        }
        {
            let mut routes = self.lock();
            for ((topic, partition), stored) in parts.into_iter().zip(starts) {
                let topic: Arc<str> = topic.into();
                let (tx, rx) = mpsc::channel(self.queue);
                let span = tracing::info_span!("partition", pipeline = %self.shared.pipeline, topic = %topic, partition);
                let worker = Worker::new(self.shared.clone(), topic.clone(), partition, stored);
                let task = self.handle.spawn(worker.run(rx).instrument(span));
                routes.insert(
                    (topic, partition),
                    Route {
                        tx,
                        pending: VecDeque::new(),
                        paused: false,
                        stopped: false,
                        task,
                    },
                );
            }
            self.set_held(routes.len());
        }
        info!(
            partitions = tpl.count(),
            "partitions assigned, starting at the positions stored in the target"
        );
        if let Err(e) = consumer.assign(tpl) {
            error!(error = %e, "assign failed");
        }
    }

    /// The target's stored position, retried until it can be read; `None` on shutdown.
    fn load_stored(&self, topic: &str, partition: i32) -> Option<Option<Stored>> {
        let mut delay = Duration::from_millis(self.shared.tuning.retry_ms.max(1));
        loop {
            if *self.shared.shutdown.borrow() {
                return None;
            }
            match self
                .handle
                .block_on(self.shared.target.load(topic, partition))
            {
                Ok(s) => return Some(s),
                Err(e) => {
                    warn!(topic, partition, error = %chain(&e), "cannot read the stored position from the target, retrying");
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    fn revoke_all(&self) {
        let drained: Vec<Route> = self.lock().drain().map(|(_, r)| r).collect();
        if !drained.is_empty() {
            info!(partitions = drained.len(), "partitions revoked");
        }
        let mut retired = self.retired.lock().unwrap_or_else(PoisonError::into_inner);
        retired.extend(drained.into_iter().map(|r| r.task));
        self.set_held(0);
    }

    fn set_held(&self, n: usize) {
        self.shared
            .metrics
            .partitions
            .with_label_values(&[&self.shared.pipeline, "held"])
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
}

/// Builds the group member; nothing is fetched until [`consume`] subscribes.
pub fn consumer(
    cfg: &Config,
    shared: Arc<Shared>,
    handle: Handle,
) -> Result<BaseConsumer<Ctx>, ServiceError> {
    let ctx = Ctx {
        shared,
        handle,
        queue: cfg.apply.queue_records,
        routes: Mutex::new(HashMap::new()),
        retired: Mutex::new(Vec::new()),
    };
    let mut client = ClientConfig::new();
    // librdkafka's own tracing (e.g. `cgrp,consumer`), for diagnosing group trouble.
    if let Ok(debug) = std::env::var("OTTER_KAFKA_DEBUG") {
        client.set("debug", debug);
    }
    client
        .set("bootstrap.servers", &cfg.kafka.brokers)
        .set("group.id", cfg.group_id())
        .set("client.id", format!("otter-apply-{}", cfg.pipeline))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set(
            "session.timeout.ms",
            cfg.kafka.session_timeout_ms.to_string(),
        )
        .set(
            "heartbeat.interval.ms",
            (cfg.kafka.session_timeout_ms / 6).max(100).to_string(),
        )
        .set(
            "max.poll.interval.ms",
            cfg.kafka
                .rebalance_timeout_ms
                .max(cfg.kafka.session_timeout_ms)
                .to_string(),
        )
        .set(
            "topic.metadata.refresh.interval.ms",
            cfg.kafka.metadata_refresh_ms.to_string(),
        )
        .set("partition.assignment.strategy", "range,roundrobin")
        .set("fetch.max.bytes", "52428800")
        .create_with_context(ctx)
        .map_err(ServiceError::Consumer)
}

/// Runs the member until `shutdown`; then releases every partition and waits for the
/// workers to finish their batch.
pub fn consume(
    consumer: BaseConsumer<Ctx>,
    prefix: &str,
    done: StdReceiver<Done>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), ServiceError> {
    let pattern = format!("^{}\\..*", regex::escape(prefix));
    consumer
        .subscribe(&[&pattern])
        .map_err(ServiceError::Consumer)?;
    info!(pattern, "subscribed");
    let mut last_error_log = Instant::now() - Duration::from_secs(60);
    while !*shutdown.borrow() {
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(msg)) => route(&consumer, &msg),
            Some(Err(e)) if last_error_log.elapsed() > Duration::from_secs(10) => {
                warn!(error = %e, "consumer error (librdkafka retries by itself)");
                last_error_log = Instant::now();
            }
            Some(Err(_)) => {}
        }
        flush_pending(&consumer);
        commit_done(&consumer, &done);
    }
    let ctx = consumer.context();
    ctx.revoke_all();
    let tasks: Vec<_> = ctx
        .retired
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .drain(..)
        .collect();
    ctx.handle.block_on(async {
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
        }
    });
    commit_done(&consumer, &done);
    consumer.unsubscribe();
    Ok(())
}

fn tpl_of(topic: &str, partition: i32) -> TopicPartitionList {
    let mut t = TopicPartitionList::new();
    t.add_partition(topic, partition);
    t
}

fn pause(consumer: &BaseConsumer<Ctx>, topic: &str, partition: i32) -> KafkaResult<()> {
    consumer.pause(&tpl_of(topic, partition))
}

fn route(consumer: &BaseConsumer<Ctx>, msg: &rdkafka::message::BorrowedMessage<'_>) {
    let ctx = consumer.context();
    let mut routes = ctx.lock();
    let key: Tp = (Arc::from(msg.topic()), msg.partition());
    let Some(r) = routes.get_mut(&key) else {
        return; // revoked meanwhile; the next owner starts from the stored position
    };
    if r.stopped {
        return;
    }
    let chunk = msg
        .headers()
        .and_then(|h| chunk_header(h.iter().map(|h| (h.key, h.value))));
    let rec = Rec {
        offset: msg.offset(),
        value: msg.payload().map(<[u8]>::to_vec),
        chunk,
    };
    if !r.pending.is_empty() {
        r.pending.push_back(rec);
        return;
    }
    match r.tx.try_send(rec) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(rec)) => {
            r.pending.push_back(rec);
            if !r.paused && pause(consumer, msg.topic(), msg.partition()).is_ok() {
                r.paused = true;
            }
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {
            // The worker stopped on an error: hold the partition where it is.
            r.stopped = true;
            r.pending.clear();
            let _ = pause(consumer, msg.topic(), msg.partition());
        }
    }
}

fn flush_pending(consumer: &BaseConsumer<Ctx>) {
    let ctx = consumer.context();
    let mut routes = ctx.lock();
    for ((topic, partition), r) in routes.iter_mut() {
        while let Some(rec) = r.pending.pop_front() {
            match r.tx.try_send(rec) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(rec)) => {
                    r.pending.push_front(rec);
                    break;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    r.stopped = true;
                    r.pending.clear();
                }
            }
        }
        if r.paused
            && r.pending.is_empty()
            && !r.stopped
            && consumer.resume(&tpl_of(topic, *partition)).is_ok()
        {
            r.paused = false;
        }
    }
}

/// Mirrors positions committed to the target into the group's offsets.
fn commit_done(consumer: &BaseConsumer<Ctx>, done: &StdReceiver<Done>) {
    let mut latest: HashMap<Tp, i64> = HashMap::new();
    while let Ok(d) = done.try_recv() {
        let e = latest
            .entry((d.topic, d.partition))
            .or_insert(d.next_offset);
        *e = (*e).max(d.next_offset);
    }
    if latest.is_empty() {
        return;
    }
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), next) in &latest {
        let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(*next));
    }
    if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
        tracing::debug!(error = %e, "group offset commit failed (informational only)");
    }
}
