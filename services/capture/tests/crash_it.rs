//! Kill -9 capture in the middle of a stream of transactions, restart it: every change
//! is in the topics, and the only duplicates are records with identical source
//! positions (re-published after the crash).
#![cfg(feature = "it")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use mysql_async::prelude::Queryable;
use otter_core::codec::Record;
use otter_core::value::Value;
use otter_core::Op;
use otter_testkit as kit;

fn start_capture(config: &std::path::Path, log: &std::path::Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    Command::new(env!("CARGO_BIN_EXE_otter-capture"))
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "info,zookeeper_client=warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("otter-capture starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_loses_nothing_and_duplicates_only_identical_positions() {
    let db = kit::unique("crash");
    let prefix = kit::unique("it");
    let dir = std::env::temp_dir().join(kit::unique("otter-crash"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("capture.toml");
    let log = dir.join("capture.log");
    let start = source_head().await;
    std::fs::write(
        &config,
        config_text(&kit::unique("p"), &prefix, &db, &start, &kit::source_url()),
    )
    .expect("config written");
    source_exec(&[
        &format!("CREATE DATABASE {db}"),
        &format!("CREATE TABLE {db}.seq (id INT PRIMARY KEY, n INT)"),
        &format!("CREATE TABLE {db}.nopk (n INT, tag VARCHAR(10))"),
    ])
    .await;

    const TXNS: i64 = 1500;
    let writer_db = db.clone();
    let writer = tokio::spawn(async move {
        let mut c = kit::source().await.expect("source");
        for i in 0..TXNS {
            let mut tx = c
                .start_transaction(mysql_async::TxOpts::default())
                .await
                .expect("begin");
            tx.exec_drop(format!("INSERT INTO {writer_db}.seq VALUES (?, ?)"), (i, 0))
                .await
                .expect("insert");
            tx.exec_drop(
                format!("UPDATE {writer_db}.seq SET n = n + 1 WHERE id = ?"),
                (i,),
            )
            .await
            .expect("update");
            // Duplicate rows in a key-less table: duplicates must stay exactly two.
            tx.exec_drop(
                format!("INSERT INTO {writer_db}.nopk VALUES (?, 'a'), (?, 'a')"),
                (i, i),
            )
            .await
            .expect("insert");
            tx.commit().await.expect("commit");
            if i % 100 == 0 {
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
        }
    });

    let mut child = start_capture(&config, &log);
    for pause_ms in [700u64, 900, 600] {
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        child = start_capture(&config, &log);
    }
    writer.await.expect("writer finished");

    // Every change: TXNS inserts + TXNS updates into seq, 2*TXNS inserts into nopk.
    let want = (4 * TXNS) as usize;
    let topics = [format!("{prefix}.{db}.seq"), format!("{prefix}.{db}.nopk")];
    let mut by_order: BTreeMap<[u64; 4], Vec<Record>> = BTreeMap::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        by_order.clear();
        for t in &topics {
            for (_, _, r) in records(t, usize::MAX, Duration::from_secs(3)).await {
                if matches!(r, Record::Change { .. }) {
                    by_order.entry(r.order()).or_default().push(r);
                }
            }
        }
        if by_order.len() >= want || std::time::Instant::now() > deadline {
            break;
        }
    }
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
    let log_text = std::fs::read_to_string(&log).expect("capture log written");
    assert_eq!(
        by_order.len(),
        want,
        "every change published exactly once by position; capture log:\n{log_text}"
    );

    let mut duplicated = 0;
    for (order, recs) in &by_order {
        if recs.len() > 1 {
            duplicated += 1;
            assert!(
                recs.iter().all(|r| r == &recs[0]),
                "records at {order:?} differ:\n{recs:#?}"
            );
        }
    }
    // The kills really interrupted the stream (otherwise this test proves little).
    assert!(
        log_text
            .matches("resuming from the stored position")
            .count()
            >= 3,
        "{log_text}"
    );
    eprintln!(
        "{} changes, {duplicated} re-published with identical positions",
        by_order.len()
    );

    // Content: ids 0..TXNS inserted once each; every nopk value inserted exactly twice.
    let mut ids = BTreeSet::new();
    let mut nopk: BTreeMap<i64, usize> = BTreeMap::new();
    for recs in by_order.values() {
        let Record::Change { event, .. } = &recs[0] else {
            continue;
        };
        if event.op != Op::Insert {
            continue;
        }
        let after = event.after.as_deref().expect("insert has an after image");
        let first = match &after[0] {
            Some(Value::Int(n)) => *n,
            other => panic!("unexpected first column {other:?}"),
        };
        if event.schema.table.table == "seq" {
            assert!(ids.insert(first), "id {first} inserted twice");
        } else {
            *nopk.entry(first).or_default() += 1;
        }
    }
    assert_eq!(ids.len(), TXNS as usize);
    assert!(
        nopk.values().all(|&n| n == 2) && nopk.len() == TXNS as usize,
        "key-less duplicates preserved exactly"
    );

    let mut c = kit::source().await.expect("source");
    c.query_drop(format!("DROP DATABASE {db}"))
        .await
        .expect("cleanup");
}
