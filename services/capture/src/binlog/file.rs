//! Reading recorded binlog files (what `otter-capture decode` and the fixture tests use).
//!
//! Invariants: a file is read event by event (memory stays at one event, whatever the
//! file's size); trailing bytes that do not form a whole event are an error naming the
//! offset, never ignored.

use std::io::Read;

use otter_core::position::SourcePos;

use super::decode::{DecodeError, Decoder, Item, Options};
use super::event::{FrameError, Header, HEADER_LEN};

pub const MAGIC: [u8; 4] = [0xfe, b'b', b'i', b'n'];

/// No server writes a larger event: `max_allowed_packet` is at most 1 GiB.
pub const MAX_EVENT_BYTES: usize = 1 << 30;

/// Decodes a whole binlog file held in memory; see [`decode_reader`].
pub fn decode_file(
    name: &str,
    bytes: &[u8],
    opts: Options,
    sink: impl FnMut(&[Item]),
) -> Result<Decoder, DecodeError> {
    decode_reader(name, bytes, opts, sink)
}

/// Reads as many bytes as are there, up to `buf.len()`; returns how many.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Decodes a binlog read from `input`, calling `sink` with the items of each event
/// that completes something. Stops at the first error. `name` is the file name
/// positions are reported with.
pub fn decode_reader(
    name: &str,
    mut input: impl Read,
    opts: Options,
    mut sink: impl FnMut(&[Item]),
) -> Result<Decoder, DecodeError> {
    let mut dec = Decoder::new(name, opts);
    let at = |offset: u64| SourcePos::new(name, offset);
    let io_err = |offset: u64, source: std::io::Error| DecodeError::Io {
        at: at(offset),
        source,
    };
    let mut magic = [0u8; 4];
    let n = read_full(&mut input, &mut magic).map_err(|e| io_err(0, e))?;
    if n < MAGIC.len() {
        return Err(DecodeError::Frame {
            at: at(0),
            source: FrameError::Truncated {
                declared: 4,
                available: n as u64,
            },
        });
    }
    if magic != MAGIC {
        return Err(DecodeError::Unsupported {
            at: at(0),
            what: "file without the binlog magic number",
        });
    }
    let mut offset = 4u64;
    let mut event = Vec::with_capacity(64 * 1024);
    let mut out = Vec::new();
    loop {
        event.resize(HEADER_LEN, 0);
        let got = read_full(&mut input, &mut event).map_err(|e| io_err(offset, e))?;
        if got == 0 {
            return Ok(dec);
        }
        if got < HEADER_LEN {
            let source = FrameError::Truncated {
                declared: HEADER_LEN as u64,
                available: got as u64,
            };
            return Err(DecodeError::Frame {
                at: at(offset),
                source,
            });
        }
        let size = Header::parse(&event).map(|h| h.size as usize).unwrap_or(0);
        if !(HEADER_LEN..=MAX_EVENT_BYTES).contains(&size) {
            return Err(DecodeError::Frame {
                at: at(offset),
                source: FrameError::BadSize(size as u32),
            });
        }
        // Grow with the bytes actually there: a corrupt size must not allocate.
        let want = (size - HEADER_LEN) as u64;
        let body = (&mut input)
            .take(want)
            .read_to_end(&mut event)
            .map_err(|e| io_err(offset, e))?;
        if body < size - HEADER_LEN {
            let source = FrameError::Truncated {
                declared: size as u64,
                available: (HEADER_LEN + body) as u64,
            };
            return Err(DecodeError::Frame {
                at: at(offset),
                source,
            });
        }
        // Positions are reported against the file being read, even after a rotate
        // event names the next file.
        if dec.file() != name {
            dec.set_file(name);
        }
        dec.feed(&event, offset, &mut out)?;
        if !out.is_empty() {
            sink(&out);
            out.clear();
        }
        offset += size as u64;
    }
}
