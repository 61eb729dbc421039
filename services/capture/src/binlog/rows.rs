//! Rows events (v1, v2, MySQL partial JSON updates, MariaDB compressed) into images.
//!
//! Invariants:
//! - A rows event is decoded against the table map that preceded it in the same
//!   stream, i.e. the table's shape at that point of the binlog.
//! - Every row consumes exactly its bytes; the event must end exactly after its last
//!   row; a column-count or type mismatch surfaces as a short read of the next row.

use std::sync::Arc;

use otter_core::event::{Column, TableId, TableSchema};
use otter_core::shape::TableShape;
use otter_core::value::{ColumnKind, Value};

use super::charset::{Collations, TextCodec};
use super::cursor::{Cursor, Short};
use super::event::ty;
use super::tablemap::{ct, MapColumn, TableMap};
use super::values::{ColumnReader, ValueError};

/// Assumptions an operator may set for binlogs written without full row metadata.
/// Nothing is assumed unless set; the default decodes only what the binlog proves.
#[derive(Debug, Clone, Default)]
pub struct Assumptions {
    /// Treat integer columns without signedness metadata as signed (`Some(false)`)
    /// or unsigned (`Some(true)`).
    pub unsigned: Option<bool>,
    /// Charset for text columns without charset metadata (e.g. `utf8mb4`, `binary`).
    pub charset: Option<String>,
}

/// What the source catalog knows about a table that its table maps do not say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableCatalog {
    /// Generated (virtual or stored) columns.
    pub generated: Vec<String>,
    /// MariaDB JSON columns: LONGTEXT with a `json_valid()` check in the catalog.
    pub json: Vec<String>,
}

/// Completes a table map written without full row metadata (no column names, maybe
/// no signedness, charsets, ENUM/SET members or key) from the schema history's shape of
/// the table, and says which columns are generated or MariaDB JSON. What the map says
/// wins; `Err` when the shape cannot be the one the row was written with.
///
/// `default_charset` is the database's, for text columns the shape does not give one
/// (created without naming one, in a table without a default).
pub fn fill_from_shape(
    map: &mut TableMap,
    shape: &TableShape,
    default_charset: Option<&str>,
) -> Result<TableCatalog, String> {
    if map.columns.len() != shape.columns.len() {
        let names: Vec<&str> = shape.columns.iter().map(|c| c.name.as_str()).collect();
        return Err(format!(
            "the binlog's rows have {} columns, the schema history's shape of the table has {} ({})",
            map.columns.len(),
            shape.columns.len(),
            names.join(", ")
        ));
    }
    let bytes = |v: &Option<Vec<String>>| {
        v.as_ref()
            .map(|v| v.iter().map(|m| m.as_bytes().to_vec()).collect())
    };
    for (c, s) in map.columns.iter_mut().zip(&shape.columns) {
        c.name.get_or_insert_with(|| s.name.clone());
        if c.is_numeric() && c.unsigned.is_none() {
            c.unsigned = Some(s.unsigned);
        }
        if c.collation.is_none() {
            c.charset = s
                .charset
                .clone()
                .or_else(|| default_charset.map(str::to_owned));
        }
        if c.real_type == ct::ENUM && c.enum_values.is_none() {
            c.enum_values = bytes(&s.enum_values);
        }
        if c.real_type == ct::SET && c.set_values.is_none() {
            c.set_values = bytes(&s.set_values);
        }
    }
    if map.primary_key.is_none() {
        map.primary_key = Some(shape.key_positions().ok_or_else(|| {
            format!(
                "the shape's key ({}) names a column it lacks",
                shape.key.join(", ")
            )
        })?);
    }
    let names = |f: fn(&otter_core::shape::ColumnShape) -> bool| {
        shape
            .columns
            .iter()
            .filter(|c| f(c))
            .map(|c| c.name.clone())
            .collect()
    };
    Ok(TableCatalog {
        generated: names(|c| c.generated),
        json: names(|c| c.json),
    })
}

