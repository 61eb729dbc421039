//! The source server: checks its settings, reads its position and catalog, and opens
//! the binlog stream as a replica.
//!
//! Requires of the server: `log_bin=ON`, `binlog_format=ROW`, `binlog_row_image=FULL`,
//! and a user with REPLICATION SLAVE, REPLICATION CLIENT (MariaDB: BINLOG MONITOR),
//! SELECT on `information_schema` and on the captured tables (for `SHOW CREATE
//! TABLE`). The replica `server_id` must be unique among the server's replicas.
//! `binlog_row_metadata=FULL` is recommended: below it the binlog has no column names
//! and keys, and capture takes them from its schema history (seeded here, from the
//! tables' definitions).
//!
//! Events are handed on as raw bytes, checksum included: the otter decoder verifies
//! them. `mysql_async` decompresses MySQL transaction payloads itself and then emits
//! the inner events; those are matched byte for byte against the decoder's own
//! decompression and dropped ([`InnerEvents`]), so a payload is never decoded twice
//! and a mismatch is an error, not a skip.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use futures_util::StreamExt;
use mysql_async::binlog::events::Event;
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStream, BinlogStreamRequest, Conn, Opts, OptsBuilder};
use mysql_common::proto::MySerialize;
use otter_core::position::GtidSet;
use otter_core::{ErrorClass, SourcePos, TableId};

use crate::binlog::event::{self as ev, ty};
use crate::binlog::rows::TableCatalog;
use otter_core::shape::TableShape;
use otter_core::url::redact_url;

/// A table's shape from its `SHOW CREATE TABLE` text, with the MariaDB JSON columns
/// `catalog` names (their definition says LONGTEXT).
pub fn shape_from_create(
    create: &str,
    table: &TableId,
    catalog: Option<&TableCatalog>,
) -> Result<TableShape, String> {
    let parts = otter_core::ddl::analyze(create, &table.db).map_err(|e| e.to_string())?;
    let part = parts
        .into_iter()
        .find(|p| p.kind == otter_core::ddl::DdlKind::CreateTable)
        .ok_or("not a CREATE TABLE")?;
    let mut shapes = otter_core::ddl::Shapes::new();
    part.evolve(&mut shapes).map_err(|e| e.to_string())?;
    let shape = shapes
        .remove(&part.table)
        .ok_or("the definition gave no shape")?;
    let mut shape = (*shape).clone();
    if let Some(c) = catalog {
        for col in &mut shape.columns {
            col.json |= c.json.iter().any(|j| j == &col.name);
            col.generated |= c.generated.iter().any(|g| g == &col.name);
        }
    }
    Ok(shape)
}

/// MySQL/MariaDB error numbers capture reacts to.
pub mod errno {
    /// ER_MASTER_FATAL_ERROR_READING_BINLOG: requested position purged or invalid.
    pub const FATAL_READING_BINLOG: u16 = 1236;
    pub const ACCESS_DENIED: u16 = 1045;
    pub const SPECIFIC_ACCESS_DENIED: u16 = 1227;
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot connect to the source {url}")]
    Connect {
        url: String,
        #[source]
        source: mysql_async::Error,
    },
    #[error("the source {url} did not complete a connection within {timeout_ms} ms (source.connect_timeout_ms)")]
    ConnectTimeout { url: String, timeout_ms: u128 },
    #[error("source query failed while {what}")]
    Query {
        what: &'static str,
        #[source]
        source: mysql_async::Error,
    },
    #[error("the source is not set up for row capture:\n  - {}", .0.join("\n  - "))]
    Preconditions(Vec<String>),
    #[error("the source cannot serve the binlog from {from}: {message} (the binlog may have been purged past the stored position; re-snapshot or set a new start position while stopped)")]
    Unservable { from: String, message: String },
    #[error("binlog file {file} (capture's position {from}) is no longer on the source: it was purged; the oldest binlog there is {oldest}. The changes between them are lost to capture: re-load the tables on the target (or accept the gap), then, with the pipeline stopped, set a new start position (`otterctl position set <pipeline> --file-pos {oldest}:4`, or `--gtid`/`--timestamp`) and resume it (`otterctl pipeline resume`)")]
    Purged {
        file: String,
        from: String,
        oldest: String,
    },
    #[error("binlog stream from the source failed")]
    Stream(#[source] mysql_async::Error),
    #[error("binlog stream ended (the source closed it)")]
    Ended,
    #[error("event after the transaction payload ending at offset {offset} does not match its decompressed content")]
    PayloadMismatch { offset: u64 },
}

impl SourceError {
    fn server_code(e: &mysql_async::Error) -> Option<u16> {
        match e {
            mysql_async::Error::Server(s) => Some(s.code),
            _ => None,
        }
    }

