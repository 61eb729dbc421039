//! One assigned partition: batches its records, drops what the target already has,
//! merges, writes, and commits each batch with the partition's position.
//!
//! Invariants:
//! - Records are handled in offset order; a batch ends only after a whole record (all
//!   chunks of a chunked one), so a stored `next_offset` is always a record boundary.
//! - A record below the stored `next_offset`, or whose source order is not after the
//!   stored order (re-published by capture after a crash), is skipped as a duplicate
//!   and counted, never applied.
//! - A transient failure (target unreachable, deadlock, fenced by another instance)
//!   retries the same records from the stored position; nothing is lost or repeated.
//! - A change the target refuses for good, or a record that cannot be decoded, is
//!   isolated (the records before it are committed one by one), then either stops the
//!   partition right before it or is recorded in `apply_skipped` and passed, per
//!   `apply.on_error`. Either way it is logged with topic, partition, offset, table and
//!   source position.
//!
//! The worker ends when its partition is revoked (its channel closes), on shutdown, or
//! when the partition stops on an error.

use std::io::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use otter_core::chunk::Reassembler;
use otter_core::codec::{self, Record};
use otter_core::event::OrderKey;
use otter_core::{ChangeEvent, ErrorClass, SourcePos, TableId};
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use crate::config::{ApplyTuning, OnError};
use crate::consume::Inbox;
use crate::error::{chain, ApplyError, PartitionError, RecordError, StreamPlace};
use crate::mapping::Mapping;
use crate::merge::merge;
use crate::metrics::Metrics;
use crate::sql::{statements, Sizing, Stmt, StmtKind};
use crate::target::{Commit, Skip, Stored, Target};

mod ddl;

/// One Kafka record as the consumer hands it over.
#[derive(Debug)]
pub struct Rec {
    pub offset: i64,
    pub value: Option<Vec<u8>>,
    /// The `otter-chunk` header, when present.
    pub chunk: Option<Vec<u8>>,
}

/// A position committed to the target, reported back so the consumer can commit it to
/// the group as well (informational: the target's copy is the one that counts).
#[derive(Debug, Clone)]
pub struct Done {
    pub topic: Arc<str>,
    pub partition: i32,
    pub next_offset: i64,
}

/// What every worker of the process shares.
pub struct Shared {
    pub pipeline: String,
    pub target: Target,
    pub mapping: Mapping,
    pub tuning: ApplyTuning,
    pub dry_run: bool,
    pub metrics: Metrics,
    pub shutdown: watch::Receiver<bool>,
    pub done: std::sync::mpsc::Sender<Done>,
    /// The pipeline's last-error record (a no-op without a control plane).
    pub errors: otter_coord::control::ErrorSink,
    /// Partitions this process holds, `topic[partition]`, for its registration.
    pub held: Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>,
    /// The source time (µs) of this pipeline's latest heartbeat committed here.
    pub beats: Arc<std::sync::atomic::AtomicI64>,
    /// Asks the consumer thread to leave and rejoin its group (see `run::Hooks`).
    pub rejoin: Arc<std::sync::atomic::AtomicBool>,
    /// The pipeline's partitions as the broker lists them (see `run::Hooks`).
    pub listed: Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>,
    /// Record bytes taken from the broker by every worker and not yet applied: a
    /// worker ends its batch early once this reaches `apply.max_inflight_bytes`.
    pub inflight: std::sync::atomic::AtomicUsize,
}

/// Why a worker ended.
#[derive(Debug)]
pub enum Outcome {
    /// Revoked or shut down; everything committed stays committed.
    Released,
    /// Stopped on an error; the partition waits at the record it names.
    Stopped(Box<PartitionError>),
}

/// One whole record (chunks joined), decoded or not.
struct Item {
    first: i64,
    last: i64,
    /// The publishing capture leader's epoch, when it had one.
    epoch: Option<i64>,
    rec: Result<Record, RecordError>,
}

impl Item {
    fn table(&self) -> Option<TableId> {
        match &self.rec {
            Ok(Record::Change { event, .. }) => Some(event.schema.table.clone()),
            Ok(Record::Schema(s)) => Some(s.table.clone()),
            Err(_) => None,
        }
    }

    fn at(&self) -> Option<SourcePos> {
        match &self.rec {
            Ok(Record::Change { event, .. }) => Some(event.source.at.clone()),
            Ok(Record::Schema(s)) => Some(s.source.at.clone()),
            Err(_) => None,
        }
    }
}

