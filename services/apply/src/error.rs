//! The apply service's errors: one enum per boundary, each variant with a class (what
//! to do) and a code (a short stable name for metrics), never decided by message text.

use otter_core::{ErrorClass, SourcePos, TableId};

use crate::config::ConfigError;
use crate::mapping::MappingError;
use crate::sql::{SqlError, StmtKind};

pub use otter_core::error::chain;

/// MySQL/MariaDB server error numbers the classification depends on.
pub mod code {
    pub const CON_COUNT: u16 = 1040;
    pub const SERVER_SHUTDOWN: u16 = 1053;
    pub const LOCK_WAIT_TIMEOUT: u16 = 1205;
    pub const DEADLOCK: u16 = 1213;
    pub const OPTION_PREVENTS_STATEMENT: u16 = 1290; // read_only
    pub const QUERY_INTERRUPTED: u16 = 1317;
    pub const READ_ONLY_MODE: u16 = 1836;
    pub const CONNECTION_KILLED: u16 = 1927;
    pub const STATEMENT_TIMEOUT: u16 = 1969;
    pub const CLIENT_INTERACTION_TIMEOUT: u16 = 4031;
}

/// Errors talking to the target database.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("target refused schema change of {table}: {statement}")]
    Ddl {
        table: TableId,
        statement: String,
        #[source]
        source: mysql_async::Error,
    },
    #[error("cannot reach the target {url}")]
    Connect {
        url: String,
        #[source]
        source: mysql_async::Error,
    },
    #[error("connecting to the target {url} timed out after {ms} ms")]
    ConnectTimeout { url: String, ms: u64 },
    #[error("target setting {variable} is {actual}, needs {expected}")]
    Precondition {
        variable: &'static str,
        expected: String,
        actual: String,
    },
    #[error("{kind:?} statement on {table} failed")]
    Statement {
        table: TableId,
        kind: StmtKind,
        #[source]
        source: mysql_async::Error,
    },
    #[error("{kind:?} on {table} matched {affected} rows, expected exactly one: the target row differs from the source's before image")]
    RowMismatch {
        table: TableId,
        kind: StmtKind,
        affected: u64,
    },
    #[error("reading or writing the bookkeeping table {table} failed")]
    Bookkeeping {
        table: String,
        #[source]
        source: mysql_async::Error,
    },
    #[error("the partition's stored position moved from next offset {expected:?} to {stored:?} (another apply instance committed it)")]
    Fenced {
        expected: Option<i64>,
        stored: Option<i64>,
    },
    #[error("cannot build the key of a change to {table}")]
    Key {
        table: TableId,
        #[source]
        source: otter_core::codec::CodecError,
    },
    #[error("cannot map {0}")]
    Mapping(#[from] MappingError),
    #[error("cannot write a value of {table}")]
    Sql {
        table: TableId,
        #[source]
        source: SqlError,
    },
}

fn server_code(e: &mysql_async::Error) -> Option<u16> {
    match e {
        mysql_async::Error::Server(s) => Some(s.code),
        _ => None,
    }
}

fn driver_class(e: &mysql_async::Error, table: Option<&TableId>) -> ErrorClass {
    use code::*;
    match server_code(e) {
        None => ErrorClass::Transient, // I/O, protocol, pool: the connection, not the data
        Some(
            CON_COUNT
            | SERVER_SHUTDOWN
            | LOCK_WAIT_TIMEOUT
            | DEADLOCK
            | OPTION_PREVENTS_STATEMENT
            | QUERY_INTERRUPTED
            | READ_ONLY_MODE
            | CONNECTION_KILLED
            | STATEMENT_TIMEOUT
            | CLIENT_INTERACTION_TIMEOUT,
        ) => ErrorClass::Transient,
        // Anything else the server refuses is about this data or this table: the
        // constraint, the missing table, the value that does not fit.
        Some(_) => match table {
            Some(t) => ErrorClass::Table(t.clone()),
            None => ErrorClass::Permanent,
        },
    }
}

