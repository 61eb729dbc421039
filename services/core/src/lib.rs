//! The vocabulary shared by every otter service: what a row change is, how a source
//! position is written, and how both travel over Kafka.
//!
//! This crate is pure: no sockets, no runtime, no clients. Capture turns binlog bytes
//! into [`event::ChangeEvent`]s, [`codec`] turns them into Kafka records and back, and
//! apply turns them into target statements. No other row type crosses a crate boundary.

pub mod chunk;
pub mod codec;
pub mod config;
pub mod ddl;
pub mod error;
pub mod event;
pub mod heartbeat;
pub mod position;
pub mod shape;
pub mod topic;
pub mod url;
pub mod value;

pub use error::ErrorClass;
pub use event::{ChangeEvent, Column, Op, Row, SchemaChange, TableId, TableSchema, TxnMark};
pub use position::{GtidSet, SourcePos};
pub use value::{ColumnKind, Value};
