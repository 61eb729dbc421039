use std::sync::Arc;

use otter_core::value::{Date, DateTime, Time, Timestamp};
use otter_core::{ChangeEvent, ColumnKind, Op, TableSchema, Value};

use super::*;
use crate::mapping::Mapping;
use crate::merge::merge;
use crate::sql::statements;
use crate::testing;

fn schema(db: &str, table: &str, cols: &[(&str, ColumnKind)], key: &[usize]) -> Arc<TableSchema> {
    testing::schema(db, table, cols, key, 1)
}

fn ev(
    s: &Arc<TableSchema>,
    op: Op,
    before: Option<Vec<Option<Value>>>,
    after: Option<Vec<Option<Value>>>,
) -> ChangeEvent {
    testing::change(s, op, before, after)
}

fn sizing(max_bytes: usize, prepared_min_rows: usize) -> Sizing {
    Sizing {
        max_bytes,
        prepared_min_rows,
    }
}

/// Text statements only, cut at `max_bytes`.
fn text_only(max_bytes: usize) -> Sizing {
    sizing(max_bytes, 0)
}

fn render(changes: Vec<ChangeEvent>, max_bytes: usize) -> String {
    let runs = merge(&changes).expect("merge");
    let mut out = String::new();
    for run in &runs {
        let shape = Mapping::identity().shape(run.schema()).expect("shape");
        for s in statements(run, &shape, text_only(max_bytes)).expect("statements") {
            out.push_str(&format!(
                "-- {:?}, {} row(s){}\n{};\n",
                s.kind,
                s.rows,
                if s.expect_one { ", exactly one" } else { "" },
                s.sql
            ));
        }
    }
    out
}

fn int(i: i64) -> Option<Value> {
    Some(Value::Int(i))
}
fn text(s: &str) -> Option<Value> {
    Some(Value::Text(s.into()))
}

fn value_cases() -> Vec<(&'static str, Option<Value>)> {
    vec![
        ("null", None),
        ("int", Some(Value::Int(i64::MIN))),
        ("uint", Some(Value::UInt(u64::MAX))),
        ("float", Some(Value::Float(1.1))),
        ("float_max", Some(Value::Float(f32::MAX))),
        ("float_tiny", Some(Value::Float(f32::from_bits(1)))),
        ("double", Some(Value::Double(0.1))),
        ("double_neg_zero", Some(Value::Double(-0.0))),
        (
            "decimal",
            Some(Value::Decimal(
                "-12345678901234567890123456789012345.123456789012345678901234567890".into(),
            )),
        ),
        (
            "date_zero",
            Some(Value::Date(Date {
                year: 0,
                month: 0,
                day: 0,
            })),
        ),
        (
            "datetime",
            Some(Value::DateTime(DateTime {
                date: Date {
                    year: 2024,
                    month: 2,
                    day: 29,
                },
                hour: 23,
                minute: 59,
                second: 58,
                micros: 123_450,
                fsp: 5,
            })),
        ),
        (
            "timestamp",
            Some(Value::Timestamp(Timestamp {
                secs: 1_700_000_000,
                micros: 1,
                fsp: 6,
            })),
        ),
        (
            "timestamp_zero",
            Some(Value::Timestamp(Timestamp {
                secs: 0,
                micros: 0,
                fsp: 0,
            })),
        ),
        (
            "time_negative",
            Some(Value::Time(Time {
                negative: true,
                hours: 838,
                minutes: 59,
                seconds: 59,
                micros: 0,
                fsp: 0,
            })),
        ),
        ("year_zero", Some(Value::Year(0))),
        (
            "text",
            Some(Value::Text(
                "it's a \\ \"test\"\n\r\0\u{1a} ünïcødé € 😀".into(),
            )),
        ),
        (
            "bytes_trailing_zeros",
            Some(Value::Bytes(vec![0xde, 0xad, 0, 0])),
        ),
        ("bytes_empty", Some(Value::Bytes(vec![]))),
        ("enum", Some(Value::Enum("b'c".into()))),
        ("set", Some(Value::Set(vec!["a".into(), "c".into()]))),
        ("bit", Some(Value::Bit(0b1011))),
        (
            "json",
            Some(Value::Json("{\"a\": [1, 2.50, \"x\\\"y\"]}".into())),
        ),
        (
            "geometry",
            Some(Value::Geometry(vec![0, 0, 0, 0, 1, 1, 0, 0, 0])),
        ),
    ]
}

#[test]
fn every_value_kind_has_an_exact_literal() {
    let mut out = String::new();
    for (name, v) in &value_cases() {
        out.push_str(name);
        out.push_str(" = ");
        push_literal(&mut out, name, v.as_ref()).expect("literal");
        out.push('\n');
    }
    insta::assert_snapshot!(out);
}