/// A table map turned into a decoding plan and the schema its events carry.
#[derive(Debug)]
pub struct TableDef {
    pub schema: Arc<TableSchema>,
    pub readers: Vec<ColumnReader>,
    /// Index among JSON columns, for the partial-update bitmap.
    pub json_index: Vec<Option<usize>>,
    pub json_count: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("collation id {collation} of column `{column}` is unknown")]
    UnknownCollation { column: String, collation: u16 },
    #[error("column `{column}`: {problem}")]
    Column { column: String, problem: String },
}

fn kind_of(col: &MapColumn, text: Option<TextCodec>, unsigned: Option<bool>) -> ColumnKind {
    match col.type_code {
        ct::TINY | ct::SHORT | ct::INT24 | ct::LONG | ct::LONGLONG => {
            if unsigned == Some(true) {
                ColumnKind::UInt
            } else {
                ColumnKind::Int
            }
        }
        ct::FLOAT => ColumnKind::Float,
        ct::DOUBLE => ColumnKind::Double,
        ct::NEWDECIMAL | ct::DECIMAL => ColumnKind::Decimal,
        ct::YEAR => ColumnKind::Year,
        ct::DATE | ct::NEWDATE => ColumnKind::Date,
        ct::TIMESTAMP | ct::TIMESTAMP2 => ColumnKind::Timestamp,
        ct::DATETIME | ct::DATETIME2 => ColumnKind::DateTime,
        ct::TIME | ct::TIME2 => ColumnKind::Time,
        ct::BIT => ColumnKind::Bit,
        ct::JSON => ColumnKind::Json,
        ct::GEOMETRY => ColumnKind::Geometry,
        ct::VECTOR => ColumnKind::Vector,
        _ => match col.real_type {
            ct::ENUM => ColumnKind::Enum,
            ct::SET => ColumnKind::Set,
            _ if text == Some(TextCodec::Binary) => ColumnKind::Bytes,
            _ => ColumnKind::Text,
        },
    }
}

impl TableDef {
    /// Builds the plan. `catalog` names generated and (MariaDB) JSON columns, which
    /// table maps do not mark. `version` is the table's schema version.
    pub fn plan(
        map: &TableMap,
        collations: &Collations,
        assume: &Assumptions,
        catalog: &TableCatalog,
        version: u32,
    ) -> Result<TableDef, PlanError> {
        let mut readers = Vec::with_capacity(map.columns.len());
        let mut columns = Vec::with_capacity(map.columns.len());
        let mut json_index = Vec::with_capacity(map.columns.len());
        let mut json_count = 0;
        for (i, col) in map.columns.iter().enumerate() {
            let name = col.name.clone().unwrap_or_else(|| format!("@{}", i + 1));
            let text = if col.is_character() || col.is_enum_or_set() {
                match col.collation {
                    Some(id) => {
                        let cs =
                            collations
                                .charset(id)
                                .ok_or_else(|| PlanError::UnknownCollation {
                                    column: name.clone(),
                                    collation: id,
                                })?;
                        Some(TextCodec::for_charset(&cs).map_err(|e| PlanError::Column {
                            column: name.clone(),
                            problem: e.to_string(),
                        })?)
                    }
                    None => match col.charset.as_ref().or(assume.charset.as_ref()) {
                        Some(cs) => {
                            Some(TextCodec::for_charset(cs).map_err(|e| PlanError::Column {
                                column: name.clone(),
                                problem: e.to_string(),
                            })?)
                        }
                        None => None,
                    },
                }
            } else {
                None
            };
            let unsigned = if col.is_numeric() {
                col.unsigned.or(assume.unsigned)
            } else {
                None
            };
            let decode_names =
                |v: &Option<Vec<Vec<u8>>>| -> Result<Option<Vec<String>>, PlanError> {
                    let Some(v) = v else { return Ok(None) };
                    let codec = text.unwrap_or(TextCodec::Utf8);
                    v.iter()
                        .map(|n| match codec {
                            TextCodec::Binary => Ok(String::from_utf8_lossy(n).into_owned()),
                            c => c.decode(n).map_err(|e| PlanError::Column {
                                column: name.clone(),
                                problem: e.to_string(),
                            }),
                        })
                        .collect::<Result<Vec<_>, _>>()
                        .map(Some)
                };
            let json_text = catalog.json.iter().any(|j| j == &name) && col.is_character();
            readers.push(ColumnReader {
                type_code: col.type_code,
                real_type: col.real_type,
                meta: col.meta,
                max_len: col.max_len,
                unsigned,
                text,
                enum_values: decode_names(&col.enum_values)?,
                set_values: decode_names(&col.set_values)?,
                json_text,
            });
            if col.type_code == ct::JSON {
                json_index.push(Some(json_count));
                json_count += 1;
            } else {
                json_index.push(None);
            }
            let generated = catalog.generated.iter().any(|g| g == &name);
            let kind = if json_text {
                ColumnKind::Json
            } else {
                kind_of(col, text, unsigned)
            };
            columns.push(Column {
                kind,
                name,
                generated,
            });
        }
        let schema = TableSchema {
            table: TableId::new(map.db.clone(), map.table.clone()),
            columns,
            key: map.primary_key.clone().unwrap_or_default(),
            version,
        };
        Ok(TableDef {
            schema: Arc::new(schema),
            readers,
            json_index,
            json_count,
        })
    }
}

