use super::*;
use crate::value::{Date, DateTime, JsonDiff, Time, Timestamp};
use proptest::prelude::*;

fn value_of(kind: ColumnKind) -> BoxedStrategy<Value> {
    let fsp = 0u8..=6;
    let trim = |micros: u32, fsp: u8| micros - micros % 10u32.pow(6 - u32::from(fsp));
    let date =
        (0u16..=9999, 0u8..=12, 0u8..=31).prop_map(|(year, month, day)| Date { year, month, day });
    let v = match kind {
        ColumnKind::Int => any::<i64>().prop_map(Value::Int).boxed(),
        ColumnKind::UInt => any::<u64>().prop_map(Value::UInt).boxed(),
        ColumnKind::Float => any::<f32>()
            .prop_filter("finite", |x| x.is_finite())
            .prop_map(Value::Float)
            .boxed(),
        ColumnKind::Double => any::<f64>()
            .prop_filter("finite", |x| x.is_finite())
            .prop_map(Value::Double)
            .boxed(),
        ColumnKind::Decimal => "-?[0-9]{1,35}(\\.[0-9]{1,30})?"
            .prop_map(Value::Decimal)
            .boxed(),
        ColumnKind::Date => date.prop_map(Value::Date).boxed(),
        ColumnKind::DateTime => (date, 0u8..24, 0u8..60, 0u8..60, 0u32..1_000_000, fsp)
            .prop_map(move |(date, hour, minute, second, micros, fsp)| {
                Value::DateTime(DateTime {
                    date,
                    hour,
                    minute,
                    second,
                    micros: trim(micros, fsp),
                    fsp,
                })
            })
            .boxed(),
        ColumnKind::Timestamp => (any::<u32>(), 0u32..1_000_000, fsp)
            .prop_map(move |(secs, micros, fsp)| {
                let micros = if secs == 0 { 0 } else { trim(micros, fsp) };
                Value::Timestamp(Timestamp { secs, micros, fsp })
            })
            .boxed(),
        ColumnKind::Time => (
            any::<bool>(),
            0u16..=838,
            0u8..60,
            0u8..60,
            0u32..1_000_000,
            fsp,
        )
            .prop_map(move |(negative, hours, minutes, seconds, micros, fsp)| {
                Value::Time(Time {
                    negative,
                    hours,
                    minutes,
                    seconds,
                    micros: trim(micros, fsp),
                    fsp,
                })
            })
            .boxed(),
        ColumnKind::Year => prop_oneof![Just(0u16), 1901u16..=2155]
            .prop_map(Value::Year)
            .boxed(),
        ColumnKind::Text => any::<String>().prop_map(Value::Text).boxed(),
        ColumnKind::Bytes => proptest::collection::vec(any::<u8>(), 0..64)
            .prop_map(Value::Bytes)
            .boxed(),
        ColumnKind::Enum => "[a-z ]{0,8}".prop_map(Value::Enum).boxed(),
        ColumnKind::Set => proptest::collection::vec("[a-z]{1,5}", 0..4)
            .prop_map(Value::Set)
            .boxed(),
        ColumnKind::Bit => any::<u64>().prop_map(Value::Bit).boxed(),
        ColumnKind::Json => prop_oneof![
            "\\{\"[a-z]{1,4}\": [0-9]{1,3}\\}".prop_map(Value::Json),
            proptest::collection::vec(
                ("\\$\\.[a-z]{1,3}", prop::option::of("[0-9]{1,3}")).prop_map(|(path, value)| {
                    JsonDiff {
                        op: if value.is_some() {
                            JsonDiffOp::Replace
                        } else {
                            JsonDiffOp::Remove
                        },
                        path,
                        value,
                    }
                }),
                1..3
            )
            .prop_map(Value::JsonDiff),
        ]
        .boxed(),
        ColumnKind::Geometry => proptest::collection::vec(any::<u8>(), 0..40)
            .prop_map(Value::Geometry)
            .boxed(),
        ColumnKind::Vector => {
            proptest::collection::vec(any::<f32>().prop_filter("finite", |x| x.is_finite()), 0..5)
                .prop_map(Value::Vector)
                .boxed()
        }
    };
    prop_oneof![1 => Just(Value::Null), 6 => v].boxed()
}

fn event_strategy() -> impl Strategy<Value = ChangeEvent> {
    let kinds = proptest::collection::vec(proptest::sample::select(ColumnKind::ALL.to_vec()), 1..8);
    (kinds, 0usize..3, any::<bool>(), 0u8..3).prop_flat_map(|(kinds, nkey, gen0, op)| {
        let nkey = nkey.min(kinds.len());
        let columns: Vec<Column> = kinds
            .iter()
            .enumerate()
            .map(|(i, &kind)| Column {
                name: format!("c{i} \"ü\""),
                kind,
                generated: gen0 && i == kinds.len() - 1,
            })
            .collect();
        let schema = Arc::new(TableSchema {
            table: TableId::new("db", "t.1"),
            columns,
            key: (0..nkey).collect(),
            version: 3,
        });
        let row = kinds
            .iter()
            .enumerate()
            .map(|(i, &k)| {
                if i < nkey {
                    // Key columns are never NULL or absent.
                    value_of(k)
                        .prop_filter("key not null", |v| *v != Value::Null)
                        .prop_map(Some)
                        .boxed()
                } else {
                    prop::option::weighted(0.9, value_of(k)).boxed()
                }
            })
            .collect::<Vec<_>>();
        let op = [Op::Insert, Op::Update, Op::Delete][usize::from(op)];
        (
            Just(schema),
            Just(op),
            row.clone(),
            row,
            any::<u32>(),
            any::<u64>(),
            prop::option::of("[0-9]-[0-9]-[0-9]{1,5}"),
        )
            .prop_map(|(schema, op, b, a, row, offset, gtid)| ChangeEvent {
                schema,
                op,
                before: (op != Op::Insert).then_some(b),
                after: (op != Op::Delete).then_some(a),
                source: SourceInfo {
                    server_id: 7,
                    at: SourcePos::new("mariadb-bin.000003", offset),
                    row,
                    gtid,
                    commit_time_ms: 1_700_000_000_000,
                },
                txn: TxnMark {
                    id: "0-1-9".into(),
                    total_order: 2,
                    table_order: 1,
                    last: false,
                },
            })
    })
}

