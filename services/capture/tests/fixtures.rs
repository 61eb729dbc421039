//! Every recorded binlog in `shared/fixtures/mysql-binlogs` decoded end to end, its
//! records snapshotted (reviewed by hand, see `tests/snapshots/`), and every truncated
//! or corrupt file failing with its specific error at the right offset.

use std::path::PathBuf;

use otter_capture::binlog::file::decode_file;
use otter_capture::decode_cmd::{render_file, DecodeArgs};

use otter_testkit::fixtures_dir;

fn read(name: &str) -> Vec<u8> {
    let p = fixtures_dir().join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

/// Files recorded without signedness/charset metadata are decoded twice: as they are
/// (which must fail, naming the missing metadata) and with explicit assumptions.
const NEEDS_ASSUMPTIONS: &[&str] = &[
    "binlog_56_gtid_reserved_word.000001",
    "bug32407.001",
    "update-full-row.binlog",
    "update-partial-row.binlog",
    "ver_5_1_23.001",
    "ver_trunk_row_v2.001",
    "write-full-row.binlog",
    "write-partial-row.binlog",
];

/// Files without row metadata whose tables are created in the file itself: the schema
/// history, following that DDL, names the columns and gives signedness (no guess).
const NAMED_BY_THEIR_DDL: &[&str] = &["binlog_56_gtid_reserved_word.000001", "bug32407.001"];

/// (file, error code, offset of the bad event)
const BAD_FILES: &[(&str, &str, u64)] = &[
    ("binlog_truncated_event.000001", "truncated", 4),
    ("binlog_truncated_prev_gtid_event.000001", "truncated", 120),
    ("corrupt-relay-bin.000624", "malformed", 91204),
    ("ver_5_1-wl2325_r.001", "malformed", 428),
    ("bug40482-bin.000001", "incident", 106),
    ("ver_5_1-wl2325_s.001", "unsupported", 411),
];

fn snapshot_text(name: &str, args: &DecodeArgs) -> String {
    render_snapshot(name, &read(name), args)
}

fn render_snapshot(name: &str, bytes: &[u8], args: &DecodeArgs) -> String {
    let (lines, err, summary) = render_file(name, bytes, args);
    let mut text = lines.join("\n");
    text.push('\n');
    match err {
        Some(e) => text.push_str(&format!(
            "ERROR [{}] {}\n",
            e.code(),
            otter_capture::error::chain(&e)
        )),
        None => text.push_str(&format!("OK {summary}\n")),
    }
    text
}

#[test]
fn every_fixture_decodes_to_its_reviewed_snapshot() {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("fixture folder lists")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n != "README.md")
        .collect();
    names.sort();
    assert!(
        names.len() >= 40,
        "expected the whole fixture set, found {}",
        names.len()
    );
    let strict = DecodeArgs {
        with_keys: true,
        prefix: "otter".into(),
        ..DecodeArgs::default()
    };
    for name in &names {
        insta::assert_snapshot!(name.replace('.', "_"), snapshot_text(name, &strict));
        if NEEDS_ASSUMPTIONS.contains(&name.as_str()) {
            let assumed = DecodeArgs {
                assume_signed: true,
                assume_charset: Some("latin1".into()),
                ..strict.clone()
            };
            insta::assert_snapshot!(
                format!("{}__assumed", name.replace('.', "_")),
                snapshot_text(name, &assumed)
            );
        }
    }
}

#[test]
fn files_without_row_metadata_are_refused_not_guessed() {
    let args = DecodeArgs::default();
    for name in NEEDS_ASSUMPTIONS
        .iter()
        .filter(|n| !NAMED_BY_THEIR_DDL.contains(n))
    {
        let (_, err, _) = render_file(name, &read(name), &args);
        let err = err.unwrap_or_else(|| panic!("{name} decoded without metadata"));
        assert_eq!(err.code(), "rows", "{name}: {err}");
        assert!(
            err.to_string().contains(" at "),
            "error names the position: {err}"
        );
        let chain = otter_capture::error::chain(&err);
        assert!(
            chain.contains("binlog_row_metadata=FULL"),
            "{name}: {chain}"
        );
    }
}

#[test]
fn truncated_and_corrupt_files_fail_at_the_bad_event() {
    for (name, code, offset) in BAD_FILES {
        let bytes = read(name);
        let mut records = 0;
        let err = match decode_file(name, &bytes, DecodeArgs::default().options(), |items| {
            records += items.len()
        }) {
            Ok(_) => panic!("{name} decoded cleanly"),
            Err(e) => e,
        };
        assert_eq!(err.code(), *code, "{name}: {err}");
        assert_eq!(err.at().offset, *offset, "{name}: {err}");
        assert_eq!(err.at().file, *name);
    }
}

#[test]
fn a_flipped_byte_in_a_checksummed_file_is_a_checksum_error() {
    let name = "mariadb-bin.000001";
    let mut bytes = read(name);
    // Inside the first rows event's data (after the table map at 549..612).
    let target = 650;
    bytes[target] ^= 0x40;
    let Err(err) = decode_file(name, &bytes, DecodeArgs::default().options(), |_| {}) else {
        panic!("a corrupt event decoded");
    };
    assert_eq!(err.code(), "checksum", "{err}");
}

#[test]
fn otters_own_recordings_decode_to_their_reviewed_snapshots() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut n = 0;
    let args = DecodeArgs {
        with_keys: true,
        prefix: "otter".into(),
        ..DecodeArgs::default()
    };
    for entry in std::fs::read_dir(&dir).expect("tests/data lists") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        if !name.contains(".0") {
            continue;
        }
        let text = render_snapshot(&name, &std::fs::read(&path).expect("readable"), &args);
        insta::assert_snapshot!(format!("own__{}", name.replace('.', "_")), text);
        n += 1;
    }
    assert!(n >= 1, "no recordings in {}", dir.display());
}

#[test]
fn files_that_create_their_tables_decode_by_the_schema_history() {
    for name in NAMED_BY_THEIR_DDL {
        let (lines, err, _) = render_file(name, &read(name), &DecodeArgs::default());
        assert!(err.is_none(), "{name}: {err:?}");
        let out = lines.join("\n");
        assert!(
            out.contains("\"after\":{\"a\":") && !out.contains("\"@1\""),
            "{name}: columns named from its CREATE TABLE:\n{out}"
        );
    }
}
