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

/// Leaves put in place of a node by [`mutated`]: each a type or form some field may
/// not accept.
const LEAVES: &[&str] = &[
    "null",
    "0",
    "-0",
    "-1",
    "1.5",
    "1e3",
    "255",
    "256",
    "18446744073709551615",
    "-9223372036854775808",
    "\"\"",
    "\"x\"",
    "\"\\u0063\"",
    "\"int\"",
    "\"2024-02-29\"",
    "true",
    "[]",
    "{}",
    "[1,2,3,4]",
    "{\"json_diff\":[]}",
];

/// `json` with the node at `pick` (in document order) replaced by `leaf`, or removed
/// from its object when `remove`.
fn mutated(json: &Json, pick: usize, leaf: &str, remove: bool) -> Json {
    fn walk(j: &mut Json, n: &mut usize, pick: usize, leaf: &Json, remove: bool) -> bool {
        match j {
            Json::Object(m) => {
                let keys: Vec<String> = m.keys().cloned().collect();
                for k in keys {
                    if *n == pick {
                        if remove {
                            m.shift_remove(&k);
                        } else {
                            m.insert(k, leaf.clone());
                        }
                        return true;
                    }
                    *n += 1;
                    if walk(m.get_mut(&k).expect("key"), n, pick, leaf, remove) {
                        return true;
                    }
                }
                false
            }
            Json::Array(a) => {
                for x in a.iter_mut() {
                    if *n == pick {
                        *x = leaf.clone();
                        return true;
                    }
                    *n += 1;
                    if walk(x, n, pick, leaf, remove) {
                        return true;
                    }
                }
                false
            }
            _ => false,
        }
    }
    let mut j = json.clone();
    let leaf: Json = serde_json::from_str(leaf).expect("leaf");
    walk(&mut j, &mut 0, pick, &leaf, remove);
    j
}

