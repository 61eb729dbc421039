//! The whole pipeline, MariaDB → capture → broker → apply → MariaDB, on the real stack:
//! every type, multi-table and rolled-back transactions, key shifts, duplicate rows
//! without a key, a 16 MiB row; then `verify` says identical.
#![cfg(feature = "it")]

mod common;

use std::time::Duration;

use common::*;
use otter_apply::mapping::Mapping;
use otter_testkit as kit;

fn types_table(db: &str) -> String {
    format!(
        "CREATE TABLE {db}.t (id INT PRIMARY KEY,
          ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
          mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
          f FLOAT, d DOUBLE, dec65 DECIMAL(65,30), dec52 DECIMAL(5,2),
          dt DATE, dtm DATETIME, dtm6 DATETIME(6), ts TIMESTAMP(3) NULL, tm TIME, tm4 TIME(4), y YEAR,
          c CHAR(10), vc VARCHAR(300), l1 VARCHAR(20) CHARACTER SET latin1, tx TEXT,
          bin BINARY(8), vb VARBINARY(20), bl BLOB,
          e ENUM('a','b','c'), s SET('x','y','z'), b1 BIT(1), b64 BIT(64), j JSON, g GEOMETRY,
          gen INT AS (i + 1) VIRTUAL, gens INT AS (i DIV 2) STORED,
          upd TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6))"
    )
}

const TYPES_INSERT: &str = "INSERT INTO {db}.t (id, ti, tiu, si, siu, mi, miu, i, iu, bi, biu, f, d, dec65, dec52,
      dt, dtm, dtm6, ts, tm, tm4, y, c, vc, l1, tx, bin, vb, bl, e, s, b1, b64, j, g) VALUES
     (1, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295,
      -9223372036854775808, 18446744073709551615, -0.1, 1.7976931348623157e308,
      '-12345678901234567890123456789012345.123456789012345678901234567890', -999.99,
      '0000-00-00', '9999-12-31 23:59:59', '2024-02-29 12:34:56.000001', '2038-01-19 03:14:07.999',
      '-838:59:59', '12:00:00.5', 1901, 'abc', 'ü€𝄞 \\' \\\\ \"', 'Zoë€\u{81}', 'text',
      x'0102', x'00ff0000', x'', 'b', 'x,z', b'1', x'ffffffffffffffff',
      '{\"a\": [1, 2.50, \"x\"],  \"b\": null}', ST_GeomFromText('POINT(1 2)')),
     (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
      NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '', NULL, NULL, NULL, NULL),
     (3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3.4028234e38, 2.2250738585072014e-308, '0.000000000000000000000000000001', 0,
      '2024-00-00', '0000-00-00 00:00:00', '1000-01-01 00:00:00.5', '0000-00-00 00:00:00', '838:59:59.0', '-00:00:01.0001', 2155,
      '', '', '', '', x'00', x'00', x'00', 'c', 'x,y,z', b'0', b'0', '[]', ST_GeomFromText('LINESTRING(0 0, 1 1)'))";

/// Every value as text literals: no statement is prepared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_and_shape_arrives_identical_as_text() {
    every_type_and_shape("prepared_min_rows = 0").await;
}

/// Every value as prepared-statement parameters (binary protocol), even single rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_and_shape_arrives_identical_as_parameters() {
    every_type_and_shape("prepared_min_rows = 1").await;
}

