//! The fast envelope decoder: apply's hot path.
//!
//! The reference decoder ([`super::decode_reference`]) parses a record into a
//! `serde_json::Value` tree and reads it field by field; every string and map becomes
//! an allocation, and the table schema is rebuilt for every record. This decoder
//! deserializes the envelope straight into typed fields (strings borrowed from the
//! record where they have no escapes), keeps the row images raw until the schema is
//! known, decodes each value by its column type, and reuses the schema of the previous
//! record when its `types`, `key`, `generated`, table and version bytes are the same.
//!
//! Invariants:
//! - It accepts a subset of what the reference decoder accepts, and what it accepts it
//!   decodes to the same record. Anything it refuses (bad input, duplicate fields, a
//!   schema change record) goes to the reference decoder, which either decodes it or
//!   returns the error naming the field; so errors, and the accepted set, are the
//!   reference decoder's. Checked by the differential property tests in `tests.rs` and
//!   by the `envelope` fuzz target.
//! - A cached schema is reused only for byte-identical schema fields of the same table
//!   and version, so reuse can never change what a record decodes to.

use std::borrow::Cow;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value as Json;

use super::{decode_scalar, Scalar, READABLE_VERSIONS};
use crate::event::{ChangeEvent, Column, Op, SourceInfo, TableId, TableSchema, TxnMark};
use crate::position::SourcePos;
use crate::value::{ColumnKind, Value};

use super::Record;

/// A record the fast path does not decode (the reference decoder says why).
#[derive(Debug)]
pub(super) struct Refused;

impl<E: std::fmt::Display> From<E> for Refused {
    fn from(_: E) -> Refused {
        Refused
    }
}

/// The fast decoder with its one-entry schema cache (one per partition: a partition
/// carries one table, so its schema changes only with a DDL).
#[derive(Default)]
pub(super) struct Fast {
    cached: Option<Cached>,
}

struct Cached {
    types: Box<str>,
    key: Box<str>,
    generated: Option<Box<str>>,
    schema: Arc<TableSchema>,
}

/// A JSON object (never an array, which serde's derive would also take for a struct).
struct Obj<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Obj<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Obj)
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

/// An optional field that, when present, must hold a `T` (`null` is not absent).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

// Unknown fields are refused, not skipped: serde skips a value without checking it
// the way the reference decoder's parse does (`1e400`, invalid UTF-8 in a string), so a
// skipped field could make the fast path accept what the reference refuses. Fields the
// reference ignores are declared with the type this encoder writes (stricter is fine);
// a record with fields this build does not know takes the reference path.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    v: u64,
    #[serde(borrow)]
    op: Cow<'a, str>,
    #[serde(borrow)]
    before: &'a RawValue,
    #[serde(borrow)]
    after: &'a RawValue,
    #[serde(borrow)]
    source: Obj<Source<'a>>,
    #[serde(borrow)]
    transaction: Obj<Txn<'a>>,
    #[serde(borrow)]
    types: &'a RawValue,
    #[serde(borrow)]
    key: &'a RawValue,
    #[serde(borrow, default, deserialize_with = "present")]
    generated: Option<&'a RawValue>,
    schema_version: u32,
    /// The capture clock (not decoded).
    #[serde(rename = "ts_ms")]
    _ts_ms: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Source<'a> {
    /// Always `otter` (not decoded).
    #[serde(borrow, rename = "connector")]
    _connector: Cow<'a, str>,
    server_id: u32,
    #[serde(borrow)]
    file: Cow<'a, str>,
    pos: u64,
    row: u32,
    #[serde(borrow, default, deserialize_with = "present")]
    gtid: Option<Cow<'a, str>>,
    ts_ms: i64,
    #[serde(borrow)]
    db: Cow<'a, str>,
    #[serde(borrow)]
    table: Cow<'a, str>,
    #[serde(default, deserialize_with = "present")]
    epoch: Option<i64>,
    /// Only the last element (the record's part) is decoded.
    order: [u64; 4],
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Txn<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    total_order: u32,
    data_collection_order: u32,
    last: bool,
}

impl Fast {
    pub(super) fn decode(&mut self, value: &[u8]) -> Result<(Record, Option<i64>), Refused> {
        let Obj(env) = serde_json::from_slice::<Obj<Envelope>>(value)?;
        if !READABLE_VERSIONS.contains(&env.v) {
            return Err(Refused);
        }
        let op = Op::from_code(&env.op).ok_or(Refused)?;
        let schema = self.schema(&env)?;
        let Obj(src) = env.source;
        let part = u8::try_from(src.order[3])?;
        let Obj(t) = env.transaction;
        let event = ChangeEvent {
            before: row(env.before, &schema)?,
            after: row(env.after, &schema)?,
            schema,
            op,
            source: SourceInfo {
                server_id: src.server_id,
                at: SourcePos::new(src.file.into_owned(), src.pos),
                row: src.row,
                gtid: src.gtid.map(Cow::into_owned),
                commit_time_ms: src.ts_ms,
            },
            txn: TxnMark {
                id: t.id.into_owned(),
                total_order: t.total_order,
                table_order: t.data_collection_order,
                last: t.last,
            },
        };
        event.check()?;
        Ok((Record::Change { event, part }, src.epoch))
    }