/// The fast decoder's answer is the reference decoder's: what it accepts, the
/// reference accepts and decodes the same; the `Decoder` (fast path, cache, fallback)
/// answers exactly as the reference does, also right after a record that filled its
/// schema cache.
fn assert_same_as_reference(prev: &[u8], bytes: &[u8]) -> Result<(), TestCaseError> {
    let reference = decode_reference(bytes);
    if let Ok(fast) = typed::Fast::default().decode(bytes) {
        let reference = reference.as_ref().map_err(|e| {
            TestCaseError::fail(format!(
                "fast path accepted what the reference refuses ({e}): {}",
                String::from_utf8_lossy(bytes)
            ))
        })?;
        prop_assert_eq!(&fast, reference);
    }
    let mut d = Decoder::default();
    let _ = d.decode_with_epoch(prev);
    let via_cache = d.decode_with_epoch(bytes);
    match (&via_cache, &reference) {
        (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
        (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
        _ => {
            return Err(TestCaseError::fail(format!(
                "decoder {via_cache:?} vs reference {reference:?} on {}",
                String::from_utf8_lossy(bytes)
            )))
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn fast_decoder_agrees_with_the_reference_on_mutated_records(
        ev in event_strategy(),
        pick in 0usize..200,
        leaf in proptest::sample::select(LEAVES),
        remove: bool,
        epoch in proptest::option::of(0i64..5),
    ) {
        let mut out = Vec::new();
        encode_change_as(&mut out, &ev, 0, 1, epoch).expect("encodes");
        // What this build writes always takes the fast path.
        let fast = typed::Fast::default().decode(&out);
        prop_assert!(fast.is_ok(), "fast path refused {}", String::from_utf8_lossy(&out));
        assert_same_as_reference(b"", &out)?;
        let json: Json = serde_json::from_slice(&out).expect("json");
        let bad = serde_json::to_vec(&mutated(&json, pick, leaf, remove)).expect("json");
        assert_same_as_reference(&out, &bad)?;
    }

    #[test]
    fn fast_decoder_agrees_with_the_reference_on_flipped_bytes(
        ev in event_strategy(), at in any::<usize>(), byte: u8,
    ) {
        let mut out = Vec::new();
        encode_change(&mut out, &ev, 0, 1).expect("encodes");
        let good = out.clone();
        let i = at % out.len();
        out[i] = byte;
        assert_same_as_reference(&good, &out)?;
    }
}

#[test]
fn fast_decoder_leaves_odd_but_valid_json_to_the_reference() {
    let mut good = Vec::new();
    encode_change(&mut good, &sample(), 0, 1).expect("encodes");
    let text = String::from_utf8(good.clone()).expect("utf8");
    let cases = [
        // A repeated field: the reference takes the last one.
        text.replacen("\"op\":\"c\"", "\"op\":\"u\",\"op\":\"c\"", 1),
        // A repeated column in an image, a repeated column in `types`.
        text.replacen("\"after\":{", "\"after\":{\"id\":1,", 1),
        text.replacen("\"types\":{", "\"types\":{\"id\":\"text\",", 1),
        // Escapes where the fast path borrows strings.
        text.replacen("\"op\":\"c\"", "\"op\":\"\\u0063\"", 1),
        text.replacen("\"db\":\"shop\"", "\"db\":\"sh\\u006fp\"", 1),
        // `null` where a field may be absent but must then hold a value.
        text.replacen("\"gtid\":\"0-1-5\"", "\"gtid\":null", 1),
        text.replacen(
            "\"schema_version\"",
            "\"generated\":null,\"schema_version\"",
            1,
        ),
        text.replacen("\"order\":", "\"epoch\":null,\"order\":", 1),
        // An envelope, or a block of it, as an array.
        format!("[{text}]"),
        text.replacen("\"transaction\":{", "\"transaction\":[{", 1)
            .replacen("},\"types\"", "}],\"types\"", 1),
        // Fields in another order, unknown fields, whitespace.
        format!("{{\"extra\":[1,{{}}], {} }}", &text[1..text.len() - 1]),
    ];
    for case in &cases {
        assert_same_as_reference(&good, case.as_bytes()).expect(case);
    }
    // The escaped forms decode; the repeated `op` takes the last value, as JSON
    // readers do.
    assert!(Decoder::default()
        .decode_with_epoch(cases[0].as_bytes())
        .is_ok());
    assert!(Decoder::default()
        .decode_with_epoch(cases[3].as_bytes())
        .is_ok());
}

#[test]
fn the_schema_cache_follows_a_schema_change_of_the_same_table() {
    let mut d = Decoder::default();
    let ev = sample();
    let mut a = Vec::new();
    encode_change(&mut a, &ev, 0, 1).expect("encodes");
    let mut wider = ev.clone();
    let mut schema = (*wider.schema).clone();
    schema.columns.push(Column {
        name: "note".into(),
        kind: ColumnKind::Text,
        generated: true,
    });
    schema.version = 2;
    wider.schema = Arc::new(schema);
    wider
        .after
        .as_mut()
        .expect("after")
        .push(Some(Value::Text("n".into())));
    let mut b = Vec::new();
    encode_change(&mut b, &wider, 0, 1).expect("encodes");
    // The same schema bytes twice: the second record shares the first one's schema.
    let schema_of = |d: &mut Decoder, bytes: &[u8]| match d.decode_with_epoch(bytes) {
        Ok((Record::Change { event, .. }, _)) => event.schema,
        other => panic!("not a change: {other:?}"),
    };
    let first = schema_of(&mut d, &a);
    assert!(
        Arc::ptr_eq(&first, &schema_of(&mut d, &a)),
        "schema cache not reused"
    );
    for (bytes, want) in [(&a, &ev), (&b, &wider), (&a, &ev)] {
        let (rec, _) = d.decode_with_epoch(bytes).expect("decodes");
        assert_eq!(
            rec,
            Record::Change {
                event: want.clone(),
                part: 0
            }
        );
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
