//! Printing results: aligned tables for people, JSON for scripts (`--output json`).

use comfy_table::{presets::NOTHING, Table};
use serde::Serialize;
use serde_json::Value;

use crate::{Ctx, Format};

pub fn json<T: Serialize>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// The outcome of a change.
pub fn done(ctx: &Ctx, message: &str) {
    match ctx.format {
        Format::Json => json(&serde_json::json!({ "ok": true, "message": message })),
        Format::Table => println!("{message}"),
    }
}

/// Objects as rows of the given columns (JSON: the objects themselves).
pub fn rows(ctx: &Ctx, columns: &[&str], rows: Vec<Value>) {
    if ctx.format == Format::Json {
        json(&rows);
        return;
    }
    let mut t = Table::new();
    t.load_style(NOTHING);
    t.set_header(columns.iter().map(|c| c.to_uppercase()));
    for r in &rows {
        t.add_row(columns.iter().map(|c| cell(&r[*c])));
    }
    println!("{t}");
}

pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// `label  value` lines, for one object in detail.
pub fn fields(lines: &[(&str, String)]) {
    let width = lines.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    for (l, v) in lines {
        println!("{l:<width$}  {v}");
    }
}
