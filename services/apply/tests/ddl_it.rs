//! Schema changes through the whole pipeline on the real stack (three partitions per
//! topic): DDL interleaved with DML ends with the target identical to the source, rows
//! and schema; capture restarted after ALTERs it had not read yet decodes the old rows
//! against the old shape; a statement the parser cannot read is applied as written; a
//! DDL the target refuses stops only its table, until `apply.ddl_skip` passes it.
#![cfg(feature = "it")]

mod common;

use std::time::Duration;

use common::*;
use mysql_async::prelude::Queryable;
use otter_testkit as kit;

/// Columns and indexes of every table of `db`, as one comparable text.
async fn schema_of(url: &str, db: &str) -> String {
    let mut c = mysql_async::Conn::from_url(url)
        .await
        .expect("server reachable");
    let cols: Vec<(String, String, u32, String, String, Option<String>)> = c
        .exec(
            "SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION",
            (db,),
        )
        .await
        .expect("columns");
    let idx: Vec<(String, String, u32, String, u32)> = c
        .exec(
            "SELECT TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE \
             FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? \
             ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX",
            (db,),
        )
        .await
        .expect("indexes");
    let _ = c.disconnect().await;
    let mut out = String::new();
    for c in cols {
        out.push_str(&format!("{c:?}\n"));
    }
    for i in idx {
        out.push_str(&format!("{i:?}\n"));
    }
    out
}