/// What a batch became after dropping duplicates.
#[derive(Default)]
struct Plan<'a> {
    changes: Vec<&'a ChangeEvent>,
    ddl: u64,
    duplicates: u64,
    /// Changes of tables a map rule leaves out (`skip = true`).
    filtered: u64,
    /// Records of a deposed capture leader (epoch below one already seen).
    fenced: u64,
    /// Highest epoch in the batch (or before it).
    epoch: i64,
    /// Source time (µs) of this pipeline's latest heartbeat in the batch.
    beat: Option<i64>,
    last_order: Option<OrderKey>,
    last_at: Option<SourcePos>,
}

pub struct Worker {
    shared: Arc<Shared>,
    topic: Arc<str>,
    partition: i32,
    stored: Option<Stored>,
    reasm: Reassembler,
    /// This partition's decoder (its schema cache serves one table).
    decoder: codec::Decoder,
    chunk_start: i64,
    abandoned_seen: u64,
    warned_duplicates: bool,
    /// Highest capture epoch seen on this partition since assignment.
    epoch: i64,
    /// This worker's share of [`Shared::inflight`].
    charged: usize,
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.discharge();
    }
}

enum Attempt {
    Done,
    Released,
    Failed(ApplyError),
}

impl Worker {
    pub fn new(
        shared: Arc<Shared>,
        topic: Arc<str>,
        partition: i32,
        stored: Option<Stored>,
    ) -> Worker {
        Worker {
            shared,
            topic,
            partition,
            stored,
            reasm: Reassembler::default(),
            decoder: codec::Decoder::default(),
            chunk_start: 0,
            abandoned_seen: 0,
            warned_duplicates: false,
            epoch: 0,
            charged: 0,
        }
    }

    /// Returns this worker's records to the shared in-flight budget.
    fn discharge(&mut self) {
        let n = std::mem::take(&mut self.charged);
        self.shared.inflight.fetch_sub(n, Ordering::Relaxed);
    }

    /// Whether the process's in-flight budget is spent: a batch that has records ends
    /// here. A worker with none still takes one record, so every partition progresses
    /// (one waiting on others at a schema change cannot starve them) and the budget is
    /// overshot by at most one record per partition.
    fn budget_spent(&self) -> bool {
        self.shared.inflight.load(Ordering::Relaxed) >= self.shared.tuning.max_inflight_bytes
    }

    pub async fn run(mut self, mut rx: Inbox) -> Outcome {
        info!(next_offset = ?self.stored.as_ref().map(|s| s.next_offset), "partition assigned");
        loop {
            let Some(items) = self.next_batch(&mut rx).await else {
                debug!("partition released");
                return Outcome::Released;
            };
            let processed = self.process(items, &rx).await;
            self.discharge();
            match processed {
                Ok(true) => {}
                Ok(false) => return Outcome::Released,
                Err(e) => {
                    self.shared
                        .metrics
                        .errors
                        .with_label_values(&[&self.shared.pipeline, "permanent", e.code()])
                        .inc();
                    self.shared
                        .metrics
                        .partitions
                        .with_label_values(&[&self.shared.pipeline, "stopped"])
                        .inc();
                    if e.is_ddl() {
                        error!(
                            error = %chain(&e),
                            "partition stopped at a schema change: fix the target and restart apply to retry it, or apply it by hand and add its source position to apply.ddl_skip"
                        );
                    } else {
                        error!(
                            error = %chain(&e),
                            "partition stopped at its last committed position; fix the cause (or set apply.on_error = \"skip\") and restart apply"
                        );
                    }
                    self.shared.errors.report(
                        e.code(),
                        otter_core::ErrorClass::Permanent,
                        format!("{}[{}] stopped: {}", self.topic, self.partition, chain(&e)),
                    );
                    return Outcome::Stopped(Box::new(e));
                }
            }
        }
    }

    fn released(&self, rx: &Inbox) -> bool {
        rx.is_released() || *self.shared.shutdown.borrow()
    }

