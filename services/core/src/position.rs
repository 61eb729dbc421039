//! Source positions: binlog coordinates and GTID sets.
//!
//! Invariants:
//! - [`SourcePos`] prints as `file:offset` and parses back to the same value. Two
//!   positions compare only when their files share a base name (`mysql-bin.000007` and
//!   `mysql-bin.000012` do; `a.000001` and `b.000001` do not): `partial_cmp` is `None`
//!   otherwise, never a guess.
//! - [`GtidSet`] parses and prints MariaDB GTID positions (`domain-server-seq,...`) and
//!   MySQL GTID sets (`uuid[:tag]:interval[:interval...],...`, 8.4 tags included);
//!   printing is canonical (sorted, intervals merged), so print(parse(print(x))) == print(x).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

/// A binlog coordinate: the file name and a byte offset in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SourcePos {
    pub file: String,
    pub offset: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PositionError {
    #[error("`{0}` is not a binlog position of the form FILE:OFFSET")]
    BadPosition(String),
    #[error("`{0}` is not a GTID set")]
    BadGtid(String),
}

impl SourcePos {
    pub fn new(file: impl Into<String>, offset: u64) -> Self {
        SourcePos {
            file: file.into(),
            offset,
        }
    }

    /// Splits `mysql-bin.000123` into (`mysql-bin`, 123).
    pub fn file_parts(&self) -> Option<(&str, u32)> {
        let (base, seq) = self.file.rsplit_once('.')?;
        if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some((base, seq.parse().ok()?))
    }

    /// The file's sequence number (`000123` -> 123), 0 when the name has none.
    pub fn file_seq(&self) -> u32 {
        self.file_parts().map_or(0, |(_, n)| n)
    }

    pub fn parse(s: &str) -> Result<SourcePos, PositionError> {
        let (file, offset) = s
            .rsplit_once(':')
            .ok_or_else(|| PositionError::BadPosition(s.to_owned()))?;
        let offset = offset
            .parse()
            .map_err(|_| PositionError::BadPosition(s.to_owned()))?;
        if file.is_empty() {
            return Err(PositionError::BadPosition(s.to_owned()));
        }
        Ok(SourcePos::new(file, offset))
    }
}

impl fmt::Display for SourcePos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.offset)
    }
}

impl PartialOrd for SourcePos {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        if self.file == other.file {
            return Some(self.offset.cmp(&other.offset));
        }
        let (a, b) = (self.file_parts()?, other.file_parts()?);
        if a.0 != b.0 {
            return None;
        }
        Some(a.1.cmp(&b.1).then(self.offset.cmp(&other.offset)))
    }
}

/// One MariaDB GTID: `domain-server-sequence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MariaGtid {
    pub domain: u32,
    pub server: u32,
    pub seq: u64,
}

impl fmt::Display for MariaGtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server, self.seq)
    }
}

impl MariaGtid {
    pub fn parse(s: &str) -> Result<MariaGtid, PositionError> {
        let err = || PositionError::BadGtid(s.to_owned());
        let mut it = s.trim().split('-');
        let g = MariaGtid {
            domain: it.next().and_then(|x| x.parse().ok()).ok_or_else(err)?,
            server: it.next().and_then(|x| x.parse().ok()).ok_or_else(err)?,
            seq: it.next().and_then(|x| x.parse().ok()).ok_or_else(err)?,
        };
        if it.next().is_some() {
            return Err(err());
        }
        Ok(g)
    }
}

/// A MySQL source id: server UUID plus optional tag (MySQL 8.4 tagged GTIDs).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MySqlSid {
    pub uuid: String,
    pub tag: Option<String>,
}

/// A set of executed transactions, in MariaDB or MySQL form.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum GtidSet {
    #[default]
    Empty,
    /// Per replication domain, the last GTID seen (MariaDB's `gtid_binlog_pos`).
    MariaDb(BTreeMap<u32, MariaGtid>),
    /// Per source id, closed intervals of transaction numbers (MySQL's `gtid_executed`).
    MySql(BTreeMap<MySqlSid, Vec<(u64, u64)>>),
}

impl GtidSet {
    pub fn is_empty(&self) -> bool {
        match self {
            GtidSet::Empty => true,
            GtidSet::MariaDb(m) => m.is_empty(),
            GtidSet::MySql(m) => m.is_empty(),
        }
    }

    /// Records that MariaDB transaction `g` committed.
    pub fn add_mariadb(&mut self, g: MariaGtid) {
        if !matches!(self, GtidSet::MariaDb(_)) {
            *self = GtidSet::MariaDb(BTreeMap::new());
        }
        if let GtidSet::MariaDb(m) = self {
            m.insert(g.domain, g);
        }
    }

    /// Records that MySQL transaction `sid:gno` committed.
    pub fn add_mysql(&mut self, sid: MySqlSid, gno: u64) {
        self.add_mysql_interval(sid, gno, gno);
    }

    /// Records that MySQL transactions `sid:first` to `sid:last` (inclusive) committed.
    pub fn add_mysql_interval(&mut self, sid: MySqlSid, first: u64, last: u64) {
        if !matches!(self, GtidSet::MySql(_)) {
            *self = GtidSet::MySql(BTreeMap::new());
        }
        if let GtidSet::MySql(m) = self {
            let ivs = m.entry(sid).or_default();
            ivs.push((first.min(last), last.max(first)));
            normalize(ivs);
        }
    }

