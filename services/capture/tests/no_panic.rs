//! The decoder never panics, whatever the bytes: arbitrary input, and recorded files
//! with bytes flipped (including files without checksums, where corruption reaches
//! the value decoders).

use otter_capture::binlog::decode::{Options, StatementPolicy};
use otter_capture::binlog::file::decode_file;
use otter_capture::binlog::rows::Assumptions;
use proptest::prelude::*;

fn opts() -> Options {
    Options {
        assume: Assumptions {
            unsigned: Some(false),
            charset: Some("latin1".into()),
        },
        statements: StatementPolicy::Count,
        ..Options::default()
    }
}

fn fixture(name: &str) -> Vec<u8> {
    let p = otter_testkit::fixtures_dir().join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Removes checksums by rewriting the FDE's algorithm byte is not possible without
/// recomputing them, so mutations go to files written without checksums as well.
const FILES: &[&str] = &[
    "mariadb-bin.000001",
    "json.binlog.000001",
    "mysql-enum-string-set.000001",
    "ver_5_1_23.001",
    "update-full-row.binlog",
    "transaction_compression.000001",
    "vector.binlog",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut bytes = vec![0xfe, b'b', b'i', b'n'];
        bytes.extend(body);
        let _ = decode_file("x.000001", &bytes, opts(), |_| {});
    }

    #[test]
    fn flipped_bytes_in_recorded_files_never_panic(file in 0..FILES.len(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let mut bytes = fixture(FILES[file]);
        for (at, b) in flips {
            let i = 4 + at % (bytes.len() - 4);
            bytes[i] = b;
        }
        let _ = decode_file(FILES[file], &bytes, opts(), |_| {});
    }
}