    pub fn class(&self) -> ErrorClass {
        match self {
            SourceError::Preconditions(_)
            | SourceError::Unservable { .. }
            | SourceError::Purged { .. }
            | SourceError::PayloadMismatch { .. } => ErrorClass::Permanent,
            SourceError::Connect { source, .. }
            | SourceError::Query { source, .. }
            | SourceError::Stream(source) => match Self::server_code(source) {
                Some(errno::ACCESS_DENIED | errno::SPECIFIC_ACCESS_DENIED) => ErrorClass::Permanent,
                _ => ErrorClass::Transient,
            },
            SourceError::Ended | SourceError::ConnectTimeout { .. } => ErrorClass::Transient,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            SourceError::Connect { .. } => "source_connect",
            SourceError::ConnectTimeout { .. } => "source_connect_timeout",
            SourceError::Query { .. } => "source_query",
            SourceError::Preconditions(_) => "source_preconditions",
            SourceError::Unservable { .. } => "binlog_unservable",
            SourceError::Purged { .. } => "binlog_purged",
            SourceError::Stream(_) => "binlog_stream",
            SourceError::Ended => "binlog_ended",
            SourceError::PayloadMismatch { .. } => "payload_mismatch",
        }
    }
}

/// What capture needs to know about the source before streaming.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    pub version: String,
    pub mariadb: bool,
    pub server_id: u32,
    /// Collation id -> charset name, from the server itself.
    pub collations: HashMap<u16, String>,
    /// `binlog_checksum=CRC32`: every streamed event ends with a CRC32.
    pub crc32: bool,
    /// `binlog_row_metadata=FULL`: table maps name their columns and key.
    pub full_metadata: bool,
    /// Default character set per database, and the server's.
    pub db_charsets: HashMap<String, String>,
    pub server_charset: Option<String>,
}

pub struct Source {
    opts: Opts,
    url: String,
    /// mysql_async has no connect timeout of its own: every connect is bounded here.
    connect_timeout: Duration,
}

impl Source {
    pub fn new(url: &str, connect_timeout: Duration) -> Result<Source, SourceError> {
        let opts = Opts::from_url(url).map_err(|e| SourceError::Connect {
            url: redact_url(url),
            source: e.into(),
        })?;
        let opts: Opts = OptsBuilder::from_opts(opts)
            .conn_ttl(None)
            .wait_timeout(Some(28_800))
            .into();
        Ok(Source {
            opts,
            url: redact_url(url),
            connect_timeout,
        })
    }

    pub async fn connect(&self) -> Result<Conn, SourceError> {
        match tokio::time::timeout(self.connect_timeout, Conn::new(self.opts.clone())).await {
            Ok(conn) => conn.map_err(|source| SourceError::Connect {
                url: self.url.clone(),
                source,
            }),
            Err(_) => Err(SourceError::ConnectTimeout {
                url: self.url.clone(),
                timeout_ms: self.connect_timeout.as_millis(),
            }),
        }
    }