async fn wait_same_schema(p: &Pipeline) {
    let db = &p.db;
    let r = kit::eventually(Duration::from_secs(60), "same schema", || async {
        let (s, t) = (
            schema_of(&kit::source_url(), db).await,
            schema_of(&kit::target_url(), db).await,
        );
        Ok((s == t).then_some(()))
    })
    .await;
    if r.is_err() {
        panic!(
            "schemas differ:\n--- source\n{}--- target\n{}--- apply log:\n{}",
            schema_of(&kit::source_url(), db).await,
            schema_of(&kit::target_url(), db).await,
            tail(&p.log("apply.log"), 40)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_mid_stream_leaves_the_target_identical_schema_included() {
    let p = Pipeline::new("ddl", "").await;
    let db = &p.db;
    both(&[
        &format!("CREATE DATABASE {db}"),
        &format!("CREATE TABLE {db}.t1 (id INT PRIMARY KEY, v VARCHAR(10), old INT)"),
        &format!("CREATE TABLE {db}.t2 (id INT PRIMARY KEY, v INT)"),
        &format!("CREATE TABLE {db}.t5 (id INT PRIMARY KEY, v INT)"),
        &format!("CREATE TABLE {db}.t9 (id INT PRIMARY KEY, v INT)"),
    ])
    .await;
    let src = kit::source_url();
    let mut capture = p.capture();
    let apply = p.apply();
    let rows = |t: &str, from: i32, to: i32, cols: &str, val: &str| {
        let values: Vec<String> = (from..=to)
            .map(|i| format!("({i}, {})", val.replace("$", &i.to_string())))
            .collect();
        format!("INSERT INTO {db}.{t} ({cols}) VALUES {}", values.join(","))
    };
    exec(
        &src,
        &[
            &rows("t1", 1, 30, "id, v, old", "'a$', $"),
            &rows("t5", 1, 10, "id, v", "$"),
            &format!("ALTER TABLE {db}.t1 ADD COLUMN c INT NOT NULL DEFAULT 7"),
            &rows("t1", 31, 60, "id, v, old, c", "'b$', $, $"),
            &format!("UPDATE {db}.t1 SET v = 'upd' WHERE id % 7 = 0"),
            &format!("ALTER TABLE {db}.t1 MODIFY COLUMN v VARCHAR(50)"),
            &format!("UPDATE {db}.t1 SET v = 'a value longer than ten' WHERE id = 3"),
            &format!("ALTER TABLE {db}.t1 ADD INDEX ix_c (c)"),
            &format!("CREATE INDEX ix_v ON {db}.t1 (v)"),
            &format!("CREATE TABLE {db}.t3 (id INT PRIMARY KEY, x VARCHAR(10))"),
            &rows("t3", 1, 20, "id, x", "'x$'"),
            &format!("CREATE TABLE {db}.t4 SELECT id, v FROM {db}.t1 WHERE id <= 15"),
            &format!("INSERT INTO {db}.t4 VALUES (100, 'later')"),
            &format!("TRUNCATE TABLE {db}.t3"),
            &rows("t3", 5, 8, "id, x", "'y$'"),
            &format!("CREATE TABLE {db}.t7 (id INT PRIMARY KEY)"),
            &format!("INSERT INTO {db}.t7 VALUES (1)"),
            &format!("DROP TABLE {db}.t7"),
            // MariaDB syntax sqlparser does not read: applied as written.
            &format!("ALTER TABLE {db}.t2 ADD COLUMN IF NOT EXISTS z INT DEFAULT 3"),
            &rows("t2", 1, 10, "id, v, z", "$, $"),
            &format!("ALTER TABLE {db}.t1 DROP INDEX ix_c"),
            // Rows under the new name right after a rename wait for it on the target.
            &format!("RENAME TABLE {db}.t5 TO {db}.t6"),
            &rows("t6", 21, 25, "id, v", "$"),
            // An online schema change as gh-ost does it: a copy made LIKE the table
            // (just altered: the copy must have `z`), altered, filled, then swapped in
            // by one RENAME, the old table dropped, rows written to the new one.
            &format!("CREATE TABLE {db}._t2_gho LIKE {db}.t2"),
            &format!("ALTER TABLE {db}._t2_gho ADD COLUMN w INT NULL"),
            &format!("INSERT INTO {db}._t2_gho (id, v, z) SELECT id, v, z FROM {db}.t2"),
            &format!("RENAME TABLE {db}.t2 TO {db}._t2_del, {db}._t2_gho TO {db}.t2"),
            &format!("DROP TABLE {db}._t2_del"),
            &rows("t2", 11, 15, "id, v, z, w", "$, $, $"),
        ],
    )
    .await;
    p.wait_table_in_sync("t1").await;
    exec(
        &src,
        &[
            &rows("t6", 11, 20, "id, v", "$"),
            &format!("UPDATE {db}.t6 SET v = -v WHERE id < 5"),
        ],
    )
    .await;
    p.wait_in_sync(Duration::from_secs(90)).await;
    wait_same_schema(&p).await;

    // Capture down while the table changes shape twice: on restart, the rows logged
    // before each ALTER decode against the shape they were written with.
    kill9(&mut capture);
    exec(
        &src,
        &[
            &rows("t1", 61, 70, "id, v, old, c", "'c$', $, $"),
            &format!("ALTER TABLE {db}.t1 ADD COLUMN d DATETIME NULL AFTER v"),
            &rows(
                "t1",
                71,
                80,
                "id, v, d, old, c",
                "'d$', '2024-01-02 03:04:05', $, 1",
            ),
            &format!("ALTER TABLE {db}.t1 DROP COLUMN old"),
            &rows("t1", 81, 90, "id, v, d, c", "'e$', NULL, $"),
            &format!("UPDATE {db}.t1 SET c = c + 1 WHERE id BETWEEN 60 AND 85"),
        ],
    )
    .await;
    capture = p.capture();
    p.wait_in_sync(Duration::from_secs(90)).await;
    wait_same_schema(&p).await;

    let log = p.log("apply.log");
    assert!(
        error_lines(&log).is_empty(),
        "unexpected errors:\n{}",
        error_lines(&log).join("\n")
    );
    let clog = p.log("capture.log");
    assert!(
        clog.contains("DDL the SQL parser cannot read") && clog.contains("IF NOT EXISTS z"),
        "capture reports the unparsed statement with its text:\n{}",
        tail(&clog, 20)
    );
    drop((capture, apply));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_ddl_stops_only_its_table_until_ddl_skip_passes_it() {
    let p = Pipeline::new("ddlskip", "").await;
    let db = &p.db;
    both(&[
        &format!("CREATE DATABASE {db}"),
        &format!("CREATE TABLE {db}.ok (id INT PRIMARY KEY, v INT)"),
        &format!("CREATE TABLE {db}.bad (id INT PRIMARY KEY, v INT)"),
    ])
    .await;
    // The target already has the column the source is about to add.
    exec(
        &kit::target_url(),
        &[&format!("ALTER TABLE {db}.bad ADD COLUMN z INT")],
    )
    .await;
    let src = kit::source_url();
    let _capture = p.capture();
    let mut apply = p.apply();
    exec(
        &src,
        &[
            &format!("INSERT INTO {db}.bad VALUES (1, 1)"),
            &format!("ALTER TABLE {db}.bad ADD COLUMN z INT"),
            &format!("INSERT INTO {db}.bad VALUES (2, 2, 2)"),
            &format!("INSERT INTO {db}.ok VALUES (1, 1)"),
        ],
    )
    .await;
    // The other table keeps replicating.
    p.wait_table_in_sync("ok").await;
    let stopped = kit::eventually(Duration::from_secs(30), "the refusal is logged", || async {
        Ok(p.log("apply.log")
            .lines()
            .find(|l| l.contains("partition stopped at a schema change"))
            .map(str::to_owned))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", tail(&p.log("apply.log"), 30)));
    assert!(stopped.contains("Duplicate column"), "{stopped}");
    assert!(stopped.contains("apply.ddl_skip"), "{stopped}");
    exec(&src, &[&format!("INSERT INTO {db}.ok VALUES (2, 2)")]).await;
    p.wait_table_in_sync("ok").await;
    let rows = target_rows(&format!("SELECT id FROM {db}.bad ORDER BY id")).await;
    assert_eq!(rows.len(), 1, "nothing after the refused DDL is applied");

    // The documented way past it: the operator lists its position.
    let pos: Vec<(String, String)> = target_rows(&format!(
        "SELECT source_position, state FROM otter_it.apply_ddl \
         WHERE pipeline = '{}' AND state <> 'done'",
        p.name
    ))
    .await
    .into_iter()
    .map(mysql_async::from_row)
    .collect();
    assert_eq!(pos.len(), 1, "{pos:?}");
    assert_eq!(pos[0].1, "failed");
    kill9(&mut apply);
    let cfg = std::fs::read_to_string(&p.apply_config).expect("config");
    std::fs::write(
        &p.apply_config,
        cfg.replace(
            "retry_ms = 100",
            &format!("retry_ms = 100\nddl_skip = [\"{}\"]", pos[0].0),
        ),
    )
    .expect("config");
    let _apply = p.apply_logging_to("apply2.log");
    p.wait_table_in_sync("bad").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_database_takes_its_tables_on_the_target_too() {
    let p = Pipeline::new("dropdb", "").await;
    let db = &p.db;
    both(&[
        &format!("CREATE DATABASE {db}"),
        &format!("CREATE TABLE {db}.a (id INT PRIMARY KEY, v INT)"),
        &format!("CREATE TABLE {db}.b (id INT PRIMARY KEY)"),
    ])
    .await;
    let src = kit::source_url();
    let _capture = p.capture();
    let _apply = p.apply();
    exec(
        &src,
        &[
            &format!("INSERT INTO {db}.a VALUES (1, 1), (2, 2)"),
            &format!("INSERT INTO {db}.b VALUES (1)"),
            &format!("CREATE TABLE {db}.c (id INT PRIMARY KEY)"),
            &format!("INSERT INTO {db}.c VALUES (7)"),
            // The binlog says only this: the tables it takes are known to capture's
            // schema history (a and b from the start, c from its CREATE).
            &format!("DROP DATABASE {db}"),
            &format!("CREATE DATABASE {db}"),
            &format!("CREATE TABLE {db}.a (id INT PRIMARY KEY, w VARCHAR(5))"),
            &format!("INSERT INTO {db}.a VALUES (3, 'new')"),
        ],
    )
    .await;
    p.wait_in_sync(Duration::from_secs(90)).await;
    // Without the drops the target would keep b, c and the old a (with its rows).
    wait_same_schema(&p).await;
    let log = p.log("apply.log");
    assert!(
        error_lines(&log).is_empty(),
        "unexpected errors:\n{}",
        error_lines(&log).join("\n")
    );
}
