//! MySQL binary JSON (the JSON column format of MySQL 5.7+) to JSON text.
//!
//! Output is the text MySQL itself prints for the document (`", "` and `": "`
//! separators, keys in stored order, opaque DATE/TIME/DATETIME/DECIMAL scalars as
//! MySQL renders them, other opaque values as `"base64:typeNN:..."`), so a MySQL
//! target given this text stores the same document.
//!
//! Invariant: every offset and length is checked against the value's own bytes; a
//! document that points outside itself, nests deeper than MySQL allows, or holds an
//! unknown type is an error, never a panic or a partial document.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use otter_core::value::{JsonDiff, JsonDiffOp};

use super::cursor::{Cursor, Short};
use super::values::{decimal_text, packed_datetime, packed_time};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonbError {
    #[error(transparent)]
    Short(#[from] Short),
    #[error("JSON value type {0:#04x} is unknown")]
    UnknownType(u8),
    #[error("JSON {what} offset {offset} points outside its {size}-byte container")]
    Offset {
        what: &'static str,
        offset: usize,
        size: usize,
    },
    #[error("JSON document nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("JSON key or string is not UTF-8")]
    NotUtf8,
    #[error("JSON opaque value of type {0} is malformed")]
    Opaque(u8),
    #[error("JSON diff operation {0} is unknown")]
    DiffOp(u8),
    #[error("JSON document of {input} bytes renders to over {limit} bytes of text (entries sharing one value: corrupt)")]
    TooLarge { input: usize, limit: usize },
}

/// MySQL refuses documents deeper than 100 levels; a deeper one here is corrupt.
const MAX_DEPTH: usize = 100;

/// Text of a valid document is at most a few times its binary size (a 1-byte control
/// character becomes `\u0001`, an inlined literal `false`); offsets that make many
/// entries share one value could otherwise render a few KiB into gigabytes (found by
/// the no-panic property test). Anything past this many bytes of text per binary byte
/// is refused.
const MAX_EXPANSION: usize = 16;

/// Renders a whole binary JSON document. An empty value is MySQL's JSON `null`
/// (a JSON column set to SQL NULL is NULL in the null bitmap, not here).
pub fn to_text(bytes: &[u8]) -> Result<String, JsonbError> {
    let mut out = String::with_capacity(bytes.len() * 2);
    if bytes.is_empty() {
        out.push_str("null");
        return Ok(out);
    }
    let mut c = Cursor::new(bytes);
    let t = c.u8("json type")?;
    let limit = bytes.len().saturating_mul(MAX_EXPANSION).saturating_add(64);
    write_value(&mut out, t, c.rest(), 0, limit)?;
    Ok(out)
}

fn write_value(
    out: &mut String,
    t: u8,
    data: &[u8],
    depth: usize,
    limit: usize,
) -> Result<(), JsonbError> {
    if depth > MAX_DEPTH {
        return Err(JsonbError::TooDeep);
    }
    if out.len() > limit {
        return Err(JsonbError::TooLarge {
            input: limit.saturating_sub(64) / MAX_EXPANSION,
            limit,
        });
    }
    let mut c = Cursor::new(data);
    match t {
        0x00 | 0x01 => write_container(out, data, t == 0x01, true, depth, limit),
        0x02 | 0x03 => write_container(out, data, t == 0x03, false, depth, limit),
        0x04 => write_literal(out, c.u8("json literal")?),
        0x05 => push(out, c.u16("json int16")? as i16),
        0x06 => push(out, c.u16("json uint16")?),
        0x07 => push(out, c.u32("json int32")? as i32),
        0x08 => push(out, c.u32("json uint32")?),
        0x09 => push(out, c.u64("json int64")? as i64),
        0x0a => push(out, c.u64("json uint64")?),
        0x0b => {
            push_double(out, f64::from_bits(c.u64("json double")?));
            Ok(())
        }
        0x0c => {
            let n = varlen(&mut c)?;
            let s =
                std::str::from_utf8(c.bytes(n, "json string")?).map_err(|_| JsonbError::NotUtf8)?;
            push_json_string(out, s);
            Ok(())
        }
        0x0f => write_opaque(out, &mut c),
        other => Err(JsonbError::UnknownType(other)),
    }
}

fn push(out: &mut String, n: impl std::fmt::Display) -> Result<(), JsonbError> {
    out.push_str(&n.to_string());
    Ok(())
}

fn push_double(out: &mut String, x: f64) {
    // MySQL prints doubles in their shortest round-trip form; integral ones keep ".0".
    if x.is_finite() {
        out.push_str(&format!("{x:?}"));
    } else {
        out.push_str("null");
    }
}

fn write_literal(out: &mut String, b: u8) -> Result<(), JsonbError> {
    out.push_str(match b {
        0x00 => "null",
        0x01 => "true",
        0x02 => "false",
        other => return Err(JsonbError::UnknownType(other)),
    });
    Ok(())
}

pub(super) fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// MySQL's variable-length length: 7 bits per byte, low bits first, at most 5 bytes.
fn varlen(c: &mut Cursor<'_>) -> Result<usize, JsonbError> {
    let mut n: u64 = 0;
    for i in 0..5 {
        let b = c.u8("json length")?;
        n |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return usize::try_from(n).map_err(|_| JsonbError::Offset {
                what: "length",
                offset: usize::MAX,
                size: 0,
            });
        }
    }
    Err(JsonbError::Offset {
        what: "length",
        offset: usize::MAX,
        size: 0,
    })
}