    /// Checks every setting row capture needs and reports all mismatches at once.
    pub async fn check(&self) -> Result<ServerInfo, SourceError> {
        let mut conn = self.connect().await?;
        let q = |what| move |source| SourceError::Query { what, source };
        let version: Option<String> = conn
            .query_first("SELECT @@version")
            .await
            .map_err(q("reading the version"))?
            .flatten();
        let version = version.unwrap_or_default();
        let mariadb = version.contains("MariaDB");
        let server_id: Option<u32> = conn
            .query_first("SELECT @@server_id")
            .await
            .map_err(q("reading server_id"))?
            .flatten();
        let server_id = server_id.unwrap_or(0);
        let mut problems = Vec::new();
        let expect = [
            ("log_bin", "ON"),
            ("binlog_format", "ROW"),
            ("binlog_row_image", "FULL"),
        ];
        for (var, want) in expect {
            let got: Option<Option<String>> = conn
                .query_first(format!("SELECT CAST(@@global.{var} AS CHAR)"))
                .await
                .unwrap_or(None);
            let got = got
                .flatten()
                .unwrap_or_else(|| "(not available on this server)".into());
            let ok = got.eq_ignore_ascii_case(want) || (var == "log_bin" && got == "1");
            if !ok {
                problems.push(format!("{var}: expected {want}, found {got}"));
            }
        }
        if !problems.is_empty() {
            return Err(SourceError::Preconditions(problems));
        }
        let metadata: Option<Option<String>> = conn
            .query_first("SELECT CAST(@@global.binlog_row_metadata AS CHAR)")
            .await
            .unwrap_or(None);
        let full_metadata = metadata
            .flatten()
            .is_some_and(|m| m.eq_ignore_ascii_case("FULL"));
        let rows: Vec<(Option<String>, Option<String>)> = conn
            .query(
                "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA",
            )
            .await
            .map_err(q("reading database charsets"))?;
        let db_charsets = rows
            .into_iter()
            .filter_map(|(db, cs)| Some((db?, cs?)))
            .collect();
        let server_charset: Option<String> = conn
            .query_first("SELECT CAST(@@character_set_server AS CHAR)")
            .await
            .map_err(q("reading character_set_server"))?
            .flatten();
        // Typed rows must allow NULL everywhere: mysql_async panics on a NULL it cannot
        // convert, and MariaDB lists collations without ids.
        let rows: Vec<(Option<u32>, Option<String>)> = conn
            .query("SELECT ID, CHARACTER_SET_NAME FROM information_schema.COLLATIONS WHERE ID IS NOT NULL")
            .await
            .map_err(q("reading collations"))?;
        let collations = rows
            .into_iter()
            .filter_map(|(id, cs)| Some((u16::try_from(id?).ok()?, cs?)))
            .collect();
        let checksum: Option<String> = conn
            .query_first("SELECT @@global.binlog_checksum")
            .await
            .map_err(q("reading binlog_checksum"))?
            .flatten();
        let crc32 = checksum.is_some_and(|c| c.eq_ignore_ascii_case("CRC32"));
        let _ = conn.disconnect().await;
        Ok(ServerInfo {
            version,
            mariadb,
            server_id,
            collations,
            crc32,
            full_metadata,
            db_charsets,
            server_charset,
        })
    }

    /// The source's current binlog end and executed GTID set.
    pub async fn head(&self) -> Result<(SourcePos, GtidSet), SourceError> {
        let mut conn = self.connect().await?;
        let q = |what| move |source| SourceError::Query { what, source };
        let row: Option<mysql_async::Row> = conn
            .query_first("SHOW MASTER STATUS")
            .await
            .map_err(q("reading SHOW MASTER STATUS"))?;
        let row = row.ok_or_else(|| {
            SourceError::Preconditions(vec!["log_bin: SHOW MASTER STATUS is empty".into()])
        })?;
        let file: Option<String> = row.get_opt(0).and_then(Result::ok);
        let pos: Option<u64> = row.get_opt(1).and_then(Result::ok);
        let (file, pos) = (file.unwrap_or_default(), pos.unwrap_or(4));
        // MariaDB has gtid_binlog_pos, MySQL gtid_executed; the other one is an error.
        let mut gtid_text: Option<String> = conn
            .query_first("SELECT @@global.gtid_binlog_pos")
            .await
            .unwrap_or(None)
            .flatten();
        if gtid_text.is_none() {
            gtid_text = conn
                .query_first("SELECT @@global.gtid_executed")
                .await
                .unwrap_or(None)
                .flatten();
        }
        let gtids = gtid_text
            .and_then(|t| GtidSet::parse(&t.replace('\n', "")).ok())
            .unwrap_or_default();
        let _ = conn.disconnect().await;
        Ok((SourcePos::new(file, pos), gtids))
    }

