//! The published wire format stays what `schemas/v1/` says: golden messages are what
//! the encoder writes byte for byte, decode back to the same events, and satisfy the
//! JSON Schemas. Set OTTER_UPDATE_GOLDEN=1 to rewrite them after a reviewed change.

use std::path::PathBuf;
use std::sync::Arc;

use otter_core::codec::{decode, encode_change, encode_key, encode_schema_change, Record};
use otter_core::event::{
    ChangeEvent, Column, Op, SchemaChange, SourceInfo, TableId, TableSchema, TxnMark,
};
use otter_core::value::{ColumnKind, Date, DateTime, JsonDiff, JsonDiffOp, Time, Timestamp, Value};
use otter_core::SourcePos;

fn schemas() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas")
}

fn source(offset: u64, row: u32) -> SourceInfo {
    SourceInfo {
        server_id: 1,
        at: SourcePos::new("mariadb-bin.000042", offset),
        row,
        gtid: Some("0-1-977".into()),
        commit_time_ms: 1_764_000_000_000,
    }
}

fn txn(total: u32, last: bool) -> TxnMark {
    TxnMark {
        id: "0-1-977".into(),
        total_order: total,
        table_order: total,
        last,
    }
}

fn col(name: &str, kind: ColumnKind) -> Column {
    Column {
        name: name.into(),
        kind,
        generated: false,
    }
}

fn all_types_schema() -> Arc<TableSchema> {
    let mut columns: Vec<Column> = ColumnKind::ALL
        .iter()
        .map(|k| col(&format!("c_{}", k.tag()), *k))
        .collect();
    columns.insert(0, col("id", ColumnKind::UInt));
    columns.push(Column {
        name: "c_generated".into(),
        kind: ColumnKind::Int,
        generated: true,
    });
    Arc::new(TableSchema {
        table: TableId::new("shop", "all_types"),
        columns,
        key: vec![0],
        version: 1,
    })
}

