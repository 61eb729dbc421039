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
//! - Each assigned partition gets its own librdkafka queue ([`Inbox`]), read by its
//!   worker only when it wants the next batch: a slow partition holds back only its own
//!   fetching (librdkafka stops prefetching at `queued.max.messages.kbytes`), and no
//!   pause/resume is needed (librdkafka resumed paused partitions past records it had
//!   fetched but not handed over, under load with Tansu: records were skipped).
//! - A worker gets every offset once, in order: a record before the offset it needs is
//!   dropped, one after it makes the inbox seek back; a gap that persists, or a seek
//!   that brings nothing back, is records the broker no longer has (or does not serve
//!   from that offset: Tansu's memory engine inside a record batch), and stops the
//!   partition with an error after `MAX_GAP_SEEKS` tries, never a silent wait.
//! - On revocation the partition's inbox is released: its worker finishes (or
//!   abandons) its batch and ends. A late commit of the old worker is harmless, the
//!   target's position row fences it (see `target.rs`).
//!
//! Settings: no auto commit, no auto offset store (rdkafka pitfall 1 in INFRA-NOTES), a
//! regex subscription `^<topic_prefix>\.` so new table topics join without a restart.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver as StdReceiver;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::base_consumer::PartitionQueue;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::message::{Headers, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::ClientContext;
use tokio::runtime::Handle;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tracing::{error, info, warn, Instrument};

use crate::config::Config;
use crate::error::{chain, ServiceError};
use crate::target::Stored;
use crate::worker::{Done, Outcome, Rec, Shared, Worker};

type Tp = (Arc<str>, i32);

/// Seeks back to a missing offset, `SEEK_PATIENCE` apart, before the gap is taken as
/// records the broker lost.
const MAX_GAP_SEEKS: u32 = 5;
const SEEK_PATIENCE: Duration = Duration::from_secs(2);

struct Route {
    released: Arc<AtomicBool>,
    task: JoinHandle<Outcome>,
    /// The offset the partition started at (`None`: its beginning).
    start: Option<i64>,
}

/// The consumer's context: owns the routes so the rebalance callback can change them.
pub struct Ctx {
    shared: Arc<Shared>,
    handle: Handle,
    /// The consumer itself, for splitting partition queues in the rebalance callback.
    me: OnceLock<Weak<BaseConsumer<Ctx>>>,
    routes: Mutex<HashMap<Tp, Route>>,
    /// Workers of revoked partitions, awaited at shutdown.
    retired: Mutex<Vec<JoinHandle<Outcome>>>,
    /// The broker's low and high watermarks per partition, from librdkafka's
    /// statistics (`statistics.interval.ms`), which it learns from fetch responses.
    marks: Mutex<HashMap<Tp, (i64, i64)>>,
}

/// The part of librdkafka's statistics JSON read here.
#[derive(serde::Deserialize)]
struct Stats {
    #[serde(default)]
    topics: HashMap<String, StatsTopic>,
}

#[derive(serde::Deserialize)]
struct StatsTopic {
    #[serde(default)]
    partitions: HashMap<String, StatsPartition>,
}

#[derive(serde::Deserialize)]
struct StatsPartition {
    lo_offset: i64,
    hi_offset: i64,
}