    fn schema(&mut self, env: &Envelope) -> Result<Arc<TableSchema>, Refused> {
        let src = &env.source.0;
        let generated_text = env.generated.map(RawValue::get);
        if let Some(c) = &self.cached {
            let s = &c.schema;
            if s.version == env.schema_version
                && s.table.db == src.db
                && s.table.table == src.table
                && *c.types == *env.types.get()
                && *c.key == *env.key.get()
                && c.generated.as_deref() == generated_text
            {
                return Ok(s.clone());
            }
        }
        let types = Types::parse(env.types.get())?;
        let generated: Vec<Cow<str>> = match generated_text {
            None => Vec::new(),
            Some(g) => serde_json::from_str(g)?,
        };
        let mut columns = Vec::with_capacity(types.0.len());
        for (name, tag) in types.0 {
            let kind = ColumnKind::from_tag(&tag).ok_or(Refused)?;
            columns.push(Column {
                generated: generated.contains(&name),
                name: name.into_owned(),
                kind,
            });
        }
        let mut key = Vec::new();
        for k in serde_json::from_str::<Vec<Cow<str>>>(env.key.get())? {
            key.push(columns.iter().position(|c| c.name == k).ok_or(Refused)?);
        }
        let schema = Arc::new(TableSchema {
            table: TableId::new(&*src.db, &*src.table),
            columns,
            key,
            version: env.schema_version,
        });
        self.cached = Some(Cached {
            types: env.types.get().into(),
            key: env.key.get().into(),
            generated: generated_text.map(Into::into),
            schema: schema.clone(),
        });
        Ok(schema)
    }
}

/// `types`: column names and type tags in their order; a repeated name is refused.
struct Types<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'a> Types<'a> {
    fn parse(text: &'a str) -> Result<Types<'a>, Refused> {
        let Types(cols) = serde_json::from_str::<Types>(text)?;
        for (i, (name, _)) in cols.iter().enumerate() {
            if cols[..i].iter().any(|(n, _)| n == name) {
                return Err(Refused);
            }
        }
        Ok(Types(cols))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Types<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Types<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of type tags")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Types<'a>, A::Error> {
                let mut cols = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(name) = map.next_key::<Cow<'a, str>>()? {
                    cols.push((name, map.next_value::<Cow<'a, str>>()?));
                }
                Ok(Types(cols))
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

/// A row image: `null`, or an object of the schema's columns.
fn row(raw: &RawValue, schema: &TableSchema) -> Result<Option<Vec<Option<Value>>>, Refused> {
    let mut de = serde_json::Deserializer::from_str(raw.get());
    let row = RowSeed(schema).deserialize(&mut de)?;
    de.end()?;
    Ok(row)
}

struct RowSeed<'s>(&'s TableSchema);

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = Option<Vec<Option<Value>>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = Option<Vec<Option<Value>>>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("null or a row image")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let cols = &self.0.columns;
        let mut row: Vec<Option<Value>> = vec![None; cols.len()];
        // Images list columns in schema order: try the next one first.
        let mut next = 0;
        while let Some(name) = map.next_key::<Cow<str>>()? {
            let at = if cols.get(next).is_some_and(|c| c.name == name) {
                next
            } else {
                cols.iter()
                    .position(|c| c.name == name)
                    .ok_or_else(|| de::Error::custom("column not in `types`"))?
            };
            if row[at].is_some() {
                return Err(de::Error::custom("column repeated in an image"));
            }
            row[at] = Some(map.next_value_seed(ValueSeed(cols[at].kind))?);
            next = at + 1;
        }
        Ok(Some(row))
    }
}

/// One value, decoded by its column's type.
struct ValueSeed(ColumnKind);

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl ValueSeed {
    fn of<E: de::Error>(&self, s: Scalar) -> Result<Value, E> {
        decode_scalar(s, self.0).map_err(E::custom)
    }
}

impl<'de> Visitor<'de> for ValueSeed {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "a {} value", self.0.tag())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        self.of(Scalar::Bool(b))
    }
    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Value, E> {
        self.of(Scalar::int(i))
    }
    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Value, E> {
        self.of(Scalar::UInt(u))
    }
    fn visit_f64<E: de::Error>(self, x: f64) -> Result<Value, E> {
        self.of(Scalar::Float(x))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        self.of(Scalar::Str(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Value, A::Error> {
        let tree = Json::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        self.of(Scalar::Tree(&tree))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        let tree = Json::deserialize(de::value::MapAccessDeserializer::new(map))?;
        self.of(Scalar::Tree(&tree))
    }
}
