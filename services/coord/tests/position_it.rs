//! The position store against the real ZooKeeper `make test` starts: a writer that
//! was overtaken by another gets a conflict and overwrites nothing.
#![cfg(feature = "it")]

use std::time::Duration;

use otter_coord::{CapturePosition, CoordError, PositionStore};
use otter_core::ErrorClass;
use otter_testkit as kit;

fn pos(offset: u64) -> CapturePosition {
    CapturePosition {
        file: "mariadb-bin.000003".into(),
        offset,
        gtids: "0-1-7".into(),
        source_server_id: 1,
        updated_ms: 0,
        source_ts: 0,
        schema_versions: vec![],
    }
}

async fn store(root: &str) -> PositionStore {
    let client = otter_coord::connect(&kit::zookeeper(), root, Duration::from_secs(6))
        .await
        .expect("ZooKeeper reachable");
    PositionStore::new(client, "p")
}

#[tokio::test]
async fn an_overtaken_writer_gets_a_conflict_and_overwrites_nothing() {
    let root = format!("/otter-it/{}", kit::unique("coord"));
    let mut first = store(&root).await;
    let mut second = store(&root).await;
    assert_eq!(
        first.load().await.expect("readable"),
        None,
        "fresh root has no position"
    );
    first
        .save(&pos(100))
        .await
        .expect("first write creates the node");
    assert_eq!(second.load().await.expect("readable"), Some(pos(100)));
    second
        .save(&pos(200))
        .await
        .expect("second writer takes over");

    let err = first
        .save(&pos(300))
        .await
        .expect_err("first writer was overtaken");
    assert!(matches!(err, CoordError::Conflict { .. }), "{err}");
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert_eq!(
        second.load().await.expect("readable"),
        Some(pos(200)),
        "nothing overwritten"
    );

    // A store that never read the node must not create it over an existing one.
    let mut blind = store(&root).await;
    let err = blind.save(&pos(400)).await.expect_err("node exists");
    assert!(matches!(err, CoordError::Conflict { .. }), "{err}");
}

#[tokio::test]
async fn garbage_in_the_position_node_is_reported_not_guessed() {
    let root = format!("/otter-it/{}", kit::unique("coord"));
    let client = otter_coord::connect(&kit::zookeeper(), &root, Duration::from_secs(6))
        .await
        .expect("reachable");
    let path = PositionStore::path_for("p");
    let opts =
        zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all());
    client
        .client
        .mkdir(path.rsplit_once('/').expect("has a parent").0, &opts)
        .await
        .expect("parent");
    client
        .client
        .create(&path, b"{not json", &opts)
        .await
        .expect("node");
    let mut s = PositionStore::new(client, "p");
    let err = s.load().await.expect_err("garbage");
    assert!(matches!(err, CoordError::BadData { .. }), "{err}");
    assert!(
        err.to_string().contains("/pipelines/p/capture/position"),
        "{err}"
    );
}

#[tokio::test]
async fn resync_adopts_only_what_this_store_wrote() {
    let root = format!("/otter-it/{}", kit::unique("coord"));
    let mut mine = store(&root).await;
    let mut other = store(&root).await;
    mine.save(&pos(100)).await.expect("first write");
    // The node holds what this store wrote: resync keeps it the owner.
    mine.resync().await.expect("own data");
    mine.save(&pos(150)).await.expect("still the owner");
    // Someone else wrote since: resync refuses instead of adopting their version.
    other.load().await.expect("read");
    other.save(&pos(200)).await.expect("takes over");
    let err = mine.resync().await.expect_err("not ours any more");
    assert!(matches!(err, CoordError::Conflict { .. }), "{err}");
}
