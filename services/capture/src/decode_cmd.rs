//! `otter-capture decode FILE...`: prints the records a recorded binlog file would
//! publish, one envelope per line, like mysqlbinlog does for SQL. Streams: memory
//! stays at about one event and one transaction, whatever the file's size.

use std::io::Write;

use anyhow::Context;

use crate::binlog::decode::{Options, StatementPolicy};
use crate::binlog::file::decode_reader;
use crate::binlog::rows::Assumptions;
use crate::binlog::{DecodeError, Decoder, Item};
use crate::records::Records;

/// Options of the `decode` command.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DecodeArgs {
    /// Binlog files to decode, in order.
    #[arg(required = true)]
    pub files: Vec<std::path::PathBuf>,
    /// Topic prefix used in the printed records.
    #[arg(long, default_value = "otter")]
    pub prefix: String,
    /// Print `{"topic":..,"key":..,"value":..}` wrappers instead of bare envelopes.
    #[arg(long)]
    pub with_keys: bool,
    /// For binlogs without signedness metadata: read integers as signed.
    #[arg(long, conflicts_with = "assume_unsigned")]
    pub assume_signed: bool,
    /// For binlogs without signedness metadata: read integers as unsigned.
    #[arg(long)]
    pub assume_unsigned: bool,
    /// For binlogs without charset metadata: the charset of text columns.
    #[arg(long)]
    pub assume_charset: Option<String>,
}

impl DecodeArgs {
    pub fn options(&self) -> Options {
        Options {
            assume: Assumptions {
                unsigned: if self.assume_signed {
                    Some(false)
                } else if self.assume_unsigned {
                    Some(true)
                } else {
                    None
                },
                charset: self.assume_charset.clone(),
            },
            statements: StatementPolicy::Count,
            ..Options::default()
        }
    }
}

/// Decodes `input` and hands each record, rendered as one line (no newline), to
/// `line`. Returns the decoder (for its counters) or the error that stopped decoding;
/// everything committed before the error has been handed over.
pub fn decode_lines(
    name: &str,
    input: impl std::io::Read,
    args: &DecodeArgs,
    now_ms: i64,
    mut line: impl FnMut(&[u8]),
) -> Result<Decoder, DecodeError> {
    let mut records = Records::new(&args.prefix);
    let mut buf = Vec::with_capacity(4096);
    decode_reader(name, input, args.options(), |items: &[Item]| {
        for item in items {
            if let Err(e) = records.build(item, now_ms) {
                // Values the decoder produced always encode; say so loudly if not.
                line(format!("encode error: {e}").as_bytes());
            }
            for r in records.as_slice() {
                if args.with_keys {
                    buf.clear();
                    buf.extend_from_slice(b"{\"topic\":");
                    otter_core::codec::write_json_str(&mut buf, &r.topic);
                    buf.extend_from_slice(b",\"key\":");
                    buf.extend_from_slice(&r.key);
                    buf.extend_from_slice(b",\"value\":");
                    buf.extend_from_slice(&r.value);
                    buf.push(b'}');
                    line(&buf);
                } else {
                    line(&r.value);
                }
            }
        }
    })
}

fn summary(name: &str, records: u64, dec: &Decoder) -> String {
    let c = &dec.counters;
    format!(
        "{name}: {records} records; passed over: {} statement events, {} ignorable events, {} heartbeats; gtids: {}",
        c.statement_events,
        c.ignorable_events,
        c.heartbeats,
        dec.gtids()
    )
}

/// Renders one in-memory file as lines (for tests): the lines, the error that
/// stopped decoding if any, and the summary line.
pub fn render_file(
    name: &str,
    bytes: &[u8],
    args: &DecodeArgs,
) -> (Vec<String>, Option<DecodeError>, String) {
    let mut lines = Vec::new();
    let result = decode_lines(name, bytes, args, 0, |l| {
        lines.push(String::from_utf8_lossy(l).into_owned())
    });
    match result {
        Ok(dec) => {
            let s = summary(name, lines.len() as u64, &dec);
            (lines, None, s)
        }
        Err(e) => (lines, Some(e), String::new()),
    }
}

pub fn run(args: &DecodeArgs) -> anyhow::Result<bool> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut ok = true;
    for path in &args.files {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        let input = std::io::BufReader::with_capacity(1 << 20, file);
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let mut records = 0u64;
        let mut write_err = None;
        let result = decode_lines(&name, input, args, now_ms, |l| {
            records += 1;
            if write_err.is_none() {
                if let Err(e) = out.write_all(l).and_then(|()| out.write_all(b"\n")) {
                    write_err = Some(e);
                }
            }
        });
        if let Some(e) = write_err {
            return Err(e).context("cannot write to standard output");
        }
        out.flush()?;
        match result {
            Ok(dec) => eprintln!("{}", summary(&name, records, &dec)),
            Err(e) => {
                eprintln!("error: {}: {}", path.display(), crate::error::chain(&e));
                ok = false;
            }
        }
    }
    Ok(ok)
}
