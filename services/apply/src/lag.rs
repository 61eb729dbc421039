//! End-to-end lag: how long ago, by the **source's clock**, the source committed the
//! latest heartbeat (see `otter_core::heartbeat`) that this process has committed to the
//! target. Capture writes a heartbeat every second, so on an idle source the lag stays
//! near the heartbeat interval instead of growing, and a stuck or paused pipeline shows
//! a lag that keeps growing instead of a stale small number: the gauge is recomputed
//! every second from the last committed heartbeat, not only when one arrives.
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
        if beat > 0 {
            let lag = (now_us() + offset - beat).max(0);
            metrics.lag.with_label_values(&[p]).set(lag as f64 / 1e6);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