async fn every_type_and_shape(apply_extra: &str) {
    let p = Pipeline::new("e2e", apply_extra).await;
    let db = &p.db;
    both(&[
        &format!("CREATE DATABASE {db}"),
        &types_table(db),
        &format!("CREATE TABLE {db}.orders (id INT PRIMARY KEY, customer VARCHAR(20), total DECIMAL(10,2))"),
        &format!("CREATE TABLE {db}.lines (order_id INT, line INT, sku VARCHAR(20), PRIMARY KEY (order_id, line))"),
        &format!("CREATE TABLE {db}.shift (id INT PRIMARY KEY, v VARCHAR(10))"),
        &format!("CREATE TABLE {db}.nopk (n INT, tag VARCHAR(10), f FLOAT)"),
        &format!("CREATE TABLE {db}.blobs (id INT PRIMARY KEY, b LONGBLOB)"),
    ])
    .await;
    let mut capture = p.capture();
    let mut apply = p.apply();
    let src = kit::source_url();
    exec(
        &src,
        &[
            &TYPES_INSERT.replace("{db}", db),
            &format!("UPDATE {db}.t SET dec52 = 0.01, y = 2000, vc = 'Ab ' WHERE id = 1"),
            &format!("DELETE FROM {db}.t WHERE id = 2"),
            // Multi-table transaction.
            "BEGIN",
            &format!("INSERT INTO {db}.orders VALUES (1, 'ann', 10.50), (2, 'bob', 0.01)"),
            &format!("INSERT INTO {db}.lines VALUES (1, 1, 'a'), (1, 2, 'b'), (2, 1, 'c')"),
            &format!("UPDATE {db}.orders SET total = total + 1"),
            "COMMIT",
            // Rolled back: nothing of it may arrive.
            "BEGIN",
            &format!("INSERT INTO {db}.orders VALUES (3, 'eve', 1)"),
            &format!("DELETE FROM {db}.lines"),
            "ROLLBACK",
            // Keys shifted into each other's old values, both ways, and a swap via a gap.
            &format!("INSERT INTO {db}.shift VALUES (1,'a'),(2,'b'),(3,'c'),(4,'d')"),
            &format!("UPDATE {db}.shift SET id = id + 1 ORDER BY id DESC"),
            &format!("UPDATE {db}.shift SET id = id - 1 ORDER BY id"),
            &format!("UPDATE {db}.shift SET id = 100 WHERE id = 1"),
            &format!("UPDATE {db}.shift SET id = 1 WHERE id = 2"),
            &format!("UPDATE {db}.shift SET id = 2 WHERE id = 100"),
            // Duplicate rows without a key stay duplicates.
            &format!("INSERT INTO {db}.nopk VALUES (1,'a',0.1),(1,'a',0.1),(1,'a',0.1),(2,'B',NULL),(2,'b',NULL)"),
            &format!("DELETE FROM {db}.nopk WHERE n = 1 LIMIT 1"),
            &format!("UPDATE {db}.nopk SET tag = 'c' WHERE tag = 'b' LIMIT 1"),
            &format!("UPDATE {db}.nopk SET n = 9 WHERE n = 1 LIMIT 1"),
            // 16 MiB row.
            &format!("INSERT INTO {db}.blobs VALUES (1, REPEAT(x'a5', 16 * 1024 * 1024)), (2, x'00')"),
            &format!("UPDATE {db}.blobs SET b = CONCAT(b, x'0000') WHERE id = 2"),
        ],
    )
    .await;
    // ON UPDATE CURRENT_TIMESTAMP must carry the source's value, not the target's clock.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    exec(
        &src,
        &[&format!("UPDATE {db}.t SET tx = 'later' WHERE id = 3")],
    )
    .await;
    p.wait_in_sync(Duration::from_secs(90)).await;

    let reports = p.verify(&Mapping::identity()).await;
    assert_eq!(reports.len(), 6, "all tables compared");
    let nopk = target_rows(&format!(
        "SELECT n, tag, COUNT(*) FROM {db}.nopk GROUP BY n, tag ORDER BY n, tag"
    ))
    .await;
    let got: Vec<(i64, String, i64)> = nopk
        .into_iter()
        .map(mysql_async::from_row::<(i64, String, i64)>)
        .collect();
    assert_eq!(
        got,
        vec![
            (1, "a".into(), 1),
            (2, "b".into(), 1),
            (2, "c".into(), 1),
            (9, "a".into(), 1)
        ],
        "the source's case-insensitive `WHERE tag = 'b'` hit 'B' first; the target matched the exact row"
    );
    kill9(&mut apply);
    kill9(&mut capture);
    let log = p.log("apply.log");
    let errors = error_lines(&log);
    assert!(
        errors.is_empty(),
        "apply logged errors:\n{}",
        errors.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mappings_rename_exclude_and_merge_tables() {
    let target_db = kit::unique("mapped");
    let rules = format!(
        r#"
[[map]]
source_db = "{{db}}"
source_table = "shard_\\d+"
target_db = "{target_db}"
target_table = "merged"
[[map]]
source_db = "{{db}}"
source_table = "people"
target_db = "{target_db}"
target_table = "persons"
columns = {{ name = "full_name" }}
exclude = ["secret"]
"#
    );
    let p = Pipeline::new("map", "").await;
    let db = p.db.clone();
    let rules = rules.replace("{db}", &db);
    let mut text = std::fs::read_to_string(&p.apply_config).expect("config");
    text.push_str(&rules);
    std::fs::write(&p.apply_config, text).expect("config");
    exec(
        &kit::source_url(),
        &[
            &format!("CREATE DATABASE {db}"),
            &format!("CREATE TABLE {db}.shard_1 (id INT PRIMARY KEY, v INT)"),
            &format!("CREATE TABLE {db}.shard_2 (id INT PRIMARY KEY, v INT)"),
            &format!("CREATE TABLE {db}.people (id INT PRIMARY KEY, name VARCHAR(20), secret VARCHAR(20))"),
        ],
    )
    .await;
    exec(
        &kit::target_url(),
        &[
            &format!("CREATE DATABASE {target_db}"),
            &format!("CREATE TABLE {target_db}.merged (id INT PRIMARY KEY, v INT)"),
            &format!(
                "CREATE TABLE {target_db}.persons (id INT PRIMARY KEY, full_name VARCHAR(20))"
            ),
        ],
    )
    .await;
    let mut capture = p.capture();
    let mut apply = p.apply();
    exec(
        &kit::source_url(),
        &[
            &format!("INSERT INTO {db}.shard_1 VALUES (1, 10), (2, 20)"),
            &format!("INSERT INTO {db}.shard_2 VALUES (3, 30)"),
            &format!("UPDATE {db}.shard_2 SET v = 31"),
            &format!("INSERT INTO {db}.people VALUES (1, 'ann', 'pw1'), (2, 'bob', 'pw2')"),
            &format!("UPDATE {db}.people SET name = 'Bob' WHERE id = 2"),
        ],
    )
    .await;
    let mapping = Mapping::new(
        &otter_apply::config::Config::load(&p.apply_config)
            .expect("config")
            .map,
    )
    .expect("rules");
    let people = kit::eventually(Duration::from_secs(60), "people mapped", || async {
        let r = verify_tables(&format!("{db}\\.people"), &mapping).await;
        Ok(r.first().filter(|r| r.identical()).cloned())
    })
    .await;
    let people = people.unwrap_or_else(|e| panic!("{e}\n{}", tail(&p.log("apply.log"), 30)));
    assert_eq!(people.target.table, "persons");
    let merged = kit::eventually(Duration::from_secs(30), "shards merged", || async {
        let rows = target_rows(&format!("SELECT id, v FROM {target_db}.merged ORDER BY id")).await;
        let rows: Vec<(i64, i64)> = rows.into_iter().map(mysql_async::from_row).collect();
        Ok((rows == vec![(1, 10), (2, 20), (3, 31)]).then_some(rows))
    })
    .await;
    merged.unwrap_or_else(|e| panic!("{e}\n{}", tail(&p.log("apply.log"), 30)));
    kill9(&mut apply);
    kill9(&mut capture);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_prints_statements_and_writes_nothing() {
    let p = Pipeline::new("dry", "").await;
    let db = &p.db;
    let mut text = std::fs::read_to_string(&p.apply_config).expect("config");
    text = format!("dry_run = true\n{text}");
    std::fs::write(&p.apply_config, text).expect("config");
    both(&[
        &format!("CREATE DATABASE {db}"),
        &format!("CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(10))"),
    ])
    .await;
    let mut capture = p.capture();
    exec(
        &kit::source_url(),
        &[
            &format!("INSERT INTO {db}.t VALUES (1, 'x'), (2, 'y')"),
            &format!("DELETE FROM {db}.t WHERE id = 2"),
        ],
    )
    .await;
    let mut apply = p.apply_piped();
    tokio::time::sleep(Duration::from_secs(8)).await;
    stop(&mut apply);
    let out = apply.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("-- dry run: topic"),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("INSERT INTO `{db}`.`t` (`id`,`v`) VALUES (1,'x')")),
        "{stdout}"
    );
    let rows = target_rows(&format!("SELECT COUNT(*) FROM {db}.t")).await;
    let n: i64 = mysql_async::from_row(rows.into_iter().next().expect("row"));
    assert_eq!(n, 0, "dry run wrote nothing");
    kill9(&mut capture);
}

