//! The wire format, envelope version 1 (`schemas/v1/`).
//!
//! A change travels as one Kafka record on its table's topic:
//! - key: the primary-key columns as a JSON object in key order (`{"id":7}`), or `{}`
//!   for a table without a primary key, so every change of one row (of every row, for
//!   a key-less table) lands in one partition, in order;
//! - value: a Debezium-shaped envelope (`before`, `after`, `source`, `op`, `ts_ms`,
//!   `transaction`) plus `v` (envelope version), `types`, `key`, `generated` and
//!   `schema_version`, which make every value decodable exactly without a registry.
//!
//! A schema change travels as `{"v":1,"op":"ddl",...}` on its table's topic, copied to
//! every partition so each partition sees it between the same rows.
//!
//! Invariants: `decode(encode(e)) == e` for every valid event (property-tested below),
//! and decoding never panics on arbitrary bytes; a record that does not decode names
//! the field that is wrong.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{Map, Value as Json};

use crate::event::{
    ChangeEvent, Column, Op, OrderKey, SchemaChange, SourceInfo, TableId, TableSchema, TxnMark,
};
use crate::position::SourcePos;
use crate::value::{
    is_decimal_text, ColumnKind, Date, DateTime, JsonDiff, JsonDiffOp, Time, Timestamp, Value,
};

/// The envelope version this build writes.
pub const ENVELOPE_VERSION: u64 = 1;
/// Envelope versions this build reads.
pub const READABLE_VERSIONS: &[u64] = &[1];

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("record value is not JSON")]
    NotJson(#[source] serde_json::Error),
    #[error("envelope version {0} is not readable by this build (reads {READABLE_VERSIONS:?})")]
    Version(u64),
    #[error("field `{field}` is missing or malformed")]
    Field { field: String },
    #[error("column `{column}`: {problem}")]
    Column { column: String, problem: String },
    #[error("{what} is not finite and cannot be encoded")]
    NotFinite { what: String },
}

fn field(name: &str) -> CodecError {
    CodecError::Field {
        field: name.to_owned(),
    }
}

/// What one record holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A row change. `part` is 0, or 1 for the second record of a key change.
    Change {
        event: ChangeEvent,
        part: u8,
    },
    Schema(SchemaChange),
}

impl Record {
    pub fn order(&self) -> OrderKey {
        match self {
            Record::Change { event, part } => event.source.order(*part),
            Record::Schema(s) => s.source.order(0),
        }
    }
}

// ---------------------------------------------------------------- encoding

/// Bytes that need escaping inside a JSON string: controls, `"` and `\`.
const NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Appends the JSON string literal for `s` to `out` (runs of plain bytes are copied
/// whole: this is the encoder's hottest loop).
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !NEEDS_ESCAPE[usize::from(b)] {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(b >> 4)],
                    HEX[usize::from(b & 15)],
                ]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn write_num(out: &mut Vec<u8>, n: impl std::fmt::Display) {
    use std::io::Write;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{n}");
}

/// f32 values are written as the shortest f64 text of their exact value, which parses
/// back (as f64, then narrowed) to the identical f32 with no double rounding.
fn write_f64(out: &mut Vec<u8>, x: f64, what: &str) -> Result<(), CodecError> {
    if !x.is_finite() {
        return Err(CodecError::NotFinite {
            what: what.to_owned(),
        });
    }
    write_num(out, format_args!("{x:?}"));
    Ok(())
}

