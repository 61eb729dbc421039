//! The topology otter keeps in ZooKeeper: pipelines, their desired state, their last
//! error, and the registered service instances. Layout and JSON schemas:
//! `schemas/zookeeper/README.md`.
//!
//! ```text
//! <root>/pipelines/<name>                     pipeline definition   (persistent)
//! <root>/pipelines/<name>/state               desired state         (persistent)
//! <root>/pipelines/<name>/error               last error            (persistent)
//! <root>/pipelines/<name>/capture/position    capture position      (persistent, CAS)
//! <root>/pipelines/<name>/capture/election/*  capture contenders    (ephemeral sequential)
//! <root>/nodes/<instance>                     a running service     (ephemeral)
//! ```
//!
//! Invariants:
//! - A definition never holds a secret: URLs carrying a password are refused, and
//!   credentials are references (`password_env`, `password_file`) that each process
//!   resolves on its own machine.
//! - Definition and state changes are compare-and-set on the version the writer read,
//!   so two operators editing at once cannot silently overwrite each other.
//! - A pipeline's nodes are created together (one multi-op) and deleted leaves first.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use zookeeper_client::{Error as ZkError, Stat};

use crate::zk::Zk;
use crate::CoordError;

pub type Section = Map<String, Value>;

pub const PIPELINES: &str = "/pipelines";
pub const NODES: &str = "/nodes";

pub fn pipeline_path(name: &str) -> String {
    format!("{PIPELINES}/{name}")
}
pub fn state_path(name: &str) -> String {
    format!("{PIPELINES}/{name}/state")
}
pub fn error_path(name: &str) -> String {
    format!("{PIPELINES}/{name}/error")
}
pub fn election_path(name: &str) -> String {
    format!("{PIPELINES}/{name}/capture/election")
}
pub fn node_path(instance: &str) -> String {
    format!("{NODES}/{instance}")
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A pipeline definition: what to replicate from where to where. The `source`,
/// `target`, `kafka`, `tables`, `capture`, `apply` sections and `map` rules are the
/// same keys as the services' configuration files (each service checks its own
/// sections, unknown keys included); this type checks what they share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// Pipeline id, `[A-Za-z0-9_-]+`.
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Capture's `[source]` plus `password_env` / `password_file`.
    pub source: Section,
    /// Apply's `[target]` plus `password_env` / `password_file`.
    pub target: Section,
    /// `brokers` and `topic_prefix`, shared by both services.
    pub kafka: Section,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub tables: Section,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub map: Vec<Value>,
    /// Capture tuning; its `kafka` table holds producer settings (partitions, ...).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub capture: Section,
    /// Apply tuning plus `dry_run`; its `kafka` table holds consumer settings.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub apply: Section,
}

/// Keys of a `source`/`target` section that reference its password.
pub const PASSWORD_KEYS: [&str; 2] = ["password_env", "password_file"];

impl PipelineSpec {
    /// Parses a definition from JSON (as stored) and checks it.
    pub fn from_json(data: &[u8], path: &str) -> Result<PipelineSpec, CoordError> {
        serde_json::from_slice(data).map_err(|source| CoordError::BadData {
            path: path.to_owned(),
            what: "pipeline definition",
            source,
        })
    }

