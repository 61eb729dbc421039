//! Every metric name this crate emits. Names follow `otter_capture_<what>_<unit>`;
//! labels come from closed sets (`pipeline`, `op`, `code`, `reason`).

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

/// Counter. Row changes handed to the producer. Labels: `pipeline`, `op`.
pub const EVENTS_PUBLISHED: &str = "otter_capture_events_published_total";
/// Counter. Kafka records produced (a key change is two). Labels: `pipeline`.
pub const RECORDS_PUBLISHED: &str = "otter_capture_records_published_total";
/// Counter. Bytes of record keys and values produced. Labels: `pipeline`.
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
/// Counter. Heartbeat rows published (not counted as events). Labels: `pipeline`.
pub const HEARTBEATS: &str = "otter_capture_heartbeats_published_total";

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
        Ok(Metrics {
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
