//! The capture loop: binlog in, acknowledged records out, position stored.
//!
//! Invariants:
//! - The position stored in ZooKeeper is always one the publisher reported as
//!   acknowledged: just past a transaction all of whose records (and all earlier
//!   ones) the broker accepted. A crash at any instant restarts at or before the
//!   first unacknowledged transaction: nothing is lost; what is re-published carries
//!   the same source positions.
//! - A transient failure (source, broker or ZooKeeper unreachable) ends the session;
//!   the next one starts from the stored position after a backoff. A permanent one
//!   (bad data, settings, a position taken over by another process) stops capture.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use otter_coord::election::Lease;
use otter_coord::{CapturePosition, PositionStore, TableVersion, Zk};
use otter_core::position::GtidSet;
use otter_core::{ErrorClass, SourcePos};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::binlog::decode::{Options, StatementPolicy};
use crate::binlog::event::ty;
use crate::binlog::{Decoder, Item};
use crate::config::{Config, StartAt, TableFilter};
use crate::error::{chain, CaptureError};
use crate::metrics::Metrics;
use crate::publish::Publisher;
use crate::source::{ServerInfo, Source};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What a capture run did (its last session's totals).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    pub changes: u64,
    pub records: u64,
    pub bytes: u64,
    pub transactions: u64,
    /// The last stored position.
    pub position: Option<String>,
}

/// Who may publish: a standalone process (its own ZooKeeper session per capture
/// session, fenced only by the position's compare-and-set), or the elected leader of a
/// managed pipeline, which acts only while its lease is valid.
#[derive(Clone)]
pub enum Authority {
    Standalone,
    Leader {
        zk: Zk,
        lease: Lease,
        /// The election epoch, carried by every record (`source.epoch`).
        epoch: i64,
        errors: otter_coord::control::ErrorSink,
    },
}

impl Authority {
    fn report(&self, e: &CaptureError) {
        if let Authority::Leader { errors, .. } = self {
            errors.report(e.code(), e.class(), chain(e));
        }
    }

    /// `Err(Fenced)` once a leader's lease is gone; `at` names the binlog place.
    fn check(&self, at: impl FnOnce() -> String) -> Result<(), CaptureError> {
        match self {
            Authority::Leader { lease, .. } if !lease.valid() => {
                Err(CaptureError::Fenced { position: at() })
            }
            _ => Ok(()),
        }
    }
}

/// Runs capture until `shutdown` turns true, or (when `stop_at` is set) until the
/// acknowledged position reaches it, or a permanent error.
pub async fn run(
    cfg: Config,
    metrics: Metrics,
    shutdown: watch::Receiver<bool>,
    stop_at: Option<SourcePos>,
) -> Result<Summary, CaptureError> {
    run_as(cfg, metrics, shutdown, stop_at, Authority::Standalone).await
}

/// [`run`] under an [`Authority`].
pub async fn run_as(
    cfg: Config,
    metrics: Metrics,
    mut shutdown: watch::Receiver<bool>,
    stop_at: Option<SourcePos>,
    authority: Authority,
) -> Result<Summary, CaptureError> {
    let source = Source::new(
        &cfg.source.url,
        Duration::from_millis(cfg.source.connect_timeout_ms),
    )?;
    let probe = tokio::spawn(probe(
        Source::new(
            &cfg.source.url,
            Duration::from_millis(cfg.source.connect_timeout_ms),
        )?,
        metrics.clone(),
        cfg.pipeline.clone(),
    ));
    let beat = (cfg.capture.heartbeat_ms > 0).then(|| {
        Source::new(
            &cfg.source.url,
            Duration::from_millis(cfg.source.connect_timeout_ms),
        )
        .map(|s| tokio::spawn(heartbeat(s, cfg.pipeline.clone(), cfg.capture.heartbeat_ms)))
    });
    let result = sessions(&cfg, &source, &metrics, &mut shutdown, stop_at, &authority).await;
    probe.abort();
    if let Some(Ok(task)) = beat {
        task.abort();
    }
    result
}

