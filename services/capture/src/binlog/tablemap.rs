//! TABLE_MAP events: a table's column types and, with `binlog_row_metadata=FULL`, its
//! column names, signedness, charsets, ENUM/SET names and primary key.
//!
//! Invariant: a [`TableMap`] records what the event says and nothing else; metadata
//! the event lacks is `None`, and it is the decoder's job to refuse (or, when the
//! operator asked for it, to apply an explicit assumption), never this module's.

use super::cursor::{Cursor, Short};
use super::event::Flavor;

/// Column type codes as they appear in table maps (MySQL `enum_field_types`).
pub mod ct {
    pub const DECIMAL: u8 = 0;
    pub const TINY: u8 = 1;
    pub const SHORT: u8 = 2;
    pub const LONG: u8 = 3;
    pub const FLOAT: u8 = 4;
    pub const DOUBLE: u8 = 5;
    pub const NULL: u8 = 6;
    pub const TIMESTAMP: u8 = 7;
    pub const LONGLONG: u8 = 8;
    pub const INT24: u8 = 9;
    pub const DATE: u8 = 10;
    pub const TIME: u8 = 11;
    pub const DATETIME: u8 = 12;
    pub const YEAR: u8 = 13;
    pub const NEWDATE: u8 = 14;
    pub const VARCHAR: u8 = 15;
    pub const BIT: u8 = 16;
    pub const TIMESTAMP2: u8 = 17;
    pub const DATETIME2: u8 = 18;
    pub const TIME2: u8 = 19;
    pub const TYPED_ARRAY: u8 = 20;
    pub const MARIA_VARCHAR_COMPRESSED: u8 = 140;
    pub const MARIA_BLOB_COMPRESSED: u8 = 141;
    pub const VECTOR: u8 = 242;
    pub const JSON: u8 = 245;
    pub const NEWDECIMAL: u8 = 246;
    pub const ENUM: u8 = 247;
    pub const SET: u8 = 248;
    pub const TINY_BLOB: u8 = 249;
    pub const MEDIUM_BLOB: u8 = 250;
    pub const LONG_BLOB: u8 = 251;
    pub const BLOB: u8 = 252;
    pub const VAR_STRING: u8 = 253;
    pub const STRING: u8 = 254;
    pub const GEOMETRY: u8 = 255;
}

/// One column as the table map describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapColumn {
    /// Type code from the table map (for CHAR/ENUM/SET: `STRING`).
    pub type_code: u8,
    /// Real type: for `STRING` columns, `STRING`, `ENUM` or `SET` from the metadata.
    pub real_type: u8,
    /// Type-specific metadata, already split per column (0 to 2 bytes, 3 for arrays).
    pub meta: u16,
    /// For CHAR: maximum length in bytes.
    pub max_len: u16,
    pub nullable: bool,
    pub name: Option<String>,
    /// `None` when the table map has no signedness metadata (numeric columns only).
    pub unsigned: Option<bool>,
    /// Collation id for character, ENUM and SET columns, when the table map has it.
    pub collation: Option<u16>,
    /// Character set from capture's schema history, for a map without collations.
    pub charset: Option<String>,
    pub enum_values: Option<Vec<Vec<u8>>>,
    pub set_values: Option<Vec<Vec<u8>>>,
    pub visible: bool,
}

impl MapColumn {
    /// Whether the column has a bit in the SIGNEDNESS metadata. MySQL gives bits to
    /// the numeric types only; MariaDB also to YEAR (it does not to BIT), which a
    /// probe against MariaDB 10.11 shows (see `tests::mariadb_counts_year_in_signedness`).
    pub fn in_signedness_bitmap(&self, flavor: Flavor) -> bool {
        self.is_numeric() || (flavor == Flavor::MariaDb && self.type_code == ct::YEAR)
    }

    /// Numeric types, for which signedness changes the value.
    pub fn is_numeric(&self) -> bool {
        matches!(
            self.type_code,
            ct::TINY
                | ct::SHORT
                | ct::INT24
                | ct::LONG
                | ct::LONGLONG
                | ct::NEWDECIMAL
                | ct::DECIMAL
                | ct::FLOAT
                | ct::DOUBLE
        )
    }

    /// Character columns in the sense of the charset metadata (MySQL 9 counts VECTOR
    /// columns among them, with charset `binary`).
    pub fn is_character(&self) -> bool {
        match self.type_code {
            ct::STRING => self.real_type == ct::STRING,
            ct::VARCHAR
            | ct::VAR_STRING
            | ct::BLOB
            | ct::VECTOR
            | ct::MARIA_VARCHAR_COMPRESSED
            | ct::MARIA_BLOB_COMPRESSED => true,
            _ => false,
        }
    }