    /// The source's binlog files, clock and retention: what "how far behind" and "about
    /// to be purged" are measured against.
    pub async fn probe(&self) -> Result<Probe, SourceError> {
        let mut conn = self.connect().await?;
        let q = |what| move |source| SourceError::Query { what, source };
        let files = binlog_files(&mut conn).await?;
        let now: Option<f64> = conn
            .query_first("SELECT CAST(UNIX_TIMESTAMP(NOW(6)) AS DOUBLE)")
            .await
            .map_err(q("reading the source's clock"))?;
        // MariaDB >= 10.6 and MySQL 8 have the seconds; older servers only the days.
        let expire: Option<u64> = match conn
            .query_first("SELECT CAST(@@binlog_expire_logs_seconds AS UNSIGNED)")
            .await
        {
            Ok(v) => v,
            Err(_) => conn
                .query_first("SELECT CAST(@@expire_logs_days * 86400 AS UNSIGNED)")
                .await
                .map_err(q("reading the binlog retention"))?,
        };
        let _ = conn.disconnect().await;
        Ok(Probe {
            files,
            now: now.unwrap_or_default(),
            expire_seconds: expire.unwrap_or_default(),
        })
    }

    /// What the live catalog says about tables beyond their table maps: generated
    /// columns, and MariaDB JSON columns (LONGTEXT with a `json_valid` check). All
    /// tables, or only `only`.
    /// The shapes of the base tables `allows` lets through, from their current
    /// definitions (`SHOW CREATE TABLE`); `json` names MariaDB JSON columns per table
    /// ([`Source::catalog`]). A definition the SQL parser cannot read leaves its table
    /// out, with a warning (its table maps must then carry full metadata).
    pub async fn shapes(
        &self,
        allows: &(dyn Fn(&TableId) -> bool + Sync),
        json: &HashMap<TableId, TableCatalog>,
    ) -> Result<HashMap<TableId, TableShape>, SourceError> {
        let mut conn = self.connect().await?;
        let q = |what| move |source| SourceError::Query { what, source };
        let tables: Vec<(Option<String>, Option<String>)> = conn
            .query(
                "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' \
                 AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')",
            )
            .await
            .map_err(q("listing tables"))?;
        let mut out = HashMap::new();
        for (db, t) in tables {
            let (Some(db), Some(t)) = (db, t) else {
                continue;
            };
            let table = TableId::new(db, t);
            if !allows(&table) {
                continue;
            }
            if let Some(shape) = Self::shape_on(&mut conn, &table, json.get(&table)).await? {
                out.insert(table, shape);
            }
        }
        let _ = conn.disconnect().await;
        Ok(out)
    }

    /// One table's shape from its current definition; `None` when it does not exist.
    pub async fn shape(&self, table: &TableId) -> Result<Option<TableShape>, SourceError> {
        let json = self.catalog(Some(table)).await?;
        let mut conn = self.connect().await?;
        let shape = Self::shape_on(&mut conn, table, json.get(table)).await;
        let _ = conn.disconnect().await;
        shape
    }

    async fn shape_on(
        conn: &mut Conn,
        table: &TableId,
        catalog: Option<&TableCatalog>,
    ) -> Result<Option<TableShape>, SourceError> {
        let quote = |n: &str| format!("`{}`", n.replace('`', "``"));
        let sql = format!(
            "SHOW CREATE TABLE {}.{}",
            quote(&table.db),
            quote(&table.table)
        );
        let row: Option<mysql_async::Row> = match conn.query_first(sql).await {
            Ok(r) => r,
            // Gone since listed.
            Err(mysql_async::Error::Server(e)) if e.code == 1146 => return Ok(None),
            Err(source) => {
                return Err(SourceError::Query {
                    what: "reading a table definition (SHOW CREATE TABLE)",
                    source,
                })
            }
        };
        // A view's row has other columns; its second is no CREATE TABLE either.
        let Some(create) = row.and_then(|r| r.get_opt::<String, _>(1).and_then(Result::ok)) else {
            return Ok(None);
        };
        match shape_from_create(&create, table, catalog) {
            Ok(s) => Ok(Some(s)),
            Err(why) => {
                tracing::warn!(table = %table, error = %why, "schema history: the table's definition cannot be read; its table maps must carry full row metadata (binlog_row_metadata=FULL)");
                Ok(None)
            }
        }
    }

