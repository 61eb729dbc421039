//! Binlog event framing and the bodies of the non-row events.
//!
//! Invariants:
//! - An event is split off only when its whole declared size is present; a short
//!   buffer is `Truncated`, never a partial event.
//! - With a CRC32 format description, every event's checksum is verified before its
//!   body is read; a mismatch is `Checksum`, and the body is never interpreted.
//! - An unknown event type stops decoding (`UnknownEvent`) unless the server marked it
//!   ignorable (`LOG_EVENT_IGNORABLE_F`), as the replication protocol allows.

use otter_core::position::{GtidSet, MariaGtid, MySqlSid};

use super::cursor::{Cursor, Short};

pub const HEADER_LEN: usize = 19;
pub const CHECKSUM_LEN: usize = 4;
/// Header flag: the binlog file was not closed cleanly (set only in the FDE).
pub const FLAG_IN_USE: u16 = 0x0001;
/// Header flag: a replica that does not know this event type may skip it.
pub const FLAG_IGNORABLE: u16 = 0x0080;

/// Event type codes (MySQL `Log_event_type`, MariaDB additions from 160).
pub mod ty {
    pub const QUERY: u8 = 2;
    pub const STOP: u8 = 3;
    pub const ROTATE: u8 = 4;
    pub const INTVAR: u8 = 5;
    pub const LOAD: u8 = 6;
    pub const CREATE_FILE: u8 = 8;
    pub const APPEND_BLOCK: u8 = 9;
    pub const EXEC_LOAD: u8 = 10;
    pub const DELETE_FILE: u8 = 11;
    pub const NEW_LOAD: u8 = 12;
    pub const RAND: u8 = 13;
    pub const USER_VAR: u8 = 14;
    pub const FORMAT_DESCRIPTION: u8 = 15;
    pub const XID: u8 = 16;
    pub const BEGIN_LOAD_QUERY: u8 = 17;
    pub const EXECUTE_LOAD_QUERY: u8 = 18;
    pub const TABLE_MAP: u8 = 19;
    pub const PRE_GA_WRITE_ROWS: u8 = 20;
    pub const PRE_GA_DELETE_ROWS: u8 = 22;
    pub const WRITE_ROWS_V1: u8 = 23;
    pub const UPDATE_ROWS_V1: u8 = 24;
    pub const DELETE_ROWS_V1: u8 = 25;
    pub const INCIDENT: u8 = 26;
    pub const HEARTBEAT: u8 = 27;
    pub const IGNORABLE: u8 = 28;
    pub const ROWS_QUERY: u8 = 29;
    pub const WRITE_ROWS: u8 = 30;
    pub const UPDATE_ROWS: u8 = 31;
    pub const DELETE_ROWS: u8 = 32;
    pub const GTID: u8 = 33;
    pub const ANONYMOUS_GTID: u8 = 34;
    pub const PREVIOUS_GTIDS: u8 = 35;
    pub const TRANSACTION_CONTEXT: u8 = 36;
    pub const VIEW_CHANGE: u8 = 37;
    pub const XA_PREPARE: u8 = 38;
    pub const PARTIAL_UPDATE_ROWS: u8 = 39;
    pub const TRANSACTION_PAYLOAD: u8 = 40;
    pub const HEARTBEAT_V2: u8 = 41;
    pub const GTID_TAGGED: u8 = 42;
    pub const MARIA_ANNOTATE_ROWS: u8 = 160;
    pub const MARIA_BINLOG_CHECKPOINT: u8 = 161;
    pub const MARIA_GTID: u8 = 162;
    pub const MARIA_GTID_LIST: u8 = 163;
    pub const MARIA_START_ENCRYPTION: u8 = 164;
    pub const MARIA_QUERY_COMPRESSED: u8 = 165;
    pub const MARIA_WRITE_ROWS_COMPRESSED_V1: u8 = 166;
    pub const MARIA_UPDATE_ROWS_COMPRESSED_V1: u8 = 167;
    pub const MARIA_DELETE_ROWS_COMPRESSED_V1: u8 = 168;
    pub const MARIA_WRITE_ROWS_COMPRESSED: u8 = 169;
    pub const MARIA_UPDATE_ROWS_COMPRESSED: u8 = 170;
    pub const MARIA_DELETE_ROWS_COMPRESSED: u8 = 171;
}

