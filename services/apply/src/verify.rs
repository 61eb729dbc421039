//! `verify`: is the target identical to the source?
//!
//! For each selected source table (mapped to its target table and columns as apply
//! writes them): row counts, then checksums of chunks of `chunk_rows` rows by primary
//! key, computed on each server; a chunk that differs is fetched key by key and the
//! differing keys are reported (missing on the target, extra on the target, different).
//! A table without a primary key is compared as a multiset of row hashes, so a missing
//! or extra duplicate row shows.
//!
//! Values are compared exactly: text and binary columns by their bytes (hex), FLOAT
//! widened to DOUBLE, TIMESTAMP in UTC on both sessions. Generated columns and columns a
//! mapping excludes are not compared (apply does not write them).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Pool, Value as MyValue};
use otter_core::{Column, ColumnKind, TableId, TableSchema};
use regex::Regex;

use crate::config::Config;
use crate::mapping::{Mapping, Shape};
use crate::sql::mysql::push_ident;

#[derive(clap::Args, Debug, Clone)]
pub struct VerifyArgs {
    /// Source server, `mysql://user:password@host:port`.
    #[arg(long)]
    pub source: String,
    /// Target server; default: `target.url` of `--config`.
    #[arg(long)]
    pub target: Option<String>,
    /// Apply configuration whose `[[map]]` rules say where each table lands.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Regular expression matched against the whole `db.table` of source tables
    /// (repeatable; at least one).
    #[arg(long = "tables", required = true)]
    pub tables: Vec<String>,
    /// Rows per checksum chunk.
    #[arg(long, default_value_t = 1000)]
    pub chunk_rows: usize,
    /// Most differing keys listed per table.
    #[arg(long, default_value_t = 20)]
    pub max_keys: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot query the {side} for {table}")]
    Query {
        side: &'static str,
        table: String,
        #[source]
        source: mysql_async::Error,
    },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Mapping(#[from] crate::mapping::MappingError),
}

/// One difference found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diff {
    MissingOnTarget(String),
    ExtraOnTarget(String),
    Differs(String),
    /// A row (by hash) of a keyless table held a different number of times.
    Count {
        row_hash: String,
        source: i64,
        target: i64,
    },
}

/// The result for one table.
#[derive(Debug, Clone)]
pub struct TableReport {
    pub source: TableId,
    pub target: TableId,
    pub source_rows: i64,
    pub target_rows: i64,
    pub chunks: usize,
    pub target_missing: bool,
    /// At most `max_keys` differences.
    pub diffs: Vec<Diff>,
    /// True when more differences exist than listed.
    pub truncated: bool,
}

impl TableReport {
    pub fn identical(&self) -> bool {
        !self.target_missing && self.diffs.is_empty() && self.source_rows == self.target_rows
    }
}

struct Side<'a> {
    name: &'static str,
    conn: &'a mut Conn,
}

fn kind_of(data_type: &str, column_type: &str) -> ColumnKind {
    let unsigned = column_type.contains("unsigned");
    match data_type {
        "tinyint" | "smallint" | "mediumint" | "int" | "bigint" if unsigned => ColumnKind::UInt,
        "tinyint" | "smallint" | "mediumint" | "int" | "bigint" => ColumnKind::Int,
        "float" => ColumnKind::Float,
        "double" => ColumnKind::Double,
        "decimal" => ColumnKind::Decimal,
        "date" => ColumnKind::Date,
        "datetime" => ColumnKind::DateTime,
        "timestamp" => ColumnKind::Timestamp,
        "time" => ColumnKind::Time,
        "year" => ColumnKind::Year,
        "enum" => ColumnKind::Enum,
        "set" => ColumnKind::Set,
        "bit" => ColumnKind::Bit,
        "json" => ColumnKind::Json,
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
            ColumnKind::Bytes
        }
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" => ColumnKind::Geometry,
        _ => ColumnKind::Text,
    }
}