/// A backlog far over `apply.max_inflight_bytes` (1 MiB here), spread over every
/// partition of two tables and with rows larger than the whole budget (chunked
/// records): batches end early on the shared budget, a worker with nothing in hand
/// still takes its next record, and the target ends identical.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_over_the_in_flight_budget_arrives_identical() {
    let p = Pipeline::new("budget", "max_inflight_bytes = 1048576").await;
    let db = &p.db;
    both(&[
        &format!("CREATE DATABASE {db}"),
        &format!("CREATE TABLE {db}.a (id INT PRIMARY KEY, body MEDIUMTEXT)"),
        &format!("CREATE TABLE {db}.b (id INT PRIMARY KEY, body MEDIUMTEXT)"),
    ])
    .await;
    let _capture = p.capture();
    let src = kit::source_url();
    // ~2.4 MB per table in 8 KB rows, in transactions of 50 rows, then two 2 MB rows.
    let mut sql = Vec::new();
    for t in ["a", "b"] {
        for chunk in 0..6 {
            let rows: Vec<String> = (0..50)
                .map(|i| format!("({}, REPEAT('{t}{i}', 2000))", chunk * 50 + i))
                .collect();
            sql.push(format!("INSERT INTO {db}.{t} VALUES {}", rows.join(",")));
        }
        sql.push(format!(
            "UPDATE {db}.{t} SET body = REPEAT('u', 2097152) WHERE id IN (7, 8)"
        ));
    }
    let sql: Vec<&str> = sql.iter().map(String::as_str).collect();
    exec(&src, &sql).await;
    // Apply starts on the whole backlog at once.
    let _apply = p.apply();
    p.wait_in_sync(Duration::from_secs(120)).await;
}