impl ApplyError {
    pub fn class(&self) -> ErrorClass {
        match self {
            ApplyError::Connect { source, .. } => match server_code(source) {
                // Access denied and unknown database do not heal by waiting.
                Some(1044 | 1045 | 1049) => ErrorClass::Permanent,
                _ => ErrorClass::Transient,
            },
            ApplyError::ConnectTimeout { .. } | ApplyError::Fenced { .. } => ErrorClass::Transient,
            ApplyError::Precondition { .. } => ErrorClass::Permanent,
            ApplyError::Statement { table, source, .. } | ApplyError::Ddl { table, source, .. } => {
                driver_class(source, Some(table))
            }
            ApplyError::Bookkeeping { source, .. } => driver_class(source, None),
            ApplyError::RowMismatch { table, .. }
            | ApplyError::Sql { table, .. }
            | ApplyError::Key { table, .. } => ErrorClass::Table(table.clone()),
            ApplyError::Mapping(m) => match m.table() {
                Some(t) => ErrorClass::Table(t.clone()),
                None => ErrorClass::Permanent,
            },
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApplyError::Connect { .. } => "target_connect",
            ApplyError::ConnectTimeout { .. } => "target_connect_timeout",
            ApplyError::Precondition { .. } => "target_precondition",
            ApplyError::Statement { source, .. } => match server_code(source) {
                Some(1062) => "duplicate_key",
                Some(1146) => "unknown_table",
                Some(1054) => "unknown_column",
                Some(1048 | 1364) => "null_or_default",
                Some(1264 | 1265 | 1292 | 1366 | 1406) => "value_does_not_fit",
                Some(code::DEADLOCK) => "deadlock",
                Some(code::LOCK_WAIT_TIMEOUT) => "lock_wait_timeout",
                Some(_) => "statement_refused",
                None => "target_io",
            },
            ApplyError::RowMismatch { .. } => "row_mismatch",
            ApplyError::Bookkeeping { .. } => "bookkeeping",
            ApplyError::Fenced { .. } => "fenced",
            ApplyError::Mapping(_) => "mapping",
            ApplyError::Ddl { source, .. } => match server_code(source) {
                Some(_) => "ddl_refused",
                None => "target_io",
            },
            ApplyError::Key { .. } => "key_missing",
            ApplyError::Sql { .. } => "value_has_no_literal",
        }
    }
}

impl MappingError {
    /// The table the rule failed on; `None` for a rule that fails on every table.
    pub fn table(&self) -> Option<&TableId> {
        match self {
            MappingError::KeyExcluded { table, .. }
            | MappingError::Collision { table, .. }
            | MappingError::UnknownColumn { table, .. } => Some(table),
            MappingError::Pattern { .. } => None,
        }
    }
}

/// Where in the stream an error happened: every error a partition reports carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamPlace {
    pub topic: String,
    pub partition: i32,
    /// First and last Kafka offsets of the records concerned.
    pub offsets: (i64, i64),
    pub table: Option<TableId>,
    pub at: Option<SourcePos>,
}

impl std::fmt::Display for StreamPlace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "topic {} partition {} ", self.topic, self.partition)?;
        if self.offsets.0 == self.offsets.1 {
            write!(f, "offset {}", self.offsets.0)?;
        } else {
            write!(f, "offsets {}..={}", self.offsets.0, self.offsets.1)?;
        }
        if let Some(t) = &self.table {
            write!(f, ", table {t}")?;
        }
        if let Some(at) = &self.at {
            write!(f, ", source position {at}")?;
        }
        Ok(())
    }
}

/// A partition that cannot go on (or a record skipped by policy), with its place.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    #[error("{place}: record cannot be decoded")]
    Decode {
        place: StreamPlace,
        #[source]
        source: RecordError,
    },
    #[error("{place}: target refused the change")]
    Apply {
        place: StreamPlace,
        #[source]
        source: ApplyError,
    },
    /// A schema change apply will not run (policy `stop`, or a statement it cannot map).
    #[error("{place}: schema change not applied ({why}): {ddl}")]
    Ddl {
        place: StreamPlace,
        why: DdlStop,
        ddl: String,
    },
}

/// Why a partition stops at a schema change without trying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DdlStop {
    /// `apply.ddl = "stop"`.
    Policy,
    /// The SQL parser cannot read it and the table's names differ on the target.
    Unmappable,
}