/// The parameters carry what the literals say: numbers in binary, the rest as the
/// literal's string (binary data raw, not hex).
#[test]
fn every_value_kind_has_an_exact_parameter() {
    let mut out = String::new();
    for (name, v) in &value_cases() {
        let (p, _) = param(name, v.as_ref()).expect("parameter");
        let binary = matches!(v, Some(Value::Bytes(_) | Value::Geometry(_)));
        let shown = match &p {
            mysql_async::Value::Bytes(b) if binary => format!("Bytes({b:02x?})"),
            mysql_async::Value::Bytes(b) => {
                format!("Bytes({:?})", std::str::from_utf8(b).expect("utf-8 text"))
            }
            p => format!("{p:?}"),
        };
        out.push_str(&format!("{name} = {shown}\n"));
    }
    insta::assert_snapshot!(out);
}

#[test]
fn values_without_a_literal_are_errors_naming_the_column() {
    let mut s = String::new();
    for v in [
        Value::Double(f64::NAN),
        Value::Float(f32::INFINITY),
        Value::Decimal("1e5".into()),
        Value::JsonDiff(vec![]),
    ] {
        let e = push_literal(&mut s, "c", Some(&v)).expect_err("no literal");
        assert!(e.to_string().starts_with("column `c`: "), "{e}");
        let e = param("c", Some(&v)).expect_err("no parameter");
        assert!(e.to_string().starts_with("column `c`: "), "{e}");
    }
}

#[test]
fn floats_parse_back_to_the_same_bits() {
    for f in [
        1.1f32,
        f32::MAX,
        f32::MIN_POSITIVE,
        f32::from_bits(1),
        -3.4e-5,
        16_777_217.0,
    ] {
        let mut s = String::new();
        push_literal(&mut s, "f", Some(&Value::Float(f))).expect("literal");
        let back: f64 = s.parse().expect("a number");
        assert_eq!(back as f32, f, "{s}");
        assert_eq!(back, f64::from(f), "{s} is the exact widening");
    }
}

#[test]
fn upserts_and_deletes_with_a_composite_key_and_nulls() {
    let s = schema(
        "shop",
        "order_lines",
        &[
            ("order_id", ColumnKind::Int),
            ("line", ColumnKind::Int),
            ("sku", ColumnKind::Text),
            ("qty", ColumnKind::Int),
        ],
        &[0, 1],
    );
    insta::assert_snapshot!(render(
        vec![
            ev(
                &s,
                Op::Insert,
                None,
                Some(vec![int(1), int(1), text("a"), int(2)])
            ),
            ev(&s, Op::Insert, None, Some(vec![int(1), int(2), None, None])),
            ev(
                &s,
                Op::Update,
                Some(vec![int(1), int(1), text("a"), int(2)]),
                Some(vec![int(1), int(1), text("a"), int(3)])
            ),
            ev(
                &s,
                Op::Delete,
                Some(vec![int(7), int(1), text("z"), int(1)]),
                None
            ),
            ev(
                &s,
                Op::Delete,
                Some(vec![int(7), int(2), text("z"), int(1)]),
                None
            ),
        ],
        1 << 20
    ));
}

#[test]
fn a_key_change_deletes_the_old_key_and_upserts_the_new() {
    let s = schema(
        "shop",
        "items",
        &[("id", ColumnKind::Int), ("name", ColumnKind::Text)],
        &[0],
    );
    // `UPDATE items SET id = id + 1 ORDER BY id DESC` on ids 1 and 2, as capture publishes it.
    insta::assert_snapshot!(render(
        vec![
            ev(&s, Op::Delete, Some(vec![int(2), text("b")]), None),
            ev(&s, Op::Insert, None, Some(vec![int(3), text("b")])),
            ev(&s, Op::Delete, Some(vec![int(1), text("a")]), None),
            ev(&s, Op::Insert, None, Some(vec![int(2), text("a")])),
        ],
        1 << 20
    ));
}

#[test]
fn reserved_words_and_unicode_identifiers_are_quoted() {
    let s = schema(
        "select",
        "ta`ble ü",
        &[
            ("order", ColumnKind::Int),
            ("größe", ColumnKind::Text),
            ("`", ColumnKind::Int),
        ],
        &[0],
    );
    insta::assert_snapshot!(render(
        vec![
            ev(&s, Op::Insert, None, Some(vec![int(1), text("x"), int(2)])),
            ev(&s, Op::Delete, Some(vec![int(9), text("y"), None]), None),
        ],
        1 << 20
    ));
}

#[test]
fn a_table_of_only_key_columns_gets_a_no_op_assignment() {
    let s = schema(
        "db",
        "tags",
        &[("a", ColumnKind::Int), ("b", ColumnKind::Text)],
        &[0, 1],
    );
    insta::assert_snapshot!(render(
        vec![ev(&s, Op::Insert, None, Some(vec![int(1), text("x")]))],
        1 << 20
    ));
}

