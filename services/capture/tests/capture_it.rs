//! Capture against the real servers `make test` starts: MariaDB source, Tansu,
//! ZooKeeper. Every value type read back exactly from the broker, with rdkafka and
//! with kcat; preconditions refused; large rows carried; the table filter applied.
#![cfg(feature = "it")]

mod common;

use std::time::Duration;

use common::*;
use otter_core::codec::Record;
use otter_core::value::{Date, DateTime, Time, Timestamp, Value};
use otter_core::Op;
use otter_testkit as kit;

fn change(r: &Record) -> &otter_core::ChangeEvent {
    match r {
        Record::Change { event, .. } => event,
        Record::Schema(s) => panic!("expected a change, got DDL {}", s.ddl),
    }
}

fn col<'a>(ev: &'a otter_core::ChangeEvent, row: &'a [Option<Value>], name: &str) -> &'a Value {
    let i = ev
        .schema
        .columns
        .iter()
        .position(|c| c.name == name)
        .unwrap_or_else(|| panic!("no column {name}"));
    row[i]
        .as_ref()
        .unwrap_or_else(|| panic!("{name} not in image"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_column_type_arrives_exactly() {
    let db = kit::unique("types");
    let prefix = kit::unique("it");
    let start = source_head().await;
    let (stop, task) = spawn_capture(config(&kit::unique("p"), &prefix, &db, &start));
    source_exec(&[
        &format!("CREATE DATABASE {db}"),
        "SET SESSION sql_mode = ''",
        "SET SESSION time_zone = '+00:00'",
        &format!(
            "CREATE TABLE {db}.t (id INT PRIMARY KEY,
              ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
              mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
              f FLOAT, d DOUBLE, dec65 DECIMAL(65,30), dec52 DECIMAL(5,2),
              dt DATE, dtm DATETIME, dtm6 DATETIME(6), ts TIMESTAMP(3) NULL, tm TIME, tm4 TIME(4), y YEAR,
              c CHAR(10), vc VARCHAR(300), l1 VARCHAR(20) CHARACTER SET latin1, tx TEXT,
              bin BINARY(8), vb VARBINARY(20), bl BLOB,
              e ENUM('a','b','c'), s SET('x','y','z'), b1 BIT(1), b64 BIT(64), j JSON, g GEOMETRY,
              gen INT AS (i + 1) VIRTUAL, gens INT AS (i DIV 2) STORED)"
        ),
        &format!(
            "INSERT INTO {db}.t (id, ti, tiu, si, siu, mi, miu, i, iu, bi, biu, f, d, dec65, dec52,
              dt, dtm, dtm6, ts, tm, tm4, y, c, vc, l1, tx, bin, vb, bl, e, s, b1, b64, j, g) VALUES
             (1, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295,
              -9223372036854775808, 18446744073709551615, -0.1, 1.7976931348623157e308,
              '-12345678901234567890123456789012345.123456789012345678901234567890', -999.99,
              '0000-00-00', '9999-12-31 23:59:59', '2024-02-29 12:34:56.000001', '2038-01-19 03:14:07.999',
              '-838:59:59', '12:00:00.5', 1901, 'abc', 'ü€𝄞', 'Zoë€', 'text',
              x'0102', x'00ff00', x'', 'b', 'x,z', b'1', x'ffffffffffffffff',
              '{{\"a\": [1, 2.5, \"x\"],  \"b\": null}}', ST_GeomFromText('POINT(1 2)')),
             (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
              NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '', NULL, NULL, NULL, NULL)"
        ),
        &format!("UPDATE {db}.t SET dec52 = 0.01, y = 2155 WHERE id = 1"),
        &format!("DELETE FROM {db}.t WHERE id = 2"),
    ])
    .await;
    let topic = format!("{prefix}.{db}.t");
    // 3 partitions: CREATE TABLE on each, 2 inserts, 1 update, 1 delete.
    let recs = records(&topic, 3 + 4, Duration::from_secs(30)).await;
    let _ = stop.send(true);
    task.await
        .expect("capture task")
        .expect("capture stopped cleanly");

    let changes: Vec<_> = recs
        .iter()
        .filter(|(_, _, r)| matches!(r, Record::Change { .. }))
        .collect();
    assert_eq!(changes.len(), 4, "records: {recs:#?}");
    let (_, key, ins) = changes
        .iter()
        .find(|(_, _, r)| {
            change(r).op == Op::Insert
                && col(change(r), change(r).after.as_deref().expect("after"), "id")
                    == &Value::Int(1)
        })
        .expect("insert of row 1");
    assert_eq!(key, r#"{"id":1}"#);
    let ev = change(ins);
    ev.check().expect("model invariants hold");
    let a = ev.after.as_deref().expect("after image");
    let expect = [
        ("ti", Value::Int(-128)),
        ("tiu", Value::UInt(255)),
        ("si", Value::Int(-32768)),
        ("siu", Value::UInt(65535)),
        ("mi", Value::Int(-8_388_608)),
        ("miu", Value::UInt(16_777_215)),
        ("i", Value::Int(-2_147_483_648)),
        ("iu", Value::UInt(4_294_967_295)),
        ("bi", Value::Int(i64::MIN)),
        ("biu", Value::UInt(u64::MAX)),
        ("f", Value::Float(-0.1f32)),
        ("d", Value::Double(f64::MAX)),
        (
            "dec65",
            Value::Decimal(
                "-12345678901234567890123456789012345.123456789012345678901234567890".into(),
            ),
        ),
        ("dec52", Value::Decimal("-999.99".into())),
        (
            "dt",
            Value::Date(Date {
                year: 0,
                month: 0,
                day: 0,
            }),
        ),
        (
            "dtm",
            Value::DateTime(DateTime {
                date: Date {
                    year: 9999,
                    month: 12,
                    day: 31,
                },
                hour: 23,
                minute: 59,
                second: 59,
                micros: 0,
                fsp: 0,
            }),
        ),
        (
            "dtm6",
            Value::DateTime(DateTime {
                date: Date {
                    year: 2024,
                    month: 2,
                    day: 29,
                },
                hour: 12,
                minute: 34,
                second: 56,
                micros: 1,
                fsp: 6,
            }),
        ),
        (
            "ts",
            Value::Timestamp(Timestamp {
                secs: i32::MAX as u32,
                micros: 999_000,
                fsp: 3,
            }),
        ),
        (
            "tm",
            Value::Time(Time {
                negative: true,
                hours: 838,
                minutes: 59,
                seconds: 59,
                micros: 0,
                fsp: 0,
            }),
        ),
        (
            "tm4",
            Value::Time(Time {
                negative: false,
                hours: 12,
                minutes: 0,
                seconds: 0,
                micros: 500_000,
                fsp: 4,
            }),
        ),
        ("y", Value::Year(1901)),
        ("c", Value::Text("abc".into())),
        ("vc", Value::Text("ü€𝄞".into())),
        ("l1", Value::Text("Zoë€".into())),
        ("tx", Value::Text("text".into())),
        ("bin", Value::Bytes(vec![1, 2, 0, 0, 0, 0, 0, 0])),
        ("vb", Value::Bytes(vec![0, 0xff, 0])),
        ("bl", Value::Bytes(vec![])),
        ("e", Value::Enum("b".into())),
        ("s", Value::Set(vec!["x".into(), "z".into()])),
        ("b1", Value::Bit(1)),
        ("b64", Value::Bit(u64::MAX)),
        (
            "j",
            Value::Json(r#"{"a": [1, 2.5, "x"],  "b": null}"#.into()),
        ),
        ("gen", Value::Int(-2_147_483_647)),
        ("gens", Value::Int(-1_073_741_824)),
    ];
    for (name, want) in &expect {
        assert_eq!(col(ev, a, name), want, "column {name}");
    }
    // POINT(1 2): SRID 0, then WKB little-endian point.
    let mut wkb = vec![0, 0, 0, 0, 1, 1, 0, 0, 0];
    wkb.extend_from_slice(&1f64.to_le_bytes());
    wkb.extend_from_slice(&2f64.to_le_bytes());
    assert_eq!(col(ev, a, "g"), &Value::Geometry(wkb));
    let generated: Vec<&str> = ev
        .schema
        .columns
        .iter()
        .filter(|c| c.generated)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(generated, ["gen", "gens"], "generated columns are marked");

    let nulls = changes
        .iter()
        .map(|(_, _, r)| change(r))
        .find(|e| {
            e.op == Op::Insert && col(e, e.after.as_deref().expect("after"), "id") == &Value::Int(2)
        })
        .expect("row 2");
    let na = nulls.after.as_deref().expect("after");
    assert_eq!(col(nulls, na, "ti"), &Value::Null);
    assert_eq!(col(nulls, na, "y"), &Value::Year(0), "zero year");
    assert_eq!(col(nulls, na, "s"), &Value::Set(vec![]), "empty set");

    let upd = changes
        .iter()
        .map(|(_, _, r)| change(r))
        .find(|e| e.op == Op::Update)
        .expect("update");
    assert_eq!(
        col(upd, upd.before.as_deref().expect("before"), "dec52"),
        &Value::Decimal("-999.99".into())
    );
    assert_eq!(
        col(upd, upd.after.as_deref().expect("after"), "dec52"),
        &Value::Decimal("0.01".into())
    );
    assert_eq!(
        col(upd, upd.after.as_deref().expect("after"), "y"),
        &Value::Year(2155)
    );
    let del = changes
        .iter()
        .map(|(_, _, r)| change(r))
        .find(|e| e.op == Op::Delete)
        .expect("delete");
    assert_eq!(
        col(del, del.before.as_deref().expect("before"), "id"),
        &Value::Int(2)
    );

    // The same topic read by kcat (an independent client) holds the same records.
    let out = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/kcat"))
        .args([
            "-b",
            &kit::brokers(),
            "-C",
            "-t",
            &topic,
            "-e",
            "-o",
            "beginning",
            "-q",
        ])
        .output()
        .expect("infra/kcat runs (make test installs it)");
    assert!(
        out.status.success(),
        "kcat failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout)
        .expect("utf8")
        .lines()
        .collect();
    assert_eq!(lines.len(), recs.len(), "kcat sees every record");
    let via_kcat: Vec<Record> = lines
        .iter()
        .map(|l| otter_core::codec::decode(l.as_bytes()).expect("kcat record decodes"))
        .collect();
    for (_, _, r) in &recs {
        assert!(via_kcat.contains(r), "kcat did not see {r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_without_row_binlog_is_refused_naming_the_variable() {
    // The target instance runs without log_bin.
    let text = config_text(&kit::unique("p"), "x", "nodb", "now", &kit::target_url());
    let cfg = otter_capture::config::Config::parse(&text, "test").expect("valid");
    let (_stop, task) = spawn_capture(cfg);
    let err = tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("refuses quickly")
        .expect("task")
        .expect_err("must refuse");
    assert_eq!(err.class(), otter_core::ErrorClass::Permanent);
    let text = otter_capture::error::chain(&err);
    assert!(text.contains("log_bin: expected ON, found OFF"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_rows_are_carried_whole() {
    let db = kit::unique("big");
    let prefix = kit::unique("it");
    let start = source_head().await;
    let (stop, task) = spawn_capture(config(&kit::unique("p"), &prefix, &db, &start));
    source_exec(&[
        &format!("CREATE DATABASE {db}"),
        &format!("CREATE TABLE {db}.blobs (id INT PRIMARY KEY, b LONGBLOB, t1 MEDIUMTEXT, t2 MEDIUMTEXT)"),
        &format!("INSERT INTO {db}.blobs VALUES (1, REPEAT(x'a5', 16 * 1024 * 1024), REPEAT('x', 1048576), REPEAT('y', 1048576))"),
        &format!("UPDATE {db}.blobs SET t1 = REPEAT('z', 1048576), t2 = REPEAT('w', 1048576) WHERE id = 1"),
    ])
    .await;
    let recs = records(
        &format!("{prefix}.{db}.blobs"),
        3 + 2,
        Duration::from_secs(60),
    )
    .await;
    let _ = stop.send(true);
    task.await.expect("task").expect("capture stopped cleanly");
    let ins = recs
        .iter()
        .map(|(_, _, r)| r)
        .find(|r| matches!(r, Record::Change { event, .. } if event.op == Op::Insert))
        .expect("insert arrived");
    let ev = change(ins);
    let a = ev.after.as_deref().expect("after");
    assert_eq!(col(ev, a, "b"), &Value::Bytes(vec![0xa5; 16 * 1024 * 1024]));
    let upd = recs
        .iter()
        .map(|(_, _, r)| r)
        .find(|r| matches!(r, Record::Change { event, .. } if event.op == Op::Update))
        .expect("update arrived");
    let u = change(upd);
    assert_eq!(
        col(u, u.after.as_deref().expect("after"), "t2"),
        &Value::Text("w".repeat(1_048_576))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn excluded_tables_get_no_topic_and_included_ones_do() {
    let db = kit::unique("flt");
    let prefix = kit::unique("it");
    let start = source_head().await;
    let mut cfg = config(&kit::unique("p"), &prefix, &db, &start);
    cfg.tables.exclude = vec![format!("{db}\\.secret_.*")];
    let (stop, task) = spawn_capture(cfg);
    source_exec(&[
        &format!("CREATE DATABASE {db}"),
        &format!("CREATE TABLE {db}.secret_keys (id INT PRIMARY KEY)"),
        &format!("CREATE TABLE {db}.public (id INT PRIMARY KEY)"),
        &format!("INSERT INTO {db}.secret_keys VALUES (1)"),
        &format!("INSERT INTO {db}.public VALUES (1)"),
    ])
    .await;
    let recs = records(
        &format!("{prefix}.{db}.public"),
        3 + 1,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(recs.len(), 4, "{recs:?}");
    let _ = stop.send(true);
    task.await.expect("task").expect("capture stopped cleanly");
    let secret = kit::read_topic(
        &format!("{prefix}.{db}.secret_keys"),
        1,
        Duration::from_secs(2),
    )
    .await
    .expect("reading the excluded topic works (an absent topic reads as empty)");
    assert!(
        secret.is_empty(),
        "excluded table was published: {secret:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gtid_start_publishes_exactly_the_transactions_after_it() {
    use mysql_async::prelude::Queryable;
    let db = kit::unique("gtid");
    let prefix = kit::unique("it");
    source_exec(&[
        &format!("CREATE DATABASE {db}"),
        &format!("CREATE TABLE {db}.t (id INT PRIMARY KEY)"),
    ])
    .await;
    let mut c = kit::source().await.expect("source");
    c.query_drop(format!("INSERT INTO {db}.t VALUES (1)"))
        .await
        .expect("before the start");
    let gtid: String = c
        .query_first("SELECT @@gtid_binlog_pos")
        .await
        .expect("query")
        .expect("gtid");
    for i in 2..=6 {
        c.exec_drop(format!("INSERT INTO {db}.t VALUES (?)"), (i,))
            .await
            .expect("insert");
    }
    let (stop, task) = spawn_capture(config(
        &kit::unique("p"),
        &prefix,
        &db,
        &format!("gtid:{gtid}"),
    ));
    let recs = records(&format!("{prefix}.{db}.t"), 5, Duration::from_secs(30)).await;
    let _ = stop.send(true);
    task.await.expect("task").expect("capture stopped cleanly");
    let mut ids = inserted_ids(&recs);
    ids.sort_unstable();
    assert_eq!(ids, vec![2, 3, 4, 5, 6]);
}