fn write_value(out: &mut Vec<u8>, v: &Value, column: &str) -> Result<(), CodecError> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Int(n) => write_num(out, n),
        Value::UInt(n) => write_num(out, n),
        Value::Float(x) => write_f64(out, f64::from(*x), column)?,
        Value::Double(x) => write_f64(out, *x, column)?,
        Value::Decimal(s) | Value::Text(s) | Value::Enum(s) | Value::Json(s) => {
            write_json_str(out, s)
        }
        Value::Date(d) => write_json_str(out, &d.to_string()),
        Value::DateTime(d) => write_json_str(out, &d.to_string()),
        Value::Time(t) => write_json_str(out, &t.to_string()),
        Value::Timestamp(t) => write_json_str(out, &timestamp_iso(t)),
        Value::Year(y) => write_num(out, y),
        Value::Bytes(b) | Value::Geometry(b) => write_json_str(out, &B64.encode(b)),
        Value::Set(names) => write_json_str(out, &names.join(",")),
        Value::Bit(n) => write_num(out, n),
        Value::JsonDiff(diffs) => {
            out.extend_from_slice(b"{\"json_diff\":[");
            for (i, d) in diffs.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"op\":");
                write_json_str(out, d.op.name());
                out.extend_from_slice(b",\"path\":");
                write_json_str(out, &d.path);
                if let Some(val) = &d.value {
                    out.extend_from_slice(b",\"value\":");
                    write_json_str(out, val);
                }
                out.push(b'}');
            }
            out.extend_from_slice(b"]}");
        }
        Value::Vector(xs) => {
            out.push(b'[');
            for (i, x) in xs.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_f64(out, f64::from(*x), column)?;
            }
            out.push(b']');
        }
    }
    Ok(())
}

/// TIMESTAMP on the wire: ISO-8601 UTC, `2023-11-14T22:13:20.5Z`; zero is
/// `0000-00-00T00:00:00Z`. Fraction digits = the column's precision.
pub fn timestamp_iso(t: &Timestamp) -> String {
    let dt = t.to_utc().to_string();
    format!("{}Z", dt.replacen(' ', "T", 1))
}

fn parse_timestamp_iso(s: &str) -> Option<Timestamp> {
    let body = s.strip_suffix('Z')?;
    let (d, t) = body.split_once('T')?;
    Timestamp::parse(&format!("{d} {t}")).ok()
}

fn write_row(
    out: &mut Vec<u8>,
    schema: &TableSchema,
    row: Option<&[Option<Value>]>,
) -> Result<(), CodecError> {
    let Some(row) = row else {
        out.extend_from_slice(b"null");
        return Ok(());
    };
    out.push(b'{');
    let mut first = true;
    for (col, v) in schema.columns.iter().zip(row) {
        let Some(v) = v else { continue };
        if !first {
            out.push(b',');
        }
        first = false;
        write_json_str(out, &col.name);
        out.push(b':');
        write_value(out, v, &col.name)?;
    }
    out.push(b'}');
    Ok(())
}

/// Appends the record key of a change whose identifying image is `row`.
pub fn encode_key(
    out: &mut Vec<u8>,
    schema: &TableSchema,
    row: &[Option<Value>],
) -> Result<(), CodecError> {
    out.push(b'{');
    for (i, &k) in schema.key.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let name = schema.columns.get(k).map_or("", |c| c.name.as_str());
        write_json_str(out, name);
        out.push(b':');
        match row.get(k) {
            Some(Some(v)) => write_value(out, v, name)?,
            _ => {
                return Err(CodecError::Column {
                    column: name.to_owned(),
                    problem: "key column missing from image".into(),
                })
            }
        }
    }
    out.push(b'}');
    Ok(())
}

fn write_source(out: &mut Vec<u8>, s: &SourceInfo, table: &TableId, part: u8, epoch: Option<i64>) {
    out.extend_from_slice(b"{\"connector\":\"otter\",\"server_id\":");
    write_num(out, s.server_id);
    out.extend_from_slice(b",\"file\":");
    write_json_str(out, &s.at.file);
    out.extend_from_slice(b",\"pos\":");
    write_num(out, s.at.offset);
    out.extend_from_slice(b",\"row\":");
    write_num(out, s.row);
    if let Some(g) = &s.gtid {
        out.extend_from_slice(b",\"gtid\":");
        write_json_str(out, g);
    }
    out.extend_from_slice(b",\"ts_ms\":");
    write_num(out, s.commit_time_ms);
    out.extend_from_slice(b",\"db\":");
    write_json_str(out, &table.db);
    out.extend_from_slice(b",\"table\":");
    write_json_str(out, &table.table);
    if let Some(e) = epoch {
        write_num(out, format_args!(",\"epoch\":{e}"));
    }
    let o = s.order(part);
    write_num(
        out,
        format_args!(",\"order\":[{},{},{},{}]}}", o[0], o[1], o[2], o[3]),
    );
}