fn write_container(
    out: &mut String,
    data: &[u8],
    large: bool,
    object: bool,
    depth: usize,
    limit: usize,
) -> Result<(), JsonbError> {
    let w = if large { 4 } else { 2 };
    let mut c = Cursor::new(data);
    let count = c.uint_n(w, "json element count")? as usize;
    let size = c.uint_n(w, "json container size")? as usize;
    if size > data.len() {
        return Err(JsonbError::Offset {
            what: "container",
            offset: size,
            size: data.len(),
        });
    }
    let data = &data[..size];
    let header = 2 * w;
    let key_entry = w + 2;
    let value_entry = 1 + w;
    let keys_start = header;
    let values_start = header
        + if object {
            count.saturating_mul(key_entry)
        } else {
            0
        };
    let entries_end = values_start.saturating_add(count.saturating_mul(value_entry));
    if entries_end > size {
        return Err(JsonbError::Offset {
            what: "entry table",
            offset: entries_end,
            size,
        });
    }
    out.push(if object { '{' } else { '[' });
    for i in 0..count {
        if i > 0 {
            out.push_str(", ");
        }
        if object {
            let mut k = Cursor::new(&data[keys_start + i * key_entry..]);
            let off = k.uint_n(w, "json key offset")? as usize;
            let len = usize::from(k.u16("json key length")?);
            let key = data
                .get(off..off.saturating_add(len))
                .ok_or(JsonbError::Offset {
                    what: "key",
                    offset: off,
                    size,
                })?;
            push_json_string(
                out,
                std::str::from_utf8(key).map_err(|_| JsonbError::NotUtf8)?,
            );
            out.push_str(": ");
        }
        let mut e = Cursor::new(&data[values_start + i * value_entry..]);
        let t = e.u8("json value type")?;
        let inlined = matches!(t, 0x04..=0x06) || (large && matches!(t, 0x07 | 0x08));
        if inlined {
            write_value(out, t, e.bytes(w, "json inline value")?, depth + 1, limit)?;
        } else {
            let off = e.uint_n(w, "json value offset")? as usize;
            let v = data
                .get(off..)
                .filter(|_| off >= entries_end)
                .ok_or(JsonbError::Offset {
                    what: "value",
                    offset: off,
                    size,
                })?;
            write_value(out, t, v, depth + 1, limit)?;
        }
    }
    out.push(if object { '}' } else { ']' });
    Ok(())
}

fn write_opaque(out: &mut String, c: &mut Cursor<'_>) -> Result<(), JsonbError> {
    use super::tablemap::ct;
    let field_type = c.u8("json opaque type")?;
    let n = varlen(c)?;
    let data = c.bytes(n, "json opaque value")?;
    let mut d = Cursor::new(data);
    let bad = || JsonbError::Opaque(field_type);
    match field_type {
        ct::NEWDECIMAL => {
            let precision = d.u8("json decimal precision")?;
            let scale = d.u8("json decimal scale")?;
            let text = decimal_text(&mut d, precision, scale).map_err(|_| bad())?;
            out.push_str(&text);
        }
        ct::DATE | ct::DATETIME | ct::TIMESTAMP | ct::TIME => {
            let packed = d.u64("json temporal")? as i64;
            let text = if field_type == ct::TIME {
                packed_time(packed, 6).to_string()
            } else {
                let dt = packed_datetime(packed, 6).ok_or_else(bad)?;
                if field_type == ct::DATE {
                    dt.date.to_string()
                } else {
                    dt.to_string()
                }
            };
            push_json_string(out, &text);
        }
        other => push_json_string(out, &format!("base64:type{other}:{}", B64.encode(data))),
    }
    Ok(())
}

