//! The binlog decoder on arbitrary bytes: it returns items or an error, never panics,
//! never loops forever, never allocates without bound (libFuzzer's -rss_limit_mb).
//! Inputs without the binlog magic get it prepended, so the corpus can hold bare events.
#![no_main]

use libfuzzer_sys::fuzz_target;
use otter_capture::binlog::decode::{Options, StatementPolicy};
use otter_capture::binlog::file::{decode_file, MAGIC};
use otter_capture::binlog::rows::Assumptions;

fuzz_target!(|data: &[u8]| {
    let opts = Options {
        assume: Assumptions {
            unsigned: Some(false),
            charset: Some("latin1".into()),
        },
        statements: StatementPolicy::Count,
        ..Options::default()
    };
    let owned;
    let bytes = if data.starts_with(&MAGIC) {
        data
    } else {
        owned = [&MAGIC[..], data].concat();
        &owned
    };
    let _ = decode_file("fuzz.000001", bytes, opts, |_| {});
});