    pub async fn catalog(
        &self,
        only: Option<&TableId>,
    ) -> Result<HashMap<TableId, TableCatalog>, SourceError> {
        let mut conn = self.connect().await?;
        let q = |what| move |source| SourceError::Query { what, source };
        let (filter, params): (&str, Vec<String>) = match only {
            Some(t) => (
                " AND TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                vec![t.db.clone(), t.table.clone()],
            ),
            None => ("", vec![]),
        };
        let gen: Vec<(Option<String>, Option<String>, Option<String>)> = conn
            .exec(
                format!("SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE EXTRA LIKE '%GENERATED%'{filter}"),
                params.clone(),
            )
            .await
            .map_err(q("reading generated columns"))?;
        let mut map: HashMap<TableId, TableCatalog> = HashMap::new();
        if let Some(t) = only {
            map.insert(t.clone(), TableCatalog::default());
        }
        for (db, t, c) in gen {
            if let (Some(db), Some(t), Some(c)) = (db, t, c) {
                map.entry(TableId::new(db, t))
                    .or_default()
                    .generated
                    .push(c);
            }
        }
        // MySQL has no CHECK_CONSTRAINTS.TABLE_NAME before 8.0.16 and JSON there is a
        // binary type anyway: a failing query here only means no MariaDB JSON columns.
        let checks: Vec<(Option<String>, Option<String>, Option<String>)> = conn
            .exec(
                format!(
                    "SELECT CONSTRAINT_SCHEMA, TABLE_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE CHECK_CLAUSE LIKE 'json_valid(%'{}",
                    filter.replace("TABLE_SCHEMA", "CONSTRAINT_SCHEMA")
                ),
                params,
            )
            .await
            .unwrap_or_default();
        for (db, t, clause) in checks {
            let (Some(db), Some(t), Some(clause)) = (db, t, clause) else {
                continue;
            };
            // `json_valid(`col`)`: the whole clause must be exactly that.
            let col = clause
                .strip_prefix("json_valid(`")
                .and_then(|r| r.strip_suffix("`)"));
            if let Some(col) = col {
                map.entry(TableId::new(db, t))
                    .or_default()
                    .json
                    .push(col.replace("``", "`"));
            }
        }
        let _ = conn.disconnect().await;
        Ok(map)
    }

    /// Opens the binlog stream at `from` (file and offset), or, for a MariaDB source
    /// given `gtid`, just after that GTID position; as replica `server_id`.
    pub async fn stream(
        &self,
        server_id: u32,
        from: &SourcePos,
        gtid: Option<&GtidSet>,
        heartbeat: Duration,
        mariadb: bool,
    ) -> Result<EventStream, SourceError> {
        let mut conn = self.connect().await?;
        let q = |what| move |source| SourceError::Query { what, source };
        if mariadb {
            // 4 = MARIA_SLAVE_CAPABILITY_GTID: real GTID events, not BEGIN queries.
            conn.query_drop("SET @mariadb_slave_capability=4")
                .await
                .map_err(q("announcing replica capabilities"))?;
        }
        let ns = heartbeat.as_nanos().min(u128::from(u64::MAX)) as u64;
        conn.query_drop(format!("SET @master_heartbeat_period={ns}"))
            .await
            .map_err(q("setting the heartbeat period"))?;
        let req = match gtid {
            Some(g) if mariadb => {
                // MariaDB GTID mode: an empty file name plus the connect state.
                conn.query_drop(format!("SET @slave_connect_state='{g}'")).await.map_err(q("setting the GTID start"))?;
                BinlogStreamRequest::new(server_id).with_pos(4u64)
            }
            Some(_) => {
                return Err(SourceError::Preconditions(vec![
                    "source.start: gtid:<set> is supported for MariaDB sources; use file:offset for MySQL".into(),
                ]))
            }
            None => {
                check_not_purged(&mut conn, from).await?;
                BinlogStreamRequest::new(server_id).with_filename(from.file.as_bytes()).with_pos(from.offset)
            }
        };
        let stream = conn
            .get_binlog_stream(req)
            .await
            .map_err(|e| self.stream_error(e, from))?;
        Ok(EventStream {
            inner: stream,
            from: from.clone(),
            next_offset: from.offset,
            inner_events: VecDeque::new(),
        })
    }

