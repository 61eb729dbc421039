//! ChangeEvents to Kafka, and knowing when a transaction is safely there.
//!
//! Invariants:
//! - Records are handed to the producer in binlog order; the idempotent producer
//!   (`enable.idempotence=true`, `acks=all`) keeps that order per partition and never
//!   writes a record twice within one producer session.
//! - A transaction counts as published only when every record of it and of every
//!   earlier transaction was acknowledged: each record gets a sequence number, the
//!   delivery callback marks it done in a ring, and the acknowledged point moves only
//!   over an unbroken run of done records, past the commits inside that run.
//! - Kafka transactions are not used (the local broker, Tansu, has none); a restart
//!   re-publishes from the stored position, with identical source positions, and
//!   consumers drop what they already have.
//! - Topics are created (with the configured partition count) before their first
//!   record; the broker is never relied on to auto-create them.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use otter_core::codec::CodecError;
use otter_core::{ErrorClass, SourcePos};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext};

use crate::binlog::{Checkpoint, Item};
use crate::config::KafkaConfig;
use crate::records::{Records, Route, WireRecord};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("cannot create the Kafka producer")]
    Client(#[source] KafkaError),
    #[error("cannot create topic {topic}")]
    CreateTopic {
        topic: String,
        #[source]
        source: KafkaError,
    },
    #[error("cannot read metadata of topic {topic}")]
    Metadata {
        topic: String,
        #[source]
        source: KafkaError,
    },
    #[error("record for {topic} from {at} was not delivered")]
    Delivery {
        topic: String,
        at: SourcePos,
        #[source]
        source: KafkaError,
    },
    #[error("cannot encode the change from {at}")]
    Encode {
        at: SourcePos,
        #[source]
        source: CodecError,
    },
    #[error("the background task reading metadata of {topic} failed")]
    MetadataTask { topic: String },
    #[error("no delivery report for {stalled_ms} ms with {in_flight} records in flight (oldest for {topic} from {at}); restarting the producer")]
    Stalled {
        in_flight: usize,
        stalled_ms: u64,
        topic: String,
        at: SourcePos,
    },
}

impl PublishError {
    pub fn class(&self) -> ErrorClass {
        match self {
            PublishError::Encode { .. } => ErrorClass::Permanent,
            PublishError::Delivery { source, .. } | PublishError::CreateTopic { source, .. } => {
                match source.rdkafka_error_code() {
                    Some(
                        RDKafkaErrorCode::MessageSizeTooLarge
                        | RDKafkaErrorCode::TopicAuthorizationFailed,
                    ) => ErrorClass::Permanent,
                    _ => ErrorClass::Transient,
                }
            }
            _ => ErrorClass::Transient,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            PublishError::Client(_) => "kafka_client",
            PublishError::CreateTopic { .. } => "create_topic",
            PublishError::Metadata { .. } => "topic_metadata",
            PublishError::Delivery { .. } => "delivery",
            PublishError::Encode { .. } => "encode",
            PublishError::MetadataTask { .. } => "metadata_task",
            PublishError::Stalled { .. } => "delivery_stalled",
        }
    }
}

/// Delivery reports, written by librdkafka's polling thread, read by the publisher.
struct Acks {
    /// `done[seq & mask]`: record `seq` was acknowledged. Cleared when consumed.
    done: Box<[AtomicBool]>,
    mask: u64,
    /// The first failed delivery: its sequence number and error.
    failed: Mutex<Option<(u64, KafkaError)>>,
    notify: tokio::sync::Notify,
}

struct DeliveryContext {
    acks: Arc<Acks>,
    /// Where librdkafka's statistics go (`OTTER_KAFKA_STATS_FILE`), if anywhere.
    stats_file: Option<std::path::PathBuf>,
    /// A failed statistics write was already reported.
    stats_failed: AtomicBool,
}

