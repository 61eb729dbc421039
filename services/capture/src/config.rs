//! Configuration of one capture process: how it runs (addresses, credentials, limits).
//!
//! Every field's doc comment is its reference documentation; `config.example.toml`
//! shows them all. `Config::load` reports every problem at once, before any
//! connection is made.

use std::path::Path;

use otter_core::url::{redact_url, with_password};
use regex::Regex;
use serde::{Deserialize, Serialize};

use otter_coord::topology::PipelineSpec;
pub use otter_core::config::ConfigError;
use otter_core::config::{is_name, parse_toml, problems, read, section, split_kafka};
use serde_json::Value;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Pipeline id: names the ZooKeeper nodes and appears in metrics and logs.
    pub pipeline: String,
    pub source: SourceConfig,
    pub kafka: KafkaConfig,
    pub zookeeper: ZkConfig,
    #[serde(default)]
    pub tables: TableFilterConfig,
    #[serde(default)]
    pub capture: CaptureTuning,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// `mysql://user@host:port`. The password comes from `OTTER_SOURCE_PASSWORD`
    /// when set (a password in the URL is allowed for local use).
    pub url: String,
    /// Replica server id this capture registers with; unique among the source's
    /// replicas.
    pub server_id: u32,
    /// Where to start when ZooKeeper holds no position: `now` (the source's current
    /// end), `file:offset` (e.g. `mariadb-bin.000003:4`) or `gtid:<set>`.
    #[serde(default = "default_start")]
    pub start: String,
    /// Seconds between source heartbeats on an idle binlog stream.
    #[serde(default = "default_heartbeat_secs")]
    pub heartbeat_secs: u32,
    /// Connect timeout towards the source, milliseconds.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port]`.
    pub brokers: String,
    /// Topic names are `<topic_prefix>.<database>.<table>`.
    pub topic_prefix: String,
    /// Partitions of each table topic capture creates.
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    /// Replication factor of created topics.
    #[serde(default = "default_replication")]
    pub replication_factor: i32,
    /// The producer's `message.max.bytes`: largest request batch it builds. Records
    /// themselves are bounded by `chunk_bytes`.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: u32,
    /// Record values larger than this go out as several chunk records (header
    /// `otter-chunk`, see `schemas/v1/README.md`). Keep it under the broker's
    /// `message.max.bytes` (1 MB by default) and under 5 MiB for Tansu, whose fetch
    /// never returns a record larger than that.
    #[serde(default = "default_chunk_bytes")]
    pub chunk_bytes: u32,
    /// Producer batching delay, milliseconds.
    #[serde(default = "default_linger_ms")]
    pub linger_ms: u32,
    /// `none`, `lz4` or `zstd`.
    #[serde(default = "default_compression")]
    pub compression: String,
    /// How long the producer keeps retrying a record before it gives up, ms.
    #[serde(default = "default_delivery_timeout_ms")]
    pub delivery_timeout_ms: u32,
    /// With records in flight and no delivery report for this long, the session ends
    /// (transient) and restarts from the stored position with a new producer,
    /// milliseconds.
    #[serde(default = "default_stall_timeout_ms")]
    pub stall_timeout_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZkConfig {
    /// `host:port[,host:port]`.
    pub connect: String,
    /// Root znode of this otter installation.
    #[serde(default = "default_zk_root")]
    pub root: String,
    /// Session timeout, milliseconds.
    #[serde(default = "default_session_timeout_ms")]
    pub session_timeout_ms: u64,
}

/// Which tables are captured: `db.table` must match an include pattern (all when
/// empty) and no exclude pattern. Patterns are regular expressions matched against
/// the whole name.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableFilterConfig {
    #[serde(default)]
    pub include: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureTuning {
    /// How often the acknowledged position is written to ZooKeeper, milliseconds.
    #[serde(default = "default_position_interval_ms")]
    pub position_interval_ms: u64,
    /// Records in flight towards the broker before reading the binlog pauses.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Delay before reconnecting after a transient failure, milliseconds (doubles up
    /// to 30 s).
    #[serde(default = "default_retry_ms")]
    pub retry_ms: u64,
    /// How often capture writes its heartbeat row on the source (`otter.heartbeat`,
    /// see `otter_core::heartbeat`), from which apply measures end-to-end lag,
    /// milliseconds; 0 = never. Needs CREATE, INSERT and UPDATE on `otter.*`.
    #[serde(default = "default_heartbeat_ms")]
    pub heartbeat_ms: u64,
}

impl Default for CaptureTuning {
    fn default() -> Self {
        CaptureTuning {
            position_interval_ms: default_position_interval_ms(),
            max_in_flight: default_max_in_flight(),
            retry_ms: default_retry_ms(),
            heartbeat_ms: default_heartbeat_ms(),
        }
    }
}