fn write_txn(out: &mut Vec<u8>, t: &TxnMark) {
    out.extend_from_slice(b"{\"id\":");
    write_json_str(out, &t.id);
    write_num(
        out,
        format_args!(
            ",\"total_order\":{},\"data_collection_order\":{},\"last\":{}}}",
            t.total_order, t.table_order, t.last
        ),
    );
}

/// Appends the envelope of `event` to `out`. `part` is 0, or 1 for the second record
/// of a primary-key change (see `schemas/v1/README.md`). `now_ms` is the capture clock.
pub fn encode_change(
    out: &mut Vec<u8>,
    event: &ChangeEvent,
    part: u8,
    now_ms: i64,
) -> Result<(), CodecError> {
    encode_change_as(out, event, part, now_ms, None)
}

/// [`encode_change`] by an elected capture: `epoch` goes into `source.epoch`.
pub fn encode_change_as(
    out: &mut Vec<u8>,
    event: &ChangeEvent,
    part: u8,
    now_ms: i64,
    epoch: Option<i64>,
) -> Result<(), CodecError> {
    let schema = &*event.schema;
    write_num(
        out,
        format_args!(
            "{{\"v\":{ENVELOPE_VERSION},\"op\":\"{}\",\"before\":",
            event.op.code()
        ),
    );
    write_row(out, schema, event.before.as_deref())?;
    out.extend_from_slice(b",\"after\":");
    write_row(out, schema, event.after.as_deref())?;
    out.extend_from_slice(b",\"source\":");
    write_source(out, &event.source, &schema.table, part, epoch);
    write_num(out, format_args!(",\"ts_ms\":{now_ms},\"transaction\":"));
    write_txn(out, &event.txn);
    out.extend_from_slice(b",\"types\":{");
    for (i, c) in schema.columns.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_str(out, &c.name);
        out.push(b':');
        write_json_str(out, c.kind.tag());
    }
    out.extend_from_slice(b"},\"key\":[");
    for (i, &k) in schema.key.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_str(out, schema.columns.get(k).map_or("", |c| c.name.as_str()));
    }
    out.push(b']');
    if schema.columns.iter().any(|c| c.generated) {
        out.extend_from_slice(b",\"generated\":[");
        let mut first = true;
        for c in schema.columns.iter().filter(|c| c.generated) {
            if !first {
                out.push(b',');
            }
            first = false;
            write_json_str(out, &c.name);
        }
        out.push(b']');
    }
    write_num(
        out,
        format_args!(",\"schema_version\":{}}}", schema.version),
    );
    Ok(())
}

/// Appends the envelope of a schema change.
pub fn encode_schema_change(out: &mut Vec<u8>, sc: &SchemaChange, now_ms: i64) {
    encode_schema_change_as(out, sc, now_ms, None);
}

/// [`encode_schema_change`] by an elected capture (`source.epoch`).
pub fn encode_schema_change_as(
    out: &mut Vec<u8>,
    sc: &SchemaChange,
    now_ms: i64,
    epoch: Option<i64>,
) {
    write_num(
        out,
        format_args!("{{\"v\":{ENVELOPE_VERSION},\"op\":\"ddl\",\"ddl\":"),
    );
    write_json_str(out, &sc.ddl);
    out.extend_from_slice(b",\"default_db\":");
    write_json_str(out, &sc.default_db);
    out.extend_from_slice(b",\"ddl_kind\":");
    write_json_str(out, sc.kind.as_str());
    out.extend_from_slice(b",\"source\":");
    write_source(out, &sc.source, &sc.table, 0, epoch);
    write_num(out, format_args!(",\"ts_ms\":{now_ms},\"transaction\":"));
    write_txn(out, &sc.txn);
    if !sc.tables.is_empty() {
        out.extend_from_slice(b",\"ddl_tables\":[");
        for (i, t) in sc.tables.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"db\":");
            write_json_str(out, &t.db);
            out.extend_from_slice(b",\"table\":");
            write_json_str(out, &t.table);
            out.push(b'}');
        }
        out.push(b']');
    }
    if let Some(n) = sc.copies {
        write_num(out, format_args!(",\"copies\":{n}"));
    }
    write_num(
        out,
        format_args!(",\"schema_version\":{}}}", sc.schema_version),
    );
}