impl ClientContext for DeliveryContext {
    /// librdkafka's statistics (one JSON document a second), appended to
    /// `stats_file`: a diagnostic for where produce latency goes (`int_latency`, `rtt`,
    /// `waitresp_cnt` per broker). A failed write is reported once and never stops
    /// publishing.
    fn stats_raw(&self, statistics: &[u8]) {
        use std::io::Write;
        let Some(path) = &self.stats_file else { return };
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(&[statistics, b"\n"].concat()));
        if let Err(e) = written {
            if !self.stats_failed.swap(true, Ordering::Relaxed) {
                tracing::warn!(path = %path.display(), error = %e, "cannot write librdkafka statistics");
            }
        }
    }
}

impl ProducerContext for DeliveryContext {
    /// The record's sequence number.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, seq: usize) {
        let seq = seq as u64;
        match result {
            Ok(_) => self.acks.done[(seq & self.acks.mask) as usize].store(true, Ordering::Release),
            Err((e, _)) => {
                let mut f = self
                    .acks
                    .failed
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                f.get_or_insert((seq, e.clone()));
            }
        }
        self.acks.notify.notify_one();
    }
}

/// Counts for metrics and progress lines.
#[derive(Debug, Default, Clone)]
pub struct PublishStats {
    pub records: u64,
    pub bytes: u64,
    pub changes: u64,
    /// Changes by op: insert, update, delete.
    pub ops: [u64; 3],
    /// Heartbeat rows published (counted apart from changes).
    pub beats: u64,
    pub transactions: u64,
}

pub struct Publisher {
    producer: Arc<ThreadedProducer<DeliveryContext>>,
    acks: Arc<Acks>,
    admin: AdminClient<DefaultClientContext>,
    partitions: i32,
    replication: i32,
    /// Values over this many bytes go out as chunks (see `otter_core::chunk`).
    chunk_bytes: usize,
    topics: HashMap<String, i32>,
    /// Sequence number of the next record.
    next_seq: u64,
    /// Every record below this sequence number is acknowledged.
    low: u64,
    /// Commit markers, with the sequence number the transaction's records end below,
    /// when the commit was handed over and the totals handed over by then.
    commits: VecDeque<(u64, Checkpoint, std::time::Instant, PublishStats)>,
    /// Where the time from a commit handed over to its acknowledgement goes.
    latency: Option<prometheus::Histogram>,
    /// Per item: its first record's sequence number, topic and source position, to
    /// name them in a delivery error.
    origins: VecDeque<(u64, Arc<str>, SourcePos)>,
    max_in_flight: usize,
    /// When `low` last moved (or nothing was in flight): a producer that stops
    /// reporting deliveries is replaced after `stall_timeout` (seen with Tansu 0.6: after
    /// a broker restart the idempotent producer kept bumping its epoch and never
    /// reported the records in flight, not even after `message.timeout.ms`).
    progress_at: std::time::Instant,
    stall_timeout: Duration,
    acked: Option<Checkpoint>,
    records: Records,
    /// Totals handed to the producer.
    pub stats: PublishStats,
    /// Totals of the transactions the broker acknowledged in full.
    pub acked_stats: PublishStats,
}

/// Resolves [`DeliverySignal::arrived`] once a delivery report has come in since the
/// last time (one may be pending already).
pub struct DeliverySignal(Arc<Acks>);

impl DeliverySignal {
    pub async fn arrived(&self) {
        self.0.notify.notified().await
    }
}