/// The fixed 19-byte header of every v4 event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub timestamp: u32,
    pub type_code: u8,
    pub server_id: u32,
    pub size: u32,
    /// End position of the event in its file (0 for events inside a payload and for
    /// some artificial events).
    pub log_pos: u32,
    pub flags: u16,
}

impl Header {
    pub fn parse(buf: &[u8]) -> Result<Header, Short> {
        let mut c = Cursor::new(buf);
        Ok(Header {
            timestamp: c.u32("event header")?,
            type_code: c.u8("event header")?,
            server_id: c.u32("event header")?,
            size: c.u32("event header")?,
            log_pos: c.u32("event header")?,
            flags: c.u16("event header")?,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    MySql,
    MariaDb,
}

/// What the format description event says about the events that follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    pub binlog_version: u16,
    pub server_version: String,
    pub flavor: Flavor,
    /// Post-header length per event type (index = type code - 1).
    pub post_header_len: Vec<u8>,
    /// True when events end with a CRC32 checksum.
    pub crc32: bool,
}

impl Format {
    /// The format assumed before the first FDE: v4 headers, no checksums.
    pub fn initial() -> Format {
        Format {
            binlog_version: 4,
            server_version: String::new(),
            flavor: Flavor::MySql,
            post_header_len: Vec::new(),
            crc32: false,
        }
    }

    pub fn post_header_len(&self, type_code: u8) -> Option<u8> {
        self.post_header_len
            .get(usize::from(type_code).checked_sub(1)?)
            .copied()
    }

    /// Width of the table id in table-map and rows events (4 on 5.1.0-5.1.3 servers).
    pub fn table_id_len(&self, type_code: u8) -> usize {
        match self.post_header_len(type_code) {
            Some(6) => 4,
            _ => 6,
        }
    }
}

/// Parses an FDE body (checksum trailer included) into a [`Format`].
pub fn parse_format(body_with_trailer: &[u8]) -> Result<Format, Short> {
    let mut c = Cursor::new(body_with_trailer);
    let binlog_version = c.u16("format description")?;
    let sv = c.bytes(50, "format description")?;
    let end = sv.iter().position(|&b| b == 0).unwrap_or(sv.len());
    let server_version = String::from_utf8_lossy(&sv[..end]).into_owned();
    c.skip(4, "format description")?; // create timestamp
    let _header_len = c.u8("format description")?;
    let flavor = if server_version.contains("MariaDB") {
        Flavor::MariaDb
    } else {
        Flavor::MySql
    };
    let has_alg = supports_checksums(&server_version, flavor);
    let rest = c.take_rest();
    let (post, crc32) = if has_alg && rest.len() > CHECKSUM_LEN {
        let (post, tail) = rest.split_at(rest.len() - 1 - CHECKSUM_LEN);
        (post, tail[0] == 1)
    } else {
        (rest, false)
    };
    Ok(Format {
        binlog_version,
        server_version,
        flavor,
        post_header_len: post.to_vec(),
        crc32,
    })
}

/// Servers from MySQL 5.6.1 and MariaDB 5.3 append a checksum algorithm byte to the FDE.
fn supports_checksums(version: &str, flavor: Flavor) -> bool {
    let nums: Vec<u32> = version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(3)
        .filter_map(|s| s.parse().ok())
        .collect();
    let v = (
        nums.first().copied().unwrap_or(0),
        nums.get(1).copied().unwrap_or(0),
        nums.get(2).copied().unwrap_or(0),
    );
    match flavor {
        Flavor::MariaDb => v >= (5, 3, 0),
        Flavor::MySql => v >= (5, 6, 1),
    }
}

/// Why one event could not be split off or verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("event is truncated: header says {declared} bytes, {available} present")]
    Truncated { declared: u64, available: u64 },
    #[error("event size {0} is smaller than its header")]
    BadSize(u32),
    #[error("checksum mismatch: event says {stored:#010x}, bytes give {computed:#010x}")]
    Checksum { stored: u32, computed: u32 },
}

/// One framed event: header and body, checksum removed (and verified).
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub header: Header,
    /// Bytes after the header, without the checksum trailer (the FDE keeps its
    /// algorithm byte and checksum: [`parse_format`] needs them).
    pub body: &'a [u8],
}

