//! ZooKeeper code both services need: the capture position store (and, as the control
//! plane grows, topology and leader election).
//!
//! Invariant: every write that matters is a compare-and-set on the znode version the
//! writer last saw, so a process that lost track of the node (a deposed capture, a
//! stale restart) fails with [`CoordError::Conflict`] instead of overwriting newer state.

pub mod error;
pub mod position;

pub use error::CoordError;
pub use position::{CapturePosition, PositionStore, TableVersion};

use std::time::Duration;

/// Connects to `connect` (`host:port[,host:port]`) and scopes the client to `root`,
/// creating the root if needed.
pub async fn connect(
    connect: &str,
    root: &str,
    session_timeout: Duration,
) -> Result<zookeeper_client::Client, CoordError> {
    let client = zookeeper_client::Client::connector()
        .with_session_timeout(session_timeout)
        .with_connection_timeout(Duration::from_secs(5))
        .connect(connect)
        .await
        .map_err(|source| CoordError::Connect {
            connect: connect.to_owned(),
            source,
        })?;
    if root != "/" && !root.is_empty() {
        let opts = zookeeper_client::CreateMode::Persistent
            .with_acls(zookeeper_client::Acls::anyone_all());
        match client.mkdir(root, &opts).await {
            Ok(()) | Err(zookeeper_client::Error::NodeExists) => {}
            Err(source) => {
                return Err(CoordError::Zk {
                    path: root.to_owned(),
                    source,
                })
            }
        }
        return client
            .chroot(root.to_owned())
            .map_err(|_| CoordError::BadRoot(root.to_owned()));
    }
    Ok(client)
}
