//! Reading recorded binlog files (what `otter-capture decode` and the fixture tests use).
//!
//! Invariant: a file is consumed event by event; trailing bytes that do not form a
//! whole event are an error naming the offset, never ignored.

use otter_core::position::SourcePos;

use super::decode::{DecodeError, Decoder, Item, Options};
use super::event::{FrameError, Header, HEADER_LEN};

pub const MAGIC: [u8; 4] = [0xfe, b'b', b'i', b'n'];

/// Decodes a whole binlog file, calling `sink` with each batch of items. Stops at the
/// first error. `name` is the file name positions are reported with.
pub fn decode_file(
    name: &str,
    bytes: &[u8],
    opts: Options,
    mut sink: impl FnMut(&[Item]),
) -> Result<Decoder, DecodeError> {
    let mut dec = Decoder::new(name, opts);
    if bytes.len() < MAGIC.len() {
        let source = FrameError::Truncated {
            declared: 4,
            available: bytes.len() as u64,
        };
        return Err(DecodeError::Frame {
            at: SourcePos::new(name, 0),
            source,
        });
    }
    if bytes[..4] != MAGIC {
        return Err(DecodeError::Unsupported {
            at: SourcePos::new(name, 0),
            what: "file without the binlog magic number",
        });
    }
    let mut offset = 4usize;
    let mut out = Vec::new();
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        let at = SourcePos::new(dec.file().to_owned(), offset as u64);
        let size = if rest.len() >= HEADER_LEN {
            Header::parse(rest).map(|h| h.size as usize).unwrap_or(0)
        } else {
            return Err(DecodeError::Frame {
                at,
                source: FrameError::Truncated {
                    declared: HEADER_LEN as u64,
                    available: rest.len() as u64,
                },
            });
        };
        if size < HEADER_LEN {
            return Err(DecodeError::Frame {
                at,
                source: FrameError::BadSize(size as u32),
            });
        }
        if size > rest.len() {
            return Err(DecodeError::Frame {
                at,
                source: FrameError::Truncated {
                    declared: size as u64,
                    available: rest.len() as u64,
                },
            });
        }
        // Positions are reported against the file being read, even after a rotate
        // event names the next file.
        let current = dec.file().to_owned();
        if current != name {
            dec.set_file(name);
        }
        dec.feed(&rest[..size], offset as u64, &mut out)?;
        if !out.is_empty() {
            sink(&out);
            out.clear();
        }
        offset += size;
    }
    Ok(dec)
}