/// Splits one event off the front of `buf`. `checksummed` says whether events carry a
/// CRC32 trailer (false inside a transaction payload, as MySQL writes them).
pub fn split_frame<'a>(
    buf: &'a [u8],
    format: &Format,
    checksummed: bool,
) -> Result<(Frame<'a>, usize), FrameError> {
    if buf.len() < HEADER_LEN {
        return Err(FrameError::Truncated {
            declared: HEADER_LEN as u64,
            available: buf.len() as u64,
        });
    }
    let header = Header::parse(buf).map_err(|_| FrameError::Truncated {
        declared: HEADER_LEN as u64,
        available: buf.len() as u64,
    })?;
    let size = usize::try_from(header.size).map_err(|_| FrameError::BadSize(header.size))?;
    if size < HEADER_LEN {
        return Err(FrameError::BadSize(header.size));
    }
    if size > buf.len() {
        return Err(FrameError::Truncated {
            declared: u64::from(header.size),
            available: buf.len() as u64,
        });
    }
    let event = &buf[..size];
    let is_fde = header.type_code == ty::FORMAT_DESCRIPTION;
    // An FDE decides for itself whether it is checksummed.
    let crc = if is_fde {
        parse_format(&event[HEADER_LEN..])
            .map(|f| f.crc32)
            .unwrap_or(false)
    } else {
        checksummed && format.crc32
    };
    if crc {
        if size < HEADER_LEN + CHECKSUM_LEN {
            return Err(FrameError::BadSize(header.size));
        }
        let (data, sum) = event.split_at(size - CHECKSUM_LEN);
        let stored = u32::from_le_bytes([sum[0], sum[1], sum[2], sum[3]]);
        let computed = crc32fast::hash(data);
        if stored != computed {
            // The server clears the in-use flag of the FDE when it closes the file,
            // after the checksum was computed with the flag set (or the reverse).
            let alt = if is_fde {
                Some(crc_with_flags(data, header.flags ^ FLAG_IN_USE))
            } else {
                None
            };
            if alt != Some(stored) {
                return Err(FrameError::Checksum { stored, computed });
            }
        }
    }
    let body = if crc && !is_fde {
        &event[HEADER_LEN..size - CHECKSUM_LEN]
    } else {
        &event[HEADER_LEN..]
    };
    Ok((Frame { header, body }, size))
}

fn crc_with_flags(data: &[u8], flags: u16) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&data[..17]);
    h.update(&flags.to_le_bytes());
    h.update(&data[HEADER_LEN..]);
    h.finalize()
}

// ------------------------------------------------------------------ bodies

/// A statement event (DDL, BEGIN/COMMIT, or statement-based DML), as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query<'a> {
    /// The default database the statement ran in.
    pub db: String,
    /// The statement's bytes (MariaDB compressed queries: still compressed).
    pub sql: &'a [u8],
    /// The client collation (`Q_CHARSET_CODE`), when the status variables give it.
    pub charset: Option<u16>,
}

/// Parses a QUERY event body.
pub fn parse_query(body: &[u8], post_header_len: usize) -> Result<Query<'_>, Short> {
    let mut c = Cursor::new(body);
    let mut post = Cursor::new(c.bytes(post_header_len.max(11), "query post-header")?);
    post.skip(8, "query post-header")?; // thread id, exec time
    let db_len = usize::from(post.u8("query post-header")?);
    post.skip(2, "query post-header")?; // error code
    let status_len = if post_header_len >= 13 {
        usize::from(post.u16("query post-header")?)
    } else {
        0
    };
    let status = c.bytes(status_len, "query status variables")?;
    let charset = client_charset(status);
    let db = c.bytes(db_len, "query database name")?;
    c.skip(1, "query database name")?;
    Ok(Query {
        db: String::from_utf8_lossy(db).into_owned(),
        sql: c.take_rest(),
        charset,
    })
}

