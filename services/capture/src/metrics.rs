//! Every metric name this crate emits. Names follow `otter_capture_<what>_<unit>`;
//! labels come from closed sets (`pipeline`, `op`, `code`, `reason`).

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// Counter. Row changes of transactions the broker acknowledged in full. Labels:
/// `pipeline`, `op`.
pub const EVENTS_PUBLISHED: &str = "otter_capture_events_published_total";
/// Counter. Kafka records acknowledged, of whole transactions (a key change is two).
/// Labels: `pipeline`.
pub const RECORDS_PUBLISHED: &str = "otter_capture_records_published_total";
/// Counter. Bytes of record keys and values acknowledged, of whole transactions.
/// Labels: `pipeline`.
pub const BYTES_PUBLISHED: &str = "otter_capture_bytes_published_total";
/// Counter. Source transactions whose records were all acknowledged. Labels: `pipeline`.
pub const TRANSACTIONS: &str = "otter_capture_transactions_total";
/// Counter. Errors that ended a capture session. Labels: `pipeline`, `code`.
pub const ERRORS: &str = "otter_capture_errors_total";
/// Counter. Events read but not published, by why. Labels: `pipeline`, `reason`
/// (filtered|statement|ignorable|heartbeat).
pub const SKIPPED: &str = "otter_capture_events_skipped_total";
/// Gauge. Binlog file sequence number and offset of the stored position.
/// Labels: `pipeline`, `part` (file|offset).
pub const POSITION: &str = "otter_capture_position";
/// Gauge. 1 while this process is the pipeline's elected capture, else 0 (a standby,
/// or waiting). Standalone captures report 1 while running. Labels: `pipeline`.
pub const LEADER: &str = "otter_capture_leader";
/// Gauge. The source's binlog head: file sequence number and offset. Labels:
/// `pipeline`, `part` (file|offset). Read every 5 s while capturing.
pub const SOURCE_HEAD: &str = "otter_capture_source_head";
/// Gauge. Binlog bytes between the stored position and the source's head.
pub const BEHIND_BYTES: &str = "otter_capture_behind_bytes";
/// Gauge. Source clock now minus the source commit time of the last stored
/// transaction, 0 when the stored position is the head (an idle source is not
/// "behind"). One clock, the source's: no skew between machines enters it.
pub const BEHIND_SECONDS: &str = "otter_capture_behind_seconds";
/// Gauge. Source commit time (its clock) of the last stored transaction.
pub const COMMIT_TIMESTAMP: &str = "otter_capture_source_commit_timestamp_seconds";
/// Counter. Heartbeat rows acknowledged (not counted as events). Labels: `pipeline`.
pub const HEARTBEATS: &str = "otter_capture_heartbeats_published_total";
/// Counter. Row changes decoded from the binlog, of captured tables, before
/// publishing (heartbeats apart). Labels: `pipeline`, `op` (insert|update|delete).
pub const EVENTS_READ: &str = "otter_capture_events_read_total";
/// Counter. Binlog bytes received from the source (whole events). Labels: `pipeline`.
pub const BINLOG_BYTES_READ: &str = "otter_capture_binlog_bytes_read_total";
/// Histogram. Seconds from reading a transaction's commit to the broker acknowledging
/// its last record. Labels: `pipeline`.
pub const PUBLISH_SECONDS: &str = "otter_capture_publish_seconds";
/// Counter. Sessions started again after a transient failure (source, broker or
/// ZooKeeper unreachable). Labels: `pipeline`.
pub const RECONNECTS: &str = "otter_capture_reconnects_total";
/// Counter. Binlog decode errors (each stops capture), by kind: checksum, truncated,
/// malformed, unknown_event, unsupported, table_map, unknown_table_id, plan, rows,
/// payload, compressed, incident, statement_dml, io. Labels: `pipeline`, `kind`.
pub const DECODE_ERRORS: &str = "otter_capture_decode_errors_total";
/// Gauge. Sequence number of the oldest binlog file the source still has (`SHOW
/// BINARY LOGS`), read every 5 s. Labels: `pipeline`.
pub const SOURCE_BINLOG_OLDEST: &str = "otter_capture_source_binlog_oldest";
/// Gauge. The source's binlog retention (`binlog_expire_logs_seconds`, else
/// `expire_logs_days`), 0 = kept until purged by hand. Labels: `pipeline`.
pub const SOURCE_BINLOG_EXPIRE: &str = "otter_capture_source_binlog_expire_seconds";