/// Parses the operations of a partial JSON update (PARTIAL_UPDATE_ROWS after image).
pub fn parse_diffs(bytes: &[u8]) -> Result<Vec<JsonDiff>, JsonbError> {
    let mut c = Cursor::new(bytes);
    let mut diffs = Vec::new();
    while !c.is_empty() {
        let op = match c.u8("json diff operation")? {
            0 => JsonDiffOp::Replace,
            1 => JsonDiffOp::Insert,
            2 => JsonDiffOp::Remove,
            other => return Err(JsonbError::DiffOp(other)),
        };
        let path = std::str::from_utf8(c.lenenc_bytes("json diff path")?)
            .map_err(|_| JsonbError::NotUtf8)?
            .to_owned();
        let value = if op == JsonDiffOp::Remove {
            None
        } else {
            Some(to_text(c.lenenc_bytes("json diff value")?)?)
        };
        diffs.push(JsonDiff { op, path, value });
    }
    Ok(diffs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_object_with_inlined_and_offset_values() {
        // {"a": 1, "bc": "x"}: small object, 2 keys.
        let mut doc = vec![0x00];
        let body: Vec<u8> = vec![
            2, 0, 0, 0, // count, size (patched below)
            18, 0, 1, 0, // key "a" at 18, len 1
            19, 0, 2, 0, // key "bc" at 19, len 2
            0x05, 1, 0, // int16 1 inlined
            0x0c, 21, 0, // string at 21
            b'a', b'b', b'c', 1, b'x',
        ];
        let mut body = body;
        let size = body.len() as u16;
        body[2..4].copy_from_slice(&size.to_le_bytes());
        doc.extend_from_slice(&body);
        assert_eq!(to_text(&doc).expect("valid"), r#"{"a": 1, "bc": "x"}"#);
    }

    #[test]
    fn offsets_outside_the_container_are_errors() {
        let doc = [0x02, 1, 0, 7, 0, 0x0c, 200, 0];
        assert!(matches!(to_text(&doc), Err(JsonbError::Offset { .. })));
    }

    #[test]
    fn entries_sharing_one_value_cannot_blow_up_the_text() {
        // An array of 2 entries that both point at the array itself's sibling: each
        // level doubles the output. 40 nested levels would be 2^40 elements.
        let mut doc = vec![0x02u8];
        let levels = 40usize;
        // Level i (small array, 2 entries) at offset 0 of its own slice; both entries
        // point to offset 10, where level i+1 starts.
        let mut body = Vec::new();
        for _ in 0..levels {
            body.extend_from_slice(&[2, 0]); // count
            body.extend_from_slice(&[0, 0]); // size, patched below
            body.extend_from_slice(&[0x02, 10, 0, 0x02, 10, 0]);
        }
        body.extend_from_slice(&[0, 0, 4, 0]); // innermost: empty array
        let total = body.len();
        for i in 0..levels {
            let size = u16::try_from(total - i * 10).expect("small");
            body[i * 10 + 2..i * 10 + 4].copy_from_slice(&size.to_le_bytes());
        }
        // Offsets are relative to each container's start: 10 is the next level.
        doc.extend(body);
        assert!(matches!(to_text(&doc), Err(JsonbError::TooLarge { .. })));
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        // 200 nested one-element small arrays around the string "x".
        let mut doc = vec![0x0c, 1, b'x'];
        for _ in 0..200 {
            let mut outer = vec![0x02, 1, 0];
            let size = (4 + 3 + doc.len() - 1) as u16;
            outer.extend_from_slice(&size.to_le_bytes());
            outer.extend_from_slice(&[doc[0], 7, 0]);
            outer.extend_from_slice(&doc[1..]);
            doc = outer;
        }
        assert_eq!(to_text(&doc), Err(JsonbError::TooDeep));
    }
}
