//! The change-event model: the only row types that cross from capture to apply.
//!
//! Invariants (checked by [`ChangeEvent::check`] in tests and debug builds):
//! - `Insert` has only an after image, `Delete` only a before image, `Update` both.
//! - Every image has one slot per schema column; a slot is `None` only when the source
//!   left the column out of that image (MySQL `binlog_row_image=MINIMAL`/`NOBLOB`).
//! - A present value is NULL or of its column's [`ColumnKind`].
//! - Key columns are present in the image that identifies the row (after for inserts,
//!   before for updates and deletes).

use std::fmt;
use std::sync::Arc;

use crate::position::SourcePos;
use crate::value::{ColumnKind, Value};

/// A source table: database (schema) and table name, case as the source wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableId {
    pub db: String,
    pub table: String,
}

impl TableId {
    pub fn new(db: impl Into<String>, table: impl Into<String>) -> Self {
        TableId {
            db: db.into(),
            table: table.into(),
        }
    }
}

impl fmt::Display for TableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.db, self.table)
    }
}

/// One column of a table as the change stream sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kind: ColumnKind,
    /// A generated (virtual or stored) column: carried for consumers, never written
    /// by apply.
    pub generated: bool,
}

/// The shape of a table at one point of the binlog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    pub table: TableId,
    pub columns: Vec<Column>,
    /// Indexes into `columns` of the primary key, in key order; empty when the table
    /// has no primary key.
    pub key: Vec<usize>,
    /// Increases each time capture sees DDL for this table.
    pub version: u32,
}

/// One row image: a slot per column, `None` when the column is not in the image.
pub type Row = Vec<Option<Value>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Insert,
    Update,
    Delete,
}

impl Op {
    /// Debezium's op code.
    pub fn code(self) -> &'static str {
        match self {
            Op::Insert => "c",
            Op::Update => "u",
            Op::Delete => "d",
        }
    }

    pub fn from_code(code: &str) -> Option<Op> {
        match code {
            "c" => Some(Op::Insert),
            "u" => Some(Op::Update),
            "d" => Some(Op::Delete),
            _ => None,
        }
    }

    /// Every op, in [`Op::index`] order.
    pub const ALL: [Op; 3] = [Op::Insert, Op::Update, Op::Delete];

    /// 0, 1, 2 for insert, update, delete: an index into per-op tallies.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Lowercase name, used as the `op` metric label.
    pub fn name(self) -> &'static str {
        match self {
            Op::Insert => "insert",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }
}

/// Where in its source transaction an event stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMark {
    /// The transaction's GTID, or `file:offset` of its first event without GTIDs.
    pub id: String,
    /// 1-based position of this event among all events of the transaction.
    pub total_order: u32,
    /// 1-based position among the transaction's events for the same table.
    pub table_order: u32,
    /// True for the transaction's last event.
    pub last: bool,
}

/// Where a change came from, precisely enough to order and de-duplicate it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    pub server_id: u32,
    /// Start of the rows (or query) event in the binlog.
    pub at: SourcePos,
    /// Index of the row within its rows event.
    pub row: u32,
    /// GTID of the transaction, when the server assigns them.
    pub gtid: Option<String>,
    /// Commit time on the source clock, from the event header (milliseconds).
    pub commit_time_ms: i64,
}

/// Total order of changes from one source: binlog file sequence, offset, row, part.
/// `part` separates the two records a primary-key change is published as.
pub type OrderKey = [u64; 4];

impl SourceInfo {
    pub fn order(&self, part: u8) -> OrderKey {
        [
            u64::from(self.at.file_seq()),
            self.at.offset,
            u64::from(self.row),
            u64::from(part),
        ]
    }
}

/// One committed row change, in source binlog order.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    pub schema: Arc<TableSchema>,
    pub op: Op,
    pub before: Option<Row>,
    pub after: Option<Row>,
    pub source: SourceInfo,
    pub txn: TxnMark,
}