/// Writes this pipeline's heartbeat row on the source every `every_ms` (see
/// `otter_core::heartbeat`). Trouble is logged (once a minute at most) and retried;
/// capture itself never depends on it.
async fn heartbeat(source: Source, pipeline: String, every_ms: u64) {
    use mysql_async::prelude::Queryable;
    let mut conn: Option<mysql_async::Conn> = None;
    let mut warned: Option<std::time::Instant> = None;
    let db = otter_core::heartbeat::DB;
    let table = otter_core::heartbeat::TABLE;
    loop {
        let result: Result<(), String> = async {
            if conn.is_none() {
                let mut c = source.connect().await.map_err(|e| chain(&e))?;
                c.query_drop(format!("CREATE DATABASE IF NOT EXISTS `{db}`"))
                    .await
                    .map_err(|e| e.to_string())?;
                c.query_drop(format!(
                    "CREATE TABLE IF NOT EXISTS `{db}`.`{table}` (pipeline VARCHAR(64) PRIMARY KEY, beat_us BIGINT NOT NULL)"
                ))
                .await
                .map_err(|e| e.to_string())?;
                conn = Some(c);
            }
            let c = conn.as_mut().ok_or("no connection")?;
            c.exec_drop(
                format!(
                    "INSERT INTO `{db}`.`{table}` (pipeline, beat_us) \
                     VALUES (?, CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED)) \
                     ON DUPLICATE KEY UPDATE beat_us = VALUES(beat_us)"
                ),
                (pipeline.as_str(),),
            )
            .await
            .map_err(|e| e.to_string())
        }
        .await;
        if let Err(e) = result {
            conn = None;
            if warned.is_none_or(|w| w.elapsed() > Duration::from_secs(60)) {
                warn!(pipeline, error = %e, "cannot write the heartbeat on the source: end-to-end lag cannot be measured; grant CREATE, INSERT, UPDATE on `otter`.* (and create database `otter`) to capture's user");
                warned = Some(std::time::Instant::now());
            }
        }
        tokio::time::sleep(Duration::from_millis(every_ms)).await;
    }
}

/// Every 5 s: the source's head, clock and binlog retention, against the stored
/// position, into the `behind` and `source_binlog` gauges. Failures only leave the gauges as they were (the session reports
/// source trouble itself).
async fn probe(source: Source, metrics: Metrics, pipeline: String) {
    let p = pipeline.as_str();
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let Ok(crate::source::Probe {
            files,
            now,
            expire_seconds,
        }) = source.probe().await
        else {
            continue;
        };
        let Some((head_file, head_size)) = files.last() else {
            continue;
        };
        metrics
            .binlog_expire
            .with_label_values(&[p])
            .set(i64::try_from(expire_seconds).unwrap_or(i64::MAX));
        if let Some((oldest, _)) = files.first() {
            metrics
                .binlog_oldest
                .with_label_values(&[p])
                .set(i64::from(SourcePos::new(oldest.clone(), 0).file_seq()));
        }
        let head = SourcePos::new(head_file.clone(), *head_size);
        let g = &metrics.source_head;
        g.with_label_values(&[p, "file"])
            .set(i64::from(head.file_seq()));
        g.with_label_values(&[p, "offset"]).set(*head_size as i64);
        let seq = metrics.position.with_label_values(&[p, "file"]).get();
        let offset = metrics.position.with_label_values(&[p, "offset"]).get();
        if seq == 0 {
            continue;
        }
        let behind: u64 = files
            .iter()
            .map(|(name, size)| {
                let s = i64::from(SourcePos::new(name.clone(), 0).file_seq());
                match s.cmp(&seq) {
                    std::cmp::Ordering::Less => 0,
                    std::cmp::Ordering::Equal => size.saturating_sub(offset.max(0) as u64),
                    std::cmp::Ordering::Greater => *size,
                }
            })
            .sum();
        metrics
            .behind_bytes
            .with_label_values(&[p])
            .set(behind as i64);
        let committed = metrics.commit_timestamp.with_label_values(&[p]).get();
        let seconds = if behind == 0 || committed == 0 {
            0.0
        } else {
            (now - committed as f64).max(0.0)
        };
        metrics.behind_seconds.with_label_values(&[p]).set(seconds);
    }
}