    fn stream_error(&self, e: mysql_async::Error, from: &SourcePos) -> SourceError {
        match &e {
            mysql_async::Error::Server(s) if s.code == errno::FATAL_READING_BINLOG => {
                SourceError::Unservable {
                    from: from.to_string(),
                    message: s.message.clone(),
                }
            }
            _ => SourceError::Stream(e),
        }
    }
}

/// `Err(Purged)` when `from.file` sorts before every binlog the source still has (the
/// server itself would only say it cannot find the file). Files of one server share a
/// base name and a zero-padded sequence number, so names sort in binlog order.
async fn check_not_purged(conn: &mut Conn, from: &SourcePos) -> Result<(), SourceError> {
    let names: Vec<String> = binlog_files(conn)
        .await?
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    match names.first() {
        Some(oldest)
            if !names.contains(&from.file)
                && base(&from.file) == base(oldest)
                && from.file.len() == oldest.len()
                && from.file < *oldest =>
        {
            Err(SourceError::Purged {
                file: from.file.clone(),
                from: from.to_string(),
                oldest: oldest.clone(),
            })
        }
        _ => Ok(()),
    }
}

/// `SHOW BINARY LOGS`: names and sizes, oldest first. Read by position, not as a
/// fixed tuple: MySQL 8 adds an `Encrypted` column.
async fn binlog_files(conn: &mut Conn) -> Result<Vec<(String, u64)>, SourceError> {
    let rows: Vec<mysql_async::Row> =
        conn.query("SHOW BINARY LOGS")
            .await
            .map_err(|source| SourceError::Query {
                what: "reading SHOW BINARY LOGS",
                source,
            })?;
    Ok(rows
        .iter()
        .filter_map(|r| Some((r.get::<String, _>(0)?, r.get::<u64, _>(1)?)))
        .collect())
}

fn base(file: &str) -> &str {
    file.rsplit_once('.').map_or(file, |(b, _)| b)
}

/// Inner events of a transaction payload that `mysql_async` will emit after it, as
/// the decoder saw them (header + body, no checksum).
pub type InnerEvents = VecDeque<Vec<u8>>;

/// Binlog events as raw bytes with their start offsets.
pub struct EventStream {
    inner: BinlogStream,
    /// Where the stream was opened (for errors the server reports at open time).
    from: SourcePos,
    /// End of the last positioned event: the offset given to artificial events.
    next_offset: u64,
    inner_events: InnerEvents,
}

/// One raw event and where it starts.
pub struct RawEvent {
    pub bytes: Vec<u8>,
    pub offset: u64,
    pub type_code: u8,
}

impl EventStream {
    /// The next event, or an error. Never returns a payload's inner event.
    pub async fn next(&mut self) -> Result<RawEvent, SourceError> {
        loop {
            let event = match self.inner.next().await {
                None => return Err(SourceError::Ended),
                Some(Err(e)) => {
                    return Err(match &e {
                        mysql_async::Error::Server(s) if s.code == errno::FATAL_READING_BINLOG => {
                            SourceError::Unservable {
                                from: self.from.to_string(),
                                message: s.message.clone(),
                            }
                        }
                        _ => SourceError::Stream(e),
                    })
                }
                Some(Ok(ev)) => ev,
            };
            if let Some(expected) = self.inner_events.pop_front() {
                if body_bytes(&event) != expected {
                    return Err(SourceError::PayloadMismatch {
                        offset: self.next_offset,
                    });
                }
                continue;
            }
            let h = event.header();
            let size = u64::from(h.event_size());
            let log_pos = u64::from(h.log_pos());
            let type_code = h.event_type_raw();
            // Artificial events (fake rotate, re-sent FDE) have no place in the file.
            let offset = if log_pos >= size && log_pos != 0 {
                log_pos - size
            } else {
                self.next_offset
            };
            if log_pos != 0 && type_code != ty::FORMAT_DESCRIPTION {
                self.next_offset = log_pos;
            }
            let bytes = raw_bytes(&event);
            return Ok(RawEvent {
                bytes,
                offset,
                type_code,
            });
        }
    }

    /// Tells the stream which inner events `mysql_async` will emit next.
    pub fn expect_inner(&mut self, events: InnerEvents) {
        self.inner_events = events;
    }

    pub async fn close(self) {
        let _ = self.inner.close().await;
    }
}