    /// The next batch of whole records; `None` once the partition is released (or its
    /// records are gone from the broker, which is logged here).
    async fn next_batch(&mut self, rx: &mut Inbox) -> Option<Vec<Item>> {
        let (max_records, max_bytes) = (
            self.shared.tuning.max_batch_records,
            self.shared.tuning.max_batch_bytes,
        );
        let mut items = Vec::new();
        let mut bytes = 0usize;
        loop {
            if self.released(rx) {
                return None;
            }
            let pending = self.reasm.pending(self.partition);
            let over_budget = !items.is_empty() && self.budget_spent();
            let full = items.len() >= max_records || bytes >= max_bytes || over_budget;
            if full && !pending {
                if over_budget {
                    debug!(
                        records = items.len(),
                        bytes, "batch ended on the in-flight budget"
                    );
                }
                break;
            }
            match rx.try_next() {
                Ok(Some(r)) => self.feed(r, &mut items, &mut bytes),
                // Nothing more for now: go with what there is (unless a chunked record
                // is half read), else wait for records.
                Ok(None) if !items.is_empty() && !pending => break,
                Ok(None) => rx.wait().await,
                Err(e) => {
                    self.shared
                        .metrics
                        .errors
                        .with_label_values(&[&self.shared.pipeline, "permanent", "offsets_missing"])
                        .inc();
                    error!(error = %e, "partition stopped: its records are missing from the broker (retention deleted them before they were applied): raise the topics' retention and re-sync the affected tables from the source (`otter-apply verify` lists the differing rows)");
                    self.shared.errors.report(
                        "offsets_missing",
                        otter_core::ErrorClass::Permanent,
                        format!("{}[{}] stopped: {e}", self.topic, self.partition),
                    );
                    return None;
                }
            }
        }
        let abandoned = self.reasm.abandoned();
        if abandoned > self.abandoned_seen {
            self.shared
                .metrics
                .skipped
                .with_label_values(&[&self.shared.pipeline, "chunks_restarted"])
                .inc_by(abandoned - self.abandoned_seen);
            self.abandoned_seen = abandoned;
        }
        Some(items)
    }

    fn feed(&mut self, r: Rec, items: &mut Vec<Item>, bytes: &mut usize) {
        let Some(value) = r.value else {
            items.push(Item {
                first: r.offset,
                last: r.offset,
                epoch: None,
                rec: Err(RecordError::Empty),
            });
            return;
        };
        *bytes += value.len();
        self.charged += value.len();
        self.shared
            .inflight
            .fetch_add(value.len(), Ordering::Relaxed);
        if r.chunk.is_none() && !self.reasm.pending(self.partition) {
            // The common case: a whole record, decoded in place (no reassembly copy).
            let (rec, epoch) = decode(&mut self.decoder, &value);
            items.push(Item {
                first: r.offset,
                last: r.offset,
                epoch,
                rec,
            });
            return;
        }
        if r.chunk.as_deref().is_some_and(|h| h.starts_with(b"0/")) {
            self.chunk_start = r.offset;
        }
        let first = if r.chunk.is_some() {
            self.chunk_start
        } else {
            r.offset
        };
        match self
            .reasm
            .push(self.partition, r.offset, r.chunk.as_deref(), &value)
        {
            Ok(Some(whole)) => {
                let (rec, epoch) = decode(&mut self.decoder, &whole);
                items.push(Item {
                    first,
                    last: r.offset,
                    epoch,
                    rec,
                });
            }
            Ok(None) => {}
            Err(e) => items.push(Item {
                first: r.offset,
                last: r.offset,
                epoch: None,
                rec: Err(e.into()),
            }),
        }
    }

    /// Applies `items`; `Ok(false)` when the partition was released meanwhile.
    async fn process(&mut self, mut items: Vec<Item>, rx: &Inbox) -> Result<bool, PartitionError> {
        let mut at = 0;
        while at < items.len() {
            if matches!(items[at].rec, Ok(Record::Schema(_))) {
                if !self.schema_change(&items[at], rx).await? {
                    return Ok(false);
                }
                at += 1;
                continue;
            }
            let good = items[at..]
                .iter()
                .take_while(|i| matches!(i.rec, Ok(Record::Change { .. })))
                .count();
            if good > 0 {
                if !self.apply_isolating(&items[at..at + good], rx).await? {
                    return Ok(false);
                }
                at += good;
                continue;
            }
            // A record that cannot be decoded.
            let place = self.place(&items[at], &items[at]);
            let source = match std::mem::replace(&mut items[at].rec, Err(RecordError::Empty)) {
                Err(e) => e,
                Ok(_) => RecordError::Empty, // not reached: `good` was 0
            };
            let err = PartitionError::Decode { place, source };
            if !self.on_refused(&items[at], err, rx).await? {
                return Ok(false);
            }
            at += 1;
        }
        Ok(true)
    }

