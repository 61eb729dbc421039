//! Column values, lossless.
//!
//! Invariants:
//! - A `Value` holds exactly what the source stored: DECIMAL keeps its digits as text,
//!   unsigned integers stay unsigned up to 2^64-1, FLOAT/DOUBLE keep every bit, temporal
//!   values keep their fractional precision (`fsp`) and may be MySQL "zero" values, ENUM
//!   and SET hold resolved names, text is decoded from its column charset to UTF-8 and
//!   binary data stays bytes.
//! - Each variant has one text form ([`Value::to_text`] for temporal and decimal values)
//!   that parses back to the identical value; the wire codec relies on this.

use std::fmt;

/// The category of a column, as written in the wire format's `types` map. It tells a
/// consumer how to read the JSON form of the column's values (see `schemas/v1/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnKind {
    Int,
    UInt,
    Float,
    Double,
    Decimal,
    Date,
    DateTime,
    Timestamp,
    Time,
    Year,
    Text,
    Bytes,
    Enum,
    Set,
    Bit,
    Json,
    Geometry,
    Vector,
}

impl ColumnKind {
    pub const ALL: [ColumnKind; 18] = [
        ColumnKind::Int,
        ColumnKind::UInt,
        ColumnKind::Float,
        ColumnKind::Double,
        ColumnKind::Decimal,
        ColumnKind::Date,
        ColumnKind::DateTime,
        ColumnKind::Timestamp,
        ColumnKind::Time,
        ColumnKind::Year,
        ColumnKind::Text,
        ColumnKind::Bytes,
        ColumnKind::Enum,
        ColumnKind::Set,
        ColumnKind::Bit,
        ColumnKind::Json,
        ColumnKind::Geometry,
        ColumnKind::Vector,
    ];

    /// The wire tag.
    pub fn tag(self) -> &'static str {
        match self {
            ColumnKind::Int => "int",
            ColumnKind::UInt => "uint",
            ColumnKind::Float => "float",
            ColumnKind::Double => "double",
            ColumnKind::Decimal => "decimal",
            ColumnKind::Date => "date",
            ColumnKind::DateTime => "datetime",
            ColumnKind::Timestamp => "timestamp",
            ColumnKind::Time => "time",
            ColumnKind::Year => "year",
            ColumnKind::Text => "text",
            ColumnKind::Bytes => "bytes",
            ColumnKind::Enum => "enum",
            ColumnKind::Set => "set",
            ColumnKind::Bit => "bit",
            ColumnKind::Json => "json",
            ColumnKind::Geometry => "geometry",
            ColumnKind::Vector => "vector",
        }
    }

    pub fn from_tag(tag: &str) -> Option<ColumnKind> {
        ColumnKind::ALL.into_iter().find(|k| k.tag() == tag)
    }
}

impl fmt::Display for ColumnKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

/// A calendar date; all-zero parts are MySQL's zero date (`0000-00-00`) and its
/// partial zeros (`2024-00-00`), which the source may hold under a permissive sql_mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

/// Wall-clock date and time without a zone (DATETIME).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateTime {
    pub date: Date,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub micros: u32,
    /// Fractional digits of the column (0..=6); the text form prints exactly this many.
    pub fsp: u8,
}

/// An instant (TIMESTAMP): seconds since the Unix epoch, UTC. `secs == 0` with
/// `micros == 0` is MySQL's zero timestamp, printed `0000-00-00 00:00:00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timestamp {
    pub secs: u32,
    pub micros: u32,
    pub fsp: u8,
}

/// A signed duration or time of day (TIME), `-838:59:59` to `838:59:59`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Time {
    pub negative: bool,
    pub hours: u16,
    pub minutes: u8,
    pub seconds: u8,
    pub micros: u32,
    pub fsp: u8,
}

/// One operation of a MySQL partial JSON update (`binlog_row_value_options=PARTIAL_JSON`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonDiff {
    pub op: JsonDiffOp,
    /// A MySQL JSON path such as `$.a[1]`.
    pub path: String,
    /// The new value as JSON text; `None` for `Remove`.
    pub value: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonDiffOp {
    Replace,
    Insert,
    Remove,
}