/// What kind of change a rows event carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowsKind {
    Write,
    Update,
    Delete,
}

/// The fixed part of a rows event, read before the table is known.
#[derive(Debug, Clone, Copy)]
pub struct RowsHeader<'a> {
    pub table_id: u64,
    pub kind: RowsKind,
    pub partial: bool,
    /// Everything after the post-header (and v2 extra data): column count onwards.
    pub body: &'a [u8],
    /// MariaDB compressed rows (`log_bin_compress`): row data is zlib-compressed.
    pub compressed: bool,
}

pub fn rows_kind(type_code: u8) -> Option<(RowsKind, bool, bool, bool)> {
    // (kind, v2 header, partial json, compressed)
    Some(match type_code {
        ty::WRITE_ROWS_V1 => (RowsKind::Write, false, false, false),
        ty::UPDATE_ROWS_V1 => (RowsKind::Update, false, false, false),
        ty::DELETE_ROWS_V1 => (RowsKind::Delete, false, false, false),
        ty::WRITE_ROWS => (RowsKind::Write, true, false, false),
        ty::UPDATE_ROWS => (RowsKind::Update, true, false, false),
        ty::DELETE_ROWS => (RowsKind::Delete, true, false, false),
        ty::PARTIAL_UPDATE_ROWS => (RowsKind::Update, true, true, false),
        ty::MARIA_WRITE_ROWS_COMPRESSED_V1 => (RowsKind::Write, false, false, true),
        ty::MARIA_UPDATE_ROWS_COMPRESSED_V1 => (RowsKind::Update, false, false, true),
        ty::MARIA_DELETE_ROWS_COMPRESSED_V1 => (RowsKind::Delete, false, false, true),
        ty::MARIA_WRITE_ROWS_COMPRESSED => (RowsKind::Write, true, false, true),
        ty::MARIA_UPDATE_ROWS_COMPRESSED => (RowsKind::Update, true, false, true),
        ty::MARIA_DELETE_ROWS_COMPRESSED => (RowsKind::Delete, true, false, true),
        _ => return None,
    })
}

