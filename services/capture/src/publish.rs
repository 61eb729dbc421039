//! ChangeEvents to Kafka, and knowing when a transaction is safely there.
//!
//! Invariants:
//! - Records are handed to the producer in binlog order; the idempotent producer
//!   (`enable.idempotence=true`, `acks=all`) keeps that order per partition and never
//!   writes a record twice within one producer session.
//! - A transaction counts as published only when every record of it and of every
//!   earlier transaction was acknowledged: deliveries are awaited in send order, and
//!   only then does [`Publisher::acknowledged`] move past its commit.
//! - Kafka transactions are not used (the local broker, Tansu, has none); a restart
//!   re-publishes from the stored position, with identical source positions, and
//!   consumers drop what they already have.
//! - Topics are created (with the configured partition count) before their first
//!   record; the broker is never relied on to auto-create them.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use otter_core::codec::CodecError;
use otter_core::{ErrorClass, SourcePos};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::future_producer::OwnedDeliveryResult;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::ClientConfig;

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
    #[error("the producer was dropped before delivering a record for {topic}")]
    Canceled { topic: String },
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
            PublishError::Canceled { .. } => "canceled",
        }
    }
}

enum Pending {
    Record {
        fut: DeliveryFuture,
        topic: Arc<str>,
        at: SourcePos,
    },
    Commit(Checkpoint),
}

/// Counts for metrics and progress lines.
#[derive(Debug, Default, Clone)]
pub struct PublishStats {
    pub records: u64,
    pub bytes: u64,
    pub changes: u64,
    /// Changes by op: insert, update, delete.
    pub ops: [u64; 3],
    pub transactions: u64,
}

pub struct Publisher {
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
    partitions: i32,
    replication: i32,
    /// Values over this many bytes go out as chunks (see `otter_core::chunk`).
    chunk_bytes: usize,
    topics: HashMap<String, i32>,
    pending: VecDeque<Pending>,
    pending_records: usize,
    max_in_flight: usize,
    acked: Option<Checkpoint>,
    records: Records,
    pub stats: PublishStats,
}

