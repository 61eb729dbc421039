//! End-to-end lag: how long ago, by the **source's clock**, the source committed the
//! latest heartbeat (see `otter_core::heartbeat`) that this process has committed to the
//! target. Capture writes a heartbeat every second, so on an idle source the lag stays
//! near the heartbeat interval instead of growing, and a stuck or paused pipeline shows
//! a lag that keeps growing instead of a stale small number: the gauge is recomputed
//! every second from the last committed heartbeat, not only when one arrives.
//!
//! Heartbeats travel on their own topic, so one blocked table would not hold them back:
//! the figure is therefore at least `otter_apply_stalled_seconds` (see `consume.rs`),
//! how long some partition has had records waiting without a commit. Those records were
//! in the broker when its last commit happened (or when they began to wait), so their
//! changes are at least that old: a lower bound that keeps the lag honest about a
//! single stuck table (to the second the backlog is sampled at).
//!
//! Clocks compared: the heartbeat's `beat_us` is the source's `NOW(6)`; "now" is this
//! host's clock plus the source-minus-host offset, measured every 30 s by reading the
//! source's clock (midpoint of the round trip). So the lag is source time against
//! source time: skew between the source, the target and this host does not enter it.
//! Without access to the source (no `source_url`), the offset is taken as 0 and
//! `otter_apply_source_clock_offset_seconds` is absent, so a reader knows.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mysql_async::prelude::Queryable;

use crate::metrics::Metrics;

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// The source-minus-this-host clock offset, µs, or why it is unknown.
async fn offset_us(url: &str) -> Result<i64, String> {
    let opts = mysql_async::Opts::from_url(url).map_err(|e| e.to_string())?;
    let mut conn = tokio::time::timeout(Duration::from_secs(5), mysql_async::Conn::new(opts))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    let t0 = now_us();
    let source: Option<i64> = conn
        .query_first("SELECT CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED)")
        .await
        .map_err(|e| e.to_string())?;
    let t1 = now_us();
    let _ = conn.disconnect().await;
    Ok(source.ok_or("no clock reading")? - (t0 + t1) / 2)
}

/// The lag, seconds: source time now (`host_now_us + offset_us`) minus the last applied
/// heartbeat's source time (none yet: 0), at least `stalled` (see the module doc), never
/// negative.
fn lag_seconds(host_now_us: i64, offset_us: i64, beat_us: i64, stalled: f64) -> f64 {
    if beat_us <= 0 {
        return stalled.max(0.0);
    }
    let by_beat = (host_now_us + offset_us - beat_us).max(0) as f64 / 1e6;
    by_beat.max(stalled)
}

/// Updates `otter_apply_lag_seconds` every second from `beats` (µs of the source's
/// clock); `source` is the source's URL when this process may read its clock.
pub async fn run(
    beats: Arc<AtomicI64>,
    source: Arc<Mutex<Option<String>>>,
    metrics: Metrics,
    pipeline: String,
) {
    let p = pipeline.as_str();
    let mut offset = 0i64;
    let mut measured: Option<std::time::Instant> = None;
    loop {
        let url = source.lock().ok().and_then(|s| s.clone());
        if let Some(url) = url {
            if measured.is_none_or(|m| m.elapsed() > Duration::from_secs(30)) {
                measured = Some(std::time::Instant::now());
                match offset_us(&url).await {
                    Ok(o) => {
                        offset = o;
                        metrics
                            .clock_offset
                            .with_label_values(&[p])
                            .set(o as f64 / 1e6);
                    }
                    Err(e) => tracing::debug!(error = %e, "cannot read the source's clock"),
                }
            }
        }
        let beat = beats.load(Ordering::Acquire);
        let stalled = metrics.stalled.with_label_values(&[p]).get();
        // Before the first heartbeat the lag is unknown, unless a stall bounds it.
        if beat > 0 || stalled > 0.0 {
            let lag = lag_seconds(now_us(), offset, beat, stalled);
            metrics.lag.with_label_values(&[p]).set(lag);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::lag_seconds;

    const S: i64 = 1_000_000;

    #[test]
    fn a_host_clock_ahead_or_behind_the_source_does_not_change_the_lag() {
        let source_now = 1_700_000_000 * S;
        let beat = source_now - 2 * S;
        for skew in [-3600 * S, -5 * S, 0, 7 * S, 600 * S] {
            // This host reads source time + skew; the offset measured is -skew.
            let lag = lag_seconds(source_now + skew, -skew, beat, 0.0);
            assert!((lag - 2.0).abs() < 1e-9, "skew {skew}: {lag}");
        }
        // Uncorrected (no access to the source's clock), the skew would be the lag.
        assert!((lag_seconds(source_now + 600 * S, 0, beat, 0.0) - 602.0).abs() < 1e-9);
    }

    #[test]
    fn a_stalled_partition_raises_the_lag_and_it_is_never_negative() {
        let now = 1_700_000_000 * S;
        assert_eq!(lag_seconds(now, 0, now - S, 45.0), 45.0);
        assert_eq!(lag_seconds(now, 0, now + 3 * S, 0.0), 0.0);
        assert_eq!(lag_seconds(now, 0, 0, 12.0), 12.0, "no heartbeat yet");
    }
}