async fn sessions(
    cfg: &Config,
    source: &Source,
    metrics: &Metrics,
    shutdown: &mut watch::Receiver<bool>,
    stop_at: Option<SourcePos>,
    authority: &Authority,
) -> Result<Summary, CaptureError> {
    let mut backoff = cfg.capture.retry_ms;
    loop {
        let started = std::time::Instant::now();
        let result = session(cfg, source, metrics, shutdown, stop_at.as_ref(), authority).await;
        // A session that ran a while was a recovery, not a failure loop: the next
        // failure waits the base delay again (chaos round 15 of seed 11 waited 8 s after
        // its fifth broker restart).
        if started.elapsed() > BACKOFF_RESET_AFTER {
            backoff = cfg.capture.retry_ms;
        }
        match result {
            Ok(summary) => return Ok(summary),
            Err(e) => {
                metrics
                    .errors
                    .with_label_values(&[cfg.pipeline.as_str(), e.code()])
                    .inc();
                if let CaptureError::Decode(d) = &e {
                    metrics
                        .decode_errors
                        .with_label_values(&[cfg.pipeline.as_str(), d.code()])
                        .inc();
                }
                if let CaptureError::Fenced { .. } = e {
                    return Err(e);
                }
                authority.report(&e);
                metrics
                    .health
                    .not_ready(&format!("capture failed ({}), retrying", e.code()));
                if e.class() != ErrorClass::Transient {
                    error!(pipeline = %cfg.pipeline, code = e.code(), error = %chain(&e), "capture stopped; fix the cause and restart, it resumes from the stored position");
                    return Err(e);
                }
                warn!(pipeline = %cfg.pipeline, code = e.code(), error = %chain(&e), retry_ms = backoff, "capture session failed, retrying from the stored position");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(backoff)) => {}
                    _ = shutdown.changed() => return Ok(Summary::default()),
                }
                backoff = (backoff * 2).min(30_000);
                metrics
                    .reconnects
                    .with_label_values(&[cfg.pipeline.as_str()])
                    .inc();
            }
        }
    }
}

/// A session that lasted this long resets the retry backoff.
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(30);

struct Start {
    pos: SourcePos,
    gtids: GtidSet,
    versions: crate::binlog::SchemaVersions,
    /// MariaDB GTID start (no stored position yet, `gtid:` configured).
    by_gtid: bool,
    /// Nothing was stored: the start comes from `source.start`.
    fresh: bool,
}

