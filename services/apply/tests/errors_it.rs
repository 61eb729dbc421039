//! A change the target refuses, and a record that is not a change (garbage, a future
//! envelope version, a mistyped value, a broken chunk sequence, a huge record): the
//! partition stops
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
            &format!("CREATE TABLE {db}.missing (id INT PRIMARY KEY, v VARCHAR(20))"),
            &format!("CREATE TABLE {db}.typed (id INT PRIMARY KEY, v VARCHAR(20))"),
        ],
    )
    .await;
    // The target's column is too short for one value: strict mode refuses it. And
    // drift: a column missing on the target, a column of another type.
    exec(
        &tgt,
        &[
            &format!("CREATE DATABASE {db}"),
            &format!("CREATE TABLE {db}.narrow (id INT PRIMARY KEY, v VARCHAR(3))"),
            &format!("CREATE TABLE {db}.ok (id INT PRIMARY KEY, v VARCHAR(20))"),
            &format!("CREATE TABLE {db}.missing (id INT PRIMARY KEY)"),
            &format!("CREATE TABLE {db}.typed (id INT PRIMARY KEY, v INT)"),
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
            &format!("INSERT INTO {db}.missing VALUES (1, 'x')"),
            &format!("INSERT INTO {db}.typed VALUES (1, 'not a number')"),
        ],
    )
    .await;
    let log = kit::eventually(
        Duration::from_secs(60),
        "the partitions to stop",
        || async {
            let log = p.log("apply.log");
            Ok((log.matches("partition stopped").count() >= 3).then_some(log))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", tail(&p.log("apply.log"), 30)));
    let stopped = |table: &str| {
        log.lines()
            .find(|l| l.contains("partition stopped") && l.contains(&format!("table {db}.{table}")))
            .unwrap_or_else(|| panic!("{table} stopped: {}", tail(&log, 30)))
            .to_owned()
    };
    assert!(
        stopped("missing").contains("Unknown column"),
        "{}",
        stopped("missing")
    );
    assert!(
        stopped("typed").contains("Incorrect integer value"),
        "{}",
        stopped("typed")
    );
    let line = stopped("narrow");
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
        .set("message.max.bytes", "4194304")
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
    // Records that parse but must not be applied: a future envelope version, a value
    // that contradicts its declared type, a chunk without its first part, and a huge
    // record that is not an envelope at all.
    let golden = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../schemas/v1/golden/insert-all-types.json"),
    )
    .expect("golden record");
    assert!(golden.starts_with("{\"v\":1,") && golden.contains("\"c_int\":-9223372036854775808"));
    let future = golden.replacen("{\"v\":1,", "{\"v\":2,", 1);
    let mistyped = golden.replacen(
        "\"c_int\":-9223372036854775808",
        "\"c_int\":\"not a number\"",
        1,
    );
    let huge = vec![b'x'; 3 << 20];
    let chunk = rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
        key: otter_core::chunk::CHUNK_HEADER,
        value: Some("1/2"),
    });
    for (what, payload, headers) in [
        ("future version", future.as_bytes(), None),
        ("mistyped", mistyped.as_bytes(), None),
        ("chunk gap", b"{\"v\":1,".as_slice(), Some(chunk)),
        ("huge", huge.as_slice(), None),
    ] {
        let mut r = BaseRecord::<[u8], [u8]>::to(&topic)
            .partition(0)
            .key(b"{\"id\":1}")
            .payload(payload);
        if let Some(h) = headers {
            r = r.headers(h);
        }
        producer
            .send(r)
            .map_err(|(e, _)| e)
            .unwrap_or_else(|e| panic!("{what} record sent: {e}"));
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
        6,
        "{skipped:?}"
    );
    assert_eq!(
        codes.iter().filter(|c| **c == "record_chunk_gap").count(),
        1,
        "{skipped:?}"
    );
    let errors: Vec<String> = target_rows(&format!(
        "SELECT error FROM otter_it.apply_skipped WHERE pipeline = '{}' AND error_code LIKE 'record_%' ORDER BY id",
        p.name
    ))
    .await
    .into_iter()
    .map(mysql_async::from_row)
    .collect();
    for needed in ["envelope version 2", "c_int", "chunk", "offset"] {
        assert!(
            errors.iter().any(|e| e.contains(needed)),
            "an undecodable record's error names {needed:?}: {errors:#?}"
        );
    }
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

/// Identifiers that carry SQL (quotes, backticks, semicolons, comments) are data, never
/// code: a table and columns named like injections replicate exactly, through capture,
/// the topic name, apply's statements, its bookkeeping and `verify`, and the table the
/// names try to drop is still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identifiers_carrying_sql_are_always_quoted() {
    let p = Pipeline::new("inject", "on_error = \"stop\"").await;
    let db = &p.db;
    let table = "t`; DROP TABLE victim; -- '";
    let q = |n: &str| format!("`{}`", n.replace('`', "``"));
    let ddl = format!(
        "CREATE TABLE {db}.{} (id INT PRIMARY KEY, {} VARCHAR(40), {} INT)",
        q(table),
        q("v`); DELETE FROM victim; --"),
        q("it's \"x\"")
    );
    for url in [kit::source_url(), kit::target_url()] {
        exec(
            &url,
            &[
                &format!("CREATE DATABASE {db}"),
                &ddl,
                &format!("CREATE TABLE {db}.victim (id INT PRIMARY KEY)"),
                &format!("INSERT INTO {db}.victim VALUES (1)"),
            ],
        )
        .await;
    }
    let mut capture = p.capture();
    let mut apply = p.apply();
    let t = format!("{db}.{}", q(table));
    exec(
        &kit::source_url(),
        &[
            &format!("INSERT INTO {t} VALUES (1, 'a''; DROP TABLE victim; --', 1), (2, '`b`', 2), (3, 'c', 3)"),
            &format!("UPDATE {t} SET id = 10 WHERE id = 1"),
            &format!("DELETE FROM {t} WHERE id = 2"),
        ],
    )
    .await;
    p.wait_table_in_sync(&regex::escape(table)).await;
    assert_eq!(
        count(&format!("SELECT COUNT(*) FROM {t} WHERE id IN (3, 10)")).await,
        2
    );
    assert_eq!(
        count(&format!("SELECT COUNT(*) FROM {db}.victim")).await,
        1,
        "the victim table and its row are untouched"
    );
    kill9(&mut apply);
    kill9(&mut capture);
}