impl JsonDiffOp {
    pub fn name(self) -> &'static str {
        match self {
            JsonDiffOp::Replace => "replace",
            JsonDiffOp::Insert => "insert",
            JsonDiffOp::Remove => "remove",
        }
    }
}

/// One column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    UInt(u64),
    Float(f32),
    Double(f64),
    /// Decimal digits exactly as the column holds them, e.g. `-0012.50` is `-12.50`
    /// for DECIMAL(6,2): no exponent, scale digits always present.
    Decimal(String),
    Date(Date),
    DateTime(DateTime),
    Timestamp(Timestamp),
    Time(Time),
    /// YEAR; 0 is the zero year `0000`.
    Year(u16),
    /// Character data, decoded from the column charset.
    Text(String),
    /// Binary data (BINARY, VARBINARY, BLOB, and text columns of charset `binary`).
    Bytes(Vec<u8>),
    Enum(String),
    Set(Vec<String>),
    /// BIT(n), n <= 64, as an unsigned number.
    Bit(u64),
    /// A whole JSON document as text (MariaDB keeps the text as written; MySQL binary
    /// JSON is rendered as MySQL prints it).
    Json(String),
    /// A MySQL partial JSON update: apply these operations to the old document.
    JsonDiff(Vec<JsonDiff>),
    /// MySQL's internal geometry format: 4-byte little-endian SRID, then WKB.
    Geometry(Vec<u8>),
    Vector(Vec<f32>),
}

impl Value {
    /// The kind a column must have to hold this value; `None` for NULL.
    pub fn kind(&self) -> Option<ColumnKind> {
        Some(match self {
            Value::Null => return None,
            Value::Int(_) => ColumnKind::Int,
            Value::UInt(_) => ColumnKind::UInt,
            Value::Float(_) => ColumnKind::Float,
            Value::Double(_) => ColumnKind::Double,
            Value::Decimal(_) => ColumnKind::Decimal,
            Value::Date(_) => ColumnKind::Date,
            Value::DateTime(_) => ColumnKind::DateTime,
            Value::Timestamp(_) => ColumnKind::Timestamp,
            Value::Time(_) => ColumnKind::Time,
            Value::Year(_) => ColumnKind::Year,
            Value::Text(_) => ColumnKind::Text,
            Value::Bytes(_) => ColumnKind::Bytes,
            Value::Enum(_) => ColumnKind::Enum,
            Value::Set(_) => ColumnKind::Set,
            Value::Bit(_) => ColumnKind::Bit,
            Value::Json(_) | Value::JsonDiff(_) => ColumnKind::Json,
            Value::Geometry(_) => ColumnKind::Geometry,
            Value::Vector(_) => ColumnKind::Vector,
        })
    }
}

fn push_fraction(out: &mut String, micros: u32, fsp: u8) {
    if fsp == 0 {
        return;
    }
    let digits = format!("{micros:06}");
    out.push('.');
    out.push_str(&digits[..usize::from(fsp.min(6))]);
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = format!(
            "{} {:02}:{:02}:{:02}",
            self.date, self.hour, self.minute, self.second
        );
        push_fraction(&mut s, self.micros, self.fsp);
        f.write_str(&s)
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.negative { "-" } else { "" };
        let mut s = format!(
            "{sign}{:02}:{:02}:{:02}",
            self.hours, self.minutes, self.seconds
        );
        push_fraction(&mut s, self.micros, self.fsp);
        f.write_str(&s)
    }
}

impl Timestamp {
    /// The instant as UTC wall-clock time (`secs == 0` gives the zero date).
    pub fn to_utc(self) -> DateTime {
        if self.secs == 0 && self.micros == 0 {
            return DateTime {
                date: Date {
                    year: 0,
                    month: 0,
                    day: 0,
                },
                hour: 0,
                minute: 0,
                second: 0,
                micros: 0,
                fsp: self.fsp,
            };
        }
        let days = i64::from(self.secs / 86_400);
        let rem = self.secs % 86_400;
        let date = civil_from_days(days);
        DateTime {
            date,
            hour: (rem / 3600) as u8,
            minute: (rem % 3600 / 60) as u8,
            second: (rem % 60) as u8,
            micros: self.micros,
            fsp: self.fsp,
        }
    }

