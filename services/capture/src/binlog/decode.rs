//! Turns a stream of binlog events into transactions of `ChangeEvent`s.
//!
//! Invariants:
//! - Items leave in binlog order, a whole transaction at a time: a transaction's
//!   changes are released only when its commit event is decoded, followed by a
//!   [`Item::Commit`] carrying the position just past that commit. Restarting from
//!   that position neither skips nor repeats a transaction.
//! - Row events are decoded against the table map that precedes them, i.e. the
//!   table's shape at that point of the binlog. Where the map lacks column names
//!   (`binlog_row_metadata` below FULL) the schema history completes it: the shapes
//!   as of this point, evolved by every DDL decoded, and carried by each
//!   [`Checkpoint`], so resuming there decodes with the same shapes. A map that does
//!   not fit its shape is an error, never a relabelling.
//! - [`DecodeError::NoShape`] from a table map leaves the decoder as it was: the
//!   caller may supply the shape ([`Decoder::set_shape`]) and feed the event again.
//! - Nothing is skipped silently: events that carry no row data are counted in
//!   [`Counters`]; an event that cannot be decoded is a [`DecodeError`] naming the
//!   binlog position (and the table, when known), after which the decoder must not be
//!   fed again (its transaction state is unknown).

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::Arc;

use otter_core::event::{ChangeEvent, Op, SchemaChange, SourceInfo, TableId, TxnMark};
use otter_core::position::{GtidSet, SourcePos};
use otter_core::ErrorClass;

use super::charset::Collations;
use super::cursor::Short;
use super::ddl::{classify, Statement};
use super::event::{self as ev, ty, Format, FrameError};
use super::rows::{self, Assumptions, PlanError, RowsError, RowsKind, TableDef};
use super::tablemap::{self, TableMapError};
use otter_core::ddl::{self, DdlKind, Shapes};
use otter_core::shape::TableShape;

/// Why decoding stopped. Every variant carries the position of the event at fault.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("binlog event at {at} is truncated or malformed: {source}")]
    Frame {
        at: SourcePos,
        #[source]
        source: FrameError,
    },
    #[error("binlog event at {at} (type {type_code}) is malformed: {source}")]
    Malformed {
        at: SourcePos,
        type_code: u8,
        #[source]
        source: Short,
    },
    #[error("binlog event at {at} has unknown type {type_code}")]
    UnknownEvent { at: SourcePos, type_code: u8 },
    #[error("binlog event at {at} is a {what}, which otter does not replicate")]
    Unsupported { at: SourcePos, what: &'static str },
    #[error("table map at {at} is malformed: {source}")]
    TableMap {
        at: SourcePos,
        #[source]
        source: TableMapError,
    },
    #[error("rows event at {at} refers to table id {table_id}, which no table map defined")]
    UnknownTableId { at: SourcePos, table_id: u64 },
    #[error("cannot plan decoding of {table} at {at}: {source}")]
    Plan {
        table: TableId,
        at: SourcePos,
        #[source]
        source: PlanError,
    },
    #[error("cannot decode rows of {table} at {at}: {source}")]
    Rows {
        table: TableId,
        at: SourcePos,
        #[source]
        source: RowsError,
    },
    #[error("transaction payload at {at} does not decompress: {reason}")]
    Payload { at: SourcePos, reason: String },
    #[error("MariaDB compressed event at {at} does not decompress: {reason}")]
    Compressed { at: SourcePos, reason: String },
    #[error("the source logged an incident at {at} (code {code}): {message}")]
    Incident {
        at: SourcePos,
        code: u16,
        message: String,
    },
    #[error("cannot read the binlog at {at}")]
    Io {
        at: SourcePos,
        #[source]
        source: std::io::Error,
    },
    #[error("statement-based DML at {at} cannot be replicated row by row (set binlog_format=ROW): {sql}")]
    StatementDml { at: SourcePos, sql: String },
    #[error("table map of {table} at {at} has no column names (binlog_row_metadata is not FULL) and the schema history has no shape for the table")]
    NoShape { table: TableId, at: SourcePos },
    #[error("table map of {table} at {at} has no column names (binlog_row_metadata is not FULL) and does not fit the schema history's shape: {why}")]
    Shape {
        table: TableId,
        at: SourcePos,
        why: String,
    },
}