    /// Commits `items`; when the target refuses them for good, commits them one by one
    /// to find the refused change and handles it per policy.
    async fn apply_isolating(
        &mut self,
        items: &[Item],
        rx: &Inbox,
    ) -> Result<bool, PartitionError> {
        match self.apply(items, &[], rx).await {
            Attempt::Done => return Ok(true),
            Attempt::Released => return Ok(false),
            Attempt::Failed(e) if items.len() == 1 => {
                let err = PartitionError::Apply {
                    place: self.place(&items[0], &items[0]),
                    source: e,
                };
                return self.on_refused(&items[0], err, rx).await;
            }
            Attempt::Failed(e) => {
                let (first, last) = (&items[0], &items[items.len() - 1]);
                warn!(error = %chain(&e), place = %self.place(first, last), "batch refused, applying its records one by one to find the change");
            }
        }
        for i in 0..items.len() {
            match self.apply(&items[i..=i], &[], rx).await {
                Attempt::Done => {}
                Attempt::Released => return Ok(false),
                Attempt::Failed(e) => {
                    let err = PartitionError::Apply {
                        place: self.place(&items[i], &items[i]),
                        source: e,
                    };
                    if !self.on_refused(&items[i], err, rx).await? {
                        return Ok(false);
                    }
                }
            }
        }
        Ok(true)
    }

    /// A single refused record: stop, or record the skip with the position past it.
    async fn on_refused(
        &mut self,
        item: &Item,
        err: PartitionError,
        rx: &Inbox,
    ) -> Result<bool, PartitionError> {
        if self.shared.tuning.on_error == OnError::Stop {
            return Err(err);
        }
        let skip = Skip {
            offset: item.first,
            table: item.table(),
            at: item.at(),
            code: err.code(),
            error: chain(&err),
        };
        error!(error = %chain(&err), "change skipped by policy (apply.on_error = \"skip\") and recorded in apply_skipped; repair the target row by hand");
        self.shared.errors.report(
            err.code(),
            otter_core::ErrorClass::Permanent,
            format!("skipped by policy (see apply_skipped): {}", chain(&err)),
        );
        let m = &self.shared.metrics;
        m.errors
            .with_label_values(&[&self.shared.pipeline, "permanent", err.code()])
            .inc();
        m.skipped
            .with_label_values(&[&self.shared.pipeline, "policy_skip"])
            .inc();
        let only = Item {
            first: item.first,
            last: item.last,
            epoch: item.epoch,
            // Nothing to write: the record is represented by its skip row only.
            rec: Err(RecordError::Empty),
        };
        match self.apply(std::slice::from_ref(&only), &[skip], rx).await {
            Attempt::Done => Ok(true),
            Attempt::Released => Ok(false),
            Attempt::Failed(e) => Err(PartitionError::Apply {
                place: self.place(item, item),
                source: e,
            }),
        }
    }

    fn place(&self, first: &Item, last: &Item) -> StreamPlace {
        StreamPlace {
            topic: self.topic.to_string(),
            partition: self.partition,
            offsets: (first.first, last.last),
            table: first.table().or_else(|| last.table()),
            at: first.at().or_else(|| last.at()),
        }
    }

    /// What of `items` still has to be applied, given the stored position.
    fn note_beat(&self, beat: Option<i64>) {
        if let Some(b) = beat {
            self.shared
                .beats
                .fetch_max(b, std::sync::atomic::Ordering::AcqRel);
        }
    }

