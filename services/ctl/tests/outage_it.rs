//! ZooKeeper unreachable: apply keeps applying what is in the broker, the capture stops
//! publishing once its lease runs out (so no two captures can ever be active), both say
//! what they wait for, and everything resumes when ZooKeeper is back. Its own test
//! binary: it stops the ZooKeeper every other control-plane test uses.
#![cfg(feature = "it")]

mod common;

use std::time::Duration;

use common::*;
use otter_testkit as kit;

async fn count(url: &str, db: &str) -> i64 {
    scalar(url, &format!("SELECT COUNT(*) FROM `{db}`.t")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_zookeeper_apply_goes_on_and_capture_stops_at_its_lease() {
    let p = Ctl::new("outage");
    schema(&p.db).await;
    p.create("[capture.kafka]\npartitions = 1\n");
    let names = ["ocap", "oapp"];
    let _cap = p.serve("capture", "ocap");
    let mut app = p.serve("apply", "oapp");
    p.wait_status(
        Duration::from_secs(30),
        "capture and apply running",
        &names,
        |s| s["capture_status"] == "active" && s["apply"][0]["status"] == "applying",
    )
    .await;
    insert_rows(&p.db, 1, 21).await;
    p.wait_in_sync(Duration::from_secs(30), &names).await;

    infra("down", "zookeeper");
    // Written right away: capture still holds its lease and publishes; apply applies
    // without ZooKeeper.
    insert_rows(&p.db, 21, 41).await;
    let applied = kit::eventually(
        Duration::from_secs(20),
        "apply to go on without ZooKeeper",
        || async { Ok((count(&kit::target_url(), &p.db).await == 40).then_some(())) },
    )
    .await;
    // Past the lease (4 s of the 6 s session timeout): capture must have stopped.
    tokio::time::sleep(Duration::from_secs(6)).await;
    insert_rows(&p.db, 41, 61).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = count(&kit::target_url(), &p.db).await;
    let cap_log = p.log("ocap");
    let app_log = p.log("oapp");
    infra("up", "zookeeper");
    applied.unwrap_or_else(|e| panic!("{e}\n{}", p.logs(&names)));
    assert_eq!(
        during,
        40,
        "nothing captured after the lease ran out\n{}",
        p.logs(&names)
    );
    assert!(
        cap_log.contains("leadership lost: stopped publishing")
            && cap_log.contains("ZooKeeper unreachable"),
        "capture says it lost its lease and waits:\n{}",
        tail(&cap_log, 30)
    );
    assert!(
        app_log.contains("ZooKeeper unreachable"),
        "apply says it goes on:\n{}",
        tail(&app_log, 30)
    );
    assert!(matches!(app.0.try_wait(), Ok(None)), "apply kept running");
    // ZooKeeper back: capture is elected again and the rest arrives.
    p.wait_in_sync(Duration::from_secs(60), &names).await;
    assert_eq!(count(&kit::target_url(), &p.db).await, 60);
}
