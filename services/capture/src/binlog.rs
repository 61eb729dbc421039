//! The binlog decoder: bytes a MySQL/MariaDB server writes (or sends to a replica) in,
//! `otter_core` change events out.
//!
//! Layers, bottom up: [`cursor`] (bounds-checked reads), [`event`] (framing, checksums,
//! non-row event bodies), [`tablemap`], [`values`] and [`jsonb`] (column encodings),
//! [`rows`] (rows events), [`ddl`] (statement recognition), [`decode`] (the
//! transaction state machine) and [`file`] (recorded files).
//!
//! Nothing here trusts its input: every layer returns an error naming what and where,
//! and the property test in `tests` feeds arbitrary bytes to show none of it panics.
//! `mysql_common`'s own event parser is not used for decoding: it panics on truncated
//! events, skips checksum verification and swallows payload decompression errors.

pub mod charset;
pub mod cursor;
pub mod ddl;
pub mod decode;
pub mod event;
pub mod file;
pub mod jsonb;
pub mod rows;
pub mod tablemap;
pub mod values;

pub use decode::{Checkpoint, DecodeError, Decoder, Item, Options, SchemaVersions};