fn body_bytes(event: &Event) -> Vec<u8> {
    let mut buf = Vec::with_capacity(ev::HEADER_LEN + event.data().len());
    event.header().serialize(&mut buf);
    buf.extend_from_slice(event.data());
    buf
}

/// The event as the server sent it: header, body, and (when the stream is
/// checksummed) the FDE's algorithm byte and the received CRC32, unverified here.
fn raw_bytes(event: &Event) -> Vec<u8> {
    let mut buf = body_bytes(event);
    let is_fde = event.header().event_type_raw() == ty::FORMAT_DESCRIPTION;
    if is_fde {
        if let Ok(Some(alg)) = event.footer().get_checksum_alg() {
            buf.push(alg as u8);
        }
    }
    if let Some(sum) = event.checksum() {
        buf.extend_from_slice(&sum);
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that accepts the TCP connection and never speaks would hold a
    /// connect forever without the timeout.
    #[tokio::test]
    async fn a_silent_source_times_out_after_connect_timeout_ms() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("addr").port();
        let holder = std::thread::spawn(move || {
            let (sock, _) = listener.accept().expect("accept");
            std::thread::sleep(Duration::from_secs(1));
            drop(sock);
        });
        let source = Source::new(
            &format!("mysql://u:p@127.0.0.1:{port}"),
            Duration::from_millis(300),
        )
        .expect("valid url");
        let start = std::time::Instant::now();
        let err = source.connect().await.expect_err("nothing answers");
        assert!(
            matches!(
                err,
                SourceError::ConnectTimeout {
                    timeout_ms: 300,
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "bounded by the timeout"
        );
        assert_eq!(err.class(), ErrorClass::Transient);
        assert!(!err.to_string().contains(":p@"), "password redacted: {err}");
        let _ = holder.join();
    }
}

/// One reading of the source's binlog state.
#[derive(Debug, Clone)]
pub struct Probe {
    /// Binlog files with their sizes, oldest first; the last one is the head.
    pub files: Vec<(String, u64)>,
    /// The source's clock, seconds since the epoch.
    pub now: f64,
    /// Binlog retention, seconds; 0 = kept until purged by hand.
    pub expire_seconds: u64,
}

#[cfg(test)]
mod shape_tests {
    use super::*;

    /// `SHOW CREATE TABLE` as MariaDB 10.11 prints it.
    const CREATE: &str = "CREATE TABLE `t` (
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `name` varchar(10) CHARACTER SET latin1 COLLATE latin1_swedish_ci DEFAULT NULL,
  `e` enum('a','b') DEFAULT 'a',
  `st` set('x','y') DEFAULT NULL,
  `b` blob DEFAULT NULL,
  `j` longtext CHARACTER SET utf8mb4 COLLATE utf8mb4_bin DEFAULT NULL CHECK (json_valid(`j`)),
  `g` int(11) GENERATED ALWAYS AS (`id` + 1) VIRTUAL,
  `d` decimal(10,2) unsigned DEFAULT NULL,
  `ts` timestamp(3) NULL DEFAULT NULL,
  `note` text DEFAULT NULL COMMENT 'x',
  PRIMARY KEY (`id`),
  KEY `ix` (`name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci";

    #[test]
    fn a_mariadb_definition_gives_the_shape_decoding_needs() {
        let t = TableId::new("shx", "t");
        let catalog = TableCatalog {
            generated: vec!["g".into()],
            json: vec!["j".into()],
        };
        let s = shape_from_create(CREATE, &t, Some(&catalog)).expect("reads");
        let names: Vec<&str> = s.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["id", "name", "e", "st", "b", "j", "g", "d", "ts", "note"]
        );
        assert_eq!(s.key, ["id"]);
        let c = |n: &str| s.columns[s.index_of(n).expect(n)].clone();
        assert!(c("id").unsigned && c("d").unsigned && !c("g").unsigned);
        assert_eq!(c("name").charset.as_deref(), Some("latin1"));
        assert_eq!(c("note").charset.as_deref(), Some("utf8mb4"));
        assert_eq!(c("b").charset.as_deref(), Some("binary"));
        assert!(c("j").json && c("g").generated);
        assert_eq!(c("e").enum_values, Some(vec!["a".into(), "b".into()]));
        assert!(shape_from_create("CREATE VIEW v AS SELECT 1", &t, None).is_err());
    }
}