impl ClientContext for Ctx {
    /// librdkafka's global errors. A pattern subscription that matches no topic yet is
    /// the normal state of a pipeline whose tables have had no change since capture
    /// started (topics are created with the first event), so it is not an ERROR.
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        use rdkafka::types::RDKafkaErrorCode;
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::UnknownTopicOrPartition)
            && reason.contains("Subscribed topic not available")
        {
            tracing::info!(
                reason,
                "no topic of the pipeline exists yet; waiting for the first change"
            );
        } else {
            tracing::error!(%error, reason, "Kafka client error; check that the brokers in the pipeline's definition are reachable from this host (librdkafka retries on its own)");
        }
    }

    fn stats_raw(&self, statistics: &[u8]) {
        let Ok(stats) = serde_json::from_slice::<Stats>(statistics) else {
            tracing::debug!("unreadable librdkafka statistics");
            return;
        };
        let mut marks = self.marks.lock().unwrap_or_else(PoisonError::into_inner);
        for (topic, t) in stats.topics {
            let topic: Arc<str> = topic.into();
            for (p, part) in t.partitions {
                // "-1" is librdkafka's internal unassigned partition.
                if let Ok(p) = p.parse::<i32>() {
                    if p >= 0 && part.hi_offset >= 0 {
                        marks.insert((topic.clone(), p), (part.lo_offset.max(0), part.hi_offset));
                    }
                }
            }
        }
    }
}

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
}

impl Ctx {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Tp, Route>> {
        self.routes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn assign(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        // An assignment always follows a revocation (eager protocol), but once, in a
        // CI run, a second assignment arrived 120 ms after the first with none: two
        // workers then read one partition queue and a record's chunk went to the old
        // one. Whatever the cause, the previous workers end (batch committed) before
        // the positions are read and new queues split.
        let previous = self.release_all();
        if !previous.is_empty() {
            warn!(
                partitions = previous.len(),
                "new assignment without a revocation: releasing the previous partitions first"
            );
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            self.handle.block_on(async {
                for task in previous {
                    let _ = tokio::time::timeout_at(deadline, task).await;
                }
            });
        }
        let parts: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        let Some(mut all) = self.load_stored() else {
            // Shutting down: take nothing.
            let _ = consumer.assign(&TopicPartitionList::new());
            return;
        };
        let mut starts = Vec::with_capacity(parts.len());
        for (topic, partition) in &parts {
            let stored = all.remove(&(topic.clone(), *partition));
            let offset = stored
                .as_ref()
                .map_or(Offset::Beginning, |s| Offset::Offset(s.next_offset));
            if let Err(e) = tpl.set_partition_offset(topic, *partition, offset) {
                error!(topic = %topic, partition, error = %e, "cannot set the start offset; restart this apply instance (it resumes from the target's stored position)");
            }
            starts.push(stored);
        }
        if let Err(e) = consumer.assign(tpl) {
            error!(error = %e, "assign failed: this instance holds no partitions; restart it (the others keep applying theirs)");
            return;
        }
        let Some(me) = self.me.get().and_then(Weak::upgrade) else {
            error!(
                "the consumer is gone; cannot split partition queues; restart this apply instance"
            );
            return;
        };
        let mut routes = self.lock();
        for ((topic, partition), stored) in parts.into_iter().zip(starts) {
            // After `assign`, before anything is fetched: every record of the partition
            // goes to its own queue.
            let Some(mut queue) = me.split_partition_queue(&topic, partition) else {
                error!(topic = %topic, partition, "cannot split the partition queue: the partition is not applied; restart this apply instance");
                continue;
            };
            let notify = Arc::new(Notify::new());
            let n = notify.clone();
            queue.set_nonempty_callback(move || n.notify_one());
            let topic: Arc<str> = topic.into();
            let released = Arc::new(AtomicBool::new(false));
            let inbox = Inbox {
                queue,
                notify,
                released: released.clone(),
                consumer: me.clone(),
                topic: topic.clone(),
                partition,
                expected: stored.as_ref().map(|s| s.next_offset),
                seeks: 0,
                seeked_at: None,
                gap_seen: None,
            };
            let span = tracing::info_span!("partition", pipeline = %self.shared.pipeline, topic = %topic, partition);
            let start = stored.as_ref().map(|s| s.next_offset);
            let worker = Worker::new(self.shared.clone(), topic.clone(), partition, stored);
            let task = self.handle.spawn(worker.run(inbox).instrument(span));
            routes.insert(
                (topic, partition),
                Route {
                    released,
                    task,
                    start,
                },
            );
        }
        self.set_held(&routes);
        info!(
            partitions = routes.len(),
            "partitions assigned, starting at the positions stored in the target"
        );
    }