async fn start_point(
    cfg: &Config,
    source: &Source,
    store: &mut PositionStore,
) -> Result<Start, CaptureError> {
    if let Some(p) = store.load().await? {
        let gtids = GtidSet::parse(&p.gtids).map_err(|e| {
            crate::config::ConfigError::Invalid(vec![format!(
                "stored position {}: gtids `{}`: {e}",
                store.path(),
                p.gtids
            )])
        })?;
        info!(pipeline = %cfg.pipeline, file = %p.file, offset = p.offset, "resuming from the stored position");
        let versions = p
            .schema_versions
            .iter()
            .map(|v| {
                (
                    otter_core::TableId::new(v.db.clone(), v.table.clone()),
                    v.version,
                )
            })
            .collect();
        // `otterctl position set --gtid` stores a GTID set without a file: start
        // after that set (MariaDB's slave_connect_state).
        let by_gtid = p.file.is_empty();
        return Ok(Start {
            pos: SourcePos::new(p.file, p.offset),
            gtids,
            versions: Arc::new(versions),
            by_gtid,
            fresh: false,
        });
    }
    let start = StartAt::parse(&cfg.source.start)
        .map_err(|e| crate::config::ConfigError::Invalid(vec![format!("source.start: {e}")]))?;
    Ok(match start {
        StartAt::Now => {
            let (pos, gtids) = source.head().await?;
            info!(pipeline = %cfg.pipeline, position = %pos, "no stored position: starting at the source's current end");
            Start {
                pos,
                gtids,
                versions: Default::default(),
                by_gtid: false,
                fresh: true,
            }
        }
        StartAt::Position(pos) => {
            info!(pipeline = %cfg.pipeline, position = %pos, "no stored position: starting at the configured position");
            Start {
                pos,
                gtids: GtidSet::Empty,
                versions: Default::default(),
                by_gtid: false,
                fresh: true,
            }
        }
        StartAt::Gtid(g) => {
            info!(pipeline = %cfg.pipeline, gtid = %g, "no stored position: starting after the configured GTID position");
            Start {
                pos: SourcePos::new("", 4),
                gtids: g,
                versions: Default::default(),
                by_gtid: true,
                fresh: true,
            }
        }
    })
}

fn decoder_options(
    cfg: &Config,
    info: &ServerInfo,
    catalog: std::collections::HashMap<otter_core::TableId, crate::binlog::rows::TableCatalog>,
) -> Result<Options, CaptureError> {
    let filter = TableFilter::new(&cfg.tables)
        .map_err(|e| crate::config::ConfigError::Invalid(vec![format!("tables: {e}")]))?;
    let filter = Arc::new(filter);
    Ok(Options {
        statements: StatementPolicy::Refuse,
        collations: crate::binlog::charset::Collations::from_server(info.collations.clone()),
        filter: Some(Arc::new(move |t: &otter_core::TableId| filter.allows(t))),
        catalog,
        require_names: true,
        db_charsets: info.db_charsets.clone(),
        server_charset: info.server_charset.clone(),
        ..Options::default()
    })
}

