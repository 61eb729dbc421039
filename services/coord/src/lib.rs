//! ZooKeeper code shared by the services and `otterctl`: connecting ([`zk`]), the
//! topology ([`topology`]: pipelines, desired state, registrations, last error), capture
//! leader election with its fencing lease ([`election`]), a service's watch on its
//! pipeline ([`control`]) and the capture position store ([`position`]).
//!
//! Invariant: every write that matters is a compare-and-set on the znode version the
//! writer last saw, so a process that lost track of the node (a deposed capture, a
//! stale restart) fails with [`CoordError::Conflict`] instead of overwriting newer state.

pub mod control;
pub mod election;
pub mod error;
pub mod position;
pub mod schema;
pub mod topology;
pub mod zk;

pub use error::CoordError;
pub use position::{CapturePosition, PositionStore, TableVersion};
pub use schema::SchemaStore;
pub use zk::{Zk, ZkSettings};

use std::time::Duration;

/// Connects to `connect` (`host:port[,host:port]`) with open ACLs, scoped to `root`
/// (created if needed). Services with a control plane use [`Zk::connect`].
pub async fn connect(
    connect: &str,
    root: &str,
    session_timeout: Duration,
) -> Result<Zk, CoordError> {
    Zk::connect(&ZkSettings::new(connect, root, session_timeout)).await
}