impl DecodeError {
    pub fn at(&self) -> &SourcePos {
        match self {
            DecodeError::Frame { at, .. }
            | DecodeError::Malformed { at, .. }
            | DecodeError::UnknownEvent { at, .. }
            | DecodeError::Unsupported { at, .. }
            | DecodeError::TableMap { at, .. }
            | DecodeError::UnknownTableId { at, .. }
            | DecodeError::Plan { at, .. }
            | DecodeError::Rows { at, .. }
            | DecodeError::Payload { at, .. }
            | DecodeError::Compressed { at, .. }
            | DecodeError::Incident { at, .. }
            | DecodeError::StatementDml { at, .. }
            | DecodeError::NoShape { at, .. }
            | DecodeError::Shape { at, .. }
            | DecodeError::Io { at, .. } => at,
        }
    }

    /// Data errors stop the pipeline: skipping an event would lose changes.
    /// A table-specific decoding problem parks only that table.
    pub fn class(&self) -> ErrorClass {
        match self {
            DecodeError::Plan { table, .. }
            | DecodeError::Rows { table, .. }
            | DecodeError::NoShape { table, .. }
            | DecodeError::Shape { table, .. } => ErrorClass::Table(table.clone()),
            _ => ErrorClass::Permanent,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::Frame {
                source: FrameError::Checksum { .. },
                ..
            } => "checksum",
            DecodeError::Frame { .. } => "truncated",
            DecodeError::Malformed { .. } => "malformed",
            DecodeError::UnknownEvent { .. } => "unknown_event",
            DecodeError::Unsupported { .. } => "unsupported",
            DecodeError::TableMap { .. } => "table_map",
            DecodeError::UnknownTableId { .. } => "unknown_table_id",
            DecodeError::Plan { .. } => "plan",
            DecodeError::Rows { .. } => "rows",
            DecodeError::Payload { .. } => "payload",
            DecodeError::Compressed { .. } => "compressed",
            DecodeError::Incident { .. } => "incident",
            DecodeError::StatementDml { .. } => "statement_dml",
            DecodeError::NoShape { .. } => "no_shape",
            DecodeError::Shape { .. } => "shape",
            DecodeError::Io { .. } => "io",
        }
    }
}

/// What the decoder hands on.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Change(ChangeEvent),
    Schema(SchemaChange),
    /// End of a transaction: `next` is the position just past it; `gtids` the
    /// executed set including it.
    Commit(Checkpoint),
}

/// Schema version per table that changed since capture began (others are at 1).
/// Shared copy-on-write: each commit carries the map as of that commit.
pub type SchemaVersions = Arc<BTreeMap<TableId, u32>>;

/// A restart point just past a transaction: resuming here with this state decodes
/// the rest of the binlog exactly as an uninterrupted run would have.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub next: SourcePos,
    /// Executed GTID set including the transaction.
    pub gtids: GtidSet,
    pub versions: SchemaVersions,
    /// Table shapes as of this point (the schema history's entries for it).
    pub shapes: Arc<Shapes>,
    /// When the source committed the transaction (its clock, seconds since the epoch).
    pub timestamp: u32,
}

/// Events seen that carry no row data, by reason; exposed as metrics by capture.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counters {
    pub filtered_rows: u64,
    pub ignorable_events: u64,
    pub statement_events: u64,
    pub heartbeats: u64,
}

/// How DML logged as statements is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatementPolicy {
    /// Stop with [`DecodeError::StatementDml`] (capture: rows would be lost).
    #[default]
    Refuse,
    /// Count and pass over (the `decode` command, reading old recordings).
    Count,
}

#[derive(Debug, Default)]
struct Txn {
    id: Option<String>,
    gtid: Option<String>,
    items: Vec<Item>,
    /// Per-table running count for `data_collection_order`.
    table_order: HashMap<TableId, u32>,
    /// MariaDB standalone group: the next statement completes it.
    standalone: bool,
    /// Opened by BEGIN (or a MariaDB non-standalone GTID): only COMMIT/XID ends it.
    explicit: bool,
}

pub type TableFilter = Arc<dyn Fn(&TableId) -> bool + Send + Sync>;

/// Decoder settings.
#[derive(Clone, Default)]
pub struct Options {
    pub assume: Assumptions,
    pub statements: StatementPolicy,
    pub collations: Collations,
    /// Which tables to decode; `None` = all.
    pub filter: Option<TableFilter>,
    /// Per table, what the source catalog says beyond the table maps.
    pub catalog: HashMap<TableId, rows::TableCatalog>,
    /// A table map without column names is an error ([`DecodeError::NoShape`]) unless
    /// the schema history has the table's shape; otherwise the columns are named `@1`,
    /// `@2`, ... (offline decoding of recorded binlogs).
    pub require_names: bool,
    /// Default character set per database (and the server's, for databases created
    /// later), for text columns whose shape names none.
    pub db_charsets: HashMap<String, String>,
    pub server_charset: Option<String>,
}