/// A schema change seen in the binlog, ordered with the affected table's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaChange {
    pub table: TableId,
    /// The default database the statement ran in.
    pub default_db: String,
    /// The statement text as the source logged it (the whole statement, also when it
    /// names several tables).
    pub ddl: String,
    /// What the statement does to this table ([`crate::ddl::DdlKind::Unparsed`] when
    /// the SQL parser could not read it).
    pub kind: crate::ddl::DdlKind,
    /// The table's schema version after this change.
    pub schema_version: u32,
    /// Every table the statement changes, in statement order, a renamed table under
    /// its old name and its new one. Each gets a copy of the change on every partition
    /// of its topic; the first one's stream runs it. Empty in records of captures before
    /// this field existed: read as `[table]`.
    pub tables: Vec<TableId>,
    /// How many records carry this change in all: one per partition of the topic of
    /// each of [`SchemaChange::tables`] (set by the publisher; `None` before publishing,
    /// or from captures that did not say).
    pub copies: Option<u32>,
    pub source: SourceInfo,
    pub txn: TxnMark,
}

impl SchemaChange {
    /// [`SchemaChange::tables`], or this record's table alone when the capture did not
    /// list them.
    pub fn statement_tables(&self) -> &[TableId] {
        if self.tables.is_empty() {
            std::slice::from_ref(&self.table)
        } else {
            &self.tables
        }
    }

    /// Whether this record's stream is the one that runs the change (the first table's).
    pub fn runs_it(&self) -> bool {
        self.statement_tables().first() == Some(&self.table)
    }
}

/// Why a [`ChangeEvent`] breaks the model's invariants.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("{op:?} event has the wrong images (before: {before}, after: {after})")]
    Images { op: Op, before: bool, after: bool },
    #[error("row image has {got} slots, the schema has {want} columns")]
    Width { got: usize, want: usize },
    #[error("column `{column}` holds a {got} value but is a {want} column")]
    Kind {
        column: String,
        got: ColumnKind,
        want: ColumnKind,
    },
    #[error("key column `{column}` is missing from the identifying image")]
    MissingKey { column: String },
}

impl ChangeEvent {
    /// Checks the invariants listed in the module doc.
    pub fn check(&self) -> Result<(), EventError> {
        let (b, a) = (self.before.is_some(), self.after.is_some());
        let ok = match self.op {
            Op::Insert => !b && a,
            Op::Update => b && a,
            Op::Delete => b && !a,
        };
        if !ok {
            return Err(EventError::Images {
                op: self.op,
                before: b,
                after: a,
            });
        }
        for row in [&self.before, &self.after].into_iter().flatten() {
            if row.len() != self.schema.columns.len() {
                return Err(EventError::Width {
                    got: row.len(),
                    want: self.schema.columns.len(),
                });
            }
            for (col, v) in self.schema.columns.iter().zip(row) {
                if let Some(kind) = v.as_ref().and_then(Value::kind) {
                    if kind != col.kind {
                        return Err(EventError::Kind {
                            column: col.name.clone(),
                            got: kind,
                            want: col.kind,
                        });
                    }
                }
            }
        }
        let ident = self.identifying_image();
        for &k in &self.schema.key {
            if ident.get(k).is_none_or(Option::is_none) {
                let column = self
                    .schema
                    .columns
                    .get(k)
                    .map_or_else(String::new, |c| c.name.clone());
                return Err(EventError::MissingKey { column });
            }
        }
        Ok(())
    }

    /// The image that identifies the row on the source before the change: before for
    /// updates and deletes, after for inserts.
    pub fn identifying_image(&self) -> &[Option<Value>] {
        self.before
            .as_deref()
            .or(self.after.as_deref())
            .unwrap_or_default()
    }

    /// True for an update that changes the primary key.
    pub fn changes_key(&self) -> bool {
        match (&self.before, &self.after) {
            (Some(b), Some(a)) if self.op == Op::Update => self.schema.key.iter().any(|&i| {
                // A key column left out of the after image (minimal images) is unchanged.
                matches!((b.get(i), a.get(i)), (Some(Some(x)), Some(Some(y))) if x != y)
            }),
            _ => false,
        }
    }
}