fn all_types_row() -> Vec<Option<Value>> {
    let dt = DateTime {
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
    };
    vec![
        Some(Value::UInt(18_446_744_073_709_551_615)),
        Some(Value::Int(-9_223_372_036_854_775_808)),
        Some(Value::UInt(4_294_967_295)),
        Some(Value::Float(0.1)),
        Some(Value::Double(-1.5e300)),
        Some(Value::Decimal(
            "-12345678901234567890123456789012345.123456789012345678901234567890".into(),
        )),
        Some(Value::Date(Date {
            year: 0,
            month: 0,
            day: 0,
        })),
        Some(Value::DateTime(dt)),
        Some(Value::Timestamp(Timestamp {
            secs: 2_147_483_647,
            micros: 999_000,
            fsp: 3,
        })),
        Some(Value::Time(Time {
            negative: true,
            hours: 838,
            minutes: 59,
            seconds: 59,
            micros: 0,
            fsp: 6,
        })),
        Some(Value::Year(2155)),
        Some(Value::Text("Zoë € 𝄞 \"quoted\"\n".into())),
        Some(Value::Bytes(vec![1, 2, 0, 0, 0xff])),
        Some(Value::Enum("medium".into())),
        Some(Value::Set(vec!["a".into(), "c".into()])),
        Some(Value::Bit(5)),
        Some(Value::Json(r#"{"a": [1, 2.5, "x"],  "b": null}"#.into())),
        Some(Value::Geometry(vec![
            0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 240, 63, 0, 0, 0, 0, 0, 0, 0, 64,
        ])),
        Some(Value::Vector(vec![1.5, -0.25])),
        Some(Value::Null),
    ]
}

fn orders_schema() -> Arc<TableSchema> {
    Arc::new(TableSchema {
        table: TableId::new("shop", "orders"),
        columns: vec![
            col("id", ColumnKind::Int),
            col("status", ColumnKind::Enum),
            col("total", ColumnKind::Decimal),
        ],
        key: vec![0],
        version: 3,
    })
}

fn order(id: i64, status: &str, total: &str) -> Vec<Option<Value>> {
    vec![
        Some(Value::Int(id)),
        Some(Value::Enum(status.into())),
        Some(Value::Decimal(total.into())),
    ]
}

fn change(
    schema: &Arc<TableSchema>,
    op: Op,
    before: Option<Vec<Option<Value>>>,
    after: Option<Vec<Option<Value>>>,
    offset: u64,
    row: u32,
) -> ChangeEvent {
    ChangeEvent {
        schema: schema.clone(),
        op,
        before,
        after,
        source: source(offset, row),
        txn: txn(row + 1, false),
    }
}

/// (file name, record, part)
fn samples() -> Vec<(&'static str, Record)> {
    let orders = orders_schema();
    let nopk = Arc::new(TableSchema {
        table: TableId::new("shop", "audit log"),
        columns: vec![
            col("at", ColumnKind::DateTime),
            col("what", ColumnKind::Text),
        ],
        key: vec![],
        version: 1,
    });
    let docs = Arc::new(TableSchema {
        table: TableId::new("shop", "docs"),
        columns: vec![col("id", ColumnKind::Int), col("doc", ColumnKind::Json)],
        key: vec![0],
        version: 1,
    });
    let moved = change(
        &orders,
        Op::Update,
        Some(order(2, "new", "10.00")),
        Some(order(10, "new", "10.00")),
        5120,
        0,
    );
    let at = DateTime {
        date: Date {
            year: 2024,
            month: 1,
            day: 1,
        },
        hour: 10,
        minute: 0,
        second: 0,
        micros: 0,
        fsp: 0,
    };
    vec![
        (
            "insert-all-types",
            Record::Change {
                event: ChangeEvent {
                    schema: all_types_schema(),
                    op: Op::Insert,
                    before: None,
                    after: Some(all_types_row()),
                    source: source(4096, 0),
                    txn: txn(1, true),
                },
                part: 0,
            },
        ),
        (
            "update",
            Record::Change {
                event: change(
                    &orders,
                    Op::Update,
                    Some(order(1, "new", "99.90")),
                    Some(order(1, "paid", "99.90")),
                    4400,
                    0,
                ),
                part: 0,
            },
        ),
        (
            "delete",
            Record::Change {
                event: change(
                    &orders,
                    Op::Delete,
                    Some(order(1, "paid", "99.90")),
                    None,
                    4800,
                    0,
                ),
                part: 0,
            },
        ),
        (
            "key-change-1-delete",
            Record::Change {
                event: ChangeEvent {
                    op: Op::Delete,
                    after: None,
                    ..moved.clone()
                },
                part: 0,
            },
        ),
        (
            "key-change-2-insert",
            Record::Change {
                event: ChangeEvent {
                    op: Op::Insert,
                    before: None,
                    ..moved
                },
                part: 1,
            },
        ),
        (
            "no-primary-key",
            Record::Change {
                event: change(
                    &nopk,
                    Op::Insert,
                    None,
                    Some(vec![
                        Some(Value::DateTime(at)),
                        Some(Value::Text("login".into())),
                    ]),
                    6000,
                    1,
                ),
                part: 0,
            },
        ),
        (
            "mysql-partial-json",
            Record::Change {
                event: ChangeEvent {
                    schema: docs.clone(),
                    op: Op::Update,
                    before: Some(vec![Some(Value::Int(4)), None]),
                    after: Some(vec![
                        None,
                        Some(Value::JsonDiff(vec![JsonDiff {
                            op: JsonDiffOp::Replace,
                            path: "$.age".into(),
                            value: Some("26".into()),
                        }])),
                    ]),
                    source: source(7000, 0),
                    txn: txn(1, true),
                },
                part: 0,
            },
        ),
        (
            "ddl",
            Record::Schema(SchemaChange {
                table: TableId::new("shop", "orders"),
                default_db: "shop".into(),
                ddl: "ALTER TABLE orders ADD COLUMN note VARCHAR(100)".into(),
                kind: otter_core::ddl::DdlKind::AlterTable,
                schema_version: 4,
                tables: vec![TableId::new("shop", "orders")],
                copies: Some(3),
                source: source(8000, 0),
                txn: TxnMark {
                    id: "0-1-978".into(),
                    total_order: 1,
                    table_order: 1,
                    last: true,
                },
            }),
        ),
        (
            // gh-ost's cut-over, as the copy on the new table's stream: the statement's
            // three tables, 3 partitions each.
            "ddl-rename-swap",
            Record::Schema(SchemaChange {
                table: TableId::new("shop", "_orders_gho"),
                default_db: "shop".into(),
                ddl: "RENAME TABLE `orders` TO `_orders_del`, `_orders_gho` TO `orders`".into(),
                kind: otter_core::ddl::DdlKind::RenameTable,
                schema_version: 3,
                tables: vec![
                    TableId::new("shop", "orders"),
                    TableId::new("shop", "_orders_del"),
                    TableId::new("shop", "_orders_gho"),
                ],
                copies: Some(9),
                source: source(9000, 2),
                txn: TxnMark {
                    id: "0-1-990".into(),
                    total_order: 3,
                    table_order: 1,
                    last: true,
                },
            }),
        ),
    ]
}

fn encode(r: &Record) -> (Vec<u8>, Vec<u8>) {
    let (mut key, mut value) = (Vec::new(), Vec::new());
    match r {
        Record::Change { event, part } => {
            encode_key(&mut key, &event.schema, event.identifying_image()).expect("key encodes");
            encode_change(&mut value, event, *part, 0).expect("value encodes");
        }
        Record::Schema(s) => {
            key.extend_from_slice(b"{}");
            encode_schema_change(&mut value, s, 0);
        }
    }
    (key, value)
}

#[test]
fn golden_messages_are_what_the_encoder_writes_and_decode_back() {
    let dir = schemas().join("v1/golden");
    let update = std::env::var("OTTER_UPDATE_GOLDEN").is_ok_and(|v| v == "1");
    for (name, record) in samples() {
        let (key, value) = encode(&record);
        let vpath = dir.join(format!("{name}.json"));
        let kpath = dir.join(format!("{name}.key.json"));
        if update {
            std::fs::write(&vpath, [&value[..], b"\n"].concat()).expect("write golden");
            std::fs::write(&kpath, [&key[..], b"\n"].concat()).expect("write golden key");
        }
        let golden = std::fs::read(&vpath).unwrap_or_else(|e| {
            panic!("{}: {e} (OTTER_UPDATE_GOLDEN=1 writes it)", vpath.display())
        });
        assert_eq!(
            String::from_utf8_lossy(golden.trim_ascii_end()),
            String::from_utf8_lossy(&value),
            "{name}: wire form changed"
        );
        let golden_key = std::fs::read(&kpath).expect("golden key");
        assert_eq!(
            golden_key.trim_ascii_end(),
            &key[..],
            "{name}: key form changed"
        );
        assert_eq!(
            decode(golden.trim_ascii_end()).expect("golden decodes"),
            record,
            "{name}"
        );
    }
}

#[test]
fn every_golden_message_satisfies_the_json_schemas() {
    let load = |p: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(schemas().join(p)).expect("schema file"))
            .expect("schema is JSON")
    };
    let envelope = jsonschema::validator_for(&load("v1/envelope.schema.json"))
        .expect("envelope schema compiles");
    let key = jsonschema::validator_for(&load("v1/key.schema.json")).expect("key schema compiles");
    let mut n = 0;
    for entry in std::fs::read_dir(schemas().join("v1/golden")).expect("golden folder") {
        let path = entry.expect("entry").path();
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("golden is JSON");
        let validator = if path.to_string_lossy().ends_with(".key.json") {
            &key
        } else {
            &envelope
        };
        let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
        n += 1;
    }
    // Besides the samples: messages an older encoder wrote, kept to prove they decode.
    let older = ["ddl-before-kind"];
    assert_eq!(
        n,
        2 * (samples().len() + older.len()),
        "one value and one key file per sample"
    );
}