fn default_start() -> String {
    "now".into()
}
fn default_heartbeat_secs() -> u32 {
    1
}
fn default_connect_timeout_ms() -> u64 {
    5_000
}
fn default_partitions() -> i32 {
    4
}
fn default_replication() -> i32 {
    1
}
fn default_max_message_bytes() -> u32 {
    8 * 1024 * 1024
}
fn default_chunk_bytes() -> u32 {
    900 * 1024
}
fn default_linger_ms() -> u32 {
    5
}
fn default_compression() -> String {
    "lz4".into()
}
fn default_stall_timeout_ms() -> u64 {
    30_000
}
fn default_delivery_timeout_ms() -> u32 {
    120_000
}
fn default_zk_root() -> String {
    "/otter".into()
}
fn default_session_timeout_ms() -> u64 {
    6_000
}
fn default_position_interval_ms() -> u64 {
    200
}
fn default_max_in_flight() -> usize {
    100_000
}
fn default_heartbeat_ms() -> u64 {
    1_000
}
fn default_retry_ms() -> u64 {
    500
}

/// Where capture starts when no position is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartAt {
    Now,
    Position(otter_core::SourcePos),
    Gtid(otter_core::GtidSet),
}

impl StartAt {
    pub fn parse(s: &str) -> Result<StartAt, String> {
        if s == "now" {
            return Ok(StartAt::Now);
        }
        if let Some(g) = s.strip_prefix("gtid:") {
            return otter_core::GtidSet::parse(g)
                .map(StartAt::Gtid)
                .map_err(|e| e.to_string());
        }
        otter_core::SourcePos::parse(s)
            .map(StartAt::Position)
            .map_err(|_| format!("`{s}` is not `now`, `file:offset` or `gtid:<set>`"))
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Self::parse(&read(path)?, &path.display().to_string())
    }

    pub fn parse(text: &str, path: &str) -> Result<Config, ConfigError> {
        let mut c: Config = parse_toml(text, path)?;
        if let Ok(pw) = std::env::var("OTTER_SOURCE_PASSWORD") {
            c.source.url = with_password(&c.source.url, &pw);
        }
        c.validate()?;
        Ok(c)
    }

    /// The configuration a managed capture runs with: the pipeline's definition (its
    /// `source`, `kafka`, `tables` and `capture` sections), the password it references
    /// as found on this machine, and this process's ZooKeeper settings. Every problem
    /// at once, named by the definition's field.
    pub fn from_spec(spec: &PipelineSpec, zookeeper: ZkConfig) -> Result<Config, ConfigError> {
        let mut p = Vec::new();
        let (kafka, tuning) = split_kafka("capture", &spec.kafka, &spec.capture, &mut p);
        let source: Option<SourceConfig> = section(
            "source",
            Value::Object(PipelineSpec::without_credentials(&spec.source)),
            &mut p,
        );
        let kafka: Option<KafkaConfig> =
            section("kafka (with capture.kafka)", Value::Object(kafka), &mut p);
        let tables: Option<TableFilterConfig> =
            section("tables", Value::Object(spec.tables.clone()), &mut p);
        let capture: Option<CaptureTuning> = section("capture", Value::Object(tuning), &mut p);
        // A missing password is reported, and the rest still checked.
        let password = spec
            .password("source")
            .map_err(|e| p.push(e))
            .unwrap_or_default();
        let (Some(mut source), Some(kafka), Some(tables), Some(capture)) =
            (source, kafka, tables, capture)
        else {
            return Err(ConfigError::Invalid(p));
        };
        source.url = with_password(&source.url, &password);
        let c = Config {
            pipeline: spec.name.clone(),
            source,
            kafka,
            zookeeper,
            tables,
            capture,
        };
        if let Err(ConfigError::Invalid(more)) = c.validate() {
            p.extend(more);
        }
        problems(p)?;
        Ok(c)
    }

