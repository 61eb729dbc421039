//! otter-capture: reads a MySQL/MariaDB binlog as a replica would and publishes each
//! committed row change to its table's Kafka topic.
//!
//! Flow: [`source`] (replica connection, raw events) -> [`binlog`] (decoding into
//! transactions of change events) -> [`records`] (wire records) -> [`publish`]
//! (producer, acknowledgements) -> [`run`] (stores the acknowledged position in
//! ZooKeeper through `otter-coord`). [`managed`] runs it under the control plane:
//! leader election, the pipeline's definition and desired state from ZooKeeper.

pub mod binlog;
pub mod config;
pub mod decode_cmd;
pub mod error;
pub mod managed;
pub mod metrics;
pub mod publish;
pub mod records;
pub mod run;
pub mod source;