impl std::fmt::Display for DdlStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DdlStop::Policy => "apply.ddl = \"stop\"",
            DdlStop::Unmappable => {
                "the SQL parser cannot read it, so it cannot be rewritten for the mapped target table"
            }
        })
    }
}

impl PartitionError {
    /// Whether it stopped at a schema change (whose way out is `apply.ddl_skip`).
    pub fn is_ddl(&self) -> bool {
        matches!(
            self,
            PartitionError::Ddl { .. }
                | PartitionError::Apply {
                    source: ApplyError::Ddl { .. },
                    ..
                }
        )
    }

    pub fn code(&self) -> &'static str {
        match self {
            PartitionError::Decode { source, .. } => source.code(),
            PartitionError::Apply { source, .. } => source.code(),
            PartitionError::Ddl { why, .. } => match why {
                DdlStop::Policy => "ddl_policy_stop",
                DdlStop::Unmappable => "ddl_unmappable",
            },
        }
    }
}

/// Why a Kafka record is not a change otter can apply.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("record has no value")]
    Empty,
    #[error(transparent)]
    Chunk(#[from] otter_core::chunk::ChunkError),
    #[error(transparent)]
    Codec(#[from] otter_core::codec::CodecError),
    #[error("change breaks the event model")]
    Event(#[from] otter_core::event::EventError),
}

impl RecordError {
    pub fn code(&self) -> &'static str {
        match self {
            RecordError::Empty => "record_empty",
            RecordError::Chunk(_) => "record_chunk_gap",
            RecordError::Codec(_) => "record_undecodable",
            RecordError::Event(_) => "record_invalid_event",
        }
    }
}

/// The apply service's top-level error.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error("cannot create the Kafka consumer")]
    Consumer(#[source] rdkafka::error::KafkaError),
    #[error("the consumer thread failed: {0}")]
    Thread(String),
    #[error("control plane: {0}")]
    Control(String),
}

impl ServiceError {
    pub fn class(&self) -> ErrorClass {
        match self {
            ServiceError::Config(_)
            | ServiceError::Consumer(_)
            | ServiceError::Thread(_)
            | ServiceError::Control(_) => ErrorClass::Permanent,
            ServiceError::Apply(e) => e.class(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::Config(_) => "config",
            ServiceError::Apply(e) => e.code(),
            ServiceError::Consumer(_) => "consumer",
            ServiceError::Thread(_) => "thread",
            ServiceError::Control(_) => "control",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: u16) -> mysql_async::Error {
        mysql_async::Error::Server(mysql_async::ServerError {
            code,
            message: "m".into(),
            state: "HY000".into(),
        })
    }

    #[test]
    fn target_errors_are_classified_by_server_error_number() {
        let t = TableId::new("d", "t");
        let stmt = |c| ApplyError::Statement {
            table: t.clone(),
            kind: StmtKind::Upsert,
            source: server(c),
        };
        assert_eq!(stmt(1213).class(), ErrorClass::Transient);
        assert_eq!(stmt(1205).code(), "lock_wait_timeout");
        assert_eq!(stmt(1062).class(), ErrorClass::Table(t.clone()));
        assert_eq!(stmt(1146).code(), "unknown_table");
        assert_eq!(stmt(1366).code(), "value_does_not_fit");
        let conn = |c| ApplyError::Connect {
            url: "u".into(),
            source: server(c),
        };
        assert_eq!(conn(1045).class(), ErrorClass::Permanent);
        assert_eq!(conn(1040).class(), ErrorClass::Transient);
        assert_eq!(
            ApplyError::Fenced {
                expected: Some(1),
                stored: Some(2)
            }
            .class(),
            ErrorClass::Transient
        );
    }

    #[test]
    fn a_stream_place_names_topic_partition_offsets_table_and_position() {
        let p = StreamPlace {
            topic: "otter.shop.orders".into(),
            partition: 2,
            offsets: (10, 12),
            table: Some(TableId::new("shop", "orders")),
            at: Some(SourcePos::new("mariadb-bin.000002", 1234)),
        };
        assert_eq!(
            p.to_string(),
            "topic otter.shop.orders partition 2 offsets 10..=12, table shop.orders, source position mariadb-bin.000002:1234"
        );
    }
}
