//! The position fence against a real target: a batch commits only on the position it was
//! built from, and fresh partitions started together do not deadlock on their first
//! position rows (gap locks of a locking read of absent keys once did).
#![cfg(feature = "it")]

use std::time::Duration;

use otter_apply::error::ApplyError;
use otter_apply::target::{Commit, Stored, Target};
use otter_testkit as kit;

async fn target(state_db: &str, pool: usize) -> Target {
    let t = Target::new(
        &kit::target_url(),
        "p",
        state_db,
        pool,
        Duration::from_secs(5),
    )
    .expect("target");
    t.prepare(state_db, 1 << 20).await.expect("prepare");
    t
}

fn batch(topic: &str, partition: i32, expected: Option<i64>, next: i64) -> Commit<'_> {
    Commit {
        topic,
        partition,
        expected,
        next: Stored {
            next_offset: next,
            order: Some([1, next as u64, 0, 0]),
        },
        at: None,
        stmts: &mut [],
        skips: &[],
        timing: None,
    }
}

fn fenced(r: Result<Duration, ApplyError>) -> (Option<i64>, Option<i64>) {
    match r {
        Err(ApplyError::Fenced { expected, stored }) => (expected, stored),
        other => panic!("expected a fence, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_commits_only_on_the_position_it_was_built_from() {
    let db = kit::unique("pos");
    let t = target(&db, 2).await;
    assert_eq!(t.load("t", 0).await.expect("load"), None);

    t.commit(&mut batch("t", 0, None, 10))
        .await
        .expect("first batch");
    assert_eq!(
        t.load("t", 0).await.expect("load"),
        Some(Stored {
            next_offset: 10,
            order: Some([1, 10, 0, 0])
        })
    );
    // A second "first batch" (another instance that also saw no row) is fenced and
    // told what is stored; nothing changes.
    assert_eq!(
        fenced(t.commit(&mut batch("t", 0, None, 5)).await),
        (None, Some(10))
    );
    // A batch built on a stale position is fenced too.
    assert_eq!(
        fenced(t.commit(&mut batch("t", 0, Some(7), 12)).await),
        (Some(7), Some(10))
    );
    t.commit(&mut batch("t", 0, Some(10), 20))
        .await
        .expect("next batch");
    assert_eq!(
        t.load("t", 0).await.expect("load").map(|s| s.next_offset),
        Some(20)
    );
    // Partitions are independent.
    assert_eq!(t.load("t", 1).await.expect("load"), None);
    kit::exec(&kit::target_url(), &[&format!("DROP DATABASE `{db}`")]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_partitions_committing_together_neither_deadlock_nor_double_apply() {
    let db = kit::unique("pos");
    let t = target(&db, 16).await;
    // Sixteen first batches at once into the same (empty) key range, then the same
    // sixteen partitions claimed twice at once: exactly one claim of each may win.
    for round in 0..3 {
        let mut tasks = Vec::new();
        for part in 0..16 {
            for _ in 0..2 {
                let t = t.clone();
                let topic = format!("topic_{round}");
                tasks.push(tokio::spawn(async move {
                    t.commit(&mut batch(&topic, part, None, 100))
                        .await
                        .map(|_| ())
                }));
            }
        }
        let mut won = 0;
        for task in tasks {
            match task.await.expect("task") {
                Ok(()) => won += 1,
                Err(ApplyError::Fenced {
                    expected: None,
                    stored: Some(100),
                }) => {}
                Err(e) => panic!("round {round}: {e}"),
            }
        }
        assert_eq!(won, 16, "round {round}: one claim per partition wins");
    }
    kit::exec(&kit::target_url(), &[&format!("DROP DATABASE `{db}`")]).await;
}
