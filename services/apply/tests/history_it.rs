//! Capture from a source writing table maps without column names, keys, signedness or
//! charsets (`binlog_row_metadata=NO_LOG`, MariaDB's default and what older servers
//! write): names, keys, UNSIGNED, charsets and ENUM members come from capture's schema
//! history, which follows the DDL in the binlog and is persisted with the position, so
//! a capture restarted behind several ALTERs decodes each row with the shape it was
//! written with.
//!
//! Its own test binary: the setting is global on the shared source server, and test
//! binaries run one at a time.
#![cfg(feature = "it")]

mod common;

use std::time::Duration;

use common::*;
use otter_testkit as kit;

/// Sets `binlog_row_metadata` on the source; back to FULL when dropped (also when the
/// test fails), for the other tests.
struct RowMetadata;

impl RowMetadata {
    async fn set(value: &str) -> RowMetadata {
        exec(
            &kit::source_url(),
            &[&format!("SET GLOBAL binlog_row_metadata = '{value}'")],
        )
        .await;
        RowMetadata
    }
}

impl Drop for RowMetadata {
    fn drop(&mut self) {
        let _ = std::thread::spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(exec(
                &kit::source_url(),
                &["SET GLOBAL binlog_row_metadata = 'FULL'"],
            ));
        })
        .join();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_row_metadata_the_schema_history_names_the_columns_across_ddl_and_restarts() {
    let _full_again = RowMetadata::set("NO_LOG").await;
    let p = Pipeline::new("hist", "").await;
    let db = &p.db;
    both(&[
        &format!("CREATE DATABASE {db}"),
        // Existing before capture starts: its shape is seeded from its definition.
        &format!(
            "CREATE TABLE {db}.t1 (id INT UNSIGNED NOT NULL, name VARCHAR(20) CHARACTER SET latin1, \
             e ENUM('x','y'), n INT, PRIMARY KEY (id)) DEFAULT CHARSET=utf8mb4"
        ),
    ])
    .await;
    let src = kit::source_url();
    let mut capture = p.capture();
    let _apply = p.apply();
    exec(
        &src,
        &[
            &format!("INSERT INTO {db}.t1 VALUES (4294967295, 'é1', 'y', -1), (1, 'a', 'x', 1)"),
            &format!("ALTER TABLE {db}.t1 ADD COLUMN c INT NOT NULL DEFAULT 5 AFTER id"),
            &format!("INSERT INTO {db}.t1 (id, c, name, e, n) VALUES (2, 6, 'ü2', 'y', 2)"),
            &format!("UPDATE {db}.t1 SET n = n + 10 WHERE id < 3"),
            // Created in the stream: its shape comes from the statement.
            &format!(
                "CREATE TABLE {db}.t2 (k VARCHAR(8) NOT NULL, v BIGINT UNSIGNED, PRIMARY KEY (k))"
            ),
            &format!("INSERT INTO {db}.t2 VALUES ('a', 18446744073709551615), ('b', 0)"),
            &format!("DELETE FROM {db}.t2 WHERE k = 'b'"),
        ],
    )
    .await;
    p.wait_in_sync(Duration::from_secs(90)).await;

    // Down while t1 changes shape twice: on restart the history, not the table as it
    // is now, decodes the rows logged before each change.
    kill9(&mut capture);
    exec(
        &src,
        &[
            &format!("INSERT INTO {db}.t1 (id, c, name, e, n) VALUES (3, 7, 'ß3', 'x', 3)"),
            &format!("ALTER TABLE {db}.t1 DROP COLUMN n"),
            &format!("INSERT INTO {db}.t1 (id, c, name, e) VALUES (4, 8, 'd4', 'y')"),
            &format!(
                "ALTER TABLE {db}.t1 CHANGE name full_name VARCHAR(30) CHARACTER SET latin1 FIRST"
            ),
            &format!("INSERT INTO {db}.t1 (full_name, id, c, e) VALUES ('é5', 5, 9, 'x')"),
            &format!("UPDATE {db}.t1 SET c = c * 2 WHERE id IN (1, 4)"),
            &format!("RENAME TABLE {db}.t2 TO {db}.t3"),
            &format!("INSERT INTO {db}.t3 VALUES ('c', 7)"),
        ],
    )
    .await;
    capture = p.capture();
    p.wait_in_sync(Duration::from_secs(90)).await;

    let clog = p.log("capture.log");
    assert!(
        clog.contains("binlog_row_metadata is not FULL"),
        "capture says where names come from:\n{}",
        tail(&clog, 20)
    );
    for (what, log) in [("capture", clog.as_str()), ("apply", &p.log("apply.log"))] {
        assert!(
            error_lines(log).is_empty(),
            "{what} logged errors:\n{}",
            error_lines(log).join("\n")
        );
    }
    drop(capture);
}