pub fn parse_rows_header(
    body: &[u8],
    type_code: u8,
    table_id_len: usize,
) -> Result<Option<RowsHeader<'_>>, Short> {
    let Some((kind, v2, partial, compressed)) = rows_kind(type_code) else {
        return Ok(None);
    };
    let mut c = Cursor::new(body);
    let table_id = c.uint_n(table_id_len, "rows table id")?;
    c.skip(2, "rows flags")?;
    if v2 {
        let extra = usize::from(c.u16("rows extra data length")?);
        c.skip(extra.saturating_sub(2), "rows extra data")?;
    }
    Ok(Some(RowsHeader {
        table_id,
        kind,
        partial,
        body: c.rest(),
        compressed,
    }))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowsError {
    #[error(transparent)]
    Short(#[from] Short),
    #[error("rows event has {event} columns, its table map has {map}")]
    ColumnCount { event: usize, map: usize },
    #[error("column `{column}`: {source}")]
    Value {
        column: String,
        #[source]
        source: ValueError,
    },
    #[error("compressed row data does not decompress: {0}")]
    Compressed(String),
    #[error("row image holds no column (empty column bitmap) but the event has {left} more bytes")]
    EmptyImage { left: usize },
}

/// One decoded row change: before and after images (per the event kind).
pub type RowPair = (Option<Vec<Option<Value>>>, Option<Vec<Option<Value>>>);

fn bitmap_bit(bits: &[u8], i: usize) -> bool {
    bits.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
}

/// Decodes all rows of a rows body (column count onwards) against `def`. With
/// `compressed` (MariaDB `log_bin_compress`), the row data after the column bitmaps
/// is zlib-compressed; the count and bitmaps are not.
pub fn decode_rows(
    def: &TableDef,
    body: &[u8],
    kind: RowsKind,
    partial: bool,
    compressed: bool,
) -> Result<Vec<RowPair>, RowsError> {
    let mut c = Cursor::new(body);
    let n = c.lenenc_len("rows column count")?;
    if n != def.readers.len() {
        return Err(RowsError::ColumnCount {
            event: n,
            map: def.readers.len(),
        });
    }
    let present_before = c.bytes(n.div_ceil(8), "rows column bitmap")?;
    let present_after = if kind == RowsKind::Update {
        c.bytes(n.div_ceil(8), "rows column bitmap")?
    } else {
        present_before
    };
    let inflated;
    if compressed {
        inflated = super::decode::maria_inflate(c.rest()).map_err(RowsError::Compressed)?;
        c = Cursor::new(&inflated);
    }
    let mut rows = Vec::new();
    while !c.is_empty() {
        // An image always takes bytes (MySQL and MariaDB log at least one column); an
        // empty bitmap in a corrupt event would otherwise repeat zero-byte rows until
        // memory runs out (found by the no-panic property test).
        let any = |bits: &[u8]| (0..n).any(|i| bitmap_bit(bits, i));
        if !any(present_before) || !any(present_after) {
            return Err(RowsError::EmptyImage {
                left: c.remaining(),
            });
        }
        let first = read_image(def, &mut c, present_before, false)?;
        let pair = match kind {
            RowsKind::Write => (None, Some(first)),
            RowsKind::Delete => (Some(first), None),
            RowsKind::Update => (
                Some(first),
                Some(read_image(def, &mut c, present_after, partial)?),
            ),
        };
        rows.push(pair);
    }
    Ok(rows)
}

fn read_image(
    def: &TableDef,
    c: &mut Cursor<'_>,
    present: &[u8],
    partial_after: bool,
) -> Result<Vec<Option<Value>>, RowsError> {
    let n = def.readers.len();
    let mut partial_bits: Option<&[u8]> = None;
    if partial_after {
        let options = c.lenenc("partial update value options")?.unwrap_or(0);
        if options & 1 != 0 {
            partial_bits = Some(c.bytes(def.json_count.div_ceil(8), "partial update bitmap")?);
        }
    }
    let n_present = (0..n).filter(|&i| bitmap_bit(present, i)).count();
    let nulls = c.bytes(n_present.div_ceil(8), "row null bitmap")?;
    let mut row = Vec::with_capacity(n);
    let mut k = 0;
    for i in 0..n {
        if !bitmap_bit(present, i) {
            row.push(None);
            continue;
        }
        let is_null = bitmap_bit(nulls, k);
        k += 1;
        if is_null {
            row.push(Some(Value::Null));
            continue;
        }
        let partial = match (partial_bits, def.json_index[i]) {
            (Some(bits), Some(j)) => bitmap_bit(bits, j),
            _ => false,
        };
        let v = def.readers[i]
            .read(c, partial)
            .map_err(|source| RowsError::Value {
                column: def.schema.columns[i].name.clone(),
                source,
            })?;
        row.push(Some(v));
    }
    Ok(row)
}
