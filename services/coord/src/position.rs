//! Where a capture has published up to, per pipeline, in ZooKeeper.
//!
//! Node: `<root>/pipelines/<pipeline>/capture/position`, JSON (schema in
//! `schemas/zookeeper/capture-position.schema.json`).
//!
//! Invariants:
//! - The stored position is always just past a transaction whose every record the
//!   broker acknowledged; restarting there loses nothing.
//! - Writes are compare-and-set on the version read or written last; a writer that
//!   was overtaken gets [`CoordError::Conflict`] and must stop.

use crate::zk::Zk;
use crate::CoordError;
use serde::{Deserialize, Serialize};

/// A restart point for a capture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapturePosition {
    /// Binlog file to resume from.
    pub file: String,
    /// Offset in `file` just past the last acknowledged transaction.
    pub offset: u64,
    /// Executed GTID set at that point (empty when the source has none).
    #[serde(default)]
    pub gtids: String,
    /// `server_id` of the source that wrote the binlog.
    pub source_server_id: u32,
    /// Wall-clock time of the write, milliseconds since the epoch (informational).
    pub updated_ms: i64,
    /// When the source committed the last transaction before this position, by the
    /// source's clock, seconds since the epoch (0 = unknown). `otterctl status` compares
    /// it with the source's current time to show how far capture is behind.
    #[serde(default)]
    pub source_ts: u32,
    /// Schema versions of tables whose shape changed while captured (others are 1),
    /// so records re-published after a restart carry the same versions.
    #[serde(default)]
    pub schema_versions: Vec<TableVersion>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableVersion {
    pub db: String,
    pub table: String,
    pub version: u32,
}

pub struct PositionStore {
    zk: Zk,
    path: String,
    /// Version of the node as this process last saw it; `None` before the first read.
    version: Option<i32>,
    /// What this store last wrote successfully, and what it is writing now: after a
    /// lost connection (outcome unknown) the node must hold one of the two, or another
    /// process wrote it.
    written: Option<Vec<u8>>,
    attempted: Option<Vec<u8>>,
}

impl PositionStore {
    pub fn path_for(pipeline: &str) -> String {
        format!("/pipelines/{pipeline}/capture/position")
    }

    pub fn new(zk: Zk, pipeline: &str) -> Self {
        PositionStore {
            zk,
            path: Self::path_for(pipeline),
            version: None,
            written: None,
            attempted: None,
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    fn zk(&self) -> impl Fn(zookeeper_client::Error) -> CoordError + '_ {
        move |source| CoordError::Zk {
            path: self.path.clone(),
            source,
        }
    }

    /// Reads the stored position (and remembers its version for the next write).
    pub async fn load(&mut self) -> Result<Option<CapturePosition>, CoordError> {
        match self.zk.client.get_data(&self.path).await {
            Ok((data, stat)) => {
                self.version = Some(stat.version);
                if data.is_empty() {
                    return Ok(None);
                }
                serde_json::from_slice(&data)
                    .map(Some)
                    .map_err(|source| CoordError::BadData {
                        path: self.path.clone(),
                        what: "capture position",
                        source,
                    })
            }
            Err(zookeeper_client::Error::NoNode) => {
                self.version = None;
                Ok(None)
            }
            Err(e) => Err(self.zk()(e)),
        }
    }

    /// Stores `pos`, failing with `Conflict` if the node changed since this store's
    /// last read or write.
    pub async fn save(&mut self, pos: &CapturePosition) -> Result<(), CoordError> {
        let data = serde_json::to_vec(pos).map_err(|source| CoordError::BadData {
            path: self.path.clone(),
            what: "capture position",
            source,
        })?;
        self.attempted = Some(data.clone());
        match self.version {
            Some(v) => match self.zk.client.set_data(&self.path, &data, Some(v)).await {
                Ok(stat) => self.version = Some(stat.version),
                Err(zookeeper_client::Error::BadVersion) => {
                    return Err(CoordError::Conflict {
                        path: self.path.clone(),
                        expected: v,
                    })
                }
                Err(e) => return Err(self.zk()(e)),
            },
            None => {
                let opts = self.zk.persistent();
                if let Some((parent, _)) = self.path.rsplit_once('/') {
                    self.zk
                        .client
                        .mkdir(parent, &opts)
                        .await
                        .map_err(self.zk())?;
                }
                match self.zk.client.create(&self.path, &data, &opts).await {
                    Ok((stat, _)) => self.version = Some(stat.version),
                    Err(zookeeper_client::Error::NodeExists) => {
                        return Err(CoordError::Conflict {
                            path: self.path.clone(),
                            expected: -1,
                        })
                    }
                    Err(e) => return Err(self.zk()(e)),
                }
            }
        }
        self.written = self.attempted.take();
        Ok(())
    }

    /// After a failed [`PositionStore::save`] whose outcome is unknown (connection
    /// lost): re-reads the node and adopts its version if it holds what this store
    /// wrote or was writing; anything else means another process owns it now
    /// ([`CoordError::Conflict`]).
    pub async fn resync(&mut self) -> Result<(), CoordError> {
        let expected = self.version.unwrap_or(-1);
        match self.zk.client.get_data(&self.path).await {
            Ok((data, stat)) => {
                let ours =
                    Some(&data) == self.attempted.as_ref() || Some(&data) == self.written.as_ref();
                if !ours {
                    return Err(CoordError::Conflict {
                        path: self.path.clone(),
                        expected,
                    });
                }
                if Some(&data) == self.attempted.as_ref() {
                    self.written = self.attempted.take();
                }
                self.version = Some(stat.version);
                Ok(())
            }
            Err(zookeeper_client::Error::NoNode) if self.written.is_none() => {
                self.version = None;
                Ok(())
            }
            Err(zookeeper_client::Error::NoNode) => Err(CoordError::Conflict {
                path: self.path.clone(),
                expected,
            }),
            Err(e) => Err(self.zk()(e)),
        }
    }
}