    pub fn parse(s: &str) -> Result<GtidSet, PositionError> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(GtidSet::Empty);
        }
        // MySQL sets always contain ':' (uuid:interval); MariaDB positions never do.
        if !s.contains(':') {
            let mut m = BTreeMap::new();
            for part in s.split(',') {
                let g = MariaGtid::parse(part)?;
                if m.insert(g.domain, g).is_some() {
                    return Err(PositionError::BadGtid(s.to_owned()));
                }
            }
            return Ok(GtidSet::MariaDb(m));
        }
        let err = || PositionError::BadGtid(s.to_owned());
        let mut m: BTreeMap<MySqlSid, Vec<(u64, u64)>> = BTreeMap::new();
        for part in s.split(',') {
            let mut fields = part.trim().split(':');
            let uuid = fields.next().ok_or_else(err)?.to_ascii_lowercase();
            if !is_uuid(&uuid) {
                return Err(err());
            }
            let mut tag = None;
            let mut any = false;
            for f in fields {
                if f.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
                    let (a, b) = match f.split_once('-') {
                        Some((a, b)) => (a, b),
                        None => (f, f),
                    };
                    let a: u64 = a.parse().map_err(|_| err())?;
                    let b: u64 = b.parse().map_err(|_| err())?;
                    if a == 0 || b < a {
                        return Err(err());
                    }
                    m.entry(MySqlSid {
                        uuid: uuid.clone(),
                        tag: tag.clone(),
                    })
                    .or_default()
                    .push((a, b));
                    any = true;
                } else if is_tag(f) {
                    tag = Some(f.to_ascii_lowercase());
                } else {
                    return Err(err());
                }
            }
            if !any {
                return Err(err());
            }
        }
        m.values_mut().for_each(normalize);
        Ok(GtidSet::MySql(m))
    }
}

fn normalize(ivs: &mut Vec<(u64, u64)>) {
    ivs.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(ivs.len());
    for &(a, b) in ivs.iter() {
        match out.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    *ivs = out;
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

fn is_tag(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl fmt::Display for GtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GtidSet::Empty => Ok(()),
            GtidSet::MariaDb(m) => {
                let parts: Vec<String> = m.values().map(ToString::to_string).collect();
                f.write_str(&parts.join(","))
            }
            GtidSet::MySql(m) => {
                // Canonical MySQL form: one entry per uuid, untagged intervals first,
                // then each tag followed by its intervals.
                let mut by_uuid: BTreeMap<&str, Vec<String>> = BTreeMap::new();
                for (sid, ivs) in m {
                    let entry = by_uuid.entry(&sid.uuid).or_default();
                    if let Some(tag) = &sid.tag {
                        entry.push(tag.clone());
                    }
                    for (a, b) in ivs {
                        entry.push(if a == b {
                            a.to_string()
                        } else {
                            format!("{a}-{b}")
                        });
                    }
                }
                let parts: Vec<String> = by_uuid
                    .into_iter()
                    .map(|(u, rest)| format!("{u}:{}", rest.join(":")))
                    .collect();
                f.write_str(&parts.join(","))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn positions_order_within_one_base_name_only() {
        let a = SourcePos::parse("mysql-bin.000007:900").expect("valid");
        let b = SourcePos::parse("mysql-bin.000012:4").expect("valid");
        let c = SourcePos::parse("other.000001:4").expect("valid");
        assert!(a < b);
        assert_eq!(a.partial_cmp(&c), None);
        assert_eq!(b.to_string(), "mysql-bin.000012:4");
        assert!(SourcePos::parse("nofile").is_err());
        assert!(SourcePos::parse(":12").is_err());
    }

    #[test]
    fn mariadb_gtid_positions_round_trip() {
        let g = GtidSet::parse("1-2-30,0-1-100").expect("valid");
        assert_eq!(g.to_string(), "0-1-100,1-2-30");
        assert!(GtidSet::parse("0-1").is_err());
        assert!(
            GtidSet::parse("0-1-2,0-1-3").is_err(),
            "one GTID per domain"
        );
    }

    #[test]
    fn mysql_gtid_sets_merge_intervals_and_keep_tags() {
        let u = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
        let g = GtidSet::parse(&format!("{u}:1-5:6:9,{u}:tag_1:3")).expect("valid");
        assert_eq!(g.to_string(), format!("{u}:1-6:9:tag_1:3"));
        assert!(GtidSet::parse(&format!("{u}:0")).is_err());
        assert!(GtidSet::parse(&format!("{u}:5-3")).is_err());
        assert!(GtidSet::parse("not-a-uuid:1").is_err());
    }

    #[test]
    fn adding_gtids_extends_the_set() {
        let mut s = GtidSet::Empty;
        let sid = MySqlSid {
            uuid: "3e11fa47-71ca-11e1-9e33-c80aa9429562".into(),
            tag: None,
        };
        for n in [1, 2, 4, 3] {
            s.add_mysql(sid.clone(), n);
        }
        assert_eq!(s.to_string(), "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-4");
        let mut m = GtidSet::Empty;
        m.add_mariadb(MariaGtid {
            domain: 0,
            server: 1,
            seq: 5,
        });
        m.add_mariadb(MariaGtid {
            domain: 0,
            server: 1,
            seq: 6,
        });
        assert_eq!(m.to_string(), "0-1-6");
    }

    proptest! {
        #[test]
        fn source_pos_round_trips(file in "[a-z-]{1,10}\\.[0-9]{6}", offset: u64) {
            let p = SourcePos::new(file, offset);
            prop_assert_eq!(SourcePos::parse(&p.to_string()).expect("round trip"), p);
        }

        #[test]
        fn gtid_print_is_canonical(ivs in proptest::collection::vec((1u64..1000, 0u64..5), 1..6)) {
            let u = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
            let text = ivs.iter().map(|(a, l)| format!("{a}-{}", a + l)).collect::<Vec<_>>().join(":");
            let once = GtidSet::parse(&format!("{u}:{text}")).expect("valid").to_string();
            let twice = GtidSet::parse(&once).expect("canonical parses").to_string();
            prop_assert_eq!(once, twice);
        }
    }
}
