//! Faults during a running workload — kill -9 of apply (mid-batch), of capture, of both;
//! a restart of the target MariaDB; a restart of the broker — then the target is
//! identical to the source, and the key-less table (duplicate rows) proves nothing was
//! applied twice.
//!
//! One test in its own binary: it restarts shared servers, which no other test in the
//! same process may see.
#![cfg(feature = "it")]

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use mysql_async::prelude::Queryable;
use otter_testkit as kit;

/// Transactions touching three tables until `stop`: inserts, updates of the previous
/// row, deletes, duplicate rows in a table without a key, and key shifts.
async fn workload(db: String, stop: Arc<AtomicBool>, done: Arc<AtomicU64>) {
    let mut c = kit::source().await.expect("source");
    let mut i: i64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let mut tx = c
            .start_transaction(mysql_async::TxOpts::default())
            .await
            .expect("begin");
        tx.exec_drop(
            format!("INSERT INTO {db}.seq VALUES (?, 0, REPEAT('x', ?))"),
            (i, i % 500),
        )
        .await
        .expect("insert");
        tx.exec_drop(
            format!("UPDATE {db}.seq SET n = n + 1 WHERE id = ?"),
            (i - 1,),
        )
        .await
        .expect("update");
        tx.exec_drop(
            format!("INSERT INTO {db}.nopk VALUES (?, 'a'), (?, 'a')"),
            (i % 50, i % 50),
        )
        .await
        .expect("insert nopk");
        if i % 7 == 0 {
            tx.exec_drop(format!("DELETE FROM {db}.seq WHERE id = ?"), (i - 5,))
                .await
                .expect("delete");
            tx.exec_drop(
                format!("DELETE FROM {db}.nopk WHERE n = ? LIMIT 1"),
                (i % 50,),
            )
            .await
            .expect("delete nopk");
        }
        if i % 25 == 0 {
            tx.query_drop(format!(
                "UPDATE {db}.shift SET id = id + 1 ORDER BY id DESC"
            ))
            .await
            .expect("shift");
        }
        tx.commit().await.expect("commit");
        // About 300 transactions a second: enough to keep every fault mid-stream,
        // without saturating the sqlite-backed broker (whose group coordinator then
        // misses heartbeats).
        tokio::time::sleep(Duration::from_millis(3)).await;
        i += 1;
        done.store(u64::try_from(i).unwrap_or(0), Ordering::Relaxed);
    }
}

/// Lines of apply.log saying this process holds partitions.
fn holding(p: &Pipeline) -> usize {
    p.log("apply.log")
        .lines()
        .filter(|l| l.contains("partitions assigned") && !l.ends_with("partitions=0"))
        .count()
}

/// Waits until an apply instance (re)started after `before` holds partitions, so the
/// next fault hits a working instance (Tansu 0.6 stalls a group whose members die
/// before they ever joined).
async fn wait_working(p: &Pipeline, before: usize) {
    let r = kit::eventually(
        Duration::from_secs(60),
        "apply to hold partitions",
        || async { Ok((holding(p) > before).then_some(())) },
    )
    .await;
    if let Err(e) = r {
        panic!("{e}\n{}", tail(&p.log("apply.log"), 30));
    }
}

fn seed() -> u64 {
    std::env::var("OTTER_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
}

/// A small deterministic generator (xorshift), so a failing run can be repeated.
struct Rng(u64);
impl Rng {
    fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Duration::from_millis(lo + self.0 % (hi - lo))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_during_a_workload_lose_nothing_and_apply_nothing_twice() {
    let seed = seed();
    eprintln!("chaos seed {seed} (repeat with OTTER_CHAOS_SEED={seed})");
    let mut rng = Rng(seed | 1);
    let p = Pipeline::new("crash", "max_batch_records = 200").await;
    let db = p.db.clone();
    both(&[
        &format!("CREATE DATABASE {db}"),
        &format!("CREATE TABLE {db}.seq (id INT PRIMARY KEY, n INT, pad TEXT)"),
        &format!("CREATE TABLE {db}.nopk (n INT, tag VARCHAR(10))"),
        &format!("CREATE TABLE {db}.shift (id INT PRIMARY KEY, v INT)"),
    ])
    .await;
    exec(
        &kit::source_url(),
        &[&format!(
            "INSERT INTO {db}.shift SELECT seq, seq FROM {db}.seq_1_to_50"
        )],
    )
    .await;
    let mut capture = p.capture();
    let mut apply = p.apply();
    let stop_flag = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let writer = tokio::spawn(workload(db.clone(), stop_flag.clone(), done.clone()));
    let step = |what: &str| eprintln!("[{:>6} txns] {what}", done.load(Ordering::Relaxed));

    wait_working(&p, 0).await;
    for _ in 0..3 {
        tokio::time::sleep(rng.ms(300, 1500)).await;
        step("kill -9 apply");
        let before = holding(&p);
        kill9(&mut apply);
        apply = p.apply();
        wait_working(&p, before).await;
    }
    for _ in 0..2 {
        tokio::time::sleep(rng.ms(300, 1500)).await;
        step("kill -9 capture");
        kill9(&mut capture);
        capture = p.capture();
    }
    tokio::time::sleep(rng.ms(300, 1500)).await;
    step("kill -9 capture and apply");
    let before = holding(&p);
    kill9(&mut capture);
    kill9(&mut apply);
    tokio::time::sleep(rng.ms(100, 1000)).await;
    capture = p.capture();
    // Tansu 0.6 keeps the killed member until its session (6 s here) expires, and a
    // rebalance that completes before then can leave the new member with nothing and
    // no further rebalance (README, "Consumer groups"; managed instances have a
    // watchdog for it, this file-configured one does not). Twice in three runs after
    // the capture restarts; let the session expire first.
    tokio::time::sleep(Duration::from_millis(6_500)).await;
    apply = p.apply();
    wait_working(&p, before).await;

    tokio::time::sleep(rng.ms(500, 1500)).await;
    step("restart the target MariaDB");
    tokio::task::spawn_blocking(|| restart("target"))
        .await
        .expect("restart");

    tokio::time::sleep(rng.ms(500, 1500)).await;
    step("restart the broker");
    tokio::task::spawn_blocking(|| restart("broker"))
        .await
        .expect("restart");

    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_flag.store(true, Ordering::Relaxed);
    writer.await.expect("workload");
    step("workload stopped, waiting for the target to catch up");
    p.wait_in_sync(Duration::from_secs(180)).await;
    step("identical");
    let n = done.load(Ordering::Relaxed);
    assert!(n > 100, "the workload ran ({n} transactions)");
    let log = p.log("apply.log");
    // The faults hit a running instance: a batch retried (the target was down while it
    // wrote) or librdkafka lost the broker. In one run of three the target restart
    // left no trace in apply's log (no batch failed while it was down), so the broker
    // disconnect counts as well.
    assert!(
        log.contains("retrying") || log.contains("Disconnected"),
        "apply saw the target or broker restart:\n{}",
        tail(&log, 30)
    );
    kill9(&mut apply);
    kill9(&mut capture);
}
