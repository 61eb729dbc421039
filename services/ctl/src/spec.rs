//! Reading and checking pipeline definition files (TOML or YAML).
//!
//! Invariant: a definition reaches ZooKeeper only after every check passed: the shared
//! fields ([`PipelineSpec::problems`]), each service's own sections (capture's and
//! apply's `Config::from_spec`, unknown keys included), the credentials as resolvable
//! here, and, unless skipped, a connection to the source (with its replication
//! settings checked) and to the target. All problems are listed at once.

use std::path::Path;
use std::time::Duration;

use otter_coord::topology::PipelineSpec;
use serde_json::Value;

use crate::Failure;

const KNOWN: [&str; 9] = [
    "name",
    "description",
    "source",
    "target",
    "kafka",
    "tables",
    "map",
    "capture",
    "apply",
];

/// Parses a definition file: YAML for `.yaml`/`.yml`, TOML otherwise.
pub fn read(path: &Path) -> Result<Value, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::refused(format!("cannot read {}: {e}", path.display())))?;
    parse(&text, path)
}

pub fn parse(text: &str, path: &Path) -> Result<Value, Failure> {
    let yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
    if yaml {
        serde_yaml_ng::from_str(text)
            .map_err(|e| Failure::refused(format!("{} is not valid YAML: {e}", path.display())))
    } else {
        toml::from_str(text)
            .map_err(|e| Failure::refused(format!("{} is not valid TOML: {e}", path.display())))
    }
}

/// Checks a parsed definition; `reach` also connects to the source and target.
pub async fn check(
    value: Value,
    zk: &otter_coord::ZkSettings,
    reach: bool,
) -> Result<PipelineSpec, Vec<String>> {
    let Value::Object(mut map) = value else {
        return Err(vec!["the definition must be a table of settings".into()]);
    };
    let mut problems = Vec::new();
    let unknown: Vec<String> = map
        .keys()
        .filter(|k| !KNOWN.contains(&k.as_str()))
        .cloned()
        .collect();
    for k in unknown {
        problems.push(format!("{k}: unknown key (known: {})", KNOWN.join(", ")));
        map.remove(&k);
    }
    let spec: PipelineSpec = match serde_json::from_value(Value::Object(map)) {
        Ok(s) => s,
        Err(e) => {
            problems.push(e.to_string());
            return Err(problems);
        }
    };
    problems.extend(spec.problems());
    // Unknown keys of the shared [kafka] table are named once, by the shared check.
    let kafka_flagged = problems
        .iter()
        .any(|p| p.starts_with("kafka.") && p.contains("unknown key"));
    let zk_cfg = otter_capture::config::ZkConfig {
        connect: zk.connect.clone(),
        root: zk.root.clone(),
        session_timeout_ms: zk.session_timeout.as_millis() as u64,
    };
    let capture = otter_capture::config::Config::from_spec(&spec, zk_cfg);
    let apply = otter_apply::config::Config::from_spec(&spec);
    for err in [capture.as_ref().err(), apply.as_ref().err()]
        .into_iter()
        .flatten()
    {
        match err {
            otter_core::config::ConfigError::Invalid(list) => {
                for p in list {
                    // The shared checks already named these with the definition's words.
                    let shared = p.starts_with("pipeline:")
                        || p.starts_with("kafka.brokers")
                        || p.starts_with("kafka.topic_prefix:")
                        || (p.starts_with("kafka (with") && kafka_flagged);
                    if !shared && !problems.contains(p) {
                        problems.push(p.clone());
                    }
                }
            }
            other => problems.push(otter_core::error::chain(other)),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    if reach {
        if let (Ok(c), Ok(a)) = (&capture, &apply) {
            problems.extend(reachable(c, a).await);
        }
    }
    if problems.is_empty() {
        Ok(spec)
    } else {
        Err(problems)
    }
}

/// Connects to the source (checking its replication settings) and the target.
async fn reachable(
    capture: &otter_capture::config::Config,
    apply: &otter_apply::config::Config,
) -> Vec<String> {
    let mut p = Vec::new();
    let timeout = Duration::from_millis(capture.source.connect_timeout_ms);
    match otter_capture::source::Source::new(&capture.source.url, timeout) {
        Ok(source) => {
            if let Err(e) = source.check().await {
                p.push(format!("source.url: {}", otter_core::error::chain(&e)));
            }
        }
        Err(e) => p.push(format!("source.url: {}", otter_core::error::chain(&e))),
    }
    let t = &apply.target;
    match otter_apply::target::Target::new(
        &t.url,
        &apply.pipeline,
        &t.state_db,
        1,
        Duration::from_millis(t.connect_timeout_ms),
    ) {
        Ok(target) => {
            match target.conn().await {
                Ok(conn) => drop(conn),
                Err(e) => p.push(format!("target.url: {}", otter_core::error::chain(&e))),
            }
            target.disconnect().await;
        }
        Err(e) => p.push(format!("target.url: {}", otter_core::error::chain(&e))),
    }
    p
}

/// The definition as TOML for `show` and `edit` (JSON when TOML cannot hold it).
pub fn render(spec: &PipelineSpec) -> String {
    toml::to_string_pretty(spec)
        .unwrap_or_else(|_| serde_json::to_string_pretty(spec).unwrap_or_default())
}
