//! otter-apply: consumes a pipeline's per-table topics and applies the row changes to a
//! MySQL/MariaDB target, exactly once.
//!
//! Flow: [`consume`] reads the topics as a consumer group and hands each assigned
//! partition's records to its own worker ([`worker`]); a worker decodes a batch, drops
//! what the target already has, merges it ([`merge`]), turns it into statements
//! ([`sql`]) and commits them together with the partition's position ([`target`]).
//! [`managed`] runs it under the control plane (definition and state from ZooKeeper).

pub mod config;
pub mod consume;
pub mod error;
pub mod lag;
pub mod managed;
pub mod mapping;
pub mod merge;
pub mod metrics;
pub mod run;
pub mod sql;
pub mod target;
#[cfg(test)]
mod testing;
pub mod verify;
pub mod worker;
