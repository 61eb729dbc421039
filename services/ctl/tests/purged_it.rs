//! The source purged the binlog past capture's stored position: capture refuses to
//! start, says what happened and how to recover (in its status, its log and its
//! metrics, which the `OtterBinlogPurged` alert watches), publishes nothing, and
//! resumes once a new start position is set. Its own test binary: it purges the
//! source's binlogs, which no other test may be reading at the time.
#![cfg(feature = "it")]

mod common;

use std::time::Duration;

use common::*;
use otter_testkit as kit;

async fn source_files() -> Vec<String> {
    use mysql_async::prelude::Queryable;
    let mut c = mysql_async::Conn::from_url(kit::source_url())
        .await
        .expect("source");
    let rows: Vec<mysql_async::Row> = c.query("SHOW BINARY LOGS").await.expect("binlogs");
    rows.iter()
        .map(|r| r.get::<String, _>(0).expect("name"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purged_position_stops_capture_with_what_happened_and_how_to_recover() {
    let p = Ctl::new("purged");
    schema(&p.db).await;
    p.create("[capture.kafka]\npartitions = 1\n");
    let names = ["pcap", "papp"];
    let mut cap = p.serve("capture", "pcap");
    let _app = p.serve("apply", "papp");
    p.wait_capture_active(&names).await;
    insert_rows(&p.db, 1, 11).await;
    p.wait_in_sync(Duration::from_secs(60), &names).await;
    // Capture stops at a stored position in the current binlog file.
    cap.signal("-TERM");
    let _ = cap.0.wait();
    let stored = p.ok(&["-o", "json", "position", "show", &p.name]);
    let stored_file = {
        let v: serde_json::Value = serde_json::from_str(&stored).expect("position JSON");
        let text = v.to_string();
        source_files()
            .await
            .into_iter()
            .find(|f| text.contains(f.as_str()))
            .unwrap_or_else(|| panic!("stored position names a source binlog: {stored}"))
    };
    // While it is down the source moves on, and its binlogs up to now are purged.
    insert_rows(&p.db, 11, 21).await;
    exec(&kit::source_url(), &["FLUSH BINARY LOGS"]).await;
    let files = source_files().await;
    let newest = files.last().expect("a binlog").clone();
    // The server skips a file its (just closed) dump thread still holds: try again.
    let mut oldest = String::new();
    for _ in 0..50 {
        exec(
            &kit::source_url(),
            &[&format!("PURGE BINARY LOGS TO '{newest}'")],
        )
        .await;
        oldest = source_files().await.first().expect("a binlog").clone();
        if oldest == newest {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        oldest > stored_file,
        "{stored_file} purged (oldest now {oldest})"
    );

    let _cap = p.serve("capture", "pcap");
    let s = p
        .wait_status(
            Duration::from_secs(30),
            "capture stopped by binlog_purged",
            &names,
            |s| {
                s["capture_status"]
                    .as_str()
                    .is_some_and(|c| c.contains("binlog_purged"))
            },
        )
        .await;
    let message = s["last_error"]["message"].as_str().unwrap_or_default();
    for needed in [
        stored_file.as_str(),
        "purged",
        oldest.as_str(),
        "otterctl position set",
    ] {
        assert!(
            message.contains(needed),
            "last error names {needed:?}: {s:#}"
        );
    }
    assert!(
        p.log("pcap").contains("binlog_purged"),
        "capture's log says it:\n{}",
        p.logs(&["pcap"])
    );
    let metrics = http_get(&endpoint_of(&p, "pcap"), "/metrics").await.1;
    assert!(
        metric(
            &metrics,
            "otter_capture_errors_total",
            &["code=\"binlog_purged\""]
        ) >= 1.0,
        "the error counter the alert watches moved:\n{metrics}"
    );
    // Nothing after the gap was published: rows 11..20 are not on the target.
    assert_eq!(
        scalar(
            &kit::target_url(),
            &format!("SELECT COUNT(*) FROM `{}`.t", p.db)
        )
        .await,
        10
    );

    // Recovery as the message says: stop, re-load what was lost, set a start, start.
    p.ok(&["pipeline", "stop", &p.name]);
    p.wait_status(Duration::from_secs(30), "capture stopped", &names, |s| {
        s["capture_status"] == "active (stopped)"
    })
    .await;
    for i in 11..21 {
        exec(
            &kit::target_url(),
            &[&format!("INSERT INTO `{}`.t VALUES ({i}, 0, 'x')", p.db)],
        )
        .await;
    }
    p.ok(&[
        "position",
        "set",
        &p.name,
        "--file-pos",
        &format!("{oldest}:4"),
    ]);
    p.ok(&["pipeline", "resume", &p.name]);
    insert_rows(&p.db, 21, 31).await;
    p.wait_in_sync(Duration::from_secs(60), &names).await;
}