// ---------------------------------------------------------------- decoding

fn get<'a>(m: &'a Map<String, Json>, name: &str) -> Result<&'a Json, CodecError> {
    m.get(name).ok_or_else(|| field(name))
}

fn get_str<'a>(m: &'a Map<String, Json>, name: &str) -> Result<&'a str, CodecError> {
    get(m, name)?.as_str().ok_or_else(|| field(name))
}

fn get_u64(m: &Map<String, Json>, name: &str) -> Result<u64, CodecError> {
    get(m, name)?.as_u64().ok_or_else(|| field(name))
}

fn get_u32(m: &Map<String, Json>, name: &str) -> Result<u32, CodecError> {
    u32::try_from(get_u64(m, name)?).map_err(|_| field(name))
}

fn get_obj<'a>(m: &'a Map<String, Json>, name: &str) -> Result<&'a Map<String, Json>, CodecError> {
    get(m, name)?.as_object().ok_or_else(|| field(name))
}

/// Decodes one record value (the key is derived data and is not needed).
pub fn decode(value: &[u8]) -> Result<Record, CodecError> {
    decode_with_epoch(value).map(|(r, _)| r)
}

/// [`decode`], also returning `source.epoch`: the election epoch of the capture that
/// published the record (absent from a standalone capture's records).
pub fn decode_with_epoch(value: &[u8]) -> Result<(Record, Option<i64>), CodecError> {
    Decoder::default().decode_with_epoch(value)
}

/// A decoder for a stream of records (one partition's): the fast typed path of
/// [`typed`] with its schema cache, falling back to [`decode_reference`] for anything
/// it refuses, so that decoder's errors and accepted set are this one's.
#[derive(Default)]
pub struct Decoder {
    fast: typed::Fast,
}

impl Decoder {
    pub fn decode_with_epoch(&mut self, value: &[u8]) -> Result<(Record, Option<i64>), CodecError> {
        match self.fast.decode(value) {
            Ok(decoded) => Ok(decoded),
            Err(typed::Refused) => decode_reference(value),
        }
    }
}