    /// Every stored position of the pipeline, retried until it can be read; `None` on
    /// shutdown.
    fn load_stored(&self) -> Option<HashMap<(String, i32), Stored>> {
        let mut delay = Duration::from_millis(self.shared.tuning.retry_ms.max(1));
        loop {
            if *self.shared.shutdown.borrow() {
                return None;
            }
            match self.handle.block_on(self.shared.target.load_all()) {
                Ok(s) => return Some(s),
                Err(e) => {
                    warn!(error = %chain(&e), "cannot read the stored positions from the target, retrying");
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    fn revoke_all(&self) {
        let drained = self.release_all();
        if !drained.is_empty() {
            info!(partitions = drained.len(), "partitions revoked");
        }
        self.retired
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(drained);
    }

    /// Tells every partition worker to end after its batch and forgets the routes;
    /// returns the workers' tasks.
    fn release_all(&self) -> Vec<JoinHandle<Outcome>> {
        let drained: Vec<Route> = self.lock().drain().map(|(_, r)| r).collect();
        self.set_held(&HashMap::new());
        drained
            .into_iter()
            .map(|r| {
                r.released.store(true, Ordering::Release);
                r.task
            })
            .collect()
    }

    fn set_held(&self, routes: &HashMap<Tp, Route>) {
        self.shared
            .metrics
            .partitions
            .with_label_values(&[&self.shared.pipeline, "held"])
            .set(i64::try_from(routes.len()).unwrap_or(i64::MAX));
        if let Ok(mut held) = self.shared.held.lock() {
            *held = routes.keys().map(|(t, p)| format!("{t}[{p}]")).collect();
        }
    }
}

/// Records of one assigned partition, in offset order, for its worker.
pub struct Inbox {
    queue: PartitionQueue<Ctx>,
    notify: Arc<Notify>,
    released: Arc<AtomicBool>,
    consumer: Arc<BaseConsumer<Ctx>>,
    topic: Arc<str>,
    partition: i32,
    /// The offset the worker needs next; `None` until the first record.
    expected: Option<i64>,
    seeks: u32,
    seeked_at: Option<Instant>,
    /// The offset that arrived in place of `expected`, while a gap is open.
    gap_seen: Option<i64>,
}

/// Records the broker no longer has (retention, deletion): the partition cannot go on.
#[derive(Debug, Clone, thiserror::Error)]
#[error("offsets {from}..={to} are missing from the broker (retention or deletion?) or it does not serve them; re-snapshot the table or reset its row in apply_position")]
pub struct OffsetsMissing {
    pub from: i64,
    pub to: i64,
}

impl Inbox {
    /// True once the partition was revoked (or the process is stopping).
    pub fn is_released(&self) -> bool {
        self.released.load(Ordering::Acquire)
    }

    /// The next record, without waiting.
    pub fn try_next(&mut self) -> Result<Option<Rec>, OffsetsMissing> {
        loop {
            let msg = match self.queue.poll(Duration::ZERO) {
                // A gap whose seek brought nothing back: seek again, and give up (as
                // for a gap that keeps coming back) after MAX_GAP_SEEKS, rather than
                // wait forever on a partition the broker does not serve from there.
                None => match (self.expected, self.gap_seen, self.seeked_at) {
                    (Some(expected), Some(seen), Some(at)) if at.elapsed() >= SEEK_PATIENCE => {
                        self.seek_back(expected, seen)?;
                        return Ok(None);
                    }
                    _ => return Ok(None),
                },
                Some(Err(e)) => {
                    warn!(error = %e, "fetch error (librdkafka retries by itself)");
                    return Ok(None);
                }
                Some(Ok(m)) => m,
            };
            let offset = msg.offset();
            if let Some(expected) = self.expected {
                if offset < expected {
                    continue; // handed over again; the worker has it
                }
                if offset > expected {
                    // Records fetched past the gap keep arriving for a moment after a
                    // seek: drop them meanwhile.
                    if self.seeked_at.is_some_and(|t| t.elapsed() < SEEK_PATIENCE) {
                        continue;
                    }
                    self.seek_back(expected, offset)?;
                    continue;
                }
            }
            self.expected = Some(offset + 1);
            self.seeks = 0;
            self.seeked_at = None;
            self.gap_seen = None;
            let chunk = msg.headers().and_then(|h| {
                header(
                    h.iter().map(|h| (h.key, h.value)),
                    otter_core::chunk::CHUNK_HEADER,
                )
            });
            return Ok(Some(Rec {
                offset,
                value: msg.payload().map(<[u8]>::to_vec),
                chunk,
            }));
        }
    }

    /// Seeks back to `expected` after `seen` arrived in its place; an error once that
    /// has been tried MAX_GAP_SEEKS times.
    fn seek_back(&mut self, expected: i64, seen: i64) -> Result<(), OffsetsMissing> {
        self.seeks += 1;
        self.seeked_at = Some(Instant::now());
        self.gap_seen = Some(seen);
        if self.seeks > MAX_GAP_SEEKS {
            return Err(OffsetsMissing {
                from: expected,
                to: seen - 1,
            });
        }
        warn!(expected, got = seen, "offset gap, seeking back");
        if let Err(e) = self.consumer.seek(
            &self.topic,
            self.partition,
            Offset::Offset(expected),
            Duration::from_secs(1),
        ) {
            warn!(expected, error = %e, "seek failed");
        }
        Ok(())
    }

    /// Waits until records may have arrived (or 100 ms passed).
    pub async fn wait(&self) {
        let _ = tokio::time::timeout(Duration::from_millis(100), self.notify.notified()).await;
    }
}

/// Builds the group member; nothing is fetched until [`consume`] subscribes.
pub fn consumer(
    cfg: &Config,
    shared: Arc<Shared>,
    handle: Handle,
) -> Result<Arc<BaseConsumer<Ctx>>, ServiceError> {
    let ctx = Ctx {
        shared,
        handle,
        me: OnceLock::new(),
        routes: Mutex::new(HashMap::new()),
        retired: Mutex::new(Vec::new()),
        marks: Mutex::new(HashMap::new()),
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
        .set("fetch.wait.max.ms", cfg.kafka.fetch_wait_ms.to_string())
        .set("partition.assignment.strategy", "range,roundrobin")
        .set("statistics.interval.ms", "1000")
        // See `kafka.fetch_max_kbytes` for what Tansu makes of it.
        .set(
            "fetch.max.bytes",
            (u64::from(cfg.kafka.fetch_max_kbytes) * 1024).to_string(),
        )
        .set(
            "queued.max.messages.kbytes",
            cfg.apply.prefetch_kbytes.to_string(),
        )
        // A partition whose prefetch queue is full is fetched again only after this
        // (librdkafka's default is 1 s): with large rows the queue fills in one fetch,
        // and the worker drained it long before the second ran out (the `wide` bench
        // applied ~600 rows in pulses one second apart).
        .set("fetch.queue.backoff.ms", "10")
        .create_with_context(ctx)
        .map(Arc::new)
        .map_err(ServiceError::Consumer)
}

/// Runs the member until `shutdown`; then releases every partition and waits for the
/// workers to finish their batch.
pub fn consume(
    consumer: Arc<BaseConsumer<Ctx>>,
    prefix: &str,
    done: StdReceiver<Done>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), ServiceError> {
    let _ = consumer.context().me.set(Arc::downgrade(&consumer));
    let pattern = format!("^{}\\..*", regex::escape(prefix));
    consumer
        .subscribe(&[&pattern])
        .map_err(ServiceError::Consumer)?;
    info!(pattern, "subscribed");
    let mut last_error_log = Instant::now() - Duration::from_secs(60);
    let mut backlog = Backlog::default();
    let mut discovery = Discovery::new();
    let mut listed_at = Instant::now() - LIST_EVERY;
    // A request left from an earlier run (paused since) is stale.
    consumer
        .context()
        .shared
        .rejoin
        .store(false, std::sync::atomic::Ordering::Release);
    while !*shutdown.borrow() {
        if listed_at.elapsed() >= LIST_EVERY {
            listed_at = Instant::now();
            if let Some(all) = pipeline_partitions(&consumer, prefix) {
                *consumer
                    .context()
                    .shared
                    .listed
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = all;
            }
        }
        if consumer
            .context()
            .shared
            .rejoin
            .swap(false, std::sync::atomic::Ordering::AcqRel)
        {
            warn!(pattern, "leaving and rejoining the consumer group: partitions of the pipeline are held by no live member");
            consumer.unsubscribe();
            consumer
                .subscribe(&[&pattern])
                .map_err(ServiceError::Consumer)?;
            discovery = Discovery::new();
        }
        discovery.probe(&consumer);
        // Serves rebalances and errors; records go to the partition queues.
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(msg)) => {
                warn!(
                    topic = msg.topic(),
                    partition = msg.partition(),
                    offset = msg.offset(),
                    "record on the main queue (not split), dropped; its worker seeks to it"
                );
            }
            Some(Err(e)) if last_error_log.elapsed() > Duration::from_secs(10) => {
                warn!(error = %e, "consumer error (librdkafka retries by itself)");
                last_error_log = Instant::now();
            }
            Some(Err(_)) => {}
        }
        let applied = commit_done(&consumer, &done);
        backlog.update(&consumer, applied);
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
    // This process holds nothing now: neither waiting nor stalled.
    let m = &ctx.shared.metrics;
    let p = [ctx.shared.pipeline.as_str()];
    m.backlog.with_label_values(&p).set(0);
    m.stalled.with_label_values(&p).set(0.0);
    Ok(())
}

/// How often the consumer thread lists the pipeline's partitions for the group
/// watchdog (`managed::report`).
const LIST_EVERY: Duration = Duration::from_secs(2);

/// Every partition of the pipeline's topics (`<prefix>.*`), `topic[partition]`, as the
/// broker lists them; `None` when the broker does not answer.
fn pipeline_partitions(
    consumer: &BaseConsumer<Ctx>,
    prefix: &str,
) -> Option<std::collections::BTreeSet<String>> {
    let want = format!("{prefix}.");
    let m = consumer.fetch_metadata(None, Duration::from_secs(2)).ok()?;
    Some(
        m.topics()
            .iter()
            .filter(|t| t.name().starts_with(&want))
            .flat_map(|t| {
                t.partitions()
                    .iter()
                    .map(move |p| format!("{}[{}]", t.name(), p.id()))
            })
            .collect(),
    )
}

/// Finds new table topics quickly while the pipeline is settling. librdkafka matches a
/// pattern subscription against each full metadata refresh, which it makes every
/// `kafka.metadata_refresh_ms`; a capture creates a table's topic with the table's
/// first change, several at a time after a start, and Tansu's first answers may list
/// only some of them. So while this member holds no partition, and for
/// [`Discovery::SETTLE`] after subscribing or after its assignment changed, the topic
/// list is fetched every [`Discovery::EVERY`] as well (one small metadata request).
struct Discovery {
    /// When the pipeline last changed shape (subscribe, or a different assignment).
    changed: Instant,
    held: usize,
    probed: Instant,
}

impl Discovery {
    const SETTLE: Duration = Duration::from_secs(10);
    const EVERY: Duration = Duration::from_millis(200);

    fn new() -> Self {
        Discovery {
            changed: Instant::now(),
            held: 0,
            probed: Instant::now(),
        }
    }

    fn probe(&mut self, consumer: &BaseConsumer<Ctx>) {
        let held = consumer.context().lock().len();
        if held != self.held {
            self.held = held;
            self.changed = Instant::now();
        }
        let settling = held == 0 || self.changed.elapsed() < Self::SETTLE;
        if !settling || self.probed.elapsed() < Self::EVERY {
            return;
        }
        self.probed = Instant::now();
        // The answer feeds librdkafka's cache and its subscription matching; errors
        // are the ones the regular refresh reports too.
        if let Err(e) = consumer.fetch_metadata(None, Duration::from_secs(1)) {
            tracing::debug!(error = %e, "topic discovery probe failed");
        }
    }
}

/// Mirrors positions committed to the target into the group's offsets (not in a dry
/// run); returns the latest position per partition.
fn commit_done(consumer: &BaseConsumer<Ctx>, done: &StdReceiver<Done>) -> HashMap<Tp, i64> {
    let mut latest: HashMap<Tp, i64> = HashMap::new();
    while let Ok(d) = done.try_recv() {
        let e = latest
            .entry((d.topic, d.partition))
            .or_insert(d.next_offset);
        *e = (*e).max(d.next_offset);
    }
    if latest.is_empty() || consumer.context().shared.dry_run {
        return latest;
    }
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), next) in &latest {
        let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(*next));
    }
    if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
        tracing::debug!(error = %e, "group offset commit failed (informational only)");
    }
    latest
}

/// Consumer lag and the stuck detector: every second, per held partition, the broker's
/// high watermark (from librdkafka's statistics: no extra request) against
/// the next offset applied here, into `otter_apply_backlog_records` (summed) and
/// `otter_apply_stalled_seconds` (the longest a partition has had records waiting
/// without a commit).
#[derive(Default)]
struct Backlog {
    /// Per partition: next offset applied, and since when it has been waiting (the
    /// last commit, or the moment records started waiting).
    parts: HashMap<Tp, (i64, Instant)>,
    checked: Option<Instant>,
}

impl Backlog {
    fn update(&mut self, consumer: &BaseConsumer<Ctx>, applied: HashMap<Tp, i64>) {
        let now = Instant::now();
        for (tp, next) in applied {
            self.parts.insert(tp, (next, now));
        }
        if self
            .checked
            .is_some_and(|c| c.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        self.checked = Some(now);
        let ctx = consumer.context();
        let starts: Vec<(Tp, Option<i64>)> = ctx
            .lock()
            .iter()
            .map(|(tp, r)| (tp.clone(), r.start))
            .collect();
        self.parts
            .retain(|tp, _| starts.iter().any(|(t, _)| t == tp));
        let marks = ctx
            .marks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let (mut waiting, mut stalled) = (0i64, Duration::ZERO);
        for (tp, start) in starts {
            // Unknown until the partition was fetched from once.
            let Some(&(low, high)) = marks.get(&tp) else {
                continue;
            };
            // Read from its beginning when the target had no position.
            let entry = self.parts.entry(tp).or_insert((start.unwrap_or(low), now));
            let behind = (high - entry.0).max(0);
            if behind == 0 {
                entry.1 = now;
            }
            waiting += behind;
            stalled = stalled.max(now - entry.1);
        }
        let p = ctx.shared.pipeline.as_str();
        let m = &ctx.shared.metrics;
        m.backlog.with_label_values(&[p]).set(waiting);
        m.stalled.with_label_values(&[p]).set(stalled.as_secs_f64());
    }
}

/// The value of header `name` of a record, if any.
fn header<'a>(
    headers: impl Iterator<Item = (&'a str, Option<&'a [u8]>)>,
    name: &str,
) -> Option<Vec<u8>> {
    for (k, v) in headers {
        if k == name {
            return v.map(<[u8]>::to_vec);
        }
    }
    None
}
