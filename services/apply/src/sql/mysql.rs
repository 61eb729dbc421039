//! MySQL/MariaDB dialect: values as SQL literals, and the statements merged runs become.
//!
//! Invariants:
//! - Every identifier is backquoted (backquotes doubled); nothing from a record reaches
//!   a statement except through [`push_ident`] or [`push_literal`].
//! - A literal reads back as the exact value in the session `target::SESSION_SETUP`
//!   prepares (utf8mb4 connection, `time_zone = '+00:00'`, backslash escapes on,
//!   `NO_AUTO_VALUE_ON_ZERO`): FLOAT and DOUBLE are written as the shortest decimal
//!   that parses back to the same double (a FLOAT widened to double exactly), DECIMAL as
//!   its digits, TIMESTAMP as its UTC wall-clock time, binary data as hex, text as a
//!   utf8mb4 string the server converts to the column's charset.
//! - A statement holds as many rows as fit in `max_bytes`; a single larger row gets a
//!   statement of its own (the target's `max_allowed_packet` must allow it).
//! - Inserts of at least [`Sizing::prepared_min_rows`] rows go as prepared statements
//!   (binary protocol: the server parses the text once per connection, and values are
//!   not literals). A parameter carries the same value as the literal would, in the same
//!   session: integers, FLOAT and DOUBLE in their binary form (exact), everything else
//!   as the bytes of the literal's string (DECIMAL digits, temporal text, utf8mb4 text,
//!   raw binary data). Their row counts are powers of two and their placeholders at most
//!   [`MAX_PLACEHOLDERS`], so a table needs only a few statement texts and each costs
//!   the server a bounded amount of memory per connection that caches it.
//! - Keyless matching is NULL-safe (`<=>`) and exact for text (binary collation and
//!   character length, so case and trailing spaces count); `LIMIT 1` keeps duplicate
//!   rows duplicates.

use std::fmt::Write as _;

use otter_core::Value;

use crate::mapping::Shape;

/// A value that has no literal on this target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlError {
    #[error("column `{column}`: {problem}")]
    Value {
        column: String,
        problem: &'static str,
    },
    #[error("column `{column}` is missing from the row image")]
    Missing { column: String },
}

/// What a statement does, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StmtKind {
    Upsert,
    Delete,
    Insert,
    Update,
}

/// One statement and the number of rows it writes (or must match, for keyless changes).
#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub sql: String,
    /// Prepared statement (`sql` holds placeholders): the values, row after row. `None`:
    /// `sql` is complete text.
    pub params: Option<Vec<mysql_async::Value>>,
    pub rows: usize,
    /// Keyless update/delete: the statement must affect exactly one row.
    pub expect_one: bool,
}

/// How statements are cut and sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizing {
    /// Statements are cut at about this many bytes (text, or parameters when prepared).
    pub max_bytes: usize,
    /// Inserts of this many rows or more are prepared; 0: never (text only, as dry runs
    /// print).
    pub prepared_min_rows: usize,
}

/// Most placeholders in one prepared statement: MariaDB keeps an item per placeholder
/// for as long as a connection caches the statement.
pub const MAX_PLACEHOLDERS: usize = 1024;

pub fn push_ident(out: &mut String, name: &str) {
    out.push('`');
    for c in name.chars() {
        if c == '`' {
            out.push('`');
        }
        out.push(c);
    }
    out.push('`');
}

pub fn push_table(out: &mut String, shape: &Shape) {
    push_ident(out, &shape.target.db);
    out.push('.');
    push_ident(out, &shape.target.table);
}

fn push_str(out: &mut String, s: &str) {
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{1a}' => out.push_str("\\Z"),
            c => out.push(c),
        }
    }
    out.push('\'');
}

fn push_hex(out: &mut String, b: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.reserve(b.len() * 2 + 3);
    out.push_str("X'");
    for &x in b {
        out.push(char::from(HEX[usize::from(x >> 4)]));
        out.push(char::from(HEX[usize::from(x & 15)]));
    }
    out.push('\'');
}

fn finite(column: &str, d: f64) -> Result<(), SqlError> {
    if d.is_finite() {
        Ok(())
    } else {
        Err(SqlError::Value {
            column: column.to_owned(),
            problem: "NaN or infinity cannot be stored",
        })
    }
}

fn push_double(out: &mut String, column: &str, d: f64) -> Result<(), SqlError> {
    finite(column, d)?;
    // `{:e}` prints the shortest digits that parse back to the same f64.
    let _ = write!(out, "{d:e}");
    Ok(())
}

/// A DECIMAL's text, checked to be plain digits (it reaches the statement as it is).
fn decimal<'d>(column: &str, d: &'d str) -> Result<&'d str, SqlError> {
    let digits = d.strip_prefix('-').unwrap_or(d);
    let ok = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().filter(|&b| b == b'.').count() <= 1;
    if ok {
        Ok(d)
    } else {
        Err(SqlError::Value {
            column: column.to_owned(),
            problem: "DECIMAL value is not plain digits",
        })
    }
}