#[test]
fn keyless_changes_match_the_whole_before_image_one_row_at_a_time() {
    let s = schema(
        "db",
        "log",
        &[
            ("at", ColumnKind::Int),
            ("msg", ColumnKind::Text),
            ("f", ColumnKind::Float),
        ],
        &[],
    );
    let r = vec![int(1), text("Dup "), Some(Value::Float(0.5))];
    insta::assert_snapshot!(render(
        vec![
            ev(&s, Op::Insert, None, Some(r.clone())),
            ev(&s, Op::Insert, None, Some(r.clone())),
            ev(
                &s,
                Op::Update,
                Some(r.clone()),
                Some(vec![int(2), None, None])
            ),
            ev(&s, Op::Delete, Some(vec![int(2), None, None]), None),
            ev(&s, Op::Insert, None, Some(r)),
        ],
        1 << 20
    ));
}

#[test]
fn statements_split_at_the_size_limit_but_a_big_row_still_goes() {
    let s = schema(
        "db",
        "t",
        &[("id", ColumnKind::Int), ("v", ColumnKind::Text)],
        &[0],
    );
    let changes: Vec<_> = (0..5)
        .map(|i| {
            ev(
                &s,
                Op::Insert,
                None,
                Some(vec![
                    int(i),
                    text(&"x".repeat(if i == 2 { 300 } else { 10 })),
                ]),
            )
        })
        .collect();
    let runs = merge(&changes).expect("merge");
    let shape = Mapping::identity().shape(runs[0].schema()).expect("shape");
    let stmts = statements(&runs[0], &shape, text_only(150)).expect("statements");
    let rows: Vec<usize> = stmts.iter().map(|s| s.rows).collect();
    assert_eq!(rows.iter().sum::<usize>(), 5);
    assert!(stmts.len() >= 3, "split: {rows:?}");
    for st in &stmts {
        assert!(
            st.sql.len() <= 150 || st.rows == 1,
            "{} bytes for {} rows",
            st.sql.len(),
            st.rows
        );
    }
}

fn insert_run(n: i64, big: &[i64]) -> Vec<ChangeEvent> {
    let s = schema(
        "db",
        "t",
        &[("id", ColumnKind::Int), ("v", ColumnKind::Text)],
        &[0],
    );
    (0..n)
        .map(|i| {
            let len = if big.contains(&i) { 5_000 } else { 10 };
            ev(
                &s,
                Op::Insert,
                None,
                Some(vec![int(i), text(&"x".repeat(len))]),
            )
        })
        .collect()
}

fn prepared(changes: &[ChangeEvent], sizing: Sizing) -> Vec<Stmt> {
    let runs = merge(changes).expect("merge");
    let shape = Mapping::identity().shape(runs[0].schema()).expect("shape");
    statements(&runs[0], &shape, sizing).expect("statements")
}

/// Prepared row counts are powers of two (few statement texts per table); what is left
/// below the threshold goes as text; every row is written once, in order.
#[test]
fn large_inserts_are_prepared_in_power_of_two_runs() {
    let changes = insert_run(45, &[]);
    let stmts = prepared(&changes, sizing(1 << 20, 4));
    let shape: Vec<(usize, bool)> = stmts.iter().map(|s| (s.rows, s.params.is_some())).collect();
    assert_eq!(shape, vec![(32, true), (8, true), (4, true), (1, false)]);
    let first = &stmts[0];
    assert_eq!(first.kind, StmtKind::Upsert);
    assert_eq!(first.sql.matches('?').count(), 64);
    assert!(
        first
            .sql
            .ends_with(" ON DUPLICATE KEY UPDATE `v`=VALUES(`v`)"),
        "{}",
        first.sql
    );
    let ids: Vec<i64> = stmts
        .iter()
        .flat_map(|s| match &s.params {
            Some(p) => p
                .iter()
                .step_by(2)
                .map(|v| match v {
                    mysql_async::Value::Int(i) => *i,
                    v => panic!("id parameter {v:?}"),
                })
                .collect::<Vec<_>>(),
            None => vec![44],
        })
        .collect();
    assert_eq!(ids, (0..45).collect::<Vec<_>>());
    assert!(
        stmts[3].sql.contains("(44,'xxxxxxxxxx')"),
        "{}",
        stmts[3].sql
    );
}

/// A row larger than the statement size goes alone (as text, one row is below any
/// threshold), and the rows around it stay prepared; placeholders stay under the cap.
#[test]
fn a_large_row_goes_alone_and_the_placeholder_cap_holds() {
    let changes = insert_run(40, &[20]);
    let stmts = prepared(&changes, sizing(2_000, 2));
    let shape: Vec<(usize, bool)> = stmts.iter().map(|s| (s.rows, s.params.is_some())).collect();
    assert_eq!(
        shape,
        vec![
            (16, true),
            (4, true),
            (1, false),
            (16, true),
            (2, true),
            (1, false)
        ]
    );
    let changes = insert_run(5_000, &[]);
    let stmts = prepared(&changes, sizing(64 << 20, 16));
    assert!(stmts
        .iter()
        .all(|s| s.sql.matches('?').count() <= MAX_PLACEHOLDERS));
    assert_eq!(
        stmts[0].rows,
        MAX_PLACEHOLDERS / 2,
        "the cap over 2 columns"
    );
    assert_eq!(stmts.iter().map(|s| s.rows).sum::<usize>(), 5_000);
}