/// The source table's definition, as far as comparing needs it.
async fn describe(conn: &mut Conn, t: &TableId) -> Result<TableSchema, mysql_async::Error> {
    let cols: Vec<(String, String, String, String)> = conn
        .exec(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, EXTRA FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (&t.db, &t.table),
        )
        .await?;
    let keys: Vec<String> = conn
        .exec(
            "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? \
             AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX",
            (&t.db, &t.table),
        )
        .await?;
    let columns: Vec<Column> = cols
        .iter()
        .map(|(name, dt, ct, extra)| Column {
            name: name.clone(),
            kind: kind_of(&dt.to_ascii_lowercase(), &ct.to_ascii_lowercase()),
            generated: extra.to_ascii_uppercase().contains("GENERATED"),
        })
        .collect();
    let key = keys
        .iter()
        .filter_map(|k| columns.iter().position(|c| &c.name == k))
        .collect();
    Ok(TableSchema {
        table: t.clone(),
        columns,
        key,
        version: 0,
    })
}

/// Column names on one side: source names or the shape's target names.
fn names<'s>(shape: &'s Shape, schema: &'s TableSchema, target: bool) -> Vec<&'s str> {
    shape
        .cols
        .iter()
        .map(|c| {
            if target {
                c.name.as_str()
            } else {
                schema.columns[c.src].name.as_str()
            }
        })
        .collect()
}

/// `CONCAT_WS(',', ...)` of every compared column, exact and NULL-aware.
fn row_expr(shape: &Shape, names: &[&str]) -> String {
    let mut s = String::from("CONCAT_WS(','");
    for (c, name) in shape.cols.iter().zip(names) {
        let mut id = String::new();
        push_ident(&mut id, name);
        let value = match c.kind {
            ColumnKind::Float => format!("({id}+0e0)"),
            ColumnKind::Bit => format!("({id}+0)"),
            ColumnKind::Text
            | ColumnKind::Bytes
            | ColumnKind::Json
            | ColumnKind::Enum
            | ColumnKind::Set
            | ColumnKind::Geometry
            | ColumnKind::Vector => format!("HEX({id})"),
            _ => id.clone(),
        };
        s.push_str(&format!(",IF({id} IS NULL,'N',CONCAT('V',{value}))"));
    }
    s.push(')');
    s
}

fn key_names<'a>(shape: &Shape, names: &[&'a str]) -> Vec<&'a str> {
    shape.key.iter().map(|&k| names[k]).collect()
}

/// `(k1 OP ?) OR (k1 = ? AND k2 OP ?) ...`; `last_op` is used for the last key column.
fn key_cmp(
    keys: &[&str],
    op: &str,
    last_op: &str,
    values: &[MyValue],
    params: &mut Vec<MyValue>,
) -> String {
    let mut terms = Vec::new();
    for i in 0..keys.len() {
        let mut t = String::from("(");
        for j in 0..i {
            push_ident(&mut t, keys[j]);
            t.push_str(" = ? AND ");
            params.push(values[j].clone());
        }
        push_ident(&mut t, keys[i]);
        t.push_str(if i + 1 == keys.len() { last_op } else { op });
        t.push_str(" ?)");
        params.push(values[i].clone());
        terms.push(t);
    }
    format!("({})", terms.join(" OR "))
}

fn range_where(
    keys: &[&str],
    lo: Option<&Vec<MyValue>>,
    hi: Option<&Vec<MyValue>>,
    params: &mut Vec<MyValue>,
) -> String {
    let mut parts = Vec::new();
    if let Some(lo) = lo {
        parts.push(key_cmp(keys, " >", " >", lo, params));
    }
    if let Some(hi) = hi {
        parts.push(key_cmp(keys, " <", " <=", hi, params));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", parts.join(" AND "))
    }
}

fn qualified(t: &TableId) -> String {
    let mut s = String::new();
    push_ident(&mut s, &t.db);
    s.push('.');
    push_ident(&mut s, &t.table);
    s
}