/// The client collation id (`Q_CHARSET_CODE`) from a query's status variables, if the
/// variables can be walked up to it. Unknown codes end the walk (their length is not
/// known); this only loses the charset hint, never data.
fn client_charset(status: &[u8]) -> Option<u16> {
    let mut c = Cursor::new(status);
    while !c.is_empty() {
        let code = c.u8("status").ok()?;
        let skip = match code {
            0 => 4,
            1 => 8,
            2 => usize::from(c.u8("status").ok()?) + 1,
            3 => 4,
            4 => return c.u16("status").ok(),
            5 | 6 => usize::from(c.u8("status").ok()?),
            7 | 8 => 2,
            9 => 8,
            10 => 4,
            11 => {
                let user = usize::from(c.u8("status").ok()?);
                c.skip(user, "status").ok()?;
                usize::from(c.u8("status").ok()?)
            }
            12 => {
                let n = c.u8("status").ok()?;
                if n != 254 {
                    for _ in 0..n {
                        let s = c.rest();
                        let end = s.iter().position(|&b| b == 0)?;
                        c.skip(end + 1, "status").ok()?;
                    }
                }
                0
            }
            13 => 3,
            16 | 19 | 20 => 1,
            17 => 8,
            18 => 2,
            128 => 3,
            129 => 8,
            _ => return None,
        };
        c.skip(skip, "status").ok()?;
    }
    None
}

/// A MySQL GTID (or anonymous GTID) event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MySqlGtid {
    pub sid: MySqlSid,
    pub gno: u64,
    /// Commit time on the immediate source, microseconds since the epoch (8.0+).
    pub commit_us: Option<u64>,
}