/// The reference decoder: the record parsed as a JSON tree and read field by field.
/// Slower than [`Decoder`], and the definition of what a valid record is.
pub fn decode_reference(value: &[u8]) -> Result<(Record, Option<i64>), CodecError> {
    let json: Json = serde_json::from_slice(value).map_err(CodecError::NotJson)?;
    let m = json.as_object().ok_or_else(|| field("(envelope)"))?;
    let v = get_u64(m, "v")?;
    if !READABLE_VERSIONS.contains(&v) {
        return Err(CodecError::Version(v));
    }
    let op = get_str(m, "op")?;
    let src = get_obj(m, "source")?;
    let table = TableId::new(get_str(src, "db")?, get_str(src, "table")?);
    let order = get(src, "order")?
        .as_array()
        .ok_or_else(|| field("source.order"))?;
    let part = order
        .get(3)
        .and_then(Json::as_u64)
        .and_then(|p| u8::try_from(p).ok())
        .ok_or_else(|| field("source.order"))?;
    let epoch = match src.get("epoch") {
        None => None,
        Some(e) => Some(e.as_i64().ok_or_else(|| field("source.epoch"))?),
    };
    let source = SourceInfo {
        server_id: get_u32(src, "server_id")?,
        at: SourcePos::new(get_str(src, "file")?, get_u64(src, "pos")?),
        row: get_u32(src, "row")?,
        gtid: match src.get("gtid") {
            None => None,
            Some(g) => Some(g.as_str().ok_or_else(|| field("source.gtid"))?.to_owned()),
        },
        commit_time_ms: get(src, "ts_ms")?
            .as_i64()
            .ok_or_else(|| field("source.ts_ms"))?,
    };
    let t = get_obj(m, "transaction")?;
    let txn = TxnMark {
        id: get_str(t, "id")?.to_owned(),
        total_order: get_u32(t, "total_order")?,
        table_order: get_u32(t, "data_collection_order")?,
        last: get(t, "last")?
            .as_bool()
            .ok_or_else(|| field("transaction.last"))?,
    };
    let schema_version = get_u32(m, "schema_version")?;
    if op == "ddl" {
        return Ok((
            Record::Schema(SchemaChange {
                table,
                default_db: get_str(m, "default_db")?.to_owned(),
                ddl: get_str(m, "ddl")?.to_owned(),
                // Absent from records of captures before 0.2: they were not parsed.
                kind: match m.get("ddl_kind") {
                    None => crate::ddl::DdlKind::Unparsed,
                    Some(k) => k
                        .as_str()
                        .and_then(crate::ddl::DdlKind::from_name)
                        .ok_or_else(|| field("ddl_kind"))?,
                },
                schema_version,
                tables: match m.get("ddl_tables") {
                    None => Vec::new(),
                    Some(Json::Array(a)) => a
                        .iter()
                        .map(|t| {
                            let t = t.as_object().ok_or_else(|| field("ddl_tables"))?;
                            Ok(TableId::new(get_str(t, "db")?, get_str(t, "table")?))
                        })
                        .collect::<Result<_, CodecError>>()?,
                    Some(_) => return Err(field("ddl_tables")),
                },
                copies: match m.get("copies") {
                    None => None,
                    Some(n) => Some(
                        n.as_u64()
                            .and_then(|n| u32::try_from(n).ok())
                            .ok_or_else(|| field("copies"))?,
                    ),
                },
                source,
                txn,
            }),
            epoch,
        ));
    }
    let op = Op::from_code(op).ok_or_else(|| field("op"))?;
    let schema = Arc::new(decode_schema(m, table, schema_version)?);
    let before = decode_row(m, "before", &schema)?;
    let after = decode_row(m, "after", &schema)?;
    let event = ChangeEvent {
        schema,
        op,
        before,
        after,
        source,
        txn,
    };
    event.check().map_err(|e| CodecError::Column {
        column: "(event)".into(),
        problem: e.to_string(),
    })?;
    Ok((Record::Change { event, part }, epoch))
}

fn decode_schema(
    m: &Map<String, Json>,
    table: TableId,
    version: u32,
) -> Result<TableSchema, CodecError> {
    let types = get_obj(m, "types")?;
    let generated: Vec<&str> = match m.get("generated") {
        None => Vec::new(),
        Some(g) => g
            .as_array()
            .ok_or_else(|| field("generated"))?
            .iter()
            .map(|x| x.as_str().ok_or_else(|| field("generated")))
            .collect::<Result<_, _>>()?,
    };
    let mut columns = Vec::with_capacity(types.len());
    for (name, tag) in types {
        let kind =
            tag.as_str()
                .and_then(ColumnKind::from_tag)
                .ok_or_else(|| CodecError::Column {
                    column: name.clone(),
                    problem: format!("unknown type {tag}"),
                })?;
        columns.push(Column {
            name: name.clone(),
            kind,
            generated: generated.contains(&name.as_str()),
        });
    }
    let mut key = Vec::new();
    for k in get(m, "key")?.as_array().ok_or_else(|| field("key"))? {
        let k = k.as_str().ok_or_else(|| field("key"))?;
        key.push(
            columns
                .iter()
                .position(|c| c.name == k)
                .ok_or_else(|| field("key"))?,
        );
    }
    Ok(TableSchema {
        table,
        columns,
        key,
        version,
    })
}

