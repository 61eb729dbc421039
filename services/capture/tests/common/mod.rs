//! Shared helpers of the capture integration tests.
#![allow(dead_code)]

use std::time::Duration;

use mysql_async::prelude::Queryable;
use otter_capture::config::Config;
use otter_core::codec::{self, Record};
use otter_testkit as kit;

/// The source's current binlog end, as `file:offset`.
pub async fn source_head() -> String {
    kit::source_head().await.expect("source binlog position")
}

/// Runs `sql` statements on the source, in one session.
pub async fn source_exec(sql: &[&str]) {
    let mut c = kit::source().await.expect("source reachable");
    for s in sql {
        c.query_drop(*s)
            .await
            .unwrap_or_else(|e| panic!("{s}: {e}"));
    }
}

/// A capture config for one test: its own pipeline, topic prefix and database.
pub fn config_text(pipeline: &str, prefix: &str, db: &str, start: &str, url: &str) -> String {
    kit::capture_config_text(pipeline, prefix, db, start, url)
}

pub fn config(pipeline: &str, prefix: &str, db: &str, start: &str) -> Config {
    Config::parse(
        &config_text(pipeline, prefix, db, start, &kit::source_url()),
        "test",
    )
    .expect("valid test config")
}

/// Starts capture in this process; returns the stop switch and its task.
pub fn spawn_capture(
    cfg: Config,
) -> (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<Result<(), otter_capture::error::CaptureError>>,
) {
    let (stop, task, _) = spawn_capture_with_metrics(cfg);
    (stop, task)
}

/// As [`spawn_capture`], also returning the capture's metrics.
#[allow(clippy::type_complexity)]
pub fn spawn_capture_with_metrics(
    cfg: Config,
) -> (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<Result<(), otter_capture::error::CaptureError>>,
    otter_capture::metrics::Metrics,
) {
    let filter =
        std::env::var("OTTER_TEST_LOG").unwrap_or_else(|_| "info,zookeeper_client=warn".into());
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(filter)
        .try_init();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let metrics =
        otter_capture::metrics::Metrics::new(&prometheus::Registry::new()).expect("metrics");
    let m = metrics.clone();
    let task =
        tokio::spawn(async move { otter_capture::run::run(cfg, m, rx, None).await.map(|_| ()) });
    (tx, task, metrics)
}

/// Decoded records of a topic (every partition), waiting for at least `want`.
pub async fn records(topic: &str, want: usize, timeout: Duration) -> Vec<(i32, String, Record)> {
    let raw = kit::read_topic(topic, want, timeout)
        .await
        .expect("topic readable");
    raw.into_iter()
        .map(|(p, k, v)| {
            let rec = codec::decode(&v)
                .unwrap_or_else(|e| panic!("record in {topic} does not decode: {e}"));
            (p, String::from_utf8(k).expect("utf8 key"), rec)
        })
        .collect()
}

/// Ids of the insert changes in `recs`, in the order read.
pub fn inserted_ids(recs: &[(i32, String, Record)]) -> Vec<i64> {
    recs.iter()
        .filter_map(|(_, _, r)| match r {
            otter_core::codec::Record::Change { event, .. }
                if event.op == otter_core::Op::Insert =>
            {
                match event.after.as_deref()?.first()? {
                    Some(otter_core::value::Value::Int(n)) => Some(*n),
                    _ => None,
                }
            }
            _ => None,
        })
        .collect()
}