pub const ALL: &[&str] = &[
    EVENTS_PUBLISHED,
    RECORDS_PUBLISHED,
    BYTES_PUBLISHED,
    TRANSACTIONS,
    ERRORS,
    SKIPPED,
    POSITION,
    LEADER,
    SOURCE_HEAD,
    BEHIND_BYTES,
    BEHIND_SECONDS,
    COMMIT_TIMESTAMP,
    HEARTBEATS,
    EVENTS_READ,
    BINLOG_BYTES_READ,
    PUBLISH_SECONDS,
    RECONNECTS,
    DECODE_ERRORS,
    SOURCE_BINLOG_OLDEST,
    SOURCE_BINLOG_EXPIRE,
];

/// Handles for one pipeline, created once.
#[derive(Clone)]
pub struct Metrics {
    pub events: IntCounterVec,
    pub records: IntCounterVec,
    pub bytes: IntCounterVec,
    pub transactions: IntCounterVec,
    pub errors: IntCounterVec,
    pub skipped: IntCounterVec,
    pub position: IntGaugeVec,
    pub leader: IntGaugeVec,
    pub source_head: IntGaugeVec,
    pub behind_bytes: IntGaugeVec,
    pub behind_seconds: prometheus::GaugeVec,
    pub commit_timestamp: IntGaugeVec,
    pub heartbeats: IntCounterVec,
    pub events_read: IntCounterVec,
    pub binlog_bytes: IntCounterVec,
    pub publish_seconds: HistogramVec,
    pub reconnects: IntCounterVec,
    pub decode_errors: IntCounterVec,
    pub binlog_oldest: IntGaugeVec,
    pub binlog_expire: IntGaugeVec,
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
        let position = IntGaugeVec::new(
            Opts::new(POSITION, "stored binlog position"),
            &["pipeline", "part"],
        )?;
        registry.register(Box::new(position.clone()))?;
        let leader = IntGaugeVec::new(Opts::new(LEADER, "1 while elected"), &["pipeline"])?;
        registry.register(Box::new(leader.clone()))?;
        let gauge = |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<IntGaugeVec> {
            let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let behind_seconds = prometheus::GaugeVec::new(
            Opts::new(
                BEHIND_SECONDS,
                "seconds behind the source head, by the source's clock",
            ),
            &["pipeline"],
        )?;
        registry.register(Box::new(behind_seconds.clone()))?;
        let publish_seconds = HistogramVec::new(
            HistogramOpts::new(PUBLISH_SECONDS, "commit read to last record acknowledged")
                .buckets(prometheus::exponential_buckets(0.001, 4.0, 9)?),
            &["pipeline"],
        )?;
        registry.register(Box::new(publish_seconds.clone()))?;
        Ok(Metrics {
            events_read: counter(EVENTS_READ, "row changes decoded", &["pipeline", "op"])?,
            binlog_bytes: counter(BINLOG_BYTES_READ, "binlog bytes received", &["pipeline"])?,
            publish_seconds,
            reconnects: counter(RECONNECTS, "sessions restarted", &["pipeline"])?,
            decode_errors: counter(DECODE_ERRORS, "decode errors", &["pipeline", "kind"])?,
            binlog_oldest: gauge(SOURCE_BINLOG_OLDEST, "oldest binlog file", &["pipeline"])?,
            binlog_expire: gauge(SOURCE_BINLOG_EXPIRE, "binlog retention", &["pipeline"])?,
            heartbeats: counter(HEARTBEATS, "heartbeat rows published", &["pipeline"])?,
            source_head: gauge(SOURCE_HEAD, "source binlog head", &["pipeline", "part"])?,
            behind_bytes: gauge(BEHIND_BYTES, "binlog bytes not yet stored", &["pipeline"])?,
            behind_seconds,
            commit_timestamp: gauge(
                COMMIT_TIMESTAMP,
                "source commit time of the last stored transaction",
                &["pipeline"],
            )?,
            leader,
            health: otter_telemetry::Health::new(),
            events: counter(
                EVENTS_PUBLISHED,
                "row changes published",
                &["pipeline", "op"],
            )?,
            records: counter(RECORDS_PUBLISHED, "records produced", &["pipeline"])?,
            bytes: counter(BYTES_PUBLISHED, "bytes produced", &["pipeline"])?,
            transactions: counter(TRANSACTIONS, "transactions acknowledged", &["pipeline"])?,
            errors: counter(ERRORS, "errors ending a session", &["pipeline", "code"])?,
            skipped: counter(SKIPPED, "events not published", &["pipeline", "reason"])?,
            position,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_follow_the_scheme() {
        for name in ALL {
            assert!(name.starts_with("otter_capture_"), "{name}");
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