fn decode_row(
    m: &Map<String, Json>,
    name: &str,
    schema: &TableSchema,
) -> Result<Option<Vec<Option<Value>>>, CodecError> {
    let img = match get(m, name)? {
        Json::Null => return Ok(None),
        Json::Object(o) => o,
        _ => return Err(field(name)),
    };
    if let Some(unknown) = img
        .keys()
        .find(|k| !schema.columns.iter().any(|c| &c.name == *k))
    {
        return Err(CodecError::Column {
            column: unknown.clone(),
            problem: format!("in `{name}` but not in `types`"),
        });
    }
    let mut row = Vec::with_capacity(schema.columns.len());
    for c in &schema.columns {
        row.push(match img.get(&c.name) {
            None => None,
            Some(j) => Some(
                decode_value(j, c.kind).map_err(|problem| CodecError::Column {
                    column: c.name.clone(),
                    problem,
                })?,
            ),
        });
    }
    Ok(Some(row))
}

/// One JSON value as the per-type decoding sees it: scalars by value (borrowed
/// strings), arrays and objects as a tree (only JSON and VECTOR columns take those).
/// Both decoders hand values over in this form, so one function, [`decode_scalar`],
/// says what every column type accepts.
#[derive(Debug, Clone)]
pub(crate) enum Scalar<'a> {
    Null,
    Bool(bool),
    /// A negative integer (non-negative ones are always `UInt`).
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(&'a str),
    Tree(&'a Json),
}

impl<'a> Scalar<'a> {
    pub(crate) fn of(j: &'a Json) -> Scalar<'a> {
        match j {
            Json::Null => Scalar::Null,
            Json::Bool(b) => Scalar::Bool(*b),
            Json::Number(n) => {
                if let Some(u) = n.as_u64() {
                    Scalar::UInt(u)
                } else if let Some(i) = n.as_i64() {
                    Scalar::Int(i)
                } else {
                    Scalar::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Json::String(s) => Scalar::Str(s),
            Json::Array(_) | Json::Object(_) => Scalar::Tree(j),
        }
    }

    /// An integer as a deserializer reports it, normalized like [`Scalar::of`].
    pub(crate) fn int(i: i64) -> Scalar<'a> {
        match u64::try_from(i) {
            Ok(u) => Scalar::UInt(u),
            Err(_) => Scalar::Int(i),
        }
    }

    fn as_i64(&self) -> Option<i64> {
        match *self {
            Scalar::Int(i) => Some(i),
            Scalar::UInt(u) => i64::try_from(u).ok(),
            _ => None,
        }
    }

    fn as_u64(&self) -> Option<u64> {
        match *self {
            Scalar::UInt(u) => Some(u),
            _ => None,
        }
    }

    fn as_f64(&self) -> Result<f64, String> {
        match *self {
            Scalar::Int(i) => Ok(i as f64),
            Scalar::UInt(u) => Ok(u as f64),
            Scalar::Float(x) => Ok(x),
            _ => Err(format!("expected a number, found {self}")),
        }
    }

    fn as_str(&self) -> Result<&'a str, String> {
        match *self {
            Scalar::Str(s) => Ok(s),
            _ => Err(format!("expected a string, found {self}")),
        }
    }
}

impl std::fmt::Display for Scalar<'_> {
    /// The value as JSON text (for error messages).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Scalar::Null => f.write_str("null"),
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::UInt(u) => write!(f, "{u}"),
            Scalar::Float(x) => write!(f, "{}", Json::from(x)),
            Scalar::Str(s) => write!(f, "{}", Json::from(s)),
            Scalar::Tree(j) => write!(f, "{j}"),
        }
    }
}

fn narrow(x: f64) -> Result<f32, String> {
    let f = x as f32;
    if f64::from(f) == x {
        Ok(f)
    } else {
        Err(format!("{x} is not an exact FLOAT"))
    }
}

/// Decodes the JSON form of one value of a `kind` column.
pub fn decode_value(j: &Json, kind: ColumnKind) -> Result<Value, String> {
    decode_scalar(Scalar::of(j), kind)
}

