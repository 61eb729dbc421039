//! otter-capture: reads a MySQL/MariaDB binlog as a replica would and publishes each
//! committed row change to its table's Kafka topic.

pub mod binlog;
pub mod decode_cmd;
pub mod records;
