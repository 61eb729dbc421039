//! A change the target refuses, and a record that is not a change: the partition stops
//! (policy `stop`) or records and passes it (policy `skip`), with topic, partition,
//! offset, table and source position named; other tables keep replicating.
#![cfg(feature = "it")]

mod common;

use std::time::Duration;

use common::*;
use mysql_async::prelude::Queryable;
use otter_testkit as kit;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

async fn setup(p: &Pipeline) {
    let db = &p.db;
    let src = kit::source_url();
    let tgt = kit::target_url();
    exec(
        &src,
        &[
            &format!("CREATE DATABASE {db}"),
            &format!("CREATE TABLE {db}.narrow (id INT PRIMARY KEY, v VARCHAR(20))"),
            &format!("CREATE TABLE {db}.ok (id INT PRIMARY KEY, v VARCHAR(20))"),
        ],
    )
    .await;
    // The target's column is too short for one value: strict mode refuses it.
    exec(
        &tgt,
        &[
            &format!("CREATE DATABASE {db}"),
            &format!("CREATE TABLE {db}.narrow (id INT PRIMARY KEY, v VARCHAR(3))"),
            &format!("CREATE TABLE {db}.ok (id INT PRIMARY KEY, v VARCHAR(20))"),
        ],
    )
    .await;
}

/// topic, partition, offset, source table, error code, source position
type SkippedRow = (String, i32, i64, Option<String>, String, Option<String>);

async fn count(sql: &str) -> i64 {
    let rows = target_rows(sql).await;
    rows.into_iter().next().map_or(0, mysql_async::from_row)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_change_stops_its_partition_and_names_where() {
    let p = Pipeline::new("stop", "on_error = \"stop\"").await;
    let db = &p.db;
    setup(&p).await;
    let mut capture = p.capture();
    let mut apply = p.apply();
    exec(
        &kit::source_url(),
        &[
            &format!("INSERT INTO {db}.narrow VALUES (1, 'ab'), (2, 'much too long'), (3, 'cd')"),
            &format!("INSERT INTO {db}.ok VALUES (1, 'fine'), (2, 'also fine')"),
        ],
    )
    .await;
    let log = kit::eventually(Duration::from_secs(60), "the partition to stop", || async {
        let log = p.log("apply.log");
        Ok(log.contains("partition stopped").then_some(log))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", tail(&p.log("apply.log"), 30)));
    let line = log
        .lines()
        .find(|l| l.contains("partition stopped"))
        .expect("line");
    for part in [
        format!("topic {}.{db}.narrow partition ", p.prefix),
        " offset ".to_owned(),
        format!("table {db}.narrow"),
        "source position mariadb-bin.".to_owned(),
        "Data too long".to_owned(),
    ] {
        assert!(line.contains(&part), "`{part}` missing from: {line}");
    }
    // The other table is untouched by it.
    p.wait_table_in_sync("ok").await;
    assert_eq!(
        count(&format!("SELECT COUNT(*) FROM {db}.narrow WHERE id = 2")).await,
        0
    );
    kill9(&mut apply);
    kill9(&mut capture);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_policy_records_refused_changes_and_undecodable_records_and_goes_on() {
    let p = Pipeline::new("skip", "on_error = \"skip\"").await;
    let db = &p.db;
    setup(&p).await;
    let mut capture = p.capture();
    exec(
        &kit::source_url(),
        &[&format!("INSERT INTO {db}.ok VALUES (1, 'first')")],
    )
    .await;
    // Wait for capture to create the topic, then put garbage into every partition.
    let topic = format!("{}.{db}.ok", p.prefix);
    kit::read_topic(&topic, 1, Duration::from_secs(30))
        .await
        .expect("topic exists");
    let producer: ThreadedProducer<DefaultProducerContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", kit::brokers())
        .create()
        .expect("producer");
    for part in 0..3 {
        producer
            .send(
                BaseRecord::<[u8], [u8]>::to(&topic)
                    .partition(part)
                    .key(b"{}")
                    .payload(b"\x00 not json"),
            )
            .map_err(|(e, _)| e)
            .expect("garbage sent");
    }
    producer.flush(Duration::from_secs(10)).expect("flushed");
    drop(producer);
    let mut apply = p.apply();
    exec(
        &kit::source_url(),
        &[
            &format!("INSERT INTO {db}.narrow VALUES (1, 'ab'), (2, 'much too long'), (3, 'cd')"),
            &format!("INSERT INTO {db}.ok VALUES (2, 'after garbage')"),
        ],
    )
    .await;
    p.wait_table_in_sync("ok").await;
    let skipped = kit::eventually(Duration::from_secs(60), "the refused change recorded", || async {
        let mut c = mysql_async::Conn::from_url(kit::target_url()).await?;
        let skipped: Vec<SkippedRow> = c
            .exec(
                "SELECT topic, kafka_partition, kafka_offset, source_table, error_code, source_position \
                 FROM otter_it.apply_skipped WHERE pipeline = ? ORDER BY id",
                (&p.name,),
            )
            .await?;
        Ok(skipped.iter().any(|s| s.4 == "value_does_not_fit").then_some(skipped))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", tail(&p.log("apply.log"), 30)));
    let codes: Vec<&str> = skipped.iter().map(|s| s.4.as_str()).collect();
    assert_eq!(
        codes.iter().filter(|c| **c == "record_undecodable").count(),
        3,
        "{skipped:?}"
    );
    let refused = skipped
        .iter()
        .find(|s| s.4 == "value_does_not_fit")
        .expect("found above");
    assert_eq!(refused.0, format!("{}.{db}.narrow", p.prefix));
    assert_eq!(refused.3.as_deref(), Some(format!("{db}.narrow").as_str()));
    assert!(refused
        .5
        .as_deref()
        .is_some_and(|s| s.starts_with("mariadb-bin.")));
    // The rows around the skipped one arrived; a later full image repairs row 2.
    assert_eq!(count(&format!("SELECT COUNT(*) FROM {db}.narrow")).await, 2);
    exec(
        &kit::source_url(),
        &[&format!("UPDATE {db}.narrow SET v = 'ef' WHERE id = 2")],
    )
    .await;
    p.wait_table_in_sync("narrow").await;
    kill9(&mut apply);
    kill9(&mut capture);
}