    /// Returns every problem at once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut p = Vec::new();
        if !is_name(&self.pipeline, b"-") {
            p.push(format!(
                "pipeline: `{}` must be non-empty [A-Za-z0-9_-]",
                self.pipeline
            ));
        }
        if mysql_async::Opts::from_url(&self.source.url).is_err() {
            p.push("source.url: not a mysql:// URL".to_owned());
        }
        if self.source.server_id == 0 {
            p.push("source.server_id: must be non-zero".to_owned());
        }
        if let Err(e) = StartAt::parse(&self.source.start) {
            p.push(format!("source.start: {e}"));
        }
        if self.kafka.brokers.is_empty() {
            p.push("kafka.brokers: must not be empty".to_owned());
        }
        if !is_name(&self.kafka.topic_prefix, b"-.") {
            p.push(format!(
                "kafka.topic_prefix: `{}` must be non-empty [A-Za-z0-9._-]",
                self.kafka.topic_prefix
            ));
        }
        if self.kafka.partitions < 1 {
            p.push("kafka.partitions: must be at least 1".to_owned());
        }
        if !["none", "lz4", "zstd"].contains(&self.kafka.compression.as_str()) {
            p.push(format!(
                "kafka.compression: `{}` is not none, lz4 or zstd",
                self.kafka.compression
            ));
        }
        if self.kafka.max_message_bytes < 1024 * 1024 {
            p.push("kafka.max_message_bytes: must be at least 1 MiB".to_owned());
        }
        if self.kafka.chunk_bytes < 1024
            || u64::from(self.kafka.chunk_bytes) + 64 * 1024
                > u64::from(self.kafka.max_message_bytes)
        {
            p.push("kafka.chunk_bytes: must be at least 1 KiB and 64 KiB below kafka.max_message_bytes".to_owned());
        }
        if !self.zookeeper.root.starts_with('/') {
            p.push(format!(
                "zookeeper.root: `{}` must start with /",
                self.zookeeper.root
            ));
        }
        for (field, pats) in [
            ("tables.include", &self.tables.include),
            ("tables.exclude", &self.tables.exclude),
        ] {
            for pat in pats {
                if let Err(e) = Regex::new(&format!("^(?:{pat})$")) {
                    p.push(format!("{field}: `{pat}` is not a valid regex: {e}"));
                }
            }
        }
        problems(p)
    }

    /// The configuration as TOML with the password removed, for `--check-config`.
    pub fn redacted(&self) -> String {
        let mut c = self.clone();
        c.source.url = redact_url(&c.source.url);
        toml::to_string_pretty(&c).unwrap_or_else(|e| format!("(cannot print: {e})"))
    }
}

/// The filter the decoder applies, compiled once.
#[derive(Debug, Clone)]
pub struct TableFilter {
    include: Vec<Regex>,
    exclude: Vec<Regex>,
}

impl TableFilter {
    pub fn new(cfg: &TableFilterConfig) -> Result<TableFilter, regex::Error> {
        let compile = |pats: &[String]| {
            pats.iter()
                .map(|p| Regex::new(&format!("^(?:{p})$")))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(TableFilter {
            include: compile(&cfg.include)?,
            exclude: compile(&cfg.exclude)?,
        })
    }

    /// Whether `table` is captured. The heartbeat table always is.
    pub fn allows(&self, table: &otter_core::TableId) -> bool {
        if otter_core::heartbeat::is_heartbeat(table) {
            return true;
        }
        let name = format!("{}.{}", table.db, table.table);
        (self.include.is_empty() || self.include.iter().any(|r| r.is_match(&name)))
            && !self.exclude.iter().any(|r| r.is_match(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses() {
        let text = include_str!("../config.example.toml");
        let c = Config::parse(text, "config.example.toml").expect("example is valid");
        assert_eq!(c.kafka.partitions, 4);
        assert_eq!(
            StartAt::parse(&c.source.start).expect("valid"),
            StartAt::Now
        );
    }

    #[test]
    fn a_misspelt_key_is_a_clear_error() {
        let text = include_str!("../config.example.toml").replace("topic_prefix", "topic_prefx");
        let err = Config::parse(&text, "x.toml").expect_err("unknown key");
        let chain = format!(
            "{err}: {}",
            std::error::Error::source(&err)
                .map(ToString::to_string)
                .unwrap_or_default()
        );
        assert!(chain.contains("topic_prefx"), "{chain}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = include_str!("../config.example.toml")
            .replace("server_id = 1001", "server_id = 0")
            .replace("partitions = 4", "partitions = 0")
            .replace("include = []", "include = [\"(unclosed\"]");
        let Err(ConfigError::Invalid(problems)) = Config::parse(&text, "x.toml") else {
            panic!("invalid config accepted")
        };
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("tables.include")));
    }

    #[test]
    fn table_filter_matches_whole_names() {
        let f = TableFilter::new(&TableFilterConfig {
            include: vec!["shop\\..*".into()],
            exclude: vec!["shop\\.tmp_.*".into()],
        })
        .expect("valid");
        assert!(f.allows(&otter_core::TableId::new("shop", "orders")));
        assert!(!f.allows(&otter_core::TableId::new("shop", "tmp_x")));
        assert!(!f.allows(&otter_core::TableId::new("shopping", "orders")));
    }
}