impl Publisher {
    pub fn new(cfg: &KafkaConfig, max_in_flight: usize) -> Result<Publisher, PublishError> {
        let mut cc = ClientConfig::new();
        // librdkafka's own tracing (e.g. `eos,msg,protocol`), for diagnosing broker trouble.
        if let Ok(debug) = std::env::var("OTTER_KAFKA_DEBUG") {
            cc.set("debug", debug);
        }
        let stats_file = std::env::var_os("OTTER_KAFKA_STATS_FILE").map(std::path::PathBuf::from);
        if stats_file.is_some() {
            cc.set("statistics.interval.ms", "1000");
        }
        cc.set("bootstrap.servers", &cfg.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", &cfg.compression)
            .set("linger.ms", cfg.linger_ms.to_string())
            .set("message.max.bytes", cfg.max_message_bytes.to_string())
            .set(
                "batch.size",
                (cfg.max_message_bytes.min(4 * 1024 * 1024)).to_string(),
            )
            .set("message.timeout.ms", cfg.delivery_timeout_ms.to_string())
            .set("queue.buffering.max.messages", "1000000")
            .set("queue.buffering.max.kbytes", "1048576");
        let max_in_flight = max_in_flight.max(1);
        let cap = (max_in_flight as u64 + 1).next_power_of_two();
        let acks = Arc::new(Acks {
            done: (0..cap).map(|_| AtomicBool::new(false)).collect(),
            mask: cap - 1,
            failed: Mutex::new(None),
            notify: tokio::sync::Notify::new(),
        });
        let producer = Arc::new(
            cc.create_with_context(DeliveryContext {
                acks: acks.clone(),
                stats_file,
                stats_failed: AtomicBool::new(false),
            })
            .map_err(PublishError::Client)?,
        );
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &cfg.brokers)
            .create()
            .map_err(PublishError::Client)?;
        Ok(Publisher {
            producer,
            acks,
            admin,
            partitions: cfg.partitions,
            replication: cfg.replication_factor,
            chunk_bytes: cfg.chunk_bytes as usize,
            topics: HashMap::new(),
            next_seq: 0,
            low: 0,
            progress_at: std::time::Instant::now(),
            stall_timeout: Duration::from_millis(cfg.stall_timeout_ms),
            commits: VecDeque::new(),
            latency: None,
            origins: VecDeque::new(),
            max_in_flight,
            acked: None,
            records: Records::new(&cfg.topic_prefix),
            stats: PublishStats::default(),
            acked_stats: PublishStats::default(),
        })
    }