pub(crate) fn decode_scalar(j: Scalar<'_>, kind: ColumnKind) -> Result<Value, String> {
    if let Scalar::Null = j {
        return Ok(Value::Null);
    }
    let text_err = |e: crate::value::TextFormError| e.to_string();
    Ok(match kind {
        ColumnKind::Int => Value::Int(
            j.as_i64()
                .ok_or_else(|| format!("expected an integer, found {j}"))?,
        ),
        ColumnKind::UInt => Value::UInt(
            j.as_u64()
                .ok_or_else(|| format!("expected an unsigned integer, found {j}"))?,
        ),
        ColumnKind::Float => Value::Float(narrow(j.as_f64()?)?),
        ColumnKind::Double => Value::Double(j.as_f64()?),
        ColumnKind::Decimal => {
            let s = j.as_str()?;
            if !is_decimal_text(s) {
                return Err(format!("`{s}` is not a decimal"));
            }
            Value::Decimal(s.to_owned())
        }
        ColumnKind::Date => Value::Date(Date::parse(j.as_str()?).map_err(text_err)?),
        ColumnKind::DateTime => Value::DateTime(DateTime::parse(j.as_str()?).map_err(text_err)?),
        ColumnKind::Time => Value::Time(Time::parse(j.as_str()?).map_err(text_err)?),
        ColumnKind::Timestamp => {
            let s = j.as_str()?;
            Value::Timestamp(
                parse_timestamp_iso(s).ok_or_else(|| format!("`{s}` is not a timestamp"))?,
            )
        }
        ColumnKind::Year => Value::Year(
            j.as_u64()
                .and_then(|y| u16::try_from(y).ok())
                .ok_or_else(|| format!("expected a year, found {j}"))?,
        ),
        ColumnKind::Text => Value::Text(j.as_str()?.to_owned()),
        ColumnKind::Enum => Value::Enum(j.as_str()?.to_owned()),
        ColumnKind::Bytes => Value::Bytes(
            B64.decode(j.as_str()?)
                .map_err(|e| format!("bad base64: {e}"))?,
        ),
        ColumnKind::Geometry => Value::Geometry(
            B64.decode(j.as_str()?)
                .map_err(|e| format!("bad base64: {e}"))?,
        ),
        ColumnKind::Set => {
            let s = j.as_str()?;
            Value::Set(if s.is_empty() {
                Vec::new()
            } else {
                s.split(',').map(str::to_owned).collect()
            })
        }
        ColumnKind::Bit => Value::Bit(
            j.as_u64()
                .ok_or_else(|| format!("expected an unsigned integer, found {j}"))?,
        ),
        ColumnKind::Json => match j {
            Scalar::Str(s) => Value::Json(s.to_owned()),
            Scalar::Tree(Json::Object(o)) => {
                let ops = o
                    .get("json_diff")
                    .and_then(Json::as_array)
                    .ok_or("expected a JSON text or {\"json_diff\":[...]}")?;
                let mut diffs = Vec::with_capacity(ops.len());
                for d in ops {
                    let op = match d.get("op").and_then(Json::as_str) {
                        Some("replace") => JsonDiffOp::Replace,
                        Some("insert") => JsonDiffOp::Insert,
                        Some("remove") => JsonDiffOp::Remove,
                        _ => return Err("json_diff entry has no valid `op`".into()),
                    };
                    let path = d
                        .get("path")
                        .and_then(Json::as_str)
                        .ok_or("json_diff entry has no `path`")?
                        .to_owned();
                    let value = match d.get("value") {
                        None => None,
                        Some(v) => Some(
                            v.as_str()
                                .ok_or("json_diff `value` must be JSON text")?
                                .to_owned(),
                        ),
                    };
                    diffs.push(JsonDiff { op, path, value });
                }
                Value::JsonDiff(diffs)
            }
            _ => return Err(format!("expected JSON text, found {j}")),
        },
        ColumnKind::Vector => match j {
            Scalar::Tree(Json::Array(xs)) => Value::Vector(
                xs.iter()
                    .map(|x| narrow(Scalar::of(x).as_f64()?))
                    .collect::<Result<_, _>>()?,
            ),
            _ => return Err(format!("expected an array, found {j}")),
        },
    })
}

#[cfg(test)]
mod tests;
mod typed;
