//! Losing the source connection mid-stream: capture resumes from its stored position
//! and nothing is lost. In its own test binary because it cuts every binlog dump
//! connection on the source, which would disturb captures of concurrent tests.
#![cfg(feature = "it")]

mod common;

use std::time::Duration;

use common::*;
use otter_testkit as kit;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_source_connection_resumes_from_the_stored_position_losing_nothing() {
    use mysql_async::prelude::Queryable;
    let db = kit::unique("lost");
    let prefix = kit::unique("it");
    let start = source_head().await;
    source_exec(&[
        &format!("CREATE DATABASE {db}"),
        &format!("CREATE TABLE {db}.t (id INT PRIMARY KEY)"),
    ])
    .await;
    let pipeline = kit::unique("p");
    let (stop, task, metrics) = spawn_capture_with_metrics(config(&pipeline, &prefix, &db, &start));
    let mut c = kit::source().await.expect("source");
    for i in 0..200 {
        c.exec_drop(format!("INSERT INTO {db}.t VALUES (?)"), (i,))
            .await
            .expect("insert");
    }
    // Cut every binlog dump connection (this test's capture among them).
    // Wait until capture streams (its dump connection exists), then cut it.
    let dumps: Vec<u64> = kit::eventually(Duration::from_secs(20), "capture's binlog dump connection", || async {
        let mut c = kit::source().await?;
        let ids: Vec<u64> = c.query("SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'").await?;
        Ok((!ids.is_empty()).then_some(ids))
    })
    .await
    .expect("capture connects as a replica");
    for id in dumps {
        let _ = c.query_drop(format!("KILL {id}")).await;
    }
    for i in 200..400 {
        c.exec_drop(format!("INSERT INTO {db}.t VALUES (?)"), (i,))
            .await
            .expect("insert");
    }
    let recs = records(
        &format!("{prefix}.{db}.t"),
        3 + 400,
        Duration::from_secs(60),
    )
    .await;
    let _ = stop.send(true);
    task.await.expect("task").expect("capture stopped cleanly");
    let mut ids = inserted_ids(&recs);
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids, (0..400).collect::<Vec<i64>>(), "every insert arrived");
    let lost = metrics
        .errors
        .with_label_values(&[pipeline.as_str(), "binlog_stream"])
        .get();
    assert!(
        lost >= 1,
        "the connection was really cut (binlog_stream errors: {lost})"
    );
}