    fn plan<'a>(&self, items: &'a [Item]) -> Plan<'a> {
        let mut p = Plan::default();
        let next = self.stored.as_ref().map(|s| s.next_offset);
        let mut order = self.stored.as_ref().and_then(|s| s.order);
        p.epoch = self.epoch;
        for item in items {
            if next.is_some_and(|n| item.first < n) {
                p.duplicates += 1;
                continue;
            }
            if !admit_epoch(&mut p.epoch, item.epoch) {
                p.fenced += 1;
                continue;
            }
            let Ok(rec) = &item.rec else { continue };
            let o = rec.order();
            if order.is_some_and(|stored| o <= stored) {
                p.duplicates += 1;
                continue;
            }
            order = Some(o);
            p.last_order = Some(o);
            match rec {
                Record::Change { event, .. } => {
                    p.last_at = Some(event.source.at.clone());
                    // Heartbeats are measured, never written to the target.
                    if otter_core::heartbeat::is_heartbeat(&event.schema.table) {
                        if let Some((pipeline, beat)) = otter_core::heartbeat::beat_of(event) {
                            if pipeline == self.shared.pipeline {
                                p.beat = p.beat.max(Some(beat));
                            }
                        }
                        continue;
                    }
                    if self.shared.mapping.skips(&event.schema.table) {
                        p.filtered += 1;
                        continue;
                    }
                    p.changes.push(event);
                }
                Record::Schema(_) => p.ddl += 1,
            }
        }
        p
    }

    /// Dry runs print text statements, everything else prepares large inserts.
    fn sizing(&self) -> Sizing {
        let t = &self.shared.tuning;
        Sizing {
            max_bytes: t.max_statement_bytes,
            prepared_min_rows: if self.shared.dry_run {
                0
            } else {
                t.prepared_min_rows
            },
        }
    }

    fn build(&self, changes: Vec<&ChangeEvent>) -> Result<(Vec<(TableId, Stmt)>, u64), ApplyError> {
        let n = changes.len() as u64;
        let table = changes.first().map(|c| c.schema.table.clone());
        let runs = merge(changes).map_err(|source| ApplyError::Key {
            table: table.unwrap_or_else(|| TableId::new("", "")),
            source,
        })?;
        let mut out = Vec::new();
        for run in &runs {
            let shape = self.shared.mapping.shape(run.schema())?;
            let stmts =
                statements(run, &shape, self.sizing()).map_err(|source| ApplyError::Sql {
                    table: shape.source.clone(),
                    source,
                })?;
            out.extend(stmts.into_iter().map(|s| (shape.target.clone(), s)));
        }
        Ok((out, n))
    }

    /// One attempt loop for `items`: retries transient failures until done, released,
    /// or refused for good.
    async fn apply(&mut self, items: &[Item], skips: &[Skip], rx: &Inbox) -> Attempt {
        let mut delay = Duration::from_millis(self.shared.tuning.retry_ms.max(1));
        loop {
            if self.released(rx) {
                return Attempt::Released;
            }
            let plan = self.plan(items);
            let (mut stmts, events) = match self.build(plan.changes) {
                Ok(x) => x,
                Err(e) => return Attempt::Failed(e),
            };
            let last = items.last().map_or(0, |i| i.last);
            let next = Stored {
                next_offset: last + 1,
                order: plan
                    .last_order
                    .or(self.stored.as_ref().and_then(|s| s.order)),
            };
            let m = &self.shared.metrics;
            let pipeline = self.shared.pipeline.as_str();
            let timing = m.statement_seconds.with_label_values(&[pipeline]);
            if plan.fenced > 0 {
                m.skipped
                    .with_label_values(&[pipeline, "fenced"])
                    .inc_by(plan.fenced);
                warn!(
                    records = plan.fenced,
                    epoch = plan.epoch,
                    "records of a deposed capture leader dropped (their epoch is below one already applied)"
                );
            }
            self.epoch = plan.epoch;
            if plan.duplicates > 0 {
                m.skipped
                    .with_label_values(&[pipeline, "duplicate"])
                    .inc_by(plan.duplicates);
                if !self.warned_duplicates {
                    info!(
                        records = plan.duplicates,
                        "records already applied skipped (re-published or re-delivered)"
                    );
                    self.warned_duplicates = true;
                }
            }
            if plan.filtered > 0 {
                m.skipped
                    .with_label_values(&[pipeline, "filtered"])
                    .inc_by(plan.filtered);
            }
            if self.shared.dry_run {
                self.note_beat(plan.beat);
                self.print(&stmts, items);
                m.skipped
                    .with_label_values(&[pipeline, "dry_run"])
                    .inc_by(events);
                self.stored = Some(next);
                let _ = self.shared.done.send(Done {
                    topic: self.topic.clone(),
                    partition: self.partition,
                    next_offset: last + 1,
                });
                return Attempt::Done;
            }
            let mut commit = Commit {
                topic: &self.topic,
                partition: self.partition,
                expected: self.stored.as_ref().map(|s| s.next_offset),
                next: next.clone(),
                at: plan.last_at.as_ref(),
                stmts: &mut stmts,
                skips,
                timing: Some(&timing),
            };
            match self.shared.target.commit(&mut commit).await {
                Ok(took) => {
                    self.note_beat(plan.beat);
                    m.batches.with_label_values(&[pipeline]).inc();
                    m.events.with_label_values(&[pipeline]).inc_by(events);
                    m.batch_events
                        .with_label_values(&[pipeline])
                        .observe(events as f64);
                    m.commit_seconds
                        .with_label_values(&[pipeline])
                        .observe(took.as_secs_f64());
                    for (_, s) in &stmts {
                        m.rows
                            .with_label_values(&[pipeline, op_label(s.kind)])
                            .inc_by(s.rows as u64);
                    }
                    debug!(
                        first_offset = items[0].first,
                        last_offset = last,
                        events,
                        statements = stmts.len(),
                        "batch committed"
                    );
                    self.stored = Some(next);
                    let _ = self.shared.done.send(Done {
                        topic: self.topic.clone(),
                        partition: self.partition,
                        next_offset: last + 1,
                    });
                    return Attempt::Done;
                }
                Err(ApplyError::Fenced { expected, stored }) => {
                    m.errors
                        .with_label_values(&[pipeline, "transient", "fenced"])
                        .inc();
                    info!(
                        ?expected,
                        ?stored,
                        "partition position moved under us, reloading it"
                    );
                    match self.shared.target.load(&self.topic, self.partition).await {
                        Ok(s) => self.stored = s,
                        Err(e) => {
                            warn!(error = %chain(&e), "cannot reload the partition position, retrying")
                        }
                    }
                }
                Err(e) if e.class() == ErrorClass::Transient => {
                    m.errors
                        .with_label_values(&[pipeline, "transient", e.code()])
                        .inc();
                    warn!(error = %chain(&e), retry_in_ms = delay.as_millis() as u64, "target write failed, retrying the batch");
                    let mut shutdown = self.shared.shutdown.clone();
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.changed() => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
                Err(e) => return Attempt::Failed(e),
            }
        }
    }

    /// Dry run: the statements go to stdout (they hold row values, which logs never do).
    fn print(&self, stmts: &[(TableId, Stmt)], items: &[Item]) {
        let (first, last) = (items[0].first, items[items.len() - 1].last);
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "-- dry run: topic {} partition {} offsets {first}..={last}",
            self.topic, self.partition
        );
        for (_, s) in stmts {
            let _ = writeln!(out, "{};", s.sql);
        }
    }
}