fn json_diff(column: &str) -> SqlError {
    SqlError::Value {
        column: column.to_owned(),
        problem: "MySQL partial JSON updates cannot be applied yet; set binlog_row_value_options='' on the source",
    }
}

fn vector_bytes(fs: &[f32]) -> Vec<u8> {
    fs.iter().flat_map(|f| f.to_le_bytes()).collect()
}

/// Appends the literal of `v` (`NULL` for `None`) for column `column`.
pub fn push_literal(out: &mut String, column: &str, v: Option<&Value>) -> Result<(), SqlError> {
    let Some(v) = v else {
        out.push_str("NULL");
        return Ok(());
    };
    match v {
        Value::Null => out.push_str("NULL"),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::UInt(u) => {
            let _ = write!(out, "{u}");
        }
        Value::Bit(u) => {
            let _ = write!(out, "{u}");
        }
        Value::Year(y) => {
            let _ = write!(out, "{y}");
        }
        Value::Float(f) => push_double(out, column, f64::from(*f))?,
        Value::Double(d) => push_double(out, column, *d)?,
        Value::Decimal(d) => out.push_str(decimal(column, d)?),
        Value::Date(d) => push_str(out, &d.to_string()),
        Value::DateTime(d) => push_str(out, &d.to_string()),
        Value::Timestamp(t) => push_str(out, &t.to_string()),
        Value::Time(t) => push_str(out, &t.to_string()),
        Value::Text(s) | Value::Enum(s) | Value::Json(s) => push_str(out, s),
        Value::Set(names) => push_str(out, &names.join(",")),
        Value::Bytes(b) | Value::Geometry(b) => push_hex(out, b),
        Value::Vector(fs) => push_hex(out, &vector_bytes(fs)),
        Value::JsonDiff(_) => return Err(json_diff(column)),
    }
    Ok(())
}

/// The parameter carrying `v` for column `column` (see the module invariants), and
/// about how many bytes it adds to an execute packet.
pub fn param(column: &str, v: Option<&Value>) -> Result<(mysql_async::Value, usize), SqlError> {
    use mysql_async::Value as P;
    let bytes = |b: Vec<u8>| {
        let n = b.len() + 11;
        (P::Bytes(b), n)
    };
    let Some(v) = v else {
        return Ok((P::NULL, 2));
    };
    Ok(match v {
        Value::Null => (P::NULL, 2),
        Value::Int(i) => (P::Int(*i), 10),
        Value::UInt(u) | Value::Bit(u) => (P::UInt(*u), 10),
        Value::Year(y) => (P::UInt(u64::from(*y)), 10),
        Value::Float(f) => {
            finite(column, f64::from(*f))?;
            (P::Float(*f), 6)
        }
        Value::Double(d) => {
            finite(column, *d)?;
            (P::Double(*d), 10)
        }
        Value::Decimal(d) => bytes(decimal(column, d)?.as_bytes().to_vec()),
        Value::Date(d) => bytes(d.to_string().into_bytes()),
        Value::DateTime(d) => bytes(d.to_string().into_bytes()),
        Value::Timestamp(t) => bytes(t.to_string().into_bytes()),
        Value::Time(t) => bytes(t.to_string().into_bytes()),
        Value::Text(s) | Value::Enum(s) | Value::Json(s) => bytes(s.as_bytes().to_vec()),
        Value::Set(names) => bytes(names.join(",").into_bytes()),
        Value::Bytes(b) | Value::Geometry(b) => bytes(b.clone()),
        Value::Vector(fs) => bytes(vector_bytes(fs)),
        Value::JsonDiff(_) => return Err(json_diff(column)),
    })
}

fn value<'r>(
    row: &'r [Option<Value>],
    shape: &Shape,
    i: usize,
) -> Result<Option<&'r Value>, SqlError> {
    let col = &shape.cols[i];
    match row.get(col.src) {
        Some(v) => Ok(v.as_ref()),
        None => Err(SqlError::Missing {
            column: col.name.clone(),
        }),
    }
}

fn push_tuple(out: &mut String, shape: &Shape, row: &[Option<Value>]) -> Result<(), SqlError> {
    out.push('(');
    for i in 0..shape.cols.len() {
        if i > 0 {
            out.push(',');
        }
        push_literal(out, &shape.cols[i].name, value(row, shape, i)?)?;
    }
    out.push(')');
    Ok(())
}

fn insert_head(shape: &Shape) -> String {
    let mut s = String::from("INSERT INTO ");
    push_table(&mut s, shape);
    s.push_str(" (");
    for (i, c) in shape.cols.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        push_ident(&mut s, &c.name);
    }
    s.push_str(") VALUES ");
    s
}

