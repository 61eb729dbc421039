//! Column values from row-event bytes: the one place binlog encodings become
//! `otter_core::Value`s.
//!
//! Invariants:
//! - Exactness: DECIMAL digits are copied, never rounded through floats; temporal
//!   values keep the column's fractional precision; BINARY(n) gets back the trailing
//!   zero bytes the row image dropped; text is decoded from the column charset.
//! - Every value reads exactly its own bytes; a length that runs past the row is an
//!   error, and so is a value outside its type's range (a DECIMAL digit group over
//!   999999999, an ENUM index past its names).
//! - Metadata a value needs and the table map lacks (signedness, charset, ENUM/SET
//!   names) is an error unless the operator set an explicit assumption.

use otter_core::value::{Date, DateTime, Time, Timestamp, Value};

use super::charset::TextCodec;
use super::cursor::{Cursor, Short};
use super::jsonb::{self, JsonbError};
use super::tablemap::ct;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error(transparent)]
    Short(#[from] Short),
    #[error("DECIMAL({precision},{scale}) bytes are not a valid decimal")]
    Decimal { precision: u8, scale: u8 },
    #[error("column type {0} is not supported")]
    UnsupportedType(u8),
    #[error("{0}")]
    Json(#[from] JsonbError),
    #[error("ENUM index {index} is past the {count} names in the table map")]
    EnumIndex { index: u64, count: usize },
    #[error("SET bits {bits:#x} name members past the {count} names in the table map")]
    SetBits { bits: u64, count: usize },
    #[error("the table map has no {0} for this column (binlog_row_metadata=FULL is required)")]
    MissingMetadata(&'static str),
    #[error("text is not valid in its charset: {0}")]
    Charset(String),
    #[error("fractional-second precision {0} is out of range")]
    Fsp(u16),
    #[error("temporal value {0} is out of range")]
    Temporal(String),
}

const DIG2BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];

/// Reads MySQL's binary DECIMAL(precision, scale) and prints it exactly.
pub fn decimal_text(c: &mut Cursor<'_>, precision: u8, scale: u8) -> Result<String, ValueError> {
    let bad = || ValueError::Decimal { precision, scale };
    if scale > precision || precision == 0 || precision > 65 || scale > 30 {
        return Err(bad());
    }
    let intg = usize::from(precision - scale);
    let frac = usize::from(scale);
    let (intg0, intg0x, frac0, frac0x) = (intg / 9, intg % 9, frac / 9, frac % 9);
    let size = intg0 * 4 + DIG2BYTES[intg0x] + frac0 * 4 + DIG2BYTES[frac0x];
    let mut bytes = c.bytes(size, "decimal")?.to_vec();
    let Some(first) = bytes.first_mut() else {
        return Err(bad());
    };
    let negative = *first & 0x80 == 0;
    *first ^= 0x80;
    if negative {
        bytes.iter_mut().for_each(|b| *b = !*b);
    }
    let mut d = Cursor::new(&bytes);
    let mut group = |n_bytes: usize, digits: usize| -> Result<String, ValueError> {
        if n_bytes == 0 {
            return Ok(String::new());
        }
        let v = d.uint_be(n_bytes, "decimal digits")?;
        if v >= 10u64.pow(digits as u32) {
            return Err(bad());
        }
        Ok(format!("{v:0digits$}"))
    };
    let mut int_digits = group(DIG2BYTES[intg0x], intg0x)?;
    for _ in 0..intg0 {
        int_digits.push_str(&group(4, 9)?);
    }
    let mut frac_digits = String::with_capacity(frac);
    for _ in 0..frac0 {
        frac_digits.push_str(&group(4, 9)?);
    }
    frac_digits.push_str(&group(DIG2BYTES[frac0x], frac0x)?);
    let int_trim = int_digits.trim_start_matches('0');
    let int_part = if int_trim.is_empty() { "0" } else { int_trim };
    let is_zero = int_part == "0" && frac_digits.bytes().all(|b| b == b'0');
    let mut out = String::with_capacity(precision as usize + 2);
    if negative && !is_zero {
        out.push('-');
    }
    out.push_str(int_part);
    if frac > 0 {
        out.push('.');
        out.push_str(&frac_digits);
    }
    Ok(out)
}

fn fsp_of(meta: u16) -> Result<u8, ValueError> {
    u8::try_from(meta)
        .ok()
        .filter(|f| *f <= 6)
        .ok_or(ValueError::Fsp(meta))
}

/// Fractional seconds stored big-endian in (fsp+1)/2 bytes, scaled to microseconds.
fn read_frac(c: &mut Cursor<'_>, fsp: u8) -> Result<u32, ValueError> {
    Ok(match fsp {
        0 => 0,
        1 | 2 => c.uint_be(1, "fractional seconds")? as u32 * 10_000,
        3 | 4 => c.uint_be(2, "fractional seconds")? as u32 * 100,
        _ => c.uint_be(3, "fractional seconds")? as u32,
    })
}

fn check_micros(micros: u32, fsp: u8) -> Result<u32, ValueError> {
    if micros > 999_999 || !micros.is_multiple_of(10u32.pow(6 - u32::from(fsp))) {
        return Err(ValueError::Temporal(format!(
            "fraction {micros} at precision {fsp}"
        )));
    }
    Ok(micros)
}

/// MySQL's packed datetime (`intpart << 24 | micros`, year*13+month layout).
pub fn packed_datetime(packed: i64, fsp: u8) -> Option<DateTime> {
    if packed < 0 {
        return None;
    }
    let micros = (packed % (1 << 24)) as u32;
    let ymdhms = packed >> 24;
    datetime_from_parts(ymdhms, micros, fsp)
}

fn datetime_from_parts(ymdhms: i64, micros: u32, fsp: u8) -> Option<DateTime> {
    let ymd = ymdhms >> 17;
    let ym = ymd >> 5;
    let hms = ymdhms % (1 << 17);
    let dt = DateTime {
        date: Date {
            year: u16::try_from(ym / 13).ok()?,
            month: (ym % 13) as u8,
            day: (ymd % 32) as u8,
        },
        hour: (hms >> 12) as u8,
        minute: ((hms >> 6) % 64) as u8,
        second: (hms % 64) as u8,
        micros,
        fsp,
    };
    (dt.date.year <= 9999 && dt.hour < 24 && dt.minute < 60 && dt.second < 60 && micros < 1_000_000)
        .then_some(dt)
}

/// MySQL's packed time (`intpart << 24 | micros`, signed).
pub fn packed_time(packed: i64, fsp: u8) -> Time {
    let negative = packed < 0;
    let v = packed.unsigned_abs();
    let hms = v >> 24;
    Time {
        negative,
        hours: ((hms >> 12) % (1 << 10)) as u16,
        minutes: ((hms >> 6) % 64) as u8,
        seconds: (hms % 64) as u8,
        micros: (v % (1 << 24)) as u32,
        fsp,
    }
}

/// How one column's values are read, resolved once per table map.
#[derive(Debug, Clone)]
pub struct ColumnReader {
    pub type_code: u8,
    pub real_type: u8,
    pub meta: u16,
    pub max_len: u16,
    /// Signedness for integer columns; `None` = unknown (an error when read).
    pub unsigned: Option<bool>,
    /// Text decoding for character columns; `None` = unknown (an error when read).
    pub text: Option<TextCodec>,
    pub enum_values: Option<Vec<String>>,
    pub set_values: Option<Vec<String>>,
    /// A text column holding JSON (MariaDB's JSON type): its text is the document.
    pub json_text: bool,
}

impl ColumnReader {
    fn int(&self, c: &mut Cursor<'_>, n: usize) -> Result<Value, ValueError> {
        let raw = c.uint_n(n, "integer")?;
        let unsigned = self
            .unsigned
            .ok_or(ValueError::MissingMetadata("signedness"))?;
        if unsigned {
            return Ok(Value::UInt(raw));
        }
        let shift = 64 - 8 * n as u32;
        Ok(Value::Int(((raw << shift) as i64) >> shift))
    }

    fn text_or_bytes(&self, bytes: &[u8]) -> Result<Value, ValueError> {
        match self.text.ok_or(ValueError::MissingMetadata("charset"))? {
            TextCodec::Binary => Ok(Value::Bytes(bytes.to_vec())),
            codec => {
                let text = codec
                    .decode(bytes)
                    .map_err(|e| ValueError::Charset(e.to_string()))?;
                Ok(if self.json_text {
                    Value::Json(text)
                } else {
                    Value::Text(text)
                })
            }
        }
    }

    /// Reads one non-NULL value. `partial_json` marks a JSON column whose after image
    /// holds a diff instead of a document.
    pub fn read(&self, c: &mut Cursor<'_>, partial_json: bool) -> Result<Value, ValueError> {
        match self.type_code {
            ct::TINY => self.int(c, 1),
            ct::SHORT => self.int(c, 2),
            ct::INT24 => self.int(c, 3),
            ct::LONG => self.int(c, 4),
            ct::LONGLONG => self.int(c, 8),
            ct::FLOAT => Ok(Value::Float(f32::from_bits(c.u32("float")?))),
            ct::DOUBLE => Ok(Value::Double(f64::from_bits(c.u64("double")?))),
            ct::NEWDECIMAL => {
                let [p, s] = self.meta.to_be_bytes();
                decimal_text(c, p, s).map(Value::Decimal)
            }
            ct::YEAR => {
                let y = c.u8("year")?;
                Ok(Value::Year(if y == 0 { 0 } else { 1900 + u16::from(y) }))
            }
            ct::DATE | ct::NEWDATE => {
                let v = c.u24("date")?;
                Ok(Value::Date(Date {
                    year: (v >> 9) as u16,
                    month: ((v >> 5) & 15) as u8,
                    day: (v & 31) as u8,
                }))
            }
            ct::TIMESTAMP => Ok(Value::Timestamp(Timestamp {
                secs: c.u32("timestamp")?,
                micros: 0,
                fsp: 0,
            })),
            ct::TIMESTAMP2 => {
                let fsp = fsp_of(self.meta)?;
                let secs = c.uint_be(4, "timestamp")? as u32;
                let micros = check_micros(read_frac(c, fsp)?, fsp)?;
                Ok(Value::Timestamp(Timestamp { secs, micros, fsp }))
            }
            ct::DATETIME => {
                let v = c.u64("datetime")?;
                let (d, t) = (v / 1_000_000, v % 1_000_000);
                Ok(Value::DateTime(DateTime {
                    date: Date {
                        year: (d / 10_000) as u16,
                        month: (d / 100 % 100) as u8,
                        day: (d % 100) as u8,
                    },
                    hour: (t / 10_000) as u8,
                    minute: (t / 100 % 100) as u8,
                    second: (t % 100) as u8,
                    micros: 0,
                    fsp: 0,
                }))
            }
            ct::DATETIME2 => {
                let fsp = fsp_of(self.meta)?;
                let raw = c.uint_be(5, "datetime")? as i64 - 0x80_0000_0000;
                let micros = check_micros(read_frac(c, fsp)?, fsp)?;
                datetime_from_parts(raw, micros, fsp)
                    .map(Value::DateTime)
                    .ok_or_else(|| ValueError::Temporal(format!("datetime {raw:#x}")))
            }
            ct::TIME => {
                let raw = c.u24("time")?;
                let v = ((raw << 8) as i32) >> 8;
                let a = v.unsigned_abs();
                Ok(Value::Time(Time {
                    negative: v < 0,
                    hours: (a / 10_000) as u16,
                    minutes: (a / 100 % 100) as u8,
                    seconds: (a % 100) as u8,
                    micros: 0,
                    fsp: 0,
                }))
            }
            ct::TIME2 => {
                let fsp = fsp_of(self.meta)?;
                let packed = match fsp {
                    0 => (c.uint_be(3, "time")? as i64 - 0x80_0000) << 24,
                    1..=4 => {
                        let mut int = c.uint_be(3, "time")? as i64 - 0x80_0000;
                        let (mut frac, unit, scale) = if fsp <= 2 {
                            (c.uint_be(1, "time fraction")? as i64, 0x100, 10_000)
                        } else {
                            (c.uint_be(2, "time fraction")? as i64, 0x1_0000, 100)
                        };
                        if int < 0 && frac != 0 {
                            int += 1;
                            frac -= unit;
                        }
                        (int << 24) + frac * scale
                    }
                    _ => c.uint_be(6, "time")? as i64 - 0x8000_0000_0000,
                };
                let t = packed_time(packed, fsp);
                check_micros(t.micros, fsp)?;
                Ok(Value::Time(t))
            }
            ct::BIT => {
                let [bits, bytes] = self.meta.to_be_bytes();
                let n = usize::from(bytes) + usize::from(bits > 0);
                if n > 8 {
                    return Err(ValueError::UnsupportedType(ct::BIT));
                }
                Ok(Value::Bit(c.uint_be(n, "bit")?))
            }
            ct::VARCHAR | ct::VAR_STRING => {
                let n = if self.meta < 256 {
                    usize::from(c.u8("varchar length")?)
                } else {
                    usize::from(c.u16("varchar length")?)
                };
                self.text_or_bytes(c.bytes(n, "varchar")?)
            }
            ct::STRING | ct::ENUM | ct::SET => self.read_string_like(c),
            ct::BLOB | ct::TINY_BLOB | ct::MEDIUM_BLOB | ct::LONG_BLOB => {
                let n = self.blob_len(c)?;
                self.text_or_bytes(c.bytes(n, "blob")?)
            }
            ct::GEOMETRY => {
                let n = self.blob_len(c)?;
                Ok(Value::Geometry(c.bytes(n, "geometry")?.to_vec()))
            }
            ct::VECTOR => {
                let n = self.blob_len(c)?;
                let b = c.bytes(n, "vector")?;
                if b.len() % 4 != 0 {
                    return Err(ValueError::UnsupportedType(ct::VECTOR));
                }
                Ok(Value::Vector(
                    b.chunks_exact(4)
                        .map(|x| f32::from_le_bytes([x[0], x[1], x[2], x[3]]))
                        .collect(),
                ))
            }
            ct::JSON => {
                let n = self.blob_len(c)?;
                let b = c.bytes(n, "json")?;
                if partial_json {
                    Ok(Value::JsonDiff(jsonb::parse_diffs(b)?))
                } else {
                    Ok(Value::Json(jsonb::to_text(b)?))
                }
            }
            other => Err(ValueError::UnsupportedType(other)),
        }
    }

    fn blob_len(&self, c: &mut Cursor<'_>) -> Result<usize, ValueError> {
        let w = usize::from(self.meta);
        if !(1..=4).contains(&w) {
            return Err(ValueError::UnsupportedType(self.type_code));
        }
        Ok(c.uint_n(w, "blob length")? as usize)
    }

    fn read_string_like(&self, c: &mut Cursor<'_>) -> Result<Value, ValueError> {
        match self.real_type {
            ct::ENUM => {
                let width = usize::from(self.max_len);
                let index = c.uint_n(width.clamp(1, 2), "enum index")?;
                let names = self
                    .enum_values
                    .as_ref()
                    .ok_or(ValueError::MissingMetadata("ENUM value names"))?;
                // Index 0 is the empty "error" value MySQL stores for invalid input.
                if index == 0 {
                    return Ok(Value::Enum(String::new()));
                }
                let name = usize::try_from(index - 1).ok().and_then(|i| names.get(i));
                name.cloned().map(Value::Enum).ok_or(ValueError::EnumIndex {
                    index,
                    count: names.len(),
                })
            }
            ct::SET => {
                let width = usize::from(self.max_len).clamp(1, 8);
                let bits = c.uint_n(width, "set bits")?;
                let names = self
                    .set_values
                    .as_ref()
                    .ok_or(ValueError::MissingMetadata("SET value names"))?;
                if names.len() < 64 && bits >> names.len() != 0 {
                    return Err(ValueError::SetBits {
                        bits,
                        count: names.len(),
                    });
                }
                Ok(Value::Set(
                    (0..names.len())
                        .filter(|i| bits & (1 << i) != 0)
                        .map(|i| names[i].clone())
                        .collect(),
                ))
            }
            _ => {
                let n = if self.max_len < 256 {
                    usize::from(c.u8("char length")?)
                } else {
                    usize::from(c.u16("char length")?)
                };
                let b = c.bytes(n, "char")?;
                match self.text.ok_or(ValueError::MissingMetadata("charset"))? {
                    // BINARY(n): the row image drops trailing 0x00; the column holds n bytes.
                    TextCodec::Binary => {
                        let mut v = b.to_vec();
                        v.resize(v.len().max(usize::from(self.max_len)), 0);
                        Ok(Value::Bytes(v))
                    }
                    codec => codec
                        .decode(b)
                        .map(Value::Text)
                        .map_err(|e| ValueError::Charset(e.to_string())),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(bytes: &[u8], p: u8, s: u8) -> Result<String, ValueError> {
        decimal_text(&mut Cursor::new(bytes), p, s)
    }

    #[test]
    fn decimals_decode_exactly() {
        // 1234567890.1234 as DECIMAL(14,4): 1 + 4 bytes int, 2 bytes frac.
        assert_eq!(
            dec(&[0x81, 0x0d, 0xfb, 0x38, 0xd2, 0x04, 0xd2], 14, 4).expect("valid"),
            "1234567890.1234"
        );
        // -1234567890.1234: every byte inverted.
        assert_eq!(
            dec(&[0x7e, 0xf2, 0x04, 0xc7, 0x2d, 0xfb, 0x2d], 14, 4).expect("valid"),
            "-1234567890.1234"
        );
        assert_eq!(dec(&[0x80, 0x00], 4, 2).expect("zero"), "0.00");
    }

    #[test]
    fn decimal_digit_groups_over_their_width_are_corrupt() {
        assert!(matches!(
            dec(&[0x80 | 0x3f, 0xff], 4, 0),
            Err(ValueError::Decimal { .. })
        ));
        assert!(dec(&[0x80], 14, 4).is_err(), "short input");
    }

    #[test]
    fn negative_time2_with_fraction_borrows_a_second() {
        // -00:00:01.5 at fsp 1: intpart -2 (stored 0x7ffffe), fraction 0x100-50.
        let r = ColumnReader {
            type_code: ct::TIME2,
            real_type: ct::TIME2,
            meta: 1,
            max_len: 0,
            unsigned: None,
            text: None,
            enum_values: None,
            set_values: None,
            json_text: false,
        };
        let v = r
            .read(
                &mut Cursor::new(&[0x7f, 0xff, 0xfe, 0x100u16.wrapping_sub(50) as u8]),
                false,
            )
            .expect("valid");
        assert_eq!(
            v,
            Value::Time(Time {
                negative: true,
                hours: 0,
                minutes: 0,
                seconds: 1,
                micros: 500_000,
                fsp: 1
            })
        );
    }

    #[test]
    fn integers_without_signedness_are_refused() {
        let r = ColumnReader {
            type_code: ct::LONG,
            real_type: ct::LONG,
            meta: 0,
            max_len: 0,
            unsigned: None,
            text: None,
            enum_values: None,
            set_values: None,
            json_text: false,
        };
        assert_eq!(
            r.read(&mut Cursor::new(&[1, 0, 0, 0]), false),
            Err(ValueError::MissingMetadata("signedness"))
        );
        let signed = ColumnReader {
            unsigned: Some(false),
            ..r.clone()
        };
        assert_eq!(
            signed
                .read(&mut Cursor::new(&[0xff; 4]), false)
                .expect("valid"),
            Value::Int(-1)
        );
        let unsigned = ColumnReader {
            unsigned: Some(true),
            ..r
        };
        assert_eq!(
            unsigned
                .read(&mut Cursor::new(&[0xff; 4]), false)
                .expect("valid"),
            Value::UInt(u32::MAX.into())
        );
    }
}