fn op_label(k: StmtKind) -> &'static str {
    match k {
        StmtKind::Upsert => "upsert",
        StmtKind::Delete => "delete",
        StmtKind::Insert => "insert",
        StmtKind::Update => "update",
    }
}

/// Whether a record published under capture epoch `epoch` may be applied, given the
/// highest epoch seen on the partition so far (raised by it): a record of a deposed
/// leader arriving after its successor's is not. Records without an epoch (standalone
/// capture) always pass, deduplicated by source order like any other.
fn admit_epoch(highest: &mut i64, epoch: Option<i64>) -> bool {
    match epoch {
        Some(e) if e < *highest => false,
        Some(e) => {
            *highest = e;
            true
        }
        None => true,
    }
}

/// A record and the epoch of the capture leader that published it.
fn decode(
    decoder: &mut codec::Decoder,
    value: &[u8],
) -> (Result<Record, RecordError>, Option<i64>) {
    match decoder.decode_with_epoch(value) {
        Ok((rec, epoch)) => (Ok(rec), epoch),
        Err(e) => (Err(e.into()), None),
    }
}

#[cfg(test)]
mod tests {
    use super::admit_epoch;

    #[test]
    fn records_of_a_deposed_leader_after_its_successors_are_not_admitted() {
        let mut highest = 0;
        let stream = [
            None,
            Some(3),
            Some(3),
            Some(2),
            Some(4),
            Some(3),
            None,
            Some(4),
        ];
        let admitted: Vec<bool> = stream
            .iter()
            .map(|e| admit_epoch(&mut highest, *e))
            .collect();
        assert_eq!(admitted, [true, true, true, false, true, false, true, true]);
        assert_eq!(highest, 4);
    }
}