fn upsert_tail(shape: &Shape) -> String {
    let mut s = String::from(" ON DUPLICATE KEY UPDATE ");
    let mut cols: Vec<usize> = (0..shape.cols.len())
        .filter(|i| !shape.key.contains(i))
        .collect();
    if cols.is_empty() {
        // Only key columns: a no-op assignment keeps the statement valid.
        cols.extend(shape.key.first());
    }
    for (n, i) in cols.into_iter().enumerate() {
        if n > 0 {
            s.push(',');
        }
        push_ident(&mut s, &shape.cols[i].name);
        s.push_str("=VALUES(");
        push_ident(&mut s, &shape.cols[i].name);
        s.push(')');
    }
    s
}

/// Multi-row `INSERT` statements for `rows`; with `upsert`, rows whose key exists
/// replace it (`ON DUPLICATE KEY UPDATE` of every written non-key column). Runs of at
/// least `sizing.prepared_min_rows` rows are prepared (see the module invariants).
pub fn inserts(
    shape: &Shape,
    rows: &[&[Option<Value>]],
    upsert: bool,
    sizing: Sizing,
) -> Result<Vec<Stmt>, SqlError> {
    let min = sizing.prepared_min_rows;
    if min == 0 || rows.len() < min {
        return text_inserts(shape, rows, upsert, sizing.max_bytes);
    }
    let width = shape.cols.len().max(1);
    let cap = floor_pow2((MAX_PLACEHOLDERS / width).max(1));
    // Every row's parameters, and each row's size, converted once.
    let mut params = Vec::with_capacity(rows.len() * shape.cols.len());
    let mut sizes = Vec::with_capacity(rows.len());
    for row in rows {
        let mut size = 0;
        for i in 0..shape.cols.len() {
            let (p, n) = param(&shape.cols[i].name, value(row, shape, i)?)?;
            params.push(p);
            size += n;
        }
        sizes.push(size);
    }
    let mut params = params.into_iter();
    let mut out = Vec::new();
    let mut at = 0;
    while at < rows.len() {
        // As many rows as fit, up to the cap; a larger row alone.
        let mut n = 0;
        let mut bytes = 0;
        while at + n < rows.len()
            && n < cap
            && (n == 0 || bytes + sizes[at + n] <= sizing.max_bytes)
        {
            bytes += sizes[at + n];
            n += 1;
        }
        let prepared = n >= min;
        if prepared {
            n = floor_pow2(n);
        }
        let chunk = params.by_ref().take(n * shape.cols.len());
        if prepared {
            out.push(Stmt {
                kind: if upsert {
                    StmtKind::Upsert
                } else {
                    StmtKind::Insert
                },
                sql: placeholder_insert(shape, n, upsert),
                params: Some(chunk.collect()),
                rows: n,
                expect_one: false,
            });
        } else {
            // Too few to prepare: the tail, or rows too large to share a statement.
            chunk.for_each(drop);
            out.extend(text_inserts(
                shape,
                &rows[at..at + n],
                upsert,
                sizing.max_bytes,
            )?);
        }
        at += n;
    }
    Ok(out)
}

/// [`inserts`] as text statements.
fn text_inserts(
    shape: &Shape,
    rows: &[&[Option<Value>]],
    upsert: bool,
    max_bytes: usize,
) -> Result<Vec<Stmt>, SqlError> {
    let head = insert_head(shape);
    let tail = if upsert {
        upsert_tail(shape)
    } else {
        String::new()
    };
    let kind = if upsert {
        StmtKind::Upsert
    } else {
        StmtKind::Insert
    };
    let mut out = Vec::new();
    let mut sql = head.clone();
    let mut n = 0;
    let mut tuple = String::new();
    for row in rows {
        tuple.clear();
        push_tuple(&mut tuple, shape, row)?;
        if n > 0 && sql.len() + 1 + tuple.len() + tail.len() > max_bytes {
            sql.push_str(&tail);
            out.push(Stmt {
                kind,
                sql: std::mem::replace(&mut sql, head.clone()),
                rows: n,
                params: None,
                expect_one: false,
            });
            n = 0;
        }
        if n > 0 {
            sql.push(',');
        }
        sql.push_str(&tuple);
        n += 1;
    }
    if n > 0 {
        sql.push_str(&tail);
        out.push(Stmt {
            kind,
            sql,
            rows: n,
            params: None,
            expect_one: false,
        });
    }
    Ok(out)
}

/// The largest power of two not above `n` (`n` > 0).
fn floor_pow2(n: usize) -> usize {
    1 << (usize::BITS - 1 - n.leading_zeros())
}