    /// Problems with what the services share; each names its field.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !otter_core::config::is_name(&self.name, b"-") {
            p.push(format!(
                "name: `{}` must be non-empty [A-Za-z0-9_-]",
                self.name
            ));
        }
        for (field, section) in [("source", &self.source), ("target", &self.target)] {
            match section.get("url") {
                Some(Value::String(url)) => {
                    if url_has_password(url) {
                        p.push(format!("{field}.url: contains a password; definitions are stored in ZooKeeper and must not hold secrets: use {field}.password_env or {field}.password_file"));
                    }
                }
                _ => p.push(format!("{field}.url: missing (a mysql:// URL)")),
            }
            let refs: Vec<_> = PASSWORD_KEYS
                .iter()
                .filter(|k| section.contains_key(**k))
                .collect();
            match refs.len() {
                0 => p.push(no_credentials(field)),
                1 => {
                    if !matches!(section.get(*refs[0]), Some(Value::String(s)) if !s.is_empty()) {
                        p.push(format!("{field}.{}: must be a non-empty string", refs[0]));
                    }
                }
                _ => p.push(format!(
                    "{field}: set only one of password_env and password_file"
                )),
            }
        }
        for key in ["brokers", "topic_prefix"] {
            if !matches!(self.kafka.get(key), Some(Value::String(s)) if !s.is_empty()) {
                p.push(format!("kafka.{key}: missing (a non-empty string)"));
            }
        }
        for key in self.kafka.keys() {
            if key != "brokers" && key != "topic_prefix" {
                p.push(format!("kafka.{key}: unknown key (producer settings go in [capture.kafka], consumer settings in [apply.kafka])"));
            }
        }
        p
    }

    /// The password `section` (`"source"` or `"target"`) references, read from this
    /// machine's environment or file system.
    pub fn password(&self, section: &str) -> Result<String, String> {
        let s = if section == "source" {
            &self.source
        } else {
            &self.target
        };
        if let Some(Value::String(var)) = s.get("password_env") {
            return std::env::var(var).map_err(|_| {
                format!(
                    "{section}.password_env: environment variable {var} is not set on this machine"
                )
            });
        }
        if let Some(Value::String(file)) = s.get("password_file") {
            return std::fs::read_to_string(file)
                .map(|t| t.lines().next().unwrap_or_default().to_owned())
                .map_err(|e| format!("{section}.password_file: cannot read {file}: {e}"));
        }
        Err(no_credentials(section))
    }

    /// `section` without its password references, for the service's own parser.
    pub fn without_credentials(section: &Section) -> Section {
        let mut s = section.clone();
        for k in PASSWORD_KEYS {
            s.remove(k);
        }
        s
    }
}

fn no_credentials(field: &str) -> String {
    format!("{field}: no credentials: set {field}.password_env (an environment variable) or {field}.password_file (a file) on the machines that run the services")
}