pub struct Decoder {
    opts: Options,
    format: Format,
    file: String,
    tables: HashMap<u64, Arc<TableDef>>,
    /// Table ids whose table map named an excluded table.
    filtered_ids: std::collections::HashSet<u64>,
    /// Inside a transaction payload, rows of all inner events share the payload's
    /// position, so they are numbered consecutively from here.
    payload_rows: Option<u32>,
    /// Inner events of the last transaction payload (header + body), for a network
    /// stream that re-emits them to recognise and drop.
    payload_events: std::collections::VecDeque<Vec<u8>>,
    versions: SchemaVersions,
    /// The schema history at the current point: evolved by each DDL, copied on write,
    /// carried by each checkpoint.
    shapes: Arc<Shapes>,
    txn: Option<Txn>,
    gtids: GtidSet,
    /// Header timestamp of the event being handled (source clock, seconds).
    event_ts: u32,
    pub counters: Counters,
}

impl Decoder {
    pub fn new(file: impl Into<String>, opts: Options) -> Self {
        Decoder {
            opts,
            format: Format::initial(),
            file: file.into(),
            tables: HashMap::new(),
            filtered_ids: Default::default(),
            payload_rows: None,
            payload_events: Default::default(),
            versions: SchemaVersions::default(),
            shapes: Arc::default(),
            event_ts: 0,
            txn: None,
            gtids: GtidSet::Empty,
            counters: Counters::default(),
        }
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    /// Replaces what the catalog says about `table` (after DDL touched it). Takes
    /// effect at the table's next table map, i.e. its next transaction.
    pub fn set_catalog(&mut self, table: TableId, entry: rows::TableCatalog) {
        self.opts.catalog.insert(table, entry);
    }

    /// For a replica stream: whether events before the first format description
    /// (MariaDB's and MySQL's artificial Rotate) carry a CRC32, as negotiated with
    /// `@master_binlog_checksum` and the server's `binlog_checksum`.
    pub fn expect_checksums(&mut self, crc32: bool) {
        self.format.crc32 = crc32;
    }

    /// Sets the file positions are reported against (after a rotate, or when a
    /// recorded file's own name should win over the rotate events inside it).
    pub fn set_file(&mut self, file: &str) {
        self.file = file.to_owned();
    }

    pub fn gtids(&self) -> &GtidSet {
        &self.gtids
    }

    pub fn set_gtids(&mut self, g: GtidSet) {
        self.gtids = g;
    }

    /// Decodes one whole event (header included, checksum trailer included when the
    /// format has one) that starts at `offset` of the current file.
    pub fn feed(
        &mut self,
        event: &[u8],
        offset: u64,
        out: &mut Vec<Item>,
    ) -> Result<(), DecodeError> {
        let at = SourcePos::new(self.file.clone(), offset);
        let (frame, used) =
            ev::split_frame(event, &self.format, true).map_err(|source| DecodeError::Frame {
                at: at.clone(),
                source,
            })?;
        if used != event.len() {
            return Err(DecodeError::Frame {
                at,
                source: FrameError::Truncated {
                    declared: used as u64,
                    available: event.len() as u64,
                },
            });
        }
        let end = offset + used as u64;
        self.handle(frame, at, end, out)
    }

    fn malformed(at: &SourcePos, type_code: u8) -> impl Fn(Short) -> DecodeError {
        let at = at.clone();
        move |source| DecodeError::Malformed {
            at: at.clone(),
            type_code,
            source,
        }
    }

    fn handle(
        &mut self,
        frame: ev::Frame<'_>,
        at: SourcePos,
        end: u64,
        out: &mut Vec<Item>,
    ) -> Result<(), DecodeError> {
        let h = frame.header;
        let body = frame.body;
        if h.timestamp != 0 {
            self.event_ts = h.timestamp;
        }
        let mal = Self::malformed(&at, h.type_code);
        match h.type_code {
            ty::FORMAT_DESCRIPTION => {
                self.format = ev::parse_format(body).map_err(mal)?;
                // A new FDE starts a new file (or a server restart): table ids restart.
                self.tables.clear();
                self.filtered_ids.clear();
            }
            ty::ROTATE => {
                let (file, _pos) = ev::parse_rotate(
                    body,
                    usize::from(self.format.post_header_len(ty::ROTATE).unwrap_or(8)),
                )
                .map_err(mal)?;
                self.file = file;
            }
            ty::QUERY | ty::MARIA_QUERY_COMPRESSED => self.on_query(h, body, at, end, out)?,
            ty::XID => {
                if body.len() != 8 {
                    return Err(mal(Short {
                        what: "xid event (8 bytes)",
                        need: 8,
                        have: body.len(),
                    }));
                }
                self.commit(end, out);
            }
            ty::TABLE_MAP => {
                let map = tablemap::parse_table_map(
                    body,
                    self.format.table_id_len(ty::TABLE_MAP),
                    self.format.flavor,
                )
                .map_err(|source| DecodeError::TableMap {
                    at: at.clone(),
                    source,
                })?;
                let table = TableId::new(map.db.clone(), map.table.clone());
                if self.opts.filter.as_ref().is_some_and(|f| !f(&table)) {
                    self.tables.remove(&map.table_id);
                    self.filtered_ids.insert(map.table_id);
                    return Ok(());
                }
                self.filtered_ids.remove(&map.table_id);
                let version = self.versions.get(&table).copied().unwrap_or(1);
                let empty = rows::TableCatalog::default();
                let mut catalog = self.opts.catalog.get(&table).unwrap_or(&empty);
                let mut map = map;
                let from_shape;
                if map.columns.iter().any(|c| c.name.is_none()) {
                    match self.shapes.get(&table) {
                        Some(shape) => {
                            let cs = self
                                .opts
                                .db_charsets
                                .get(&table.db)
                                .or(self.opts.server_charset.as_ref());
                            let mut filled = map.clone();
                            match rows::fill_from_shape(&mut filled, shape, cs.map(String::as_str))
                            {
                                Ok(c) => {
                                    map = filled;
                                    from_shape = c;
                                    catalog = &from_shape;
                                }
                                Err(why) if self.opts.require_names => {
                                    return Err(DecodeError::Shape {
                                        table,
                                        at: at.clone(),
                                        why,
                                    })
                                }
                                // Offline: the binlog as it is, columns numbered.
                                Err(_) => {}
                            }
                        }
                        None if self.opts.require_names => {
                            return Err(DecodeError::NoShape {
                                table,
                                at: at.clone(),
                            })
                        }
                        None => {}
                    }
                }
                let def = TableDef::plan(
                    &map,
                    &self.opts.collations,
                    &self.opts.assume,
                    catalog,
                    version,
                )
                .map_err(|source| DecodeError::Plan {
                    table,
                    at: at.clone(),
                    source,
                })?;
                self.tables.insert(map.table_id, Arc::new(def));
            }
            t if rows::rows_kind(t).is_some() => self.on_rows(h, body, at)?,
            ty::GTID | ty::ANONYMOUS_GTID => {
                let g = ev::parse_mysql_gtid(body).map_err(mal)?;
                self.begin_mysql_gtid(h.type_code == ty::GTID, g, &at);
            }
            ty::GTID_TAGGED => {
                let g = ev::parse_tagged_gtid(body).map_err(|e| match e {
                    ev::TaggedError::Short(s) => mal(s),
                    _ => DecodeError::Unsupported {
                        at: at.clone(),
                        what: "malformed tagged GTID event",
                    },
                })?;
                self.begin_mysql_gtid(true, g, &at);
            }
            ty::MARIA_GTID => {
                let g = ev::parse_maria_gtid(body, h.server_id).map_err(mal)?;
                self.gtids.add_mariadb(g.gtid);
                let id = g.gtid.to_string();
                self.txn = Some(Txn {
                    id: Some(id.clone()),
                    gtid: Some(id),
                    standalone: g.standalone,
                    explicit: !g.standalone,
                    ..Txn::default()
                });
            }
            ty::MARIA_GTID_LIST => {
                let list = ev::parse_maria_gtid_list(body).map_err(mal)?;
                if self.gtids.is_empty() {
                    self.gtids = list;
                }
            }
            ty::PREVIOUS_GTIDS => {
                if let Some(set) = ev::parse_previous_gtids(body).map_err(mal)? {
                    if self.gtids.is_empty() {
                        self.gtids = set;
                    }
                }
            }
            ty::TRANSACTION_PAYLOAD => self.on_payload(body, &at, end, out)?,
            ty::INCIDENT => {
                let (code, message) = ev::parse_incident(body).map_err(mal)?;
                return Err(DecodeError::Incident { at, code, message });
            }
            ty::XA_PREPARE => {
                return Err(DecodeError::Unsupported {
                    at,
                    what: "XA PREPARE (XA transactions)",
                })
            }
            ty::MARIA_START_ENCRYPTION => {
                return Err(DecodeError::Unsupported {
                    at,
                    what: "encrypted binlog",
                })
            }
            ty::PRE_GA_WRITE_ROWS..=ty::PRE_GA_DELETE_ROWS => {
                return Err(DecodeError::Unsupported {
                    at,
                    what: "pre-GA (MySQL 5.1.0-5.1.15) rows event",
                })
            }
            ty::LOAD
            | ty::CREATE_FILE
            | ty::APPEND_BLOCK
            | ty::EXEC_LOAD
            | ty::DELETE_FILE
            | ty::NEW_LOAD
            | ty::BEGIN_LOAD_QUERY
            | ty::EXECUTE_LOAD_QUERY => self.on_statement_dml(at, "LOAD DATA (statement-based)")?,
            ty::HEARTBEAT | ty::HEARTBEAT_V2 => self.counters.heartbeats += 1,
            ty::STOP
            | ty::INTVAR
            | ty::RAND
            | ty::USER_VAR
            | ty::ROWS_QUERY
            | ty::IGNORABLE
            | ty::TRANSACTION_CONTEXT
            | ty::VIEW_CHANGE
            | ty::MARIA_ANNOTATE_ROWS
            | ty::MARIA_BINLOG_CHECKPOINT => self.counters.ignorable_events += 1,
            t if h.flags & ev::FLAG_IGNORABLE != 0 => {
                let _ = t;
                self.counters.ignorable_events += 1;
            }
            t => return Err(DecodeError::UnknownEvent { at, type_code: t }),
        }
        Ok(())
    }

    fn begin_mysql_gtid(&mut self, real: bool, g: ev::MySqlGtid, at: &SourcePos) {
        let gtid = if real && !g.sid.uuid.is_empty() && g.gno > 0 {
            self.gtids.add_mysql(g.sid.clone(), g.gno);
            Some(match &g.sid.tag {
                Some(t) => format!("{}:{t}:{}", g.sid.uuid, g.gno),
                None => format!("{}:{}", g.sid.uuid, g.gno),
            })
        } else {
            None
        };
        let id = gtid.clone().unwrap_or_else(|| at.to_string());
        self.txn = Some(Txn {
            id: Some(id),
            gtid,
            ..Txn::default()
        });
    }

    fn txn_mut(&mut self, at: &SourcePos) -> &mut Txn {
        self.txn.get_or_insert_with(|| Txn {
            id: Some(at.to_string()),
            ..Txn::default()
        })
    }

    fn on_query(
        &mut self,
        h: ev::Header,
        body: &[u8],
        at: SourcePos,
        end: u64,
        out: &mut Vec<Item>,
    ) -> Result<(), DecodeError> {
        let post = usize::from(self.format.post_header_len(ty::QUERY).unwrap_or(13));
        let q = ev::parse_query(body, post).map_err(Self::malformed(&at, h.type_code))?;
        let sql_bytes = if h.type_code == ty::MARIA_QUERY_COMPRESSED {
            std::borrow::Cow::Owned(maria_inflate(q.sql).map_err(|reason| {
                DecodeError::Compressed {
                    at: at.clone(),
                    reason,
                }
            })?)
        } else {
            std::borrow::Cow::Borrowed(q.sql)
        };
        let sql = statement_text(&sql_bytes, q.charset);
        match classify(&sql) {
            Statement::Begin => {
                let id = self
                    .txn
                    .as_ref()
                    .and_then(|t| t.id.clone())
                    .unwrap_or_else(|| at.to_string());
                let gtid = self.txn.as_ref().and_then(|t| t.gtid.clone());
                self.txn = Some(Txn {
                    id: Some(id),
                    gtid,
                    explicit: true,
                    ..Txn::default()
                });
            }
            Statement::Commit => self.commit(end, out),
            Statement::Rollback => {
                // Only changes to non-transactional tables reach the binlog before a
                // ROLLBACK, and those did happen on the source: they are kept.
                self.commit(end, out);
            }
            Statement::Savepoint => self.counters.statement_events += 1,
            Statement::Ddl(found) => {
                let ts = h.timestamp;
                let server = h.server_id;
                // What the parser says each table gets (a table only named, as a
                // rename's new name or a LIKE's model, too, so the change sits between
                // the same rows on its stream); where it cannot read the statement, the
                // tokenizer's tables get the text as it is.
                let mut analyzed = ddl::analyze(&sql, &q.db);
                // DROP DATABASE drops every table of it the history knows.
                if let (Ok(v), Some(d)) = (&mut analyzed, ddl::dropped_database(&sql)) {
                    let mut known: Vec<&TableId> = self
                        .shapes
                        .keys()
                        .chain(self.versions.keys())
                        .filter(|t| t.db == d)
                        .collect();
                    known.sort();
                    known.dedup();
                    *v = known
                        .into_iter()
                        .filter_map(|t| ddl::TableDdl::dropped_with_database(t).ok())
                        .collect();
                }
                self.evolve(analyzed.as_ref().ok(), &found, &q.db, &at);
                let parts: Vec<(TableId, DdlKind)> = match analyzed {
                    Ok(v) => ddl::tables(&v)
                        .into_iter()
                        .map(|t| {
                            let kind = v.iter().find(|d| d.table == t).map_or_else(
                                || match v.iter().find(|d| d.referenced().contains(&t)) {
                                    Some(d) if d.kind == DdlKind::RenameTable => d.kind,
                                    _ => DdlKind::Referenced,
                                },
                                |d| d.kind,
                            );
                            (t, kind)
                        })
                        .collect(),
                    Err(e) => {
                        tracing::warn!(
                            position = %at,
                            error = %e,
                            statement = %clip(&sql, 2000),
                            "DDL the SQL parser cannot read: published as ddl_kind \"unparsed\" with its text; apply runs it as written (or stops that table, per its ddl policy)"
                        );
                        found
                            .into_iter()
                            .map(|t| {
                                let db = t.db.unwrap_or_else(|| q.db.clone());
                                (TableId::new(db, t.table), DdlKind::Unparsed)
                            })
                            .collect()
                    }
                };
                let parts: Vec<(TableId, DdlKind)> = parts
                    .into_iter()
                    .filter(|(t, _)| self.opts.filter.as_ref().is_none_or(|f| f(t)))
                    .collect();
                let tables: Vec<TableId> = parts.iter().map(|(t, _)| t.clone()).collect();
                for (i, (table, kind)) in parts.into_iter().enumerate() {
                    let v = Arc::make_mut(&mut self.versions)
                        .entry(table.clone())
                        .or_insert(1);
                    // A table only named keeps its shape.
                    if kind != DdlKind::Referenced {
                        *v += 1;
                    }
                    let version = *v;
                    let source = self.source_info(server, &at, i as u32, ts);
                    let txn = self.txn_mut(&at);
                    let order = txn.items.len() as u32 + 1;
                    let table_order = next_table_order(txn, &table);
                    let id = txn.id.clone().unwrap_or_default();
                    txn.items.push(Item::Schema(SchemaChange {
                        table,
                        default_db: q.db.clone(),
                        ddl: sql.clone(),
                        kind,
                        schema_version: version,
                        tables: tables.clone(),
                        copies: None,
                        source,
                        txn: TxnMark {
                            id,
                            total_order: order,
                            table_order,
                            last: false,
                        },
                    }));
                }
                // DDL commits implicitly, except the CREATE of a CREATE TABLE ...
                // SELECT, which MariaDB logs inside the BEGIN group of the copied rows.
                if !self.txn.as_ref().is_some_and(|t| t.explicit) {
                    self.commit(end, out);
                }
            }
            Statement::Dml => self.on_statement_dml(at, "statement")?,
            Statement::Other => {
                self.counters.statement_events += 1;
                if self.txn.as_ref().is_some_and(|t| t.standalone) {
                    self.commit(end, out);
                }
            }
        }
        Ok(())
    }

    /// Moves the schema history past a DDL statement: each part evolves the shapes; a
    /// table whose new shape the statement does not tell (or every table of a statement
    /// the parser cannot read) loses its shape until the source's catalog gives it.
    fn evolve(
        &mut self,
        parts: Option<&Vec<ddl::TableDdl>>,
        found: &[super::ddl::NamedTable],
        db: &str,
        at: &SourcePos,
    ) {
        let shapes = Arc::make_mut(&mut self.shapes);
        match parts {
            Some(parts) => {
                for p in parts {
                    if let Err(e) = p.evolve(shapes) {
                        tracing::debug!(position = %at, error = %e, "schema history: shape unknown until read from the source");
                    }
                }
            }
            None => {
                for t in found {
                    let db = t.db.clone().unwrap_or_else(|| db.to_owned());
                    shapes.remove(&TableId::new(db, t.table.clone()));
                }
            }
        }
        if let Some(f) = &self.opts.filter {
            shapes.retain(|t, _| f(t));
        }
    }

    fn on_statement_dml(&mut self, at: SourcePos, what: &str) -> Result<(), DecodeError> {
        match self.opts.statements {
            StatementPolicy::Refuse => Err(DecodeError::StatementDml {
                at,
                sql: what.to_owned(),
            }),
            StatementPolicy::Count => {
                self.counters.statement_events += 1;
                Ok(())
            }
        }
    }

    fn source_info(&self, server_id: u32, at: &SourcePos, row: u32, ts: u32) -> SourceInfo {
        SourceInfo {
            server_id,
            at: at.clone(),
            row,
            gtid: self.txn.as_ref().and_then(|t| t.gtid.clone()),
            commit_time_ms: i64::from(ts) * 1000,
        }
    }

    fn on_rows(&mut self, h: ev::Header, body: &[u8], at: SourcePos) -> Result<(), DecodeError> {
        let id_len = self.format.table_id_len(h.type_code);
        let hdr = rows::parse_rows_header(body, h.type_code, id_len)
            .map_err(Self::malformed(&at, h.type_code))?
            .ok_or(DecodeError::UnknownEvent {
                at: at.clone(),
                type_code: h.type_code,
            })?;
        let Some(def) = self.tables.get(&hdr.table_id).cloned() else {
            if self.filtered_ids.contains(&hdr.table_id) {
                self.counters.filtered_rows += 1;
                return Ok(());
            }
            return Err(DecodeError::UnknownTableId {
                at,
                table_id: hdr.table_id,
            });
        };
        let table = def.schema.table.clone();
        let rows = rows::decode_rows(&def, hdr.body, hdr.kind, hdr.partial, hdr.compressed)
            .map_err(|source| DecodeError::Rows {
                table: table.clone(),
                at: at.clone(),
                source,
            })?;
        let op = match hdr.kind {
            RowsKind::Write => Op::Insert,
            RowsKind::Update => Op::Update,
            RowsKind::Delete => Op::Delete,
        };
        let base = self.payload_rows.unwrap_or(0);
        let n = rows.len() as u32;
        for (i, (before, after)) in rows.into_iter().enumerate() {
            let source = self.source_info(h.server_id, &at, base + i as u32, h.timestamp);
            let txn = self.txn_mut(&at);
            let order = txn.items.len() as u32 + 1;
            let table_order = next_table_order(txn, &table);
            let id = txn.id.clone().unwrap_or_default();
            let event = ChangeEvent {
                schema: def.schema.clone(),
                op,
                before,
                after,
                source,
                txn: TxnMark {
                    id,
                    total_order: order,
                    table_order,
                    last: false,
                },
            };
            debug_assert!(
                event.check().is_ok(),
                "decoded event breaks the model: {:?}",
                event.check()
            );
            txn.items.push(Item::Change(event));
        }
        if let Some(r) = self.payload_rows.as_mut() {
            *r += n;
        }
        Ok(())
    }

    fn on_payload(
        &mut self,
        body: &[u8],
        at: &SourcePos,
        end: u64,
        out: &mut Vec<Item>,
    ) -> Result<(), DecodeError> {
        let (compression, size, payload) =
            ev::parse_payload_header(body).map_err(Self::malformed(at, ty::TRANSACTION_PAYLOAD))?;
        let data = match compression {
            0 => {
                let limit = size.unwrap_or(1 << 30).min(1 << 30);
                let mut dec = zstd::stream::read::Decoder::new(payload).map_err(|e| {
                    DecodeError::Payload {
                        at: at.clone(),
                        reason: e.to_string(),
                    }
                })?;
                let mut buf = Vec::with_capacity(usize::try_from(limit.min(1 << 24)).unwrap_or(0));
                (&mut dec)
                    .take(limit + 1)
                    .read_to_end(&mut buf)
                    .map_err(|e| DecodeError::Payload {
                        at: at.clone(),
                        reason: e.to_string(),
                    })?;
                if size.is_some_and(|s| s != buf.len() as u64) {
                    return Err(DecodeError::Payload {
                        at: at.clone(),
                        reason: format!(
                            "header says {} bytes, payload gave {}",
                            size.unwrap_or(0),
                            buf.len()
                        ),
                    });
                }
                buf
            }
            255 => payload.to_vec(),
            other => {
                return Err(DecodeError::Payload {
                    at: at.clone(),
                    reason: format!("unknown compression type {other}"),
                })
            }
        };
        // Inner events have no checksums and no file positions of their own: they all
        // take the payload event's position, and their rows are numbered across the
        // whole payload so each keeps a distinct order key.
        let mut rest = &data[..];
        let mut inner = 0u32;
        self.payload_rows = Some(0);
        let result = (|| {
            while !rest.is_empty() {
                let (frame, used) = ev::split_frame(rest, &self.format, false).map_err(|e| {
                    DecodeError::Payload {
                        at: at.clone(),
                        reason: format!("inner event {inner}: {e}"),
                    }
                })?;
                if frame.header.type_code == ty::TRANSACTION_PAYLOAD {
                    return Err(DecodeError::Payload {
                        at: at.clone(),
                        reason: "a payload nested in a payload".into(),
                    });
                }
                self.payload_events.push_back(rest[..used].to_vec());
                self.handle(frame, at.clone(), end, out)?;
                rest = &rest[used..];
                inner += 1;
            }
            Ok(())
        })();
        self.payload_rows = None;
        result
    }

    fn commit(&mut self, end: u64, out: &mut Vec<Item>) {
        let txn = self.txn.take().unwrap_or_default();
        let mut items = txn.items;
        if let Some(Item::Change(e)) = items.last_mut() {
            e.txn.last = true;
        } else if let Some(Item::Schema(s)) = items.last_mut() {
            s.txn.last = true;
        }
        out.extend(items);
        out.push(Item::Commit(Checkpoint {
            next: SourcePos::new(self.file.clone(), end),
            gtids: self.gtids.clone(),
            versions: self.versions.clone(),
            shapes: self.shapes.clone(),
            timestamp: self.event_ts,
        }));
    }

    /// Restores the schema history of a checkpoint (on resume).
    pub fn set_shapes(&mut self, shapes: Arc<Shapes>) {
        self.shapes = shapes;
    }

    /// Sets one table's shape (read from the source when the history lacked it).
    pub fn set_shape(&mut self, table: TableId, shape: TableShape) {
        Arc::make_mut(&mut self.shapes).insert(table, Arc::new(shape));
    }

    /// Restores the schema versions of a checkpoint (on resume).
    pub fn set_versions(&mut self, versions: SchemaVersions) {
        self.versions = versions;
    }

    /// The inner events of the transaction payload decoded last (emptied by the call).
    pub fn take_payload_events(&mut self) -> std::collections::VecDeque<Vec<u8>> {
        std::mem::take(&mut self.payload_events)
    }
}

/// At most `max` bytes of `s` (on a char boundary), for logs.
fn clip(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn next_table_order(txn: &mut Txn, table: &TableId) -> u32 {
    let n = txn.table_order.entry(table.clone()).or_insert(0);
    *n += 1;
    *n
}

/// Statement text: UTF-8 when it is, else decoded as the client charset says
/// (latin1 clients are common for old DDL); never silently mangled.
fn statement_text(bytes: &[u8], charset: Option<u16>) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => {
            let cs = charset
                .and_then(|id| Collations::default().charset(id))
                .unwrap_or_else(|| "latin1".into());
            super::charset::TextCodec::for_charset(&cs)
                .ok()
                .and_then(|c| c.decode(bytes).ok())
                .unwrap_or_else(|| String::from_utf8_lossy(bytes).into_owned())
        }
    }
}

/// MariaDB's compressed-event format: a header byte `0x80 | n`, `n` bytes of
/// big-endian uncompressed length, then zlib data.
pub fn maria_inflate(buf: &[u8]) -> Result<Vec<u8>, String> {
    let first = *buf.first().ok_or("empty compressed body")?;
    if first & 0xe0 != 0x80 {
        return Err(format!("bad compression header byte {first:#04x}"));
    }
    let n = usize::from(first & 0x07);
    if n == 0 || n > 4 || buf.len() < 1 + n {
        return Err("bad compressed length header".into());
    }
    let len = buf[1..=n]
        .iter()
        .fold(0usize, |a, &b| (a << 8) | usize::from(b));
    let mut out = Vec::with_capacity(len.min(1 << 24));
    flate2::read::ZlibDecoder::new(&buf[1 + n..])
        .take(len as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    if out.len() != len {
        return Err(format!("header says {len} bytes, zlib gave {}", out.len()));
    }
    Ok(out)
}