/// `INSERT` of `n` rows of placeholders.
fn placeholder_insert(shape: &Shape, n: usize, upsert: bool) -> String {
    let width = shape.cols.len();
    let mut sql = insert_head(shape);
    sql.reserve(n * (width * 2 + 2) + 64);
    for r in 0..n {
        if r > 0 {
            sql.push(',');
        }
        sql.push('(');
        for i in 0..width {
            if i > 0 {
                sql.push(',');
            }
            sql.push('?');
        }
        sql.push(')');
    }
    if upsert {
        sql.push_str(&upsert_tail(shape));
    }
    sql
}

/// `DELETE` statements removing the rows with the keys of `rows` (identifying images).
pub fn deletes(
    shape: &Shape,
    rows: &[&[Option<Value>]],
    max_bytes: usize,
) -> Result<Vec<Stmt>, SqlError> {
    let mut head = String::from("DELETE FROM ");
    push_table(&mut head, shape);
    let single = shape.key.len() == 1;
    if single {
        head.push_str(" WHERE ");
        push_ident(&mut head, &shape.cols[shape.key[0]].name);
        head.push_str(" IN (");
    } else {
        head.push_str(" WHERE ");
    }
    let close = if single { ")" } else { "" };
    let mut out = Vec::new();
    let mut sql = head.clone();
    let mut n = 0;
    let mut term = String::new();
    for row in rows {
        term.clear();
        if single {
            let k = shape.key[0];
            push_literal(&mut term, &shape.cols[k].name, value(row, shape, k)?)?;
        } else {
            term.push('(');
            for (j, &k) in shape.key.iter().enumerate() {
                if j > 0 {
                    term.push_str(" AND ");
                }
                push_ident(&mut term, &shape.cols[k].name);
                term.push('=');
                push_literal(&mut term, &shape.cols[k].name, value(row, shape, k)?)?;
            }
            term.push(')');
        }
        if n > 0 && sql.len() + 4 + term.len() + close.len() > max_bytes {
            sql.push_str(close);
            out.push(Stmt {
                kind: StmtKind::Delete,
                sql: std::mem::replace(&mut sql, head.clone()),
                rows: n,
                params: None,
                expect_one: false,
            });
            n = 0;
        }
        if n > 0 {
            sql.push_str(if single { "," } else { " OR " });
        }
        sql.push_str(&term);
        n += 1;
    }
    if n > 0 {
        sql.push_str(close);
        out.push(Stmt {
            kind: StmtKind::Delete,
            sql,
            rows: n,
            params: None,
            expect_one: false,
        });
    }
    Ok(out)
}

/// ` WHERE <every written column matches `row`> LIMIT 1`, for tables without a key.
fn push_match(out: &mut String, shape: &Shape, row: &[Option<Value>]) -> Result<(), SqlError> {
    out.push_str(" WHERE ");
    for i in 0..shape.cols.len() {
        if i > 0 {
            out.push_str(" AND ");
        }
        let name = &shape.cols[i].name;
        let v = value(row, shape, i)?;
        match v {
            Some(Value::Text(s) | Value::Json(s)) => {
                out.push('(');
                push_ident(out, name);
                out.push_str("<=>_utf8mb4");
                push_str(out, s);
                out.push_str(" COLLATE utf8mb4_bin AND CHAR_LENGTH(");
                push_ident(out, name);
                let _ = write!(out, ")={})", s.chars().count());
            }
            _ => {
                push_ident(out, name);
                out.push_str("<=>");
                push_literal(out, name, v)?;
            }
        }
    }
    out.push_str(" LIMIT 1");
    Ok(())
}

/// Deletes one row equal to `before`, for a table without a key.
pub fn keyless_delete(shape: &Shape, before: &[Option<Value>]) -> Result<Stmt, SqlError> {
    let mut sql = String::from("DELETE FROM ");
    push_table(&mut sql, shape);
    push_match(&mut sql, shape, before)?;
    Ok(Stmt {
        kind: StmtKind::Delete,
        sql,
        rows: 1,
        params: None,
        expect_one: true,
    })
}

/// Turns one row equal to `before` into `after`, for a table without a key.
pub fn keyless_update(
    shape: &Shape,
    before: &[Option<Value>],
    after: &[Option<Value>],
) -> Result<Stmt, SqlError> {
    let mut sql = String::from("UPDATE ");
    push_table(&mut sql, shape);
    sql.push_str(" SET ");
    for i in 0..shape.cols.len() {
        if i > 0 {
            sql.push(',');
        }
        push_ident(&mut sql, &shape.cols[i].name);
        sql.push('=');
        push_literal(&mut sql, &shape.cols[i].name, value(after, shape, i)?)?;
    }
    push_match(&mut sql, shape, before)?;
    Ok(Stmt {
        kind: StmtKind::Update,
        sql,
        rows: 1,
        params: None,
        expect_one: true,
    })
}

#[cfg(test)]
mod tests;