fn url_has_password(url: &str) -> bool {
    let Some(rest) = url.split_once("://").map(|(_, r)| r) else {
        return false;
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

/// What the operator wants a pipeline to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Desired {
    /// Capture publishes, apply applies.
    Running,
    /// Both stop at a committed position and wait; `resume` continues from it.
    Paused,
    /// Like paused; the capture position may be changed (`otterctl position set`).
    Stopped,
}

impl Desired {
    pub fn as_str(self) -> &'static str {
        match self {
            Desired::Running => "running",
            Desired::Paused => "paused",
            Desired::Stopped => "stopped",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateNode {
    pub desired: Desired,
    pub updated_ms: i64,
    /// Who asked (`otterctl@host`).
    #[serde(default)]
    pub by: String,
}

/// The last error a service reported for a pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LastError {
    pub service: String,
    pub instance: String,
    /// Stable error code (e.g. `source_connect`, `fenced`).
    pub code: String,
    /// `transient` (being retried) or `permanent` (the service stopped that work).
    pub class: String,
    pub message: String,
    pub at_ms: i64,
}

/// A running service process, as registered under `/nodes` (ephemeral: it disappears
/// with the process's ZooKeeper session).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    pub instance: String,
    /// `capture` or `apply`.
    pub service: String,
    pub pipeline: String,
    pub host: String,
    pub pid: u32,
    pub started_ms: i64,
    pub version: String,
    /// What it is doing: `active`, `standby`, `applying`, `paused`, `waiting: ...`.
    #[serde(default)]
    pub status: String,
    /// Apply: the partitions it holds, `topic[partition]`.
    #[serde(default)]
    pub partitions: Vec<String>,
    /// Changes published (capture) or applied (apply) since the process started.
    #[serde(default)]
    pub total: u64,
    /// Changes per second over the last report interval.
    #[serde(default)]
    pub rate: f64,
    #[serde(default)]
    pub updated_ms: i64,
    /// `host:port` of its /metrics, /healthz and /readyz endpoint.
    #[serde(default)]
    pub metrics: String,
    /// Apply: records in its partitions not yet applied (consumer lag).
    #[serde(default)]
    pub backlog: i64,
    /// Apply: the longest any of its partitions has had records waiting without a
    /// commit, seconds (the stuck detector; 0 = caught up or moving).
    #[serde(default)]
    pub stalled_seconds: f64,
    /// Apply: end-to-end lag from heartbeats, seconds by the source's clock; absent
    /// until a heartbeat was applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<f64>,
}

impl Instance {
    pub fn new(instance: &str, service: &str, pipeline: &str) -> Instance {
        Instance {
            instance: instance.to_owned(),
            service: service.to_owned(),
            pipeline: pipeline.to_owned(),
            host: hostname(),
            pid: std::process::id(),
            started_ms: now_ms(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            status: "starting".into(),
            partitions: Vec::new(),
            total: 0,
            rate: 0.0,
            updated_ms: now_ms(),
            metrics: String::new(),
            backlog: 0,
            stalled_seconds: 0.0,
            lag_seconds: None,
        }
    }
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// A default instance id: `<service>-<host>-<pid>`.
pub fn default_instance(service: &str) -> String {
    format!("{service}-{}-{}", hostname(), std::process::id())
}

fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    // Plain structs of strings and numbers always serialize.
    serde_json::to_vec(v).unwrap_or_default()
}

fn parse<T: serde::de::DeserializeOwned>(
    data: &[u8],
    path: &str,
    what: &'static str,
) -> Result<T, CoordError> {
    serde_json::from_slice(data).map_err(|source| CoordError::BadData {
        path: path.to_owned(),
        what,
        source,
    })
}

/// Reads and writes the topology. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Topology {
    pub zk: Zk,
}

impl Topology {
    pub fn new(zk: Zk) -> Topology {
        Topology { zk }
    }

    fn client(&self) -> &zookeeper_client::Client {
        &self.zk.client
    }

    async fn get(&self, path: &str) -> Result<Option<(Vec<u8>, Stat)>, CoordError> {
        match self.client().get_data(path).await {
            Ok(r) => Ok(Some(r)),
            Err(ZkError::NoNode) => Ok(None),
            Err(e) => Err(CoordError::zk(path, e)),
        }
    }

    /// Creates `path` (and its parents) unless it exists.
    async fn ensure(&self, path: &str) -> Result<(), CoordError> {
        match self.client().mkdir(path, &self.zk.persistent()).await {
            Ok(()) | Err(ZkError::NodeExists) => Ok(()),
            Err(e) => Err(CoordError::zk(path, e)),
        }
    }

    /// Creates a pipeline with its state node and sub-folders in one transaction.
    pub async fn create_pipeline(
        &self,
        spec: &PipelineSpec,
        desired: Desired,
        by: &str,
    ) -> Result<(), CoordError> {
        self.ensure(PIPELINES).await?;
        let opts = self.zk.persistent();
        let name = &spec.name;
        let base = pipeline_path(name);
        let state = StateNode {
            desired,
            updated_ms: now_ms(),
            by: by.to_owned(),
        };
        let capture = format!("{base}/capture");
        let election = election_path(name);
        let mut w = self.client().new_multi_writer();
        let add = |w: &mut zookeeper_client::MultiWriter<'_>, path: &str, data: &[u8]| {
            w.add_create(path, data, &opts)
                .map_err(|e| CoordError::zk(path, e))
        };
        add(&mut w, &base, &to_json(spec))?;
        add(&mut w, &state_path(name), &to_json(&state))?;
        add(&mut w, &capture, b"")?;
        add(&mut w, &election, b"")?;
        match w.commit().await {
            Ok(_) => Ok(()),
            Err(zookeeper_client::MultiWriteError::OperationFailed {
                source: ZkError::NodeExists,
                ..
            }) => Err(CoordError::Refused(format!(
                "pipeline {name} already exists (otterctl pipeline edit changes it)"
            ))),
            Err(e) => Err(CoordError::Refused(format!(
                "cannot create pipeline {name}: {e}"
            ))),
        }
    }

    /// The definition and its znode version (for [`Topology::replace_pipeline`]).
    pub async fn pipeline(&self, name: &str) -> Result<Option<(PipelineSpec, i32)>, CoordError> {
        let path = pipeline_path(name);
        match self.get(&path).await? {
            // A standalone capture's position alone creates an empty pipeline node.
            Some((data, _)) if data.is_empty() => Ok(None),
            Some((data, stat)) => Ok(Some((PipelineSpec::from_json(&data, &path)?, stat.version))),
            None => Ok(None),
        }
    }

    /// Replaces the definition if it is still at `version`.
    pub async fn replace_pipeline(
        &self,
        spec: &PipelineSpec,
        version: i32,
    ) -> Result<(), CoordError> {
        let path = pipeline_path(&spec.name);
        match self
            .client()
            .set_data(&path, &to_json(spec), Some(version))
            .await
        {
            Ok(_) => Ok(()),
            Err(ZkError::BadVersion) => Err(CoordError::Conflict {
                path,
                expected: version,
            }),
            Err(ZkError::NoNode) => Err(CoordError::Missing {
                what: "pipeline",
                name: spec.name.clone(),
            }),
            Err(e) => Err(CoordError::zk(&path, e)),
        }
    }

    /// Names of the defined pipelines (nodes holding only a standalone capture's
    /// position are not pipelines), sorted.
    pub async fn pipelines(&self) -> Result<Vec<String>, CoordError> {
        let mut names = match self.client().list_children(PIPELINES).await {
            Ok(v) => v,
            Err(ZkError::NoNode) => return Ok(Vec::new()),
            Err(e) => return Err(CoordError::zk(PIPELINES, e)),
        };
        names.sort();
        let mut out = Vec::new();
        for n in names {
            if matches!(self.get(&pipeline_path(&n)).await?, Some((d, _)) if !d.is_empty()) {
                out.push(n);
            }
        }
        Ok(out)
    }

    pub async fn state(&self, name: &str) -> Result<Option<StateNode>, CoordError> {
        let path = state_path(name);
        self.get(&path)
            .await?
            .map(|(d, _)| parse(&d, &path, "pipeline state"))
            .transpose()
    }

    /// Sets the desired state; returns the previous one.
    pub async fn set_state(
        &self,
        name: &str,
        desired: Desired,
        by: &str,
    ) -> Result<Desired, CoordError> {
        let path = state_path(name);
        let Some((data, stat)) = self.get(&path).await? else {
            return Err(CoordError::Missing {
                what: "pipeline",
                name: name.to_owned(),
            });
        };
        let old: StateNode = parse(&data, &path, "pipeline state")?;
        let new = StateNode {
            desired,
            updated_ms: now_ms(),
            by: by.to_owned(),
        };
        match self
            .client()
            .set_data(&path, &to_json(&new), Some(stat.version))
            .await
        {
            Ok(_) => Ok(old.desired),
            Err(ZkError::BadVersion) => Err(CoordError::Conflict {
                path,
                expected: stat.version,
            }),
            Err(e) => Err(CoordError::zk(&path, e)),
        }
    }

    pub async fn last_error(&self, name: &str) -> Result<Option<LastError>, CoordError> {
        let path = error_path(name);
        match self.get(&path).await? {
            Some((d, _)) if !d.is_empty() => parse(&d, &path, "last error").map(Some),
            _ => Ok(None),
        }
    }

    /// Records `err` as the pipeline's last error (only while the pipeline exists).
    pub async fn report_error(&self, pipeline: &str, err: &LastError) -> Result<(), CoordError> {
        let path = error_path(pipeline);
        let data = to_json(err);
        match self.client().set_data(&path, &data, None).await {
            Ok(_) => Ok(()),
            Err(ZkError::NoNode) => {
                match self
                    .client()
                    .create(&path, &data, &self.zk.persistent())
                    .await
                {
                    // The pipeline itself is gone: nothing to report on.
                    Ok(_) | Err(ZkError::NoNode) => Ok(()),
                    Err(ZkError::NodeExists) => self
                        .client()
                        .set_data(&path, &data, None)
                        .await
                        .map(drop)
                        .map_err(|e| CoordError::zk(&path, e)),
                    Err(e) => Err(CoordError::zk(&path, e)),
                }
            }
            Err(e) => Err(CoordError::zk(&path, e)),
        }
    }

    pub async fn clear_error(&self, pipeline: &str) -> Result<(), CoordError> {
        let path = error_path(pipeline);
        match self.client().delete(&path, None).await {
            Ok(()) | Err(ZkError::NoNode) => Ok(()),
            Err(e) => Err(CoordError::zk(&path, e)),
        }
    }

    /// Deletes a pipeline and everything under it, leaves first. Ephemeral nodes of
    /// live services are deleted too; those services notice the definition is gone.
    pub async fn delete_pipeline(&self, name: &str) -> Result<(), CoordError> {
        let base = pipeline_path(name);
        if self.get(&base).await?.is_none() {
            return Err(CoordError::Missing {
                what: "pipeline",
                name: name.to_owned(),
            });
        }
        // A contender may create a node while the tree is being removed: retry.
        for _ in 0..10 {
            match self.delete_tree(&base).await {
                Ok(()) => return Ok(()),
                Err(CoordError::Zk {
                    source: ZkError::NotEmpty,
                    ..
                }) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
                Err(e) => return Err(e),
            }
        }
        Err(CoordError::Refused(format!(
            "pipeline {name}: nodes kept appearing under {base} while deleting; stop its services and retry"
        )))
    }

    async fn delete_tree(&self, root: &str) -> Result<(), CoordError> {
        // Depth-first listing, then deletion deepest first.
        let mut order = vec![root.to_owned()];
        let mut i = 0;
        while i < order.len() {
            let path = order[i].clone();
            match self.client().list_children(&path).await {
                Ok(children) => order.extend(children.into_iter().map(|c| format!("{path}/{c}"))),
                Err(ZkError::NoNode) => {}
                Err(e) => return Err(CoordError::zk(&path, e)),
            }
            i += 1;
        }
        for path in order.iter().rev() {
            match self.client().delete(path, None).await {
                Ok(()) | Err(ZkError::NoNode) => {}
                Err(e) => return Err(CoordError::zk(path, e)),
            }
        }
        Ok(())
    }

    /// Registered instances, all or of one pipeline, sorted by id.
    pub async fn instances(&self, pipeline: Option<&str>) -> Result<Vec<Instance>, CoordError> {
        let children = match self.client().list_children(NODES).await {
            Ok(c) => c,
            Err(ZkError::NoNode) => return Ok(Vec::new()),
            Err(e) => return Err(CoordError::zk(NODES, e)),
        };
        let mut out = Vec::new();
        for c in children {
            let path = node_path(&c);
            if let Some((data, _)) = self.get(&path).await? {
                let i: Instance = parse(&data, &path, "instance")?;
                if pipeline.is_none_or(|p| p == i.pipeline) {
                    out.push(i);
                }
            }
        }
        out.sort_by(|a, b| a.instance.cmp(&b.instance));
        Ok(out)
    }

    /// Capture contenders of a pipeline in election order: the first is active, the
    /// others standbys. Each entry is the contender's instance id.
    pub async fn contenders(&self, pipeline: &str) -> Result<Vec<String>, CoordError> {
        let dir = election_path(pipeline);
        let mut children = match self.client().list_children(&dir).await {
            Ok(c) => c,
            Err(ZkError::NoNode) => return Ok(Vec::new()),
            Err(e) => return Err(CoordError::zk(&dir, e)),
        };
        children.sort_by_key(|c| sequence_of(c));
        let mut out = Vec::new();
        for c in children {
            let path = format!("{dir}/{c}");
            if let Some((data, _)) = self.get(&path).await? {
                out.push(String::from_utf8_lossy(&data).into_owned());
            }
        }
        Ok(out)
    }

    /// Registers (or re-registers) `instance` as an ephemeral node of this session.
    pub async fn register(&self, instance: &Instance) -> Result<(), CoordError> {
        self.ensure(NODES).await?;
        let path = node_path(&instance.instance);
        match self
            .client()
            .create(&path, &to_json(instance), &self.zk.ephemeral())
            .await
        {
            Ok(_) => Ok(()),
            Err(ZkError::NodeExists) => Err(CoordError::Refused(format!(
                "instance id {} is already registered at {path} by a live process; give each process its own --instance",
                instance.instance
            ))),
            Err(e) => Err(CoordError::zk(&path, e)),
        }
    }

    /// Updates this process's registration.
    pub async fn update_instance(&self, instance: &Instance) -> Result<(), CoordError> {
        let path = node_path(&instance.instance);
        self.client()
            .set_data(&path, &to_json(instance), None)
            .await
            .map(drop)
            .map_err(|e| CoordError::zk(&path, e))
    }
}