impl Publisher {
    pub fn new(cfg: &KafkaConfig, max_in_flight: usize) -> Result<Publisher, PublishError> {
        let mut cc = ClientConfig::new();
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
        let producer: FutureProducer = cc.create().map_err(PublishError::Client)?;
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &cfg.brokers)
            .create()
            .map_err(PublishError::Client)?;
        Ok(Publisher {
            producer,
            admin,
            partitions: cfg.partitions,
            replication: cfg.replication_factor,
            chunk_bytes: cfg.chunk_bytes as usize,
            topics: HashMap::new(),
            pending: VecDeque::new(),
            pending_records: 0,
            max_in_flight,
            acked: None,
            records: Records::new(&cfg.topic_prefix),
            stats: PublishStats::default(),
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
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => {
                    return Err(PublishError::CreateTopic {
                        topic: topic.to_owned(),
                        source: KafkaError::AdminOp(code),
                    })
                }
            }
        }
        let producer = self.producer.clone();
        let name = topic.to_owned();
        let partitions = tokio::task::spawn_blocking(move || {
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
        .map_err(|_| PublishError::Canceled {
            topic: topic.to_owned(),
        })?
        .map_err(|source| PublishError::Metadata {
            topic: topic.to_owned(),
            source,
        })?;
        if partitions < 1 {
            return Err(PublishError::Metadata {
                topic: topic.to_owned(),
                source: KafkaError::MetadataFetch(RDKafkaErrorCode::UnknownTopicOrPartition),
            });
        }
        self.topics.insert(topic.to_owned(), partitions);
        Ok(partitions)
    }

    /// Hands one decoded item to the producer (waiting for acknowledgements when too
    /// many records are in flight).
    pub async fn publish(&mut self, item: &Item, now_ms: i64) -> Result<(), PublishError> {
        if let Item::Commit(cp) = item {
            self.pending.push_back(Pending::Commit(cp.clone()));
            self.stats.transactions += 1;
            return Ok(());
        }
        let at = match item {
            Item::Change(e) => e.source.at.clone(),
            Item::Schema(s) => s.source.at.clone(),
            Item::Commit(_) => unreachable!("handled above"),
        };
        // Moved out for the loop (send needs &mut self), and back in after it.
        let mut records = std::mem::replace(&mut self.records, Records::new(""));
        let built = records.build(item, now_ms);
        if let Err(source) = built {
            self.records = records;
            return Err(PublishError::Encode { at, source });
        }
        if let Item::Change(e) = item {
            self.stats.changes += 1;
            self.stats.ops[match e.op {
                otter_core::Op::Insert => 0,
                otter_core::Op::Update => 1,
                otter_core::Op::Delete => 2,
            }] += 1;
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
        loop {
            if self.pending_records >= self.max_in_flight {
                self.wait_one().await?;
            }
            let mut rec = FutureRecord::to(&r.topic).key(&r.key).payload(value);
            if let Some(h) = chunk {
                rec = rec.headers(OwnedHeaders::new().insert(Header {
                    key: otter_core::chunk::CHUNK_HEADER,
                    value: Some(h),
                }));
            }
            if let Some(p) = partition {
                rec = rec.partition(p);
            }
            match self.producer.send_result(rec) {
                Ok(fut) => {
                    self.pending.push_back(Pending::Record {
                        fut,
                        topic: r.topic.clone(),
                        at: at.clone(),
                    });
                    self.pending_records += 1;
                    self.stats.records += 1;
                    self.stats.bytes += (r.key.len() + value.len()) as u64;
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    if self.pending_records == 0 {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    } else {
                        self.wait_one().await?;
                    }
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

    /// Waits for the oldest in-flight record (and passes the commits behind it).
    async fn wait_one(&mut self) -> Result<(), PublishError> {
        while let Some(p) = self.pending.pop_front() {
            match p {
                Pending::Commit(cp) => self.acked = Some(cp),
                Pending::Record { fut, topic, at } => {
                    self.pending_records -= 1;
                    return Self::check(fut.await, topic, at);
                }
            }
        }
        Ok(())
    }

    fn check<E>(
        r: Result<OwnedDeliveryResult, E>,
        topic: Arc<str>,
        at: SourcePos,
    ) -> Result<(), PublishError> {
        let topic = topic.to_string();
        match r {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((source, _))) => Err(PublishError::Delivery { topic, at, source }),
            Err(_) => Err(PublishError::Canceled { topic }),
        }
    }

    /// Moves the acknowledged point over every delivery that already completed,
    /// without waiting.
    pub fn poll_acked(&mut self) -> Result<(), PublishError> {
        loop {
            match self.pending.front_mut() {
                None => return Ok(()),
                Some(Pending::Commit(..)) => {
                    if let Some(Pending::Commit(cp)) = self.pending.pop_front() {
                        self.acked = Some(cp);
                    }
                }
                Some(Pending::Record { fut, .. }) => match fut.now_or_never() {
                    None => return Ok(()),
                    Some(r) => {
                        let Some(Pending::Record { topic, at, .. }) = self.pending.pop_front()
                        else {
                            return Ok(());
                        };
                        self.pending_records -= 1;
                        Self::check(r, topic, at)?;
                    }
                },
            }
        }
    }

    /// Waits until everything handed over so far is acknowledged.
    pub async fn flush(&mut self) -> Result<(), PublishError> {
        while !self.pending.is_empty() {
            self.wait_one().await?;
        }
        Ok(())
    }

    /// The latest transaction boundary everything before which is acknowledged.
    pub fn acknowledged(&self) -> Option<&Checkpoint> {
        self.acked.as_ref()
    }

    pub fn in_flight(&self) -> usize {
        self.pending_records
    }
}
