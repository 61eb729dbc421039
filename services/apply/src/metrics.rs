//! Every metric name this crate emits. Names follow `otter_apply_<what>_<unit>`; labels
//! come from closed sets (`pipeline`, `op`, `class`, `code`, `reason`, `state`, `outcome`); never a
//! table, topic or partition label. The whole list, with meanings, is
//! `schemas/metrics/README.md` (a test keeps the two equal).

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// Counter. Change events covered by committed batches (before merging). Labels:
/// `pipeline`.
pub const EVENTS_APPLIED: &str = "otter_apply_events_applied_total";
/// Counter. Row operations written after merging. Labels: `pipeline`, `op`
/// (upsert|delete|insert|update).
pub const ROWS_WRITTEN: &str = "otter_apply_rows_written_total";
/// Counter. Records consumed but not applied, by why. Labels: `pipeline`, `reason`
/// (duplicate: already applied, e.g. re-published after a capture crash;
/// filtered: the table's map rule says `skip = true`;
/// policy_skip: refused by the target or undecodable, recorded in `apply_skipped`;
/// fenced: published by a deposed capture leader; chunks_restarted; dry_run).
pub const SKIPPED: &str = "otter_apply_events_skipped_total";
/// Counter. Batches committed to the target. Labels: `pipeline`.
pub const BATCHES: &str = "otter_apply_batches_total";
/// Histogram. Change events per committed batch. Labels: `pipeline`.
pub const BATCH_EVENTS: &str = "otter_apply_batch_events";
/// Histogram. Seconds from a batch's first statement to its commit. Labels: `pipeline`.
pub const COMMIT_SECONDS: &str = "otter_apply_commit_seconds";
/// Counter. Errors by class and code. Labels: `pipeline`, `class` (transient: retried;
/// permanent: the partition stopped, or the change was skipped by policy), `code`.
pub const ERRORS: &str = "otter_apply_errors_total";
/// Gauge. Partitions of this process. Labels: `pipeline`, `state` (held|stopped).
pub const PARTITIONS: &str = "otter_apply_partitions";
/// Gauge. End-to-end lag by the source's clock, from heartbeats (see `lag.rs`),
/// recomputed every second. Labels: `pipeline`.
pub const LAG_SECONDS: &str = "otter_apply_lag_seconds";
/// Gauge. Source clock minus this host's clock, as last measured. Labels: `pipeline`.
pub const CLOCK_OFFSET: &str = "otter_apply_source_clock_offset_seconds";
/// Histogram. Seconds per statement sent to the target (a multi-row upsert or delete).
/// Labels: `pipeline`.
pub const STATEMENT_SECONDS: &str = "otter_apply_statement_seconds";
/// Gauge. Consumer lag: records in this process's partitions not yet applied (the
/// broker's high watermark minus the applied position), updated every second.
/// Labels: `pipeline`.
pub const BACKLOG: &str = "otter_apply_backlog_records";
/// Gauge. The longest any partition of this process has had records waiting without a
/// commit, seconds; 0 when every partition is caught up or moving. The stuck detector.
/// Labels: `pipeline`.
pub const STALLED_SECONDS: &str = "otter_apply_stalled_seconds";
/// Counter. Schema changes handled, by outcome (counted once per change, by the
/// process holding partition 0 of the table's topic). Labels: `pipeline`, `outcome` (applied; ignored and
/// not_additive: passed over by `apply.ddl`; skipped: listed in `apply.ddl_skip`;
/// filtered: the table's map rule skips it, or it touches no mapped column; dry_run;
/// failed: the target refused it or the policy stopped on it).
pub const DDL: &str = "otter_apply_ddl_total";

pub const ALL: &[&str] = &[
    EVENTS_APPLIED,
    ROWS_WRITTEN,
    SKIPPED,
    BATCHES,
    BATCH_EVENTS,
    COMMIT_SECONDS,
    ERRORS,
    PARTITIONS,
    LAG_SECONDS,
    CLOCK_OFFSET,
    STATEMENT_SECONDS,
    BACKLOG,
    STALLED_SECONDS,
    DDL,
];

/// Handles, created once per process.
#[derive(Clone)]
pub struct Metrics {
    pub events: IntCounterVec,
    pub rows: IntCounterVec,
    pub skipped: IntCounterVec,
    pub batches: IntCounterVec,
    pub batch_events: HistogramVec,
    pub commit_seconds: HistogramVec,
    pub errors: IntCounterVec,
    pub partitions: IntGaugeVec,
    pub lag: prometheus::GaugeVec,
    pub clock_offset: prometheus::GaugeVec,
    pub statement_seconds: HistogramVec,
    pub backlog: IntGaugeVec,
    pub stalled: prometheus::GaugeVec,
    pub ddl: IntCounterVec,
    /// What `/readyz` answers.
    pub health: std::sync::Arc<otter_telemetry::Health>,
}

impl Metrics {
    pub fn new(registry: &Registry) -> prometheus::Result<Metrics> {
        let counter =
            |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<IntCounterVec> {
                let c = IntCounterVec::new(Opts::new(name, help), labels)?;
                registry.register(Box::new(c.clone()))?;
                Ok(c)
            };
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(buckets),
                &["pipeline"],
            )?;
            registry.register(Box::new(h.clone()))?;
            Ok::<_, prometheus::Error>(h)
        };
        let partitions = IntGaugeVec::new(
            Opts::new(PARTITIONS, "partitions held or stopped"),
            &["pipeline", "state"],
        )?;
        registry.register(Box::new(partitions.clone()))?;
        let float = |name: &str, help: &str| -> prometheus::Result<prometheus::GaugeVec> {
            let g = prometheus::GaugeVec::new(Opts::new(name, help), &["pipeline"])?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        Ok(Metrics {
            lag: float(LAG_SECONDS, "end-to-end lag by the source's clock")?,
            clock_offset: float(CLOCK_OFFSET, "source clock minus this host's")?,
            stalled: float(STALLED_SECONDS, "records waiting without a commit for")?,
            backlog: {
                let g =
                    IntGaugeVec::new(Opts::new(BACKLOG, "records not yet applied"), &["pipeline"])?;
                registry.register(Box::new(g.clone()))?;
                g
            },
            statement_seconds: histogram(
                STATEMENT_SECONDS,
                "time per statement",
                prometheus::exponential_buckets(0.0005, 4.0, 9)?,
            )?,
            health: otter_telemetry::Health::new(),
            events: counter(EVENTS_APPLIED, "change events applied", &["pipeline"])?,
            rows: counter(ROWS_WRITTEN, "row operations written", &["pipeline", "op"])?,
            skipped: counter(SKIPPED, "records not applied", &["pipeline", "reason"])?,
            batches: counter(BATCHES, "batches committed", &["pipeline"])?,
            batch_events: histogram(
                BATCH_EVENTS,
                "change events per batch",
                prometheus::exponential_buckets(1.0, 4.0, 9)?,
            )?,
            commit_seconds: histogram(
                COMMIT_SECONDS,
                "batch write and commit time",
                prometheus::exponential_buckets(0.001, 4.0, 9)?,
            )?,
            errors: counter(ERRORS, "errors", &["pipeline", "class", "code"])?,
            ddl: counter(DDL, "schema changes handled", &["pipeline", "outcome"])?,
            partitions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_follow_the_scheme() {
        for name in ALL {
            assert!(name.starts_with("otter_apply_"), "{name}");
            let counter = name.ends_with("_total");
            assert!(counter || !name.contains("_total"), "{name}");
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name}"
            );
        }
        Metrics::new(&Registry::new()).expect("all metrics register");
    }
}