async fn session(
    cfg: &Config,
    source: &Source,
    metrics: &Metrics,
    shutdown: &mut watch::Receiver<bool>,
    stop_at: Option<&SourcePos>,
    authority: &Authority,
) -> Result<Summary, CaptureError> {
    let info = source.check().await?;
    let zk = match authority {
        Authority::Leader { zk, .. } => zk.clone(),
        Authority::Standalone => {
            otter_coord::connect(
                &cfg.zookeeper.connect,
                &cfg.zookeeper.root,
                Duration::from_millis(cfg.zookeeper.session_timeout_ms),
            )
            .await?
        }
    };
    let mut store = PositionStore::new(zk.clone(), &cfg.pipeline);
    let history = otter_coord::SchemaStore::new(zk, &cfg.pipeline);
    let start = start_point(cfg, source, &mut store).await?;
    let catalog = source.catalog(None).await?;
    let opts = decoder_options(cfg, &info, catalog.clone())?;
    // The schema history as of the start: stored with the position, or, on a fresh
    // start, the tables' definitions now (the start is the source's present).
    let shapes: otter_core::ddl::Shapes = if start.fresh {
        let filter = TableFilter::new(&cfg.tables)
            .map_err(|e| crate::config::ConfigError::Invalid(vec![format!("tables: {e}")]))?;
        let found = source.shapes(&|t| filter.allows(t), &catalog).await?;
        authority.check(|| start.pos.to_string())?;
        history.clear().await?;
        for (t, shape) in &found {
            history.save(t, 1, shape).await?;
        }
        found.into_iter().map(|(t, s)| (t, Arc::new(s))).collect()
    } else {
        let versions = start.versions.clone();
        history
            .load(|t| versions.get(t).copied().unwrap_or(1))
            .await?
            .into_iter()
            .map(|(t, s)| (t, Arc::new(s)))
            .collect()
    };
    if !info.full_metadata {
        info!(pipeline = %cfg.pipeline, tables = shapes.len(), "binlog_row_metadata is not FULL: column names and keys come from the schema history");
    }
    if start.fresh {
        // Store the start at once: a successor (a standby, a restart) must resume
        // here, not at its own `now`, or what was written in between would be lost.
        authority.check(|| start.pos.to_string())?;
        store
            .save(&CapturePosition {
                file: if start.by_gtid {
                    String::new()
                } else {
                    start.pos.file.clone()
                },
                offset: start.pos.offset,
                gtids: start.gtids.to_string(),
                source_server_id: info.server_id,
                updated_ms: now_ms(),
                source_ts: 0,
                schema_versions: Vec::new(),
            })
            .await?;
    }
    let shapes = Arc::new(shapes);
    let mut decoder = Decoder::new(start.pos.file.clone(), opts);
    decoder.set_gtids(start.gtids.clone());
    decoder.set_versions(start.versions.clone());
    decoder.set_shapes(shapes.clone());
    decoder.expect_checksums(info.crc32);
    let gtid_start = start.by_gtid.then_some(&start.gtids);
    let heartbeat = Duration::from_secs(u64::from(cfg.source.heartbeat_secs.max(1)));
    let mut stream = source
        .stream(
            cfg.source.server_id,
            &start.pos,
            gtid_start,
            heartbeat,
            info.mariadb,
        )
        .await?;
    let mut publisher = Publisher::new(&cfg.kafka, cfg.capture.max_in_flight)?;
    if let Authority::Leader { epoch, .. } = authority {
        publisher.set_epoch(*epoch);
    }
    let pipeline = cfg.pipeline.as_str();
    publisher.observe_latency(metrics.publish_seconds.with_label_values(&[pipeline]));
    // Reads are tallied here and handed to the counters at each tick.
    let mut read = Read {
        counters: otter_core::Op::ALL.map(|op| {
            metrics
                .events_read
                .with_label_values(&[pipeline, op.name()])
        }),
        bytes_counter: metrics.binlog_bytes.with_label_values(&[pipeline]),
        ops: [0; 3],
        bytes: 0,
    };
    metrics.health.ready("capturing");
    metrics
        .leader
        .with_label_values(&[cfg.pipeline.as_str()])
        .set(1);
    if start.by_gtid {
        info!(pipeline = %cfg.pipeline, source = %info.version, gtid = %start.gtids, "capture streaming");
    } else {
        info!(pipeline = %cfg.pipeline, source = %info.version, position = %start.pos, "capture streaming");
    }

    let mut items = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(
        cfg.capture.position_interval_ms.max(10),
    ));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut saved: Option<SourcePos> = None;
    let writer = PositionWriter::start(
        store,
        history,
        &start.versions,
        &shapes,
        metrics.clone(),
        pipeline.to_owned(),
    );
    let mut counted = Counted::default();
    let delivered = publisher.delivery_signal();
    let result: Result<(), CaptureError> = async {
        loop {
            tokio::select! {
                biased;
                _ = shutdown.changed() => { tracing::debug!(pipeline, "shutdown requested"); return Ok(()) }
                _ = tick.tick() => {
                    authority.check(|| decoder.file().to_owned())?;
                    publisher.poll_acked()?;
                    save_position(&writer, &publisher, &mut saved, &info)?;
                    counted.report(&decoder, &publisher, metrics, pipeline);
                    read.flush();
                }
                // Acknowledgements are taken in as they arrive (not only at the tick),
                // so `otter_capture_publish_seconds` measures the broker, not the tick.
                _ = delivered.arrived() => publisher.poll_acked()?,
                ev = stream.next() => {
                    let ev = ev?;
                    read.bytes += ev.bytes.len() as u64;
                    match decoder.feed(&ev.bytes, ev.offset, &mut items) {
                        // A table the history has no shape for (first seen, or after a
                        // DDL that did not tell it): its current definition, checked
                        // against the table map's column count.
                        Err(crate::binlog::DecodeError::NoShape { table, at }) if ev.type_code == ty::TABLE_MAP => {
                            let Some(shape) = source.shape(&table).await? else {
                                return Err(crate::binlog::DecodeError::NoShape { table, at }.into());
                            };
                            tracing::warn!(pipeline, table = %table, position = %at, "schema history: no shape for the table; using its current definition on the source (right unless its columns changed since this point of the binlog)");
                            decoder.set_shape(table, shape);
                            decoder.feed(&ev.bytes, ev.offset, &mut items)?;
                        }
                        r => r?,
                    }
                    if ev.type_code == ty::TRANSACTION_PAYLOAD {
                        stream.expect_inner(decoder.take_payload_events());
                    }
                    let now = now_ms();
                    let mut reached = false;
                    for item in items.drain(..) {
                        match &item {
                            // The catalog may have changed: generated and JSON columns
                            // are re-read before the table's next transaction decodes.
                            Item::Schema(s) => {
                                for (t, entry) in source.catalog(Some(&s.table)).await? {
                                    decoder.set_catalog(t, entry);
                                }
                            }
                            Item::Commit(cp) => reached |= stop_at.is_some_and(|s| cp.next.partial_cmp(s).is_some_and(|o| o.is_ge())),
                            Item::Change(c) => {
                                if !otter_core::heartbeat::is_heartbeat(&c.schema.table) {
                                    read.ops[c.op.index()] += 1;
                                }
                            }
                        }
                        authority.check(|| format!("{}:{}", decoder.file(), ev.offset))?;
                        publisher.publish(&item, now).await?;
                    }
                    if reached {
                        tracing::debug!(pipeline, "stop position reached");
                        return Ok(());
                    }
                }
            }
        }
    }
    .await;
    // Whatever ended the session, keep what was acknowledged: flush (bounded by the
    // producer's delivery timeout) and store the last acknowledged position. A fenced
    // leader sends nothing more and leaves the position to its successor.
    if let Err(e @ CaptureError::Fenced { .. }) = result {
        publisher.abandon();
        writer.task.abort();
        read.flush();
        stream.close().await;
        return Err(e);
    }
    let flushed = publisher.flush().await;
    let stored = match authority.check(|| decoder.file().to_owned()) {
        Ok(()) => match save_position(&writer, &publisher, &mut saved, &info) {
            Ok(()) => writer.finish().await,
            Err(e) => Err(e),
        },
        Err(e) => {
            writer.task.abort();
            Err(e)
        }
    };
    counted.report(&decoder, &publisher, metrics, pipeline);
    read.flush();
    stream.close().await;
    result?;
    flushed?;
    stored?;
    info!(pipeline, position = ?saved.as_ref().map(ToString::to_string), "capture stopped cleanly");
    let s = &publisher.stats;
    Ok(Summary {
        changes: s.changes,
        records: s.records,
        bytes: s.bytes,
        transactions: s.transactions,
        position: saved.map(|p| p.to_string()),
    })
}