impl Side<'_> {
    fn err(&self, t: &TableId) -> impl Fn(mysql_async::Error) -> VerifyError + '_ {
        let table = t.to_string();
        let side = self.name;
        move |source| VerifyError::Query {
            side,
            table: table.clone(),
            source,
        }
    }

    async fn count(&mut self, t: &TableId) -> Result<i64, VerifyError> {
        let n: Option<i64> = self
            .conn
            .query_first(format!("SELECT COUNT(*) FROM {}", qualified(t)))
            .await
            .map_err(self.err(t))?;
        Ok(n.unwrap_or(0))
    }

    async fn exists(&mut self, t: &TableId) -> Result<bool, VerifyError> {
        let n: Option<i64> = self
            .conn
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                (&t.db, &t.table),
            )
            .await
            .map_err(self.err(t))?;
        Ok(n.unwrap_or(0) > 0)
    }

    async fn checksum(
        &mut self,
        t: &TableId,
        row: &str,
        wher: &str,
        params: Vec<MyValue>,
    ) -> Result<(i64, String), VerifyError> {
        let sql = format!(
            "SELECT COUNT(*), CAST(COALESCE(SUM(CAST(CONV(SUBSTRING(MD5({row}),1,15),16,10) AS UNSIGNED)),0) AS CHAR) FROM {}{wher}",
            qualified(t)
        );
        let r: Option<(i64, String)> = self
            .conn
            .exec_first(sql, params)
            .await
            .map_err(self.err(t))?;
        Ok(r.unwrap_or((0, "0".into())))
    }

    async fn hashes(
        &mut self,
        t: &TableId,
        key: &str,
        row: &str,
        wher: &str,
        params: Vec<MyValue>,
    ) -> Result<HashMap<String, String>, VerifyError> {
        let sql = format!("SELECT {key}, MD5({row}) FROM {}{wher}", qualified(t));
        let rows: Vec<(String, String)> = self.conn.exec(sql, params).await.map_err(self.err(t))?;
        Ok(rows.into_iter().collect())
    }
}

/// Compares every source table matching `tables`.
pub async fn compare(
    source: &Pool,
    target: &Pool,
    mapping: &Mapping,
    tables: &[Regex],
    chunk_rows: usize,
    max_keys: usize,
) -> Result<Vec<TableReport>, VerifyError> {
    let err = |side: &'static str| {
        move |source| VerifyError::Query {
            side,
            table: "(connect)".into(),
            source,
        }
    };
    let mut sc = source.get_conn().await.map_err(err("source"))?;
    let mut tc = target.get_conn().await.map_err(err("target"))?;
    for c in [&mut sc, &mut tc] {
        c.query_drop("SET time_zone = '+00:00', NAMES utf8mb4")
            .await
            .map_err(err("session"))?;
    }
    let all: Vec<(String, String)> = sc
        .query(
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' \
             AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys') \
             ORDER BY TABLE_SCHEMA, TABLE_NAME",
        )
        .await
        .map_err(err("source"))?;
    let mut reports = Vec::new();
    for (db, table) in all {
        let name = format!("{db}.{table}");
        if !tables.iter().any(|r| r.is_match(&name)) {
            continue;
        }
        let id = TableId::new(db, table);
        let mut s = Side {
            name: "source",
            conn: &mut sc,
        };
        let schema = describe(s.conn, &id).await.map_err(s.err(&id))?;
        let shape = mapping.shape(&schema)?;
        let mut t = Side {
            name: "target",
            conn: &mut tc,
        };
        reports.push(compare_table(&mut s, &mut t, &schema, &shape, chunk_rows, max_keys).await?);
    }
    Ok(reports)
}

