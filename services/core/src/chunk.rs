//! Records too large for one Kafka message travel as chunks.
//!
//! A record value over the producer's chunk size is split into `n` consecutive
//! records on the same partition, with the same key; each carries the header
//! [`CHUNK_HEADER`] = `"<index>/<n>"` (0-based index) and a slice of the value.
//! Concatenating the slices of `0/n` .. `n-1/n` gives the original value.
//!
//! Why: Kafka's default `message.max.bytes` is 1 MB, and Tansu (the local broker)
//! never serves a record over 5 MiB; a 16 MiB BLOB row must still get through.
//!
//! Invariants of [`Reassembler`]:
//! - Chunks of one record are contiguous in their partition (capture produces them
//!   back to back, idempotently, and is the topic's only producer).
//! - A sequence cut short by a capture crash is followed by capture's re-publication
//!   from its stored position, which starts with a whole record (a chunk `0/n` or an
//!   unchunked record): either drops the partial buffer, counted in
//!   [`Reassembler::abandoned`] (the record itself comes again, whole). Any other gap
//!   (a later chunk without its predecessor, a changed count) is an error naming the
//!   partition and offset, never a silently shortened record.

use std::collections::HashMap;

/// Header carrying `"<index>/<count>"` on chunk records.
pub const CHUNK_HEADER: &str = "otter-chunk";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("chunk header `{0}` is not `<index>/<count>`")]
    BadHeader(String),
    #[error("partition {partition} offset {offset}: chunk {got} follows chunk {had} of {count}")]
    Gap {
        partition: i32,
        offset: i64,
        had: u32,
        got: u32,
        count: u32,
    },
}

/// Splits `value` into chunk values of at most `max` bytes with their headers.
pub fn split(value: &[u8], max: usize) -> Vec<(String, &[u8])> {
    let max = max.max(1);
    let n = value.len().div_ceil(max).max(1);
    value
        .chunks(max)
        .enumerate()
        .map(|(i, c)| (format!("{i}/{n}"), c))
        .collect()
}

fn parse_header(h: &[u8]) -> Result<(u32, u32), ChunkError> {
    let text = String::from_utf8_lossy(h);
    let bad = || ChunkError::BadHeader(text.to_string());
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let (i, n): (u32, u32) = (i.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

struct Partial {
    next: u32,
    count: u32,
    buf: Vec<u8>,
}

/// Joins chunk records back into whole values, per partition.
#[derive(Default)]
pub struct Reassembler {
    partial: HashMap<i32, Partial>,
    abandoned: u64,
}

impl Reassembler {
    /// Partial sequences dropped because a whole record followed them (capture
    /// re-publishing after a crash).
    pub fn abandoned(&self) -> u64 {
        self.abandoned
    }

    /// True while a chunked value of `partition` is incomplete.
    pub fn pending(&self, partition: i32) -> bool {
        self.partial.contains_key(&partition)
    }

    /// Feeds one record of `partition`. Returns the whole value when `value` completes
    /// one (or is not a chunk at all), `None` while a chunked value is incomplete.
    pub fn push(
        &mut self,
        partition: i32,
        offset: i64,
        chunk_header: Option<&[u8]>,
        value: &[u8],
    ) -> Result<Option<Vec<u8>>, ChunkError> {
        let Some(h) = chunk_header else {
            if self.partial.remove(&partition).is_some() {
                self.abandoned += 1;
            }
            return Ok(Some(value.to_vec()));
        };
        let (i, n) = parse_header(h)?;
        if i == 0 {
            if self.partial.contains_key(&partition) {
                self.abandoned += 1;
            }
            // A fresh start (possibly after a crash cut the previous sequence short).
            self.partial.insert(
                partition,
                Partial {
                    next: 0,
                    count: n,
                    buf: Vec::new(),
                },
            );
        }
        let Some(p) = self.partial.get_mut(&partition) else {
            return Err(ChunkError::Gap {
                partition,
                offset,
                had: 0,
                got: i,
                count: n,
            });
        };
        if p.next != i || p.count != n {
            let had = p.next;
            self.partial.remove(&partition);
            return Err(ChunkError::Gap {
                partition,
                offset,
                had,
                got: i,
                count: n,
            });
        }
        p.buf.extend_from_slice(value);
        p.next += 1;
        if p.next == p.count {
            return Ok(self.partial.remove(&partition).map(|p| p.buf));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_reassemble_round_trip() {
        let value: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let chunks = split(&value, 3000);
        assert_eq!(chunks.len(), 4);
        let mut r = Reassembler::default();
        let mut out = None;
        for (i, (h, c)) in chunks.iter().enumerate() {
            out = r
                .push(0, i as i64, Some(h.as_bytes()), c)
                .expect("in order");
        }
        assert_eq!(out.expect("complete"), value);
    }

    #[test]
    fn a_sequence_restarted_after_a_crash_replaces_the_partial_one() {
        let value = vec![7u8; 100];
        let chunks = split(&value, 40);
        let mut r = Reassembler::default();
        assert_eq!(
            r.push(1, 0, Some(chunks[0].0.as_bytes()), chunks[0].1),
            Ok(None)
        );
        // Crash: the whole record again.
        let mut out = None;
        for (i, (h, c)) in chunks.iter().enumerate() {
            out = r
                .push(1, 1 + i as i64, Some(h.as_bytes()), c)
                .expect("restart accepted");
        }
        assert_eq!(out.expect("complete"), value);
        assert_eq!(r.abandoned(), 1);
    }

    #[test]
    fn a_whole_record_after_a_cut_sequence_drops_the_partial_one() {
        // Capture crashed mid-sequence and re-published from an earlier transaction.
        let chunks = split(&[9u8; 100], 40);
        let mut r = Reassembler::default();
        r.push(3, 0, Some(chunks[0].0.as_bytes()), chunks[0].1)
            .expect("first");
        assert!(r.pending(3));
        assert_eq!(
            r.push(3, 1, None, b"earlier"),
            Ok(Some(b"earlier".to_vec()))
        );
        assert!(!r.pending(3));
        assert_eq!(r.abandoned(), 1);
    }

    #[test]
    fn a_gap_is_an_error_not_a_short_value() {
        let chunks = split(&[1u8; 90], 30);
        let mut r = Reassembler::default();
        r.push(2, 10, Some(chunks[0].0.as_bytes()), chunks[0].1)
            .expect("first");
        let err = r
            .push(2, 11, Some(chunks[2].0.as_bytes()), chunks[2].1)
            .expect_err("chunk 1 missing");
        assert_eq!(
            err,
            ChunkError::Gap {
                partition: 2,
                offset: 11,
                had: 1,
                got: 2,
                count: 3
            }
        );
        assert!(r.push(2, 12, None, b"x").is_ok(), "state was reset");
        assert!(matches!(
            r.push(0, 0, Some(b"3/3"), b""),
            Err(ChunkError::BadHeader(_))
        ));
    }

    #[test]
    fn small_values_are_one_chunk_and_plain_records_pass_through() {
        assert_eq!(split(b"abc", 10), vec![("0/1".to_string(), &b"abc"[..])]);
        let mut r = Reassembler::default();
        assert_eq!(r.push(0, 0, None, b"plain"), Ok(Some(b"plain".to_vec())));
    }
}