#[test]
fn the_schema_rejects_what_readers_must_not_accept() {
    let schema: serde_json::Value = serde_json::from_slice(
        &std::fs::read(schemas().join("v1/envelope.schema.json")).expect("read"),
    )
    .expect("json");
    let v = jsonschema::validator_for(&schema).expect("compiles");
    let golden: serde_json::Value = serde_json::from_slice(
        &std::fs::read(schemas().join("v1/golden/update.json")).expect("read"),
    )
    .expect("json");
    assert!(v.is_valid(&golden));
    let mut elected = golden.clone();
    elected["source"]["epoch"] = 12.into();
    assert!(
        v.is_valid(&elected),
        "an elected capture's epoch is allowed"
    );
    elected["source"]["epoch"] = "12".into();
    assert!(!v.is_valid(&elected), "the epoch is a number");
    let mut bad = golden.clone();
    bad["op"] = "x".into();
    assert!(!v.is_valid(&bad), "unknown op");
    let mut bad = golden;
    bad["types"]["id"] = "integer".into();
    assert!(!v.is_valid(&bad), "unknown type tag");
}

#[test]
fn golden_messages_of_every_envelope_version_still_decode() {
    let mut n = 0;
    for version in std::fs::read_dir(schemas()).expect("schemas folder") {
        let dir = version.expect("entry").path().join("golden");
        if !dir.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(&dir).expect("golden folder") {
            let path = entry.expect("entry").path();
            if path.to_string_lossy().ends_with(".key.json") {
                continue;
            }
            let bytes = std::fs::read(&path).expect("read");
            decode(bytes.trim_ascii_end()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            n += 1;
        }
    }
    assert!(n >= samples().len(), "found only {n} golden messages");
}
