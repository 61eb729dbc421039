//! The target session apply writes in: UTC, a sql_mode that keeps zero dates and makes
//! misfits errors, no foreign-key checks, utf8mb4 (see `target::SESSION_SETUP`).
#![cfg(feature = "it")]

use std::time::Duration;

use mysql_async::prelude::Queryable;
use otter_apply::target::Target;
use otter_testkit as kit;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_target_connection_is_set_up_for_exact_writes() {
    let t = Target::new(
        &kit::target_url(),
        "p",
        "otter_it",
        1,
        Duration::from_secs(5),
    )
    .expect("target");
    let mut c = t.conn().await.expect("connect");
    let row: (String, String, i64, String, String, i64) = c
        .query_first(
            "SELECT @@session.time_zone, @@session.sql_mode, @@session.foreign_key_checks, \
             @@session.character_set_client, @@session.character_set_connection, \
             @@session.auto_increment_increment",
        )
        .await
        .expect("query")
        .expect("row");
    assert_eq!(row.0, "+00:00");
    assert_eq!(
        row.1,
        "NO_AUTO_VALUE_ON_ZERO,STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION"
    );
    assert_eq!(row.2, 0);
    assert_eq!((row.3.as_str(), row.4.as_str()), ("utf8mb4", "utf8mb4"));
    // What the settings are for: a zero date and a 0 auto-increment key are kept, a
    // value too long is refused rather than truncated.
    let db = kit::unique("sess");
    for sql in [
        format!("CREATE DATABASE {db}"),
        format!("CREATE TABLE {db}.t (id INT AUTO_INCREMENT PRIMARY KEY, d DATE, s VARCHAR(2))"),
        format!("INSERT INTO {db}.t VALUES (0, '0000-00-00', 'ab')"),
    ] {
        c.query_drop(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let got: (i64, String) = c
        .query_first(format!("SELECT id, CAST(d AS CHAR) FROM {db}.t"))
        .await
        .expect("query")
        .expect("row");
    assert_eq!(got, (0, "0000-00-00".to_owned()));
    let err = c
        .query_drop(format!("INSERT INTO {db}.t VALUES (1, NULL, 'abc')"))
        .await
        .expect_err("too long is an error");
    assert!(err.to_string().contains("1406"), "{err}");
    drop(c);
    t.disconnect().await;
}
