//! `otter-capture decode FILE...`: prints the records a recorded binlog file would
//! publish, one envelope per line, like mysqlbinlog does for SQL.

use std::io::Write;

use anyhow::Context;

use crate::binlog::decode::{Options, StatementPolicy};
use crate::binlog::file::decode_file;
use crate::binlog::rows::Assumptions;
use crate::binlog::{DecodeError, Item};
use crate::records::{records_of, WireRecord};

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

/// Renders the items of one file as lines; returns them and the error that stopped
/// decoding, if any (everything committed before the error is rendered).
pub fn render_file(
    name: &str,
    bytes: &[u8],
    args: &DecodeArgs,
) -> (Vec<String>, Option<DecodeError>, String) {
    let mut lines = Vec::new();
    let mut records: Vec<WireRecord> = Vec::new();
    let mut encode_error = None;
    let result = decode_file(name, bytes, args.options(), |items: &[Item]| {
        for item in items {
            records.clear();
            if let Err(e) = records_of(item, &args.prefix, 0, &mut records) {
                encode_error.get_or_insert(e.to_string());
            }
            for r in &records {
                let value = String::from_utf8_lossy(&r.value).into_owned();
                lines.push(if args.with_keys {
                    format!(
                        "{{\"topic\":{},\"key\":{},\"value\":{value}}}",
                        serde_json::Value::String(r.topic.clone()),
                        String::from_utf8_lossy(&r.key)
                    )
                } else {
                    value
                });
            }
        }
    });
    let (err, summary) = match result {
        Ok(dec) => {
            let c = &dec.counters;
            (None, format!(
                "{name}: {} records; passed over: {} statement events, {} ignorable events, {} heartbeats; gtids: {}",
                lines.len(), c.statement_events, c.ignorable_events, c.heartbeats, dec.gtids()
            ))
        }
        Err(e) => (Some(e), String::new()),
    };
    if let Some(e) = encode_error {
        lines.push(format!("encode error: {e}"));
    }
    (lines, err, summary)
}

pub fn run(args: &DecodeArgs) -> anyhow::Result<bool> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut ok = true;
    for path in &args.files {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let (lines, err, summary) = render_file(&name, &bytes, args);
        for l in lines {
            writeln!(out, "{l}")?;
        }
        out.flush()?;
        match err {
            Some(e) => {
                eprintln!("error: {}: {}", path.display(), error_chain(&e));
                ok = false;
            }
            None => eprintln!("{summary}"),
        }
    }
    Ok(ok)
}

/// `outer: inner: innermost`, for errors printed to an operator.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = inner.source();
    }
    s
}