    /// Creates `topic` if needed and returns its partition count.
    async fn ensure_topic(&mut self, topic: &str) -> Result<i32, PublishError> {
        if let Some(&n) = self.topics.get(topic) {
            return Ok(n);
        }
        let new = NewTopic::new(
            topic,
            self.partitions,
            TopicReplication::Fixed(self.replication),
        );
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = self
            .admin
            .create_topics([&new], &opts)
            .await
            .map_err(|source| PublishError::CreateTopic {
                topic: topic.to_owned(),
                source,
            })?;
        let mut created = false;
        for r in results {
            match r {
                Ok(_) => created = true,
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => {
                    return Err(PublishError::CreateTopic {
                        topic: topic.to_owned(),
                        source: KafkaError::AdminOp(code),
                    })
                }
            }
        }
        // A topic created just now may be listed with only some of its partitions for
        // a moment (Tansu's memory engine): keys must hash over all of them, so wait
        // (bounded) until the broker lists as many as were asked for.
        let want = if created { self.partitions } else { 1 };
        let mut partitions = 0;
        for _ in 0..50 {
            partitions = self.partition_count(topic).await?;
            if partitions >= want {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if partitions < 1 {
            return Err(PublishError::Metadata {
                topic: topic.to_owned(),
                source: KafkaError::MetadataFetch(RDKafkaErrorCode::UnknownTopicOrPartition),
            });
        }
        if partitions < want {
            tracing::warn!(
                topic,
                partitions,
                asked = want,
                "a topic created here lists fewer partitions than asked for; using what the broker lists"
            );
        }
        tracing::info!(topic, partitions, created, "topic ready");
        self.topics.insert(topic.to_owned(), partitions);
        Ok(partitions)
    }

    /// The partition count the broker lists for `topic` (0 when it lists none).
    async fn partition_count(&self, topic: &str) -> Result<i32, PublishError> {
        let producer = self.producer.clone();
        let name = topic.to_owned();
        tokio::task::spawn_blocking(move || {
            let md = producer
                .client()
                .fetch_metadata(Some(&name), Duration::from_secs(10))?;
            Ok::<_, KafkaError>(
                md.topics()
                    .first()
                    .map_or(0, |t| t.partitions().len() as i32),
            )
        })
        .await
        .map_err(|_| PublishError::MetadataTask {
            topic: topic.to_owned(),
        })?
        .map_err(|source| PublishError::Metadata {
            topic: topic.to_owned(),
            source,
        })
    }

    /// Hands one decoded item to the producer (waiting for acknowledgements when too
    /// many records are in flight).
    pub async fn publish(&mut self, item: &Item, now_ms: i64) -> Result<(), PublishError> {
        if let Item::Commit(cp) = item {
            self.stats.transactions += 1;
            self.commits.push_back((
                self.next_seq,
                cp.clone(),
                std::time::Instant::now(),
                self.stats.clone(),
            ));
            return Ok(());
        }
        let at = match item {
            Item::Change(e) => e.source.at.clone(),
            Item::Schema(s) => s.source.at.clone(),
            Item::Commit(_) => unreachable!("handled above"),
        };
        // A schema change goes to every partition of the topic of each table it names
        // and says how many copies there are in all, so apply knows when every one has
        // arrived (in the value: Tansu mishandles fetches of records with headers, see
        // the README).
        let counted;
        let item = match item {
            Item::Schema(s) => {
                let mut n = 0i64;
                for t in s.statement_tables() {
                    let topic = self.records.topic(t);
                    n += i64::from(self.ensure_topic(&topic).await?);
                }
                counted = Item::Schema(otter_core::SchemaChange {
                    copies: u32::try_from(n).ok(),
                    ..s.clone()
                });
                &counted
            }
            other => other,
        };
        // Moved out for the loop (send needs &mut self), and back in after it.
        let mut records = std::mem::replace(&mut self.records, Records::new(""));
        if let Err(source) = records.build(item, now_ms) {
            self.records = records;
            return Err(PublishError::Encode { at, source });
        }
        if let Item::Change(e) = item {
            if otter_core::heartbeat::is_heartbeat(&e.schema.table) {
                self.stats.beats += 1;
            } else {
                self.stats.changes += 1;
                self.stats.ops[e.op.index()] += 1;
            }
        }
        if let Some(first) = records.as_slice().first() {
            self.origins
                .push_back((self.next_seq, first.topic.clone(), at.clone()));
        }
        let sent = self.send_all(records.as_slice(), &at).await;
        self.records = records;
        sent
    }

    async fn send_all(
        &mut self,
        records: &[WireRecord],
        at: &SourcePos,
    ) -> Result<(), PublishError> {
        for r in records {
            let partitions = self.ensure_topic(&r.topic).await?;
            match r.route {
                Route::ByKey => self.send(r, None, at).await?,
                Route::AllPartitions => {
                    for p in 0..partitions {
                        self.send(r, Some(p), at).await?;
                    }
                }
            }
        }
        Ok(())
    }

    async fn send(
        &mut self,
        r: &WireRecord,
        partition: Option<i32>,
        at: &SourcePos,
    ) -> Result<(), PublishError> {
        if r.value.len() <= self.chunk_bytes {
            return self.send_one(r, &r.value, None, partition, at).await;
        }
        // Chunks share the key, so the partitioner puts them all on one partition,
        // and they are handed over back to back: contiguous there.
        for (header, part) in otter_core::chunk::split(&r.value, self.chunk_bytes) {
            self.send_one(r, part, Some(&header), partition, at).await?;
        }
        Ok(())
    }

    async fn send_one(
        &mut self,
        r: &WireRecord,
        value: &[u8],
        chunk: Option<&str>,
        partition: Option<i32>,
        at: &SourcePos,
    ) -> Result<(), PublishError> {
        while self.in_flight() >= self.max_in_flight {
            self.wait_for_acks().await?;
        }
        let seq = self.next_seq;
        loop {
            let mut rec = BaseRecord::with_opaque_to(&r.topic, seq as usize)
                .key(&r.key[..])
                .payload(value);
            if let Some(h) = chunk {
                rec = rec.headers(OwnedHeaders::new().insert(Header {
                    key: otter_core::chunk::CHUNK_HEADER,
                    value: Some(h),
                }));
            }
            if let Some(p) = partition {
                rec = rec.partition(p);
            }
            match self.producer.send(rec) {
                Ok(()) => {
                    self.next_seq += 1;
                    self.stats.records += 1;
                    self.stats.bytes += (r.key.len() + value.len()) as u64;
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    self.wait_for_acks().await?
                }
                Err((source, _)) => {
                    return Err(PublishError::Delivery {
                        topic: r.topic.to_string(),
                        at: at.clone(),
                        source,
                    })
                }
            }
        }
    }

    /// Waits until some delivery report arrives (or 50 ms pass), then takes stock.
    async fn wait_for_acks(&mut self) -> Result<(), PublishError> {
        let _ = tokio::time::timeout(Duration::from_millis(50), self.acks.notify.notified()).await;
        self.poll_acked()
    }

    /// What a session loop waits on for delivery reports, beside its borrows of the
    /// publisher; taken once per session, not per event.
    pub fn delivery_signal(&self) -> DeliverySignal {
        DeliverySignal(self.acks.clone())
    }

    /// Moves the acknowledged point over every record already acknowledged, without
    /// waiting; fails on the first failed delivery.
    pub fn poll_acked(&mut self) -> Result<(), PublishError> {
        let before = self.low;
        while self.low < self.next_seq
            && self.acks.done[(self.low & self.acks.mask) as usize].swap(false, Ordering::AcqRel)
        {
            self.low += 1;
        }
        if self.low != before || self.low == self.next_seq {
            self.progress_at = std::time::Instant::now();
        }
        while self
            .commits
            .front()
            .is_some_and(|(end, _, _, _)| *end <= self.low)
        {
            if let Some((_, cp, at, stats)) = self.commits.pop_front() {
                if let Some(h) = &self.latency {
                    h.observe(at.elapsed().as_secs_f64());
                }
                self.acked = Some(cp);
                self.acked_stats = stats;
            }
        }
        while self.origins.len() > 1
            && self
                .origins
                .get(1)
                .is_some_and(|(first, _, _)| *first <= self.low)
        {
            self.origins.pop_front();
        }
        let failed = self
            .acks
            .failed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some((seq, source)) = failed {
            let (topic, at) = self
                .origins
                .iter()
                .rev()
                .find(|(first, _, _)| *first <= seq)
                .map(|(_, t, a)| (t.to_string(), a.clone()))
                .unwrap_or_else(|| (String::new(), SourcePos::new("", 0)));
            return Err(PublishError::Delivery { topic, at, source });
        }
        let stalled = self.progress_at.elapsed();
        if stalled > self.stall_timeout {
            let (topic, at) = self
                .origins
                .front()
                .map(|(_, t, a)| (t.to_string(), a.clone()))
                .unwrap_or_else(|| (String::new(), SourcePos::new("", 0)));
            return Err(PublishError::Stalled {
                in_flight: self.in_flight(),
                stalled_ms: u64::try_from(stalled.as_millis()).unwrap_or(u64::MAX),
                topic,
                at,
            });
        }
        Ok(())
    }

    /// Waits until everything handed over so far is acknowledged (a failed record
    /// ends the wait with its error; librdkafka reports every record within
    /// `kafka.delivery_timeout_ms`).
    pub async fn flush(&mut self) -> Result<(), PublishError> {
        loop {
            self.poll_acked()?;
            if self.low == self.next_seq {
                return Ok(());
            }
            self.wait_for_acks().await?;
        }
    }

    /// The latest transaction boundary everything before which is acknowledged.
    pub fn acknowledged(&self) -> Option<&Checkpoint> {
        self.acked.as_ref()
    }

    pub fn in_flight(&self) -> usize {
        (self.next_seq - self.low) as usize
    }

    /// Observe each transaction's publish latency (commit handed over to its last
    /// record acknowledged) into `h`.
    pub fn observe_latency(&mut self, h: prometheus::Histogram) {
        self.latency = Some(h);
    }

    /// Marks every record from now on with the leader's election epoch
    /// (`source.epoch`). Not a header: Tansu 0.6 spins at full CPU serving fetches of
    /// records with headers, until group heartbeats time out.
    pub fn set_epoch(&mut self, epoch: i64) {
        self.records.set_epoch(epoch);
    }

    /// Drops every record not yet sent to the broker (leadership lost: nothing more may
    /// go out). Records already on the wire cannot be recalled.
    pub fn abandon(&self) {
        use rdkafka::producer::{Producer, PurgeConfig};
        self.producer.purge(PurgeConfig::default().queue());
    }
}