async fn compare_table(
    s: &mut Side<'_>,
    t: &mut Side<'_>,
    schema: &TableSchema,
    shape: &Shape,
    chunk_rows: usize,
    max_keys: usize,
) -> Result<TableReport, VerifyError> {
    let mut report = TableReport {
        source: shape.source.clone(),
        target: shape.target.clone(),
        source_rows: s.count(&shape.source).await?,
        target_rows: 0,
        chunks: 0,
        target_missing: false,
        diffs: Vec::new(),
        truncated: false,
    };
    if !t.exists(&shape.target).await? {
        report.target_missing = true;
        return Ok(report);
    }
    report.target_rows = t.count(&shape.target).await?;
    let (sn, tn) = (names(shape, schema, false), names(shape, schema, true));
    let (srow, trow) = (row_expr(shape, &sn), row_expr(shape, &tn));
    let push = |report: &mut TableReport, d: Diff| {
        if report.diffs.len() < max_keys {
            report.diffs.push(d);
        } else {
            report.truncated = true;
        }
    };
    if shape.key.is_empty() {
        report.chunks = 1;
        let group = |row: &str, t: &TableId| {
            format!(
                "SELECT MD5({row}) h, COUNT(*) FROM {} GROUP BY h",
                qualified(t)
            )
        };
        let a: Vec<(String, i64)> = s
            .conn
            .query(group(&srow, &shape.source))
            .await
            .map_err(s.err(&shape.source))?;
        let b: Vec<(String, i64)> = t
            .conn
            .query(group(&trow, &shape.target))
            .await
            .map_err(t.err(&shape.target))?;
        let mut counts: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for (h, n) in a {
            counts.entry(h).or_default().0 = n;
        }
        for (h, n) in b {
            counts.entry(h).or_default().1 = n;
        }
        for (row_hash, (source, target)) in counts {
            if source != target {
                push(
                    &mut report,
                    Diff::Count {
                        row_hash,
                        source,
                        target,
                    },
                );
            }
        }
        return Ok(report);
    }
    let (skeys, tkeys) = (key_names(shape, &sn), key_names(shape, &tn));
    let key_display = |keys: &[&str]| {
        let parts: Vec<String> = keys
            .iter()
            .map(|k| {
                let mut id = String::new();
                push_ident(&mut id, k);
                format!("QUOTE({id})")
            })
            .collect();
        format!("CONCAT_WS(',',{})", parts.join(","))
    };
    let (skey_expr, tkey_expr) = (key_display(&skeys), key_display(&tkeys));
    let key_list = |keys: &[&str]| {
        keys.iter()
            .map(|k| {
                let mut id = String::new();
                push_ident(&mut id, k);
                id
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    let order = key_list(&skeys);
    let mut lo: Option<Vec<MyValue>> = None;
    loop {
        // The chunk's upper bound: the key `chunk_rows` rows further, from the source.
        let mut params = Vec::new();
        let wher = range_where(&skeys, lo.as_ref(), None, &mut params);
        let sql = format!(
            "SELECT {order} FROM {}{wher} ORDER BY {order} LIMIT 1 OFFSET {}",
            qualified(&shape.source),
            chunk_rows.max(1) - 1
        );
        let hi: Option<mysql_async::Row> = s
            .conn
            .exec_first(sql, params)
            .await
            .map_err(s.err(&shape.source))?;
        let hi: Option<Vec<MyValue>> = hi.map(mysql_async::Row::unwrap);
        report.chunks += 1;
        let mut sp = Vec::new();
        let swhere = range_where(&skeys, lo.as_ref(), hi.as_ref(), &mut sp);
        let mut tp = Vec::new();
        let twhere = range_where(&tkeys, lo.as_ref(), hi.as_ref(), &mut tp);
        let a = s
            .checksum(&shape.source, &srow, &swhere, sp.clone())
            .await?;
        let b = t
            .checksum(&shape.target, &trow, &twhere, tp.clone())
            .await?;
        if a != b {
            let sa = s
                .hashes(&shape.source, &skey_expr, &srow, &swhere, sp)
                .await?;
            let tb = t
                .hashes(&shape.target, &tkey_expr, &trow, &twhere, tp)
                .await?;
            let mut keys: Vec<&String> = sa.keys().chain(tb.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                match (sa.get(k), tb.get(k)) {
                    (Some(_), None) => push(&mut report, Diff::MissingOnTarget(k.clone())),
                    (None, Some(_)) => push(&mut report, Diff::ExtraOnTarget(k.clone())),
                    (Some(x), Some(y)) if x != y => push(&mut report, Diff::Differs(k.clone())),
                    _ => {}
                }
            }
        }
        match hi {
            Some(h) => lo = Some(h),
            None => break,
        }
    }
    Ok(report)
}

/// Human-readable lines for `reports`, and whether all are identical.
pub fn render(reports: &[TableReport]) -> (String, bool) {
    let mut out = String::new();
    let mut differ = 0;
    for r in reports {
        let arrow = if r.source == r.target {
            String::new()
        } else {
            format!(" -> {}", r.target)
        };
        if r.target_missing {
            differ += 1;
            out.push_str(&format!(
                "DIFF {}{arrow}: target table does not exist ({} source rows)\n",
                r.source, r.source_rows
            ));
            continue;
        }
        if r.identical() {
            out.push_str(&format!(
                "ok   {}{arrow}: {} rows, {} chunk(s) identical\n",
                r.source, r.source_rows, r.chunks
            ));
            continue;
        }
        differ += 1;
        out.push_str(&format!(
            "DIFF {}{arrow}: source {} rows, target {} rows\n",
            r.source, r.source_rows, r.target_rows
        ));
        for d in &r.diffs {
            let line = match d {
                Diff::MissingOnTarget(k) => format!("missing on target: key ({k})"),
                Diff::ExtraOnTarget(k) => format!("extra on target:   key ({k})"),
                Diff::Differs(k) => format!("different:         key ({k})"),
                Diff::Count {
                    row_hash,
                    source,
                    target,
                } => format!("row md5 {row_hash}: {source} on source, {target} on target"),
            };
            out.push_str(&format!("       {line}\n"));
        }
        if r.truncated {
            out.push_str("       (more differences not listed; raise --max-keys)\n");
        }
    }
    if differ == 0 {
        out.push_str(&format!(
            "in sync: {} of {} table(s) identical\n",
            reports.len(),
            reports.len()
        ));
    } else {
        out.push_str(&format!(
            "NOT in sync: {differ} of {} table(s) differ\n",
            reports.len()
        ));
    }
    (out, differ == 0)
}

/// The `verify` command: 0 identical, 1 differences, 2 could not compare.
pub async fn run(args: &VerifyArgs) -> Result<u8, VerifyError> {
    let cfg = args.config.as_deref().map(Config::load).transpose()?;
    let mapping = match &cfg {
        Some(c) => Mapping::new(&c.map).map_err(|e| VerifyError::Usage(format!("{e:?}")))?,
        None => Mapping::identity(),
    };
    let target = args
        .target
        .clone()
        .or_else(|| cfg.as_ref().map(|c| c.target.url.clone()))
        .ok_or_else(|| VerifyError::Usage("--target or --config is required".into()))?;
    let mut pats = Vec::new();
    for p in &args.tables {
        pats.push(
            Regex::new(&format!("^(?:{p})$"))
                .map_err(|e| VerifyError::Usage(format!("--tables `{p}`: {e}")))?,
        );
    }
    let pool = |url: &str| -> Result<Pool, VerifyError> {
        let opts = Opts::from_url(url).map_err(|e| {
            VerifyError::Usage(format!("{}: {e}", otter_core::url::redact_url(url)))
        })?;
        Ok(Pool::new(OptsBuilder::from_opts(opts)))
    };
    let (sp, tp) = (pool(&args.source)?, pool(&target)?);
    let reports = compare(&sp, &tp, &mapping, &pats, args.chunk_rows, args.max_keys).await;
    let _ = sp.disconnect().await;
    let _ = tp.disconnect().await;
    let reports = reports?;
    if reports.is_empty() {
        println!("no source table matches {:?}", args.tables);
        return Ok(2);
    }
    let (text, same) = render(&reports);
    print!("{text}");
    Ok(if same { 0 } else { 1 })
}
