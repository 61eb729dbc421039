//! Capture's schema history in ZooKeeper: the shape of each captured table at each of
//! its schema versions, so a capture resuming at a stored position decodes the rows
//! after it with the shapes they were written with, whatever DDL came since.
//!
//! Layout: `/pipelines/<p>/capture/schema/<n>` holds `{"db","table"}` (`n` is the
//! table's escaped name), `…/<n>/<version>` the table's shape at that version.
//!
//! Invariants:
//! - A shape is written before any position whose schema versions refer to it
//!   ([`SchemaStore::save`] is called by the position writer first), so a stored
//!   position never names a version the history lacks, except for tables whose shape
//!   capture never knew.
//! - A fresh start (no stored position) clears the history and seeds it anew: version
//!   numbers start again with the positions.

use std::collections::HashMap;

use otter_core::shape::TableShape;
use otter_core::TableId;
use serde::{Deserialize, Serialize};

use crate::{CoordError, Zk};

#[derive(Serialize, Deserialize)]
struct Name {
    db: String,
    table: String,
}

/// The error of a ZooKeeper call on `path`.
fn zk(path: &str) -> impl FnOnce(zookeeper_client::Error) -> CoordError {
    let path = path.to_owned();
    move |source| CoordError::Zk { path, source }
}

pub struct SchemaStore {
    zk: Zk,
    root: String,
}

impl SchemaStore {
    pub fn path_for(pipeline: &str) -> String {
        format!("/pipelines/{pipeline}/capture/schema")
    }

    pub fn new(zk: Zk, pipeline: &str) -> SchemaStore {
        SchemaStore {
            zk,
            root: Self::path_for(pipeline),
        }
    }

    fn node(&self, table: &TableId) -> String {
        // Kafka's topic alphabet is also safe for znode names; escaped, so distinct.
        let n = otter_core::topic::topic_for("t", table);
        format!("{}/{}", self.root, &n[2..])
    }

    /// Stores `shape` as `table`'s shape at `version`.
    pub async fn save(
        &self,
        table: &TableId,
        version: u32,
        shape: &TableShape,
    ) -> Result<(), CoordError> {
        let node = self.node(table);
        let bad = |path: &str| {
            let path = path.to_owned();
            move |source| CoordError::BadData {
                path,
                what: "table shape",
                source,
            }
        };
        let opts = self.zk.persistent();
        let name = serde_json::to_vec(&Name {
            db: table.db.clone(),
            table: table.table.clone(),
        })
        .map_err(bad(&node))?;
        match self.zk.client.create(&node, &name, &opts).await {
            Ok(_) | Err(zookeeper_client::Error::NodeExists) => {}
            Err(zookeeper_client::Error::NoNode) => {
                self.zk
                    .client
                    .mkdir(&self.root, &opts)
                    .await
                    .map_err(zk(&self.root))?;
                match self.zk.client.create(&node, &name, &opts).await {
                    Ok(_) | Err(zookeeper_client::Error::NodeExists) => {}
                    Err(e) => return Err(zk(&node)(e)),
                }
            }
            Err(e) => return Err(zk(&node)(e)),
        }
        let path = format!("{node}/{version}");
        let data = serde_json::to_vec(shape).map_err(bad(&path))?;
        match self.zk.client.set_data(&path, &data, None).await {
            Ok(_) => Ok(()),
            Err(zookeeper_client::Error::NoNode) => {
                match self.zk.client.create(&path, &data, &opts).await {
                    Ok(_) => Ok(()),
                    Err(zookeeper_client::Error::NodeExists) => self
                        .zk
                        .client
                        .set_data(&path, &data, None)
                        .await
                        .map(|_| ())
                        .map_err(zk(&path)),
                    Err(e) => Err(zk(&path)(e)),
                }
            }
            Err(e) => Err(zk(&path)(e)),
        }
    }

    /// Removes every stored shape (a fresh start: version numbers begin again).
    pub async fn clear(&self) -> Result<(), CoordError> {
        let tables = match self.zk.client.list_children(&self.root).await {
            Ok(c) => c,
            Err(zookeeper_client::Error::NoNode) => return Ok(()),
            Err(e) => return Err(zk(&self.root)(e)),
        };
        for t in tables {
            let node = format!("{}/{t}", self.root);
            let versions = match self.zk.client.list_children(&node).await {
                Ok(c) => c,
                Err(zookeeper_client::Error::NoNode) => continue,
                Err(e) => return Err(zk(&node)(e)),
            };
            for v in versions {
                let path = format!("{node}/{v}");
                match self.zk.client.delete(&path, None).await {
                    Ok(()) | Err(zookeeper_client::Error::NoNode) => {}
                    Err(e) => return Err(zk(&path)(e)),
                }
            }
            match self.zk.client.delete(&node, None).await {
                Ok(()) | Err(zookeeper_client::Error::NoNode) => {}
                Err(e) => return Err(zk(&node)(e)),
            }
        }
        Ok(())
    }

    /// Every stored table's shape at the version `version_of` gives it; tables
    /// without a shape at that version are left out.
    pub async fn load(
        &self,
        version_of: impl Fn(&TableId) -> u32,
    ) -> Result<HashMap<TableId, TableShape>, CoordError> {
        let children = match self.zk.client.list_children(&self.root).await {
            Ok(c) => c,
            Err(zookeeper_client::Error::NoNode) => return Ok(HashMap::new()),
            Err(e) => return Err(zk(&self.root)(e)),
        };
        let mut out = HashMap::new();
        for child in children {
            let node = format!("{}/{child}", self.root);
            let (data, _) = match self.zk.client.get_data(&node).await {
                Ok(d) => d,
                Err(zookeeper_client::Error::NoNode) => continue,
                Err(e) => return Err(zk(&node)(e)),
            };
            let name: Name =
                serde_json::from_slice(&data).map_err(|source| CoordError::BadData {
                    path: node.clone(),
                    what: "table name",
                    source,
                })?;
            let table = TableId::new(name.db, name.table);
            let path = format!("{node}/{}", version_of(&table));
            let shape = match self.zk.client.get_data(&path).await {
                Ok((d, _)) => serde_json::from_slice(&d).map_err(|source| CoordError::BadData {
                    path: path.clone(),
                    what: "table shape",
                    source,
                })?,
                Err(zookeeper_client::Error::NoNode) => continue,
                Err(e) => return Err(zk(&path)(e)),
            };
            out.insert(table, shape);
        }
        Ok(out)
    }
}