    /// Inverse of [`Timestamp::to_utc`]; `None` when `dt` is not a representable
    /// TIMESTAMP (before 1970, after 2106, or a partial zero date).
    pub fn from_utc(dt: &DateTime) -> Option<Timestamp> {
        let d = dt.date;
        if d.year == 0 && d.month == 0 && d.day == 0 {
            let zero_time = dt.hour == 0 && dt.minute == 0 && dt.second == 0 && dt.micros == 0;
            return zero_time.then_some(Timestamp {
                secs: 0,
                micros: 0,
                fsp: dt.fsp,
            });
        }
        if !(1..=12).contains(&d.month) || d.day == 0 || d.day > days_in_month(d.year, d.month) {
            return None;
        }
        if dt.hour > 23 || dt.minute > 59 || dt.second > 59 || dt.micros > 999_999 {
            return None;
        }
        let days = days_from_civil(d);
        let secs = days * 86_400
            + i64::from(dt.hour) * 3600
            + i64::from(dt.minute) * 60
            + i64::from(dt.second);
        let secs = u32::try_from(secs).ok()?;
        Some(Timestamp {
            secs,
            micros: dt.micros,
            fsp: dt.fsp,
        })
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_utc().fmt(f)
    }
}

fn is_leap(y: u16) -> bool {
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
}

fn days_in_month(y: u16, m: u8) -> u8 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        _ => 28,
    }
}