/// Hands the acknowledged position to the writer, when it moved.
fn save_position(
    writer: &PositionWriter,
    publisher: &Publisher,
    saved: &mut Option<SourcePos>,
    info: &ServerInfo,
) -> Result<(), CaptureError> {
    writer.check()?;
    let Some(acked) = publisher.acknowledged() else {
        return Ok(());
    };
    if saved.as_ref() == Some(&acked.next) {
        return Ok(());
    }
    writer.send(
        acked.shapes.clone(),
        acked.versions.clone(),
        CapturePosition {
            file: acked.next.file.clone(),
            offset: acked.next.offset,
            gtids: acked.gtids.to_string(),
            source_server_id: info.server_id,
            updated_ms: now_ms(),
            source_ts: acked.timestamp,
            schema_versions: acked
                .versions
                .iter()
                .map(|(t, &version)| TableVersion {
                    db: t.db.clone(),
                    table: t.table.clone(),
                    version,
                })
                .collect(),
        },
    );
    *saved = Some(acked.next.clone());
    Ok(())
}

/// Writes positions to ZooKeeper beside the capture loop, so a write waiting on an
/// unreachable ZooKeeper does not stop publishing while the lease lasts (the lease,
/// checked before every publish, is what bounds that). At most one write is in flight,
/// the latest position wins, writes stay in order (compare-and-set on the version the
/// previous write returned); the first error is kept and ends the session at the next
/// tick.
struct PositionWriter {
    tx: watch::Sender<Option<Pending>>,
    failed: Arc<std::sync::Mutex<Option<otter_coord::CoordError>>>,
    task: tokio::task::JoinHandle<()>,
}