    pub fn is_enum_or_set(&self) -> bool {
        matches!(self.real_type, ct::ENUM | ct::SET)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMap {
    pub table_id: u64,
    pub db: String,
    pub table: String,
    pub columns: Vec<MapColumn>,
    /// Primary key column indexes, when the table map carries them (FULL metadata).
    pub primary_key: Option<Vec<usize>>,
    /// True when any optional metadata block was present.
    pub has_optional_metadata: bool,
}

/// Why a table map did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableMapError {
    #[error(transparent)]
    Short(#[from] Short),
    #[error("column {column} has type code {code}, which has no known metadata layout")]
    UnknownType { column: usize, code: u8 },
    #[error("table map metadata block has {extra} unused bytes")]
    MetadataLength { extra: usize },
    #[error("optional metadata {field} lists more entries than the table has columns")]
    MetadataCount { field: &'static str },
}

fn meta_len(code: u8) -> Option<usize> {
    Some(match code {
        ct::FLOAT
        | ct::DOUBLE
        | ct::BLOB
        | ct::TINY_BLOB
        | ct::MEDIUM_BLOB
        | ct::LONG_BLOB
        | ct::GEOMETRY
        | ct::JSON
        | ct::TIMESTAMP2
        | ct::DATETIME2
        | ct::TIME2
        | ct::VECTOR
        | ct::MARIA_BLOB_COMPRESSED => 1,
        ct::VARCHAR
        | ct::VAR_STRING
        | ct::NEWDECIMAL
        | ct::STRING
        | ct::ENUM
        | ct::SET
        | ct::BIT
        | ct::MARIA_VARCHAR_COMPRESSED => 2,
        ct::DECIMAL
        | ct::TINY
        | ct::SHORT
        | ct::LONG
        | ct::NULL
        | ct::TIMESTAMP
        | ct::LONGLONG
        | ct::INT24
        | ct::DATE
        | ct::TIME
        | ct::DATETIME
        | ct::YEAR
        | ct::NEWDATE => 0,
        _ => return None,
    })
}

pub fn parse_table_map(
    body: &[u8],
    table_id_len: usize,
    flavor: Flavor,
) -> Result<TableMap, TableMapError> {
    let mut c = Cursor::new(body);
    let table_id = c.uint_n(table_id_len, "table id")?;
    c.skip(2, "table map flags")?;
    let db_len = usize::from(c.u8("database name")?);
    let db = String::from_utf8_lossy(c.bytes(db_len, "database name")?).into_owned();
    c.skip(1, "database name")?;
    let t_len = usize::from(c.u8("table name")?);
    let table = String::from_utf8_lossy(c.bytes(t_len, "table name")?).into_owned();
    c.skip(1, "table name")?;
    let n = c.lenenc_len("column count")?;
    let types = c.bytes(n, "column types")?;
    let meta_block = c.lenenc_bytes("column metadata")?;
    let nulls = c.bytes(n.div_ceil(8), "null bitmap")?;
    let mut meta = Cursor::new(meta_block);
    let mut columns = Vec::with_capacity(n);
    for (i, &code) in types.iter().enumerate() {
        let len = meta_len(code).ok_or(TableMapError::UnknownType { column: i, code })?;
        let m = meta.bytes(len, "column metadata")?;
        // 2-byte metadata is little-endian except for STRING/ENUM/SET and NEWDECIMAL
        // (real type or precision first) and BIT (bits, bytes).
        let (meta_val, real_type, max_len) = match (code, m) {
            (ct::STRING | ct::ENUM | ct::SET, &[b0, b1]) => {
                if b0 & 0x30 != 0x30 {
                    // CHAR longer than 255 bytes: two length bits hide in byte 0.
                    let len = u16::from(b1) | (u16::from((b0 & 0x30) ^ 0x30) << 4);
                    (u16::from_be_bytes([b0, b1]), b0 | 0x30, len)
                } else {
                    (u16::from_be_bytes([b0, b1]), b0, u16::from(b1))
                }
            }
            (ct::NEWDECIMAL | ct::BIT, &[b0, b1]) => (u16::from_be_bytes([b0, b1]), code, 0),
            (_, &[b0, b1]) => (u16::from_le_bytes([b0, b1]), code, 0),
            (_, &[b0]) => (u16::from(b0), code, 0),
            _ => (0, code, 0),
        };
        columns.push(MapColumn {
            type_code: code,
            real_type: if code == ct::ENUM || code == ct::SET {
                code
            } else {
                real_type
            },
            meta: meta_val,
            max_len,
            nullable: nulls.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0),
            name: None,
            unsigned: None,
            collation: None,
            charset: None,
            enum_values: None,
            set_values: None,
            visible: true,
        });
    }
    if !meta.is_empty() {
        return Err(TableMapError::MetadataLength {
            extra: meta.remaining(),
        });
    }
    let mut map = TableMap {
        table_id,
        db,
        table,
        columns,
        primary_key: None,
        has_optional_metadata: false,
    };
    parse_optional(&mut map, c.take_rest(), flavor)?;
    Ok(map)
}

/// Bits of a bitmap, most significant bit first (the optional-metadata order).
fn msb_bits(bytes: &[u8]) -> impl Iterator<Item = bool> + '_ {
    bytes
        .iter()
        .flat_map(|b| (0..8).rev().map(move |i| b & (1 << i) != 0))
}

fn parse_optional(
    map: &mut TableMap,
    mut rest: &[u8],
    flavor: Flavor,
) -> Result<(), TableMapError> {
    while !rest.is_empty() {
        let mut c = Cursor::new(rest);
        let field = c.u8("optional metadata type")?;
        let value = c.lenenc_bytes("optional metadata value")?;
        rest = c.rest();
        map.has_optional_metadata = true;
        let mut v = Cursor::new(value);
        let cols = &mut map.columns;
        match field {
            1 => {
                let mut bits = msb_bits(value);
                for col in cols.iter_mut().filter(|c| c.in_signedness_bitmap(flavor)) {
                    col.unsigned = Some(bits.next().ok_or(TableMapError::MetadataCount {
                        field: "signedness",
                    })?);
                }
            }
            2 | 10 => {
                let enum_set = field == 10;
                let default = u16::try_from(v.lenenc_len("default charset")?).unwrap_or(u16::MAX);
                let mut overrides = Vec::new();
                while !v.is_empty() {
                    overrides.push((
                        v.lenenc_len("charset column")?,
                        v.lenenc_len("charset collation")?,
                    ));
                }
                let selected: Vec<usize> = (0..cols.len())
                    .filter(|&i| {
                        if enum_set {
                            cols[i].is_enum_or_set()
                        } else {
                            cols[i].is_character()
                        }
                    })
                    .collect();
                for &i in &selected {
                    cols[i].collation = Some(default);
                }
                for (nth, coll) in overrides {
                    let &i = selected
                        .get(nth)
                        .ok_or(TableMapError::MetadataCount { field: "charset" })?;
                    cols[i].collation = Some(u16::try_from(coll).unwrap_or(u16::MAX));
                }
            }
            3 | 11 => {
                let enum_set = field == 11;
                for col in cols.iter_mut().filter(|c| {
                    if enum_set {
                        c.is_enum_or_set()
                    } else {
                        c.is_character()
                    }
                }) {
                    col.collation =
                        Some(u16::try_from(v.lenenc_len("column charset")?).unwrap_or(u16::MAX));
                }
            }
            4 => {
                for col in cols.iter_mut() {
                    if v.is_empty() {
                        break;
                    }
                    col.name =
                        Some(String::from_utf8_lossy(v.lenenc_bytes("column name")?).into_owned());
                }
            }
            5 | 6 => {
                let want = if field == 5 { ct::SET } else { ct::ENUM };
                for col in cols.iter_mut().filter(|c| c.real_type == want) {
                    let n = v.lenenc_len("enum/set value count")?;
                    let mut names = Vec::new();
                    for _ in 0..n {
                        names.push(v.lenenc_bytes("enum/set value")?.to_vec());
                    }
                    if field == 5 {
                        col.set_values = Some(names);
                    } else {
                        col.enum_values = Some(names);
                    }
                }
            }
            8 => {
                let mut pk = Vec::new();
                while !v.is_empty() {
                    pk.push(v.lenenc_len("primary key column")?);
                }
                map.primary_key = Some(pk);
            }
            9 => {
                let mut pk = Vec::new();
                while !v.is_empty() {
                    pk.push(v.lenenc_len("primary key column")?);
                    v.lenenc_len("primary key prefix")?;
                }
                map.primary_key = Some(pk);
            }
            12 => {
                let mut bits = msb_bits(value);
                for col in cols.iter_mut() {
                    col.visible = bits.next().unwrap_or(true);
                }
            }
            // 7 (geometry subtype) and later additions carry nothing decoding needs.
            _ => {}
        }
    }
    if let Some(pk) = &map.primary_key {
        if pk.iter().any(|&i| i >= map.columns.len()) {
            return Err(TableMapError::MetadataCount {
                field: "primary key",
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Table map of `(a YEAR, c TINYINT, f TINYINT UNSIGNED)` as MariaDB 10.11 wrote it:
    /// signedness byte 0xa0 gives YEAR a bit.
    fn year_table_map(signedness: u8) -> Vec<u8> {
        let mut b = vec![
            1, 0, 0, 0, 0, 0, 1, 0, 1, b'q', 0, 2, b's', b'y', 0, 3, 0x0d, 0x01, 0x01, 0, 0x07,
        ];
        b.extend_from_slice(&[0x01, 0x01, signedness]);
        b
    }

    #[test]
    fn mariadb_counts_year_in_signedness() {
        let map = parse_table_map(&year_table_map(0xa0), 6, Flavor::MariaDb).expect("valid");
        assert_eq!(map.columns[1].unsigned, Some(false), "TINYINT");
        assert_eq!(map.columns[2].unsigned, Some(true), "TINYINT UNSIGNED");
    }

    #[test]
    fn mysql_gives_year_no_signedness_bit() {
        let map = parse_table_map(&year_table_map(0x40), 6, Flavor::MySql).expect("valid");
        assert_eq!(map.columns[1].unsigned, Some(false));
        assert_eq!(map.columns[2].unsigned, Some(true));
    }
}