proptest! {
    #[test]
    fn any_change_event_round_trips(ev in event_strategy(), part in 0u8..2) {
        let mut out = Vec::new();
        encode_change(&mut out, &ev, part, 1).expect("encodes");
        let back = decode(&out).expect("decodes");
        prop_assert_eq!(back, Record::Change { event: ev, part });
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn decoding_mutated_records_never_panics(ev in event_strategy(), at in any::<usize>(), byte: u8) {
        let mut out = Vec::new();
        encode_change(&mut out, &ev, 0, 1).expect("encodes");
        let i = at % out.len();
        out[i] = byte;
        let _ = decode(&out);
    }
}

fn sample() -> ChangeEvent {
    let schema = Arc::new(TableSchema {
        table: TableId::new("shop", "orders"),
        columns: vec![
            Column {
                name: "id".into(),
                kind: ColumnKind::UInt,
                generated: false,
            },
            Column {
                name: "price".into(),
                kind: ColumnKind::Decimal,
                generated: false,
            },
        ],
        key: vec![0],
        version: 1,
    });
    ChangeEvent {
        schema,
        op: Op::Insert,
        before: None,
        after: Some(vec![
            Some(Value::UInt(u64::MAX)),
            Some(Value::Decimal("12.50".into())),
        ]),
        source: SourceInfo {
            server_id: 1,
            at: SourcePos::new("mariadb-bin.000001", 400),
            row: 0,
            gtid: Some("0-1-5".into()),
            commit_time_ms: 1_700_000_000_000,
        },
        txn: TxnMark {
            id: "0-1-5".into(),
            total_order: 1,
            table_order: 1,
            last: true,
        },
    }
}

#[test]
fn key_is_the_primary_key_in_key_order() {
    let ev = sample();
    let mut key = Vec::new();
    encode_key(&mut key, &ev.schema, ev.after.as_deref().expect("insert")).expect("encodes");
    assert_eq!(
        String::from_utf8(key).expect("utf8"),
        r#"{"id":18446744073709551615}"#
    );
}

#[test]
fn future_envelope_versions_are_refused_by_name() {
    let mut out = Vec::new();
    encode_change(&mut out, &sample(), 0, 1).expect("encodes");
    let text = String::from_utf8(out)
        .expect("utf8")
        .replacen("\"v\":1", "\"v\":2", 1);
    let err = decode(text.as_bytes()).expect_err("v2 is not readable");
    assert!(matches!(err, CodecError::Version(2)), "{err}");
}

#[test]
fn a_value_of_the_wrong_type_names_its_column() {
    let mut out = Vec::new();
    encode_change(&mut out, &sample(), 0, 1).expect("encodes");
    let text = String::from_utf8(out)
        .expect("utf8")
        .replace("\"12.50\"", "12.5");
    let err = decode(text.as_bytes()).expect_err("decimal must be text");
    assert!(err.to_string().contains("price"), "{err}");
}

#[test]
fn float_bits_survive_the_wire() {
    for x in [
        0.1f32,
        f32::MIN_POSITIVE,
        f32::MAX,
        -0.0,
        16_777_217.0,
        1.0e-45,
    ] {
        let v = Value::Float(x);
        let mut out = Vec::new();
        write_value(&mut out, &v, "f").expect("finite");
        let j: Json = serde_json::from_slice(&out).expect("json");
        match decode_value(&j, ColumnKind::Float).expect("decodes") {
            Value::Float(y) => assert_eq!(x.to_bits(), y.to_bits(), "{x}"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn non_finite_floats_are_an_error_not_a_null() {
    let mut out = Vec::new();
    assert!(write_value(&mut out, &Value::Double(f64::NAN), "d").is_err());
}

#[test]
fn an_elected_captures_epoch_travels_in_the_source_block() {
    let mut plain = Vec::new();
    encode_change(&mut plain, &sample(), 0, 1).expect("encodes");
    let (rec, epoch) = decode_with_epoch(&plain).expect("decodes");
    assert_eq!(epoch, None);
    let mut stamped = Vec::new();
    encode_change_as(&mut stamped, &sample(), 0, 1, Some(7)).expect("encodes");
    let (rec2, epoch) = decode_with_epoch(&stamped).expect("decodes");
    assert_eq!(epoch, Some(7));
    assert_eq!(rec, rec2, "the epoch changes nothing else");
    let bad = String::from_utf8(stamped)
        .expect("utf8")
        .replace("\"epoch\":7", "\"epoch\":\"7\"");
    let err = decode(bad.as_bytes()).expect_err("epoch must be a number");
    assert!(err.to_string().contains("source.epoch"), "{err}");
}