impl PositionWriter {
    fn start(
        mut store: PositionStore,
        history: otter_coord::SchemaStore,
        versions: &crate::binlog::SchemaVersions,
        shapes: &Arc<otter_core::ddl::Shapes>,
        metrics: Metrics,
        pipeline: String,
    ) -> PositionWriter {
        let (tx, mut rx) = watch::channel::<Option<Pending>>(None);
        // What the history holds already: (version, shape) per table.
        let mut written: Written = shapes
            .iter()
            .map(|(t, s)| {
                let v = versions.get(t).copied().unwrap_or(1);
                (t.clone(), (v, s.clone()))
            })
            .collect();
        let failed = Arc::new(std::sync::Mutex::new(None));
        let slot = failed.clone();
        let task = tokio::spawn(async move {
            let p = pipeline.as_str();
            loop {
                // Ends once the sender is gone and the last position is written.
                let closed = rx.changed().await.is_err();
                let Some(pending) = rx.borrow_and_update().clone() else {
                    if closed {
                        return;
                    }
                    continue;
                };
                // A lost connection leaves the write's outcome unknown: re-read the
                // node (it must hold what this store wrote or was writing) and retry,
                // while the loop goes on publishing within its lease. Past 15 s the
                // error ends the session (a standalone capture has no lease to stop it).
                let mut pending = pending;
                let mut result = persist(&mut store, &history, &mut written, &pending).await;
                let since = std::time::Instant::now();
                while let Err(e) = &result {
                    if e.class() != otter_core::ErrorClass::Transient
                        || since.elapsed() > Duration::from_secs(15)
                    {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    result = match store.resync().await {
                        Ok(()) => {
                            if let Some(newer) = rx.borrow_and_update().clone() {
                                pending = newer;
                            }
                            persist(&mut store, &history, &mut written, &pending).await
                        }
                        Err(e) => Err(e),
                    };
                }
                if let Err(e) = result {
                    if let Ok(mut f) = slot.lock() {
                        *f = Some(e);
                    }
                    return;
                }
                let pos = &pending.pos;
                let seq = SourcePos::new(pos.file.clone(), pos.offset).file_seq();
                metrics
                    .position
                    .with_label_values(&[p, "file"])
                    .set(i64::from(seq));
                metrics
                    .position
                    .with_label_values(&[p, "offset"])
                    .set(pos.offset as i64);
                if pos.source_ts > 0 {
                    metrics
                        .commit_timestamp
                        .with_label_values(&[p])
                        .set(i64::from(pos.source_ts));
                }
                if closed {
                    return;
                }
            }
        });
        PositionWriter { tx, failed, task }
    }

    fn check(&self) -> Result<(), CaptureError> {
        match self.failed.lock().ok().and_then(|mut f| f.take()) {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    fn send(
        &self,
        shapes: Arc<otter_core::ddl::Shapes>,
        versions: crate::binlog::SchemaVersions,
        pos: CapturePosition,
    ) {
        self.tx.send_replace(Some(Pending {
            pos,
            shapes,
            versions,
        }));
    }

    /// Waits until the last position handed over is written (or failed).
    async fn finish(self) -> Result<(), CaptureError> {
        let PositionWriter { tx, failed, task } = self;
        drop(tx);
        let _ = task.await;
        let e = failed.lock().ok().and_then(|mut f| f.take());
        match e {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }
}

/// A position to store, with the schema history as of it.
#[derive(Clone)]
struct Pending {
    pos: CapturePosition,
    shapes: Arc<otter_core::ddl::Shapes>,
    versions: crate::binlog::SchemaVersions,
}

type Written =
    std::collections::HashMap<otter_core::TableId, (u32, Arc<otter_core::shape::TableShape>)>;

/// Writes the shapes the history lacks, then the position that refers to them.
async fn persist(
    store: &mut PositionStore,
    history: &otter_coord::SchemaStore,
    written: &mut Written,
    p: &Pending,
) -> Result<(), otter_coord::CoordError> {
    for (t, shape) in p.shapes.iter() {
        let v = p.versions.get(t).copied().unwrap_or(1);
        if written
            .get(t)
            .is_some_and(|(wv, ws)| *wv == v && Arc::ptr_eq(ws, shape))
        {
            continue;
        }
        history.save(t, v, shape).await?;
        written.insert(t.clone(), (v, shape.clone()));
    }
    store.save(&p.pos).await
}

/// What the session read since the last tick, and the counters it goes to.
struct Read {
    counters: [prometheus::IntCounter; 3],
    bytes_counter: prometheus::IntCounter,
    ops: [u64; 3],
    bytes: u64,
}

impl Read {
    fn flush(&mut self) {
        for (c, n) in self.counters.iter().zip(&mut self.ops) {
            c.inc_by(std::mem::take(n));
        }
        self.bytes_counter.inc_by(std::mem::take(&mut self.bytes));
    }
}

/// Turns the decoder's and publisher's running totals into counter increments.
#[derive(Default)]
struct Counted {
    ops: [u64; 3],
    beats: u64,
    records: u64,
    bytes: u64,
    transactions: u64,
    filtered: u64,
    statements: u64,
    ignorable: u64,
    heartbeats: u64,
}

impl Counted {
    fn report(&mut self, d: &Decoder, publisher: &Publisher, m: &Metrics, pipeline: &str) {
        let p = &publisher.acked_stats;
        fn bump(last: &mut u64, now: u64, c: prometheus::IntCounter) {
            if now > *last {
                c.inc_by(now - *last);
                *last = now;
            }
        }
        for op in otter_core::Op::ALL {
            bump(
                &mut self.ops[op.index()],
                p.ops[op.index()],
                m.events.with_label_values(&[pipeline, op.name()]),
            );
        }
        bump(
            &mut self.beats,
            p.beats,
            m.heartbeats.with_label_values(&[pipeline]),
        );
        bump(
            &mut self.records,
            p.records,
            m.records.with_label_values(&[pipeline]),
        );
        bump(
            &mut self.bytes,
            p.bytes,
            m.bytes.with_label_values(&[pipeline]),
        );
        bump(
            &mut self.transactions,
            p.transactions,
            m.transactions.with_label_values(&[pipeline]),
        );
        let c = &d.counters;
        bump(
            &mut self.filtered,
            c.filtered_rows,
            m.skipped.with_label_values(&[pipeline, "filtered"]),
        );
        bump(
            &mut self.statements,
            c.statement_events,
            m.skipped.with_label_values(&[pipeline, "statement"]),
        );
        bump(
            &mut self.ignorable,
            c.ignorable_events,
            m.skipped.with_label_values(&[pipeline, "ignorable"]),
        );
        bump(
            &mut self.heartbeats,
            c.heartbeats,
            m.skipped.with_label_values(&[pipeline, "heartbeat"]),
        );
    }
}