// Howard Hinnant's days-from-civil algorithms (proleptic Gregorian).
fn days_from_civil(d: Date) -> i64 {
    let y = i64::from(d.year) - i64::from(d.month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(d.month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d.day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> Date {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    Date {
        year: (y + i64::from(m <= 2)) as u16,
        month: m as u8,
        day: d as u8,
    }
}

/// Why a text form did not parse back into a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a valid {kind} text form")]
pub struct TextFormError {
    pub kind: ColumnKind,
    pub text: String,
}

fn bad(kind: ColumnKind, text: &str) -> TextFormError {
    TextFormError {
        kind,
        text: text.to_owned(),
    }
}

fn parse_num<T: std::str::FromStr>(s: &str, width: usize) -> Option<T> {
    (s.len() == width && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Splits `hh:mm:ss[.ffffff]` into parts and the fraction's digit count.
fn parse_clock(s: &str, hour_width: usize) -> Option<(u16, u8, u8, u32, u8)> {
    let (main, frac) = match s.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (s, None),
    };
    let mut parts = main.split(':');
    let h = parts.next()?;
    if h.len() < hour_width || h.len() > 3 || !h.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: u16 = h.parse().ok()?;
    let m: u8 = parse_num(parts.next()?, 2)?;
    let sec: u8 = parse_num(parts.next()?, 2)?;
    if parts.next().is_some() {
        return None;
    }
    let (micros, fsp) = match frac {
        None => (0, 0),
        Some(f) if (1..=6).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit()) => {
            let padded = format!("{f:0<6}");
            (padded.parse().ok()?, f.len() as u8)
        }
        Some(_) => return None,
    };
    Some((h, m, sec, micros, fsp))
}

impl Date {
    pub fn parse(s: &str) -> Result<Date, TextFormError> {
        let err = || bad(ColumnKind::Date, s);
        let mut it = s.split('-');
        let (y, m, d) = (it.next(), it.next(), it.next());
        if it.next().is_some() {
            return Err(err());
        }
        Ok(Date {
            year: parse_num(y.ok_or_else(err)?, 4).ok_or_else(err)?,
            month: parse_num(m.ok_or_else(err)?, 2).ok_or_else(err)?,
            day: parse_num(d.ok_or_else(err)?, 2).ok_or_else(err)?,
        })
    }
}

impl DateTime {
    pub fn parse(s: &str) -> Result<DateTime, TextFormError> {
        let err = || bad(ColumnKind::DateTime, s);
        let (d, t) = s.split_once(' ').ok_or_else(err)?;
        let date = Date::parse(d).map_err(|_| err())?;
        let (hour, minute, second, micros, fsp) = parse_clock(t, 2).ok_or_else(err)?;
        if hour > 99 {
            return Err(err());
        }
        Ok(DateTime {
            date,
            hour: hour as u8,
            minute,
            second,
            micros,
            fsp,
        })
    }
}

impl Time {
    pub fn parse(s: &str) -> Result<Time, TextFormError> {
        let (negative, rest) = match s.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, s),
        };
        let (hours, minutes, seconds, micros, fsp) =
            parse_clock(rest, 2).ok_or_else(|| bad(ColumnKind::Time, s))?;
        Ok(Time {
            negative,
            hours,
            minutes,
            seconds,
            micros,
            fsp,
        })
    }
}

impl Timestamp {
    pub fn parse(s: &str) -> Result<Timestamp, TextFormError> {
        let dt = DateTime::parse(s).map_err(|_| bad(ColumnKind::Timestamp, s))?;
        Timestamp::from_utc(&dt).ok_or_else(|| bad(ColumnKind::Timestamp, s))
    }
}

/// Checks that `s` is a plain decimal number: optional `-`, digits, optional `.digits`.
pub fn is_decimal_text(s: &str) -> bool {
    let body = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn temporal_text_forms_keep_fractional_digits() {
        let dt = DateTime::parse("2024-02-29 23:59:58.120").expect("valid");
        assert_eq!(dt.micros, 120_000);
        assert_eq!(dt.fsp, 3);
        assert_eq!(dt.to_string(), "2024-02-29 23:59:58.120");
        let t = Time::parse("-838:59:59.000001").expect("valid");
        assert!(t.negative);
        assert_eq!(t.to_string(), "-838:59:59.000001");
        assert_eq!(
            Date::parse("0000-00-00").expect("zero date").to_string(),
            "0000-00-00"
        );
    }

    #[test]
    fn zero_timestamp_prints_as_zero_date() {
        let z = Timestamp {
            secs: 0,
            micros: 0,
            fsp: 2,
        };
        assert_eq!(z.to_string(), "0000-00-00 00:00:00.00");
        assert_eq!(Timestamp::parse("0000-00-00 00:00:00.00").expect("zero"), z);
    }

    #[test]
    fn timestamp_converts_to_utc_wall_clock() {
        let t = Timestamp {
            secs: 1_700_000_000,
            micros: 5,
            fsp: 6,
        };
        assert_eq!(t.to_string(), "2023-11-14 22:13:20.000005");
        assert_eq!(
            Timestamp::parse("2038-01-19 03:14:07").expect("max").secs,
            i32::MAX as u32
        );
    }

    #[test]
    fn malformed_text_forms_are_rejected() {
        for s in [
            "2024-1-01",
            "2024-01-01T00:00:00",
            "24:00",
            "",
            "2024-01-01 00:00:00.1234567",
        ] {
            assert!(DateTime::parse(s).is_err(), "{s}");
        }
        assert!(Timestamp::parse("1969-12-31 23:59:59").is_err());
        assert!(Timestamp::parse("2024-02-30 00:00:00").is_err());
        assert!(!is_decimal_text("1e5"));
        assert!(!is_decimal_text("1."));
        assert!(is_decimal_text("-0.000000000000000000000000000001"));
    }

    proptest! {
        #[test]
        fn timestamp_text_round_trips(secs in 1u32.., micros in 0u32..1_000_000, fsp in 0u8..=6) {
            let micros = micros - micros % 10u32.pow(6 - u32::from(fsp));
            let t = Timestamp { secs, micros, fsp };
            prop_assert_eq!(Timestamp::parse(&t.to_string()).expect("round trip"), t);
        }

        #[test]
        fn time_text_round_trips(neg: bool, hours in 0u16..=838, minutes in 0u8..60, seconds in 0u8..60,
                                 micros in 0u32..1_000_000, fsp in 0u8..=6) {
            let micros = micros - micros % 10u32.pow(6 - u32::from(fsp));
            let t = Time { negative: neg, hours, minutes, seconds, micros, fsp };
            prop_assert_eq!(Time::parse(&t.to_string()).expect("round trip"), t);
        }
    }
}