/// The ephemeral sequence number at the end of a contender node's name.
pub fn sequence_of(name: &str) -> i64 {
    let digits = name.len() - name.bytes().rev().take_while(u8::is_ascii_digit).count();
    name[digits..].parse().unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> PipelineSpec {
        let v: Value = toml::from_str(text).expect("toml");
        serde_json::from_value(v).expect("spec")
    }

    const OK: &str = r#"
name = "orders"
[source]
url = "mysql://otter@127.0.0.1:3307"
password_env = "SRC_PW"
server_id = 7
[target]
url = "mysql://otter@127.0.0.1:3308"
password_file = "/etc/otter/target.pw"
[kafka]
brokers = "127.0.0.1:9092"
topic_prefix = "otter.orders"
"#;

    #[test]
    fn a_complete_definition_has_no_problems() {
        assert_eq!(spec(OK).problems(), Vec::<String>::new());
    }

    #[test]
    fn secrets_in_clear_and_missing_credentials_are_refused_by_field() {
        let s = spec(
            &OK.replace("otter@127.0.0.1:3307", "otter:secret@127.0.0.1:3307")
                .replace("password_file = \"/etc/otter/target.pw\"\n", ""),
        );
        let p = s.problems();
        assert_eq!(p.len(), 2, "{p:#?}");
        assert!(p[0].starts_with("source.url: contains a password"), "{p:?}");
        assert!(p[1].starts_with("target: no credentials"), "{p:?}");
    }

    #[test]
    fn url_passwords_are_found_only_in_the_authority() {
        assert!(url_has_password("mysql://u:p@h:1/db"));
        assert!(!url_has_password("mysql://u@h:1/db?x=a:b@c"));
        assert!(!url_has_password("mysql://h:1"));
    }

    #[test]
    fn contenders_sort_by_sequence_not_by_name() {
        let mut v = ["_c_b-latch-0000000010", "_c_a-latch-0000000002"];
        v.sort_by_key(|c| sequence_of(c));
        assert_eq!(v[0], "_c_a-latch-0000000002");
    }
}