pub fn format_uuid(b: &[u8]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    if h.len() != 32 {
        return h;
    }
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

pub fn parse_mysql_gtid(body: &[u8]) -> Result<MySqlGtid, Short> {
    let mut c = Cursor::new(body);
    c.skip(1, "gtid flags")?;
    let sid = format_uuid(c.bytes(16, "gtid source id")?);
    let gno = c.u64("gtid number")?;
    let mut commit_us = None;
    // Optional trailer: logical clock (type 2 + two i64), then the 7-byte commit time.
    if c.remaining() >= 17 && c.u8("gtid logical clock")? == 2 {
        c.skip(16, "gtid logical clock")?;
        if c.remaining() >= 7 {
            commit_us = Some(c.uint_n(7, "gtid commit timestamp")? & !(1u64 << 55));
        }
    }
    Ok(MySqlGtid {
        sid: MySqlSid {
            uuid: sid,
            tag: None,
        },
        gno,
        commit_us,
    })
}

/// MySQL serialization-library variable-length unsigned integer: the number of
/// trailing one bits of the first byte gives the count of extra bytes.
fn varlen_u64(c: &mut Cursor<'_>, what: &'static str) -> Result<u64, Short> {
    let first = *c.rest().first().ok_or(Short {
        what,
        need: 1,
        have: 0,
    })?;
    let ones = first.trailing_ones() as usize;
    if ones == 8 {
        c.skip(1, what)?;
        return c.u64(what);
    }
    let n = ones + 1;
    let raw = c.uint_n(n, what)?;
    Ok(raw >> n)
}

fn varlen_i64(c: &mut Cursor<'_>, what: &'static str) -> Result<i64, Short> {
    let u = varlen_u64(c, what)?;
    let mag = (u >> 1) as i64;
    Ok(if u & 1 == 1 { -mag - 1 } else { mag })
}

/// Why a tagged GTID event is not well formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaggedError {
    #[error(transparent)]
    Short(#[from] Short),
    #[error("tagged GTID serialization version {0} is not supported")]
    Version(u8),
    #[error("tagged GTID field {0} is out of range")]
    Range(&'static str),
    #[error("tagged GTID has an unknown mandatory field {0}")]
    UnknownField(u64),
}

/// Parses a `GTID_TAGGED_LOG_EVENT` (MySQL 8.4+, serialization library format v2).
pub fn parse_tagged_gtid(body: &[u8]) -> Result<MySqlGtid, TaggedError> {
    let mut c = Cursor::new(body);
    let version = c.u8("tagged gtid version")?;
    if version != 2 {
        return Err(TaggedError::Version(version));
    }
    let start = body.len() - c.remaining() - 1;
    let payload = varlen_u64(&mut c, "tagged gtid payload size")?;
    let last_mandatory = varlen_u64(&mut c, "tagged gtid field count")?;
    let consumed = (body.len() - c.remaining() - start) as u64;
    let fields_len = usize::try_from(
        payload
            .checked_sub(consumed)
            .ok_or(TaggedError::Range("payload size"))?,
    )
    .map_err(|_| TaggedError::Range("payload size"))?;
    let mut f = Cursor::new(c.bytes(fields_len, "tagged gtid fields")?);
    let (mut uuid, mut tag, mut gno, mut commit_us) = (String::new(), None, 0u64, None);
    while !f.is_empty() {
        let id = varlen_u64(&mut f, "tagged gtid field id")?;
        match id {
            0 | 8..=11 => {
                varlen_u64(&mut f, "tagged gtid field")?;
            }
            1 => {
                let mut b = [0u8; 16];
                for x in &mut b {
                    *x = u8::try_from(varlen_u64(&mut f, "tagged gtid sid")?)
                        .map_err(|_| TaggedError::Range("sid"))?;
                }
                uuid = format_uuid(&b);
            }
            2 => {
                gno = u64::try_from(varlen_i64(&mut f, "tagged gtid gno")?)
                    .map_err(|_| TaggedError::Range("gno"))?
            }
            3 => {
                let n = usize::try_from(varlen_u64(&mut f, "tagged gtid tag")?)
                    .map_err(|_| TaggedError::Range("tag"))?;
                let t = f.bytes(n, "tagged gtid tag")?;
                tag = (!t.is_empty()).then(|| String::from_utf8_lossy(t).to_ascii_lowercase());
            }
            4 | 5 => {
                varlen_i64(&mut f, "tagged gtid logical clock")?;
            }
            6 => commit_us = Some(varlen_u64(&mut f, "tagged gtid commit timestamp")?),
            7 => {
                varlen_u64(&mut f, "tagged gtid original commit timestamp")?;
            }
            other if other > last_mandatory => break, // ignorable trailing field: skip the rest
            other => return Err(TaggedError::UnknownField(other)),
        }
    }
    Ok(MySqlGtid {
        sid: MySqlSid { uuid, tag },
        gno,
        commit_us,
    })
}

/// Parses PREVIOUS_GTIDS (untagged format: the only one 8.4 writes when no tags were
/// ever used; the tagged format is recognised and reported).
pub fn parse_previous_gtids(body: &[u8]) -> Result<Option<GtidSet>, Short> {
    let mut c = Cursor::new(body);
    let raw = c.u64("previous gtids count")?;
    // 8.4: the top byte holds a format marker; 1 = tagged.
    if raw >> 56 == 1 {
        return Ok(None);
    }
    let mut set = GtidSet::Empty;
    for _ in 0..raw {
        let uuid = format_uuid(c.bytes(16, "previous gtids sid")?);
        let n = c.u64("previous gtids intervals")?;
        for _ in 0..n {
            let (a, b) = (
                c.u64("previous gtids interval")?,
                c.u64("previous gtids interval")?,
            );
            // Stored half-open: [a, b).
            if b > a {
                set.add_mysql_interval(
                    MySqlSid {
                        uuid: uuid.clone(),
                        tag: None,
                    },
                    a,
                    b - 1,
                );
            }
        }
    }
    Ok(Some(set))
}

/// A MariaDB GTID event: the start of an event group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MariaGtidEvent {
    pub gtid: MariaGtid,
    /// `FL_STANDALONE`: the group is one statement with no BEGIN/COMMIT (DDL).
    pub standalone: bool,
}

pub fn parse_maria_gtid(body: &[u8], server_id: u32) -> Result<MariaGtidEvent, Short> {
    let mut c = Cursor::new(body);
    let seq = c.u64("gtid sequence")?;
    let domain = c.u32("gtid domain")?;
    let flags = c.u8("gtid flags")?;
    Ok(MariaGtidEvent {
        gtid: MariaGtid {
            domain,
            server: server_id,
            seq,
        },
        standalone: flags & 0x01 != 0,
    })
}

pub fn parse_maria_gtid_list(body: &[u8]) -> Result<GtidSet, Short> {
    let mut c = Cursor::new(body);
    let n = c.u32("gtid list count")? & 0x0fff_ffff;
    let mut set = GtidSet::Empty;
    for _ in 0..n {
        let domain = c.u32("gtid list entry")?;
        let server = c.u32("gtid list entry")?;
        let seq = c.u64("gtid list entry")?;
        set.add_mariadb(MariaGtid {
            domain,
            server,
            seq,
        });
    }
    Ok(set)
}

pub fn parse_rotate(body: &[u8], post_header_len: usize) -> Result<(String, u64), Short> {
    let mut c = Cursor::new(body);
    let pos = if post_header_len >= 8 {
        c.u64("rotate position")?
    } else {
        4
    };
    let name = String::from_utf8_lossy(c.take_rest()).into_owned();
    Ok((name, pos))
}

pub fn parse_incident(body: &[u8]) -> Result<(u16, String), Short> {
    let mut c = Cursor::new(body);
    let code = c.u16("incident code")?;
    let len = usize::from(c.u8("incident message")?);
    let msg = c.bytes(len, "incident message")?;
    Ok((code, String::from_utf8_lossy(msg).into_owned()))
}

/// Parses a TRANSACTION_PAYLOAD header; returns (compression type, uncompressed size,
/// compressed payload).
pub fn parse_payload_header(body: &[u8]) -> Result<(u64, Option<u64>, &[u8]), Short> {
    let mut c = Cursor::new(body);
    let (mut compression, mut size, mut payload_size) = (None, None, None);
    loop {
        let field = c.lenenc("payload header field")?.unwrap_or(0);
        if field == 0 {
            break;
        }
        let len = c.lenenc_len("payload header length")?;
        let mut v = Cursor::new(c.bytes(len, "payload header value")?);
        let value = v.lenenc("payload header value")?;
        match field {
            1 => payload_size = value,
            2 => compression = value,
            3 => size = value,
            _ => {}
        }
    }
    let rest = c.take_rest();
    let payload = match payload_size.and_then(|n| usize::try_from(n).ok()) {
        Some(n) if n <= rest.len() => &rest[..n],
        Some(n) => {
            return Err(Short {
                what: "transaction payload",
                need: n,
                have: rest.len(),
            })
        }
        None => rest,
    };
    Ok((compression.unwrap_or(u64::MAX), size, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varlen_integers_decode_mysql_serialization_format() {
        // 1 byte: value << 1; 2 bytes: low bit pattern 01.
        assert_eq!(
            varlen_u64(&mut Cursor::new(&[0x0a]), "x").expect("1 byte"),
            5
        );
        assert_eq!(
            varlen_u64(
                &mut Cursor::new(&[0x01 | (300u16 << 2) as u8, (300u16 >> 6) as u8]),
                "x"
            )
            .expect("2 bytes"),
            300
        );
        assert_eq!(
            varlen_i64(&mut Cursor::new(&[0x02]), "x").expect("zigzag 1"),
            -1
        );
        assert_eq!(
            varlen_i64(&mut Cursor::new(&[0x04]), "x").expect("zigzag 2"),
            1
        );
        assert!(
            varlen_u64(&mut Cursor::new(&[0xff, 1]), "x").is_err(),
            "9-byte form needs 8 more bytes"
        );
    }

    #[test]
    fn frames_shorter_than_declared_are_truncated() {
        let mut ev = vec![0u8; 19];
        ev[9..13].copy_from_slice(&40u32.to_le_bytes());
        let err = split_frame(&ev, &Format::initial(), true).expect_err("40 declared, 19 present");
        assert_eq!(
            err,
            FrameError::Truncated {
                declared: 40,
                available: 19
            }
        );
        ev[9..13].copy_from_slice(&3u32.to_le_bytes());
        assert_eq!(
            split_frame(&ev, &Format::initial(), true).expect_err("size < header"),
            FrameError::BadSize(3)
        );
    }
}
