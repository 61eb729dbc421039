//! Configuration of one apply process: how it runs (addresses, credentials, limits) and
//! the pipeline's table mapping. A standalone process reads it from a file; a managed
//! one builds it from the pipeline's definition in ZooKeeper ([`Config::from_spec`]).
//!
//! Every field's doc comment is its reference documentation; `config.example.toml`
//! shows them all. `Config::load` reports every problem at once, before any
//! connection is made.

use std::path::Path;

use otter_core::url::{redact_url, with_password};
use serde::{Deserialize, Serialize};

use crate::mapping::{MapRule, Mapping};

use otter_coord::topology::PipelineSpec;
pub use otter_core::config::ConfigError;
use otter_core::config::{is_name, parse_toml, problems, read, section, split_kafka};
use serde_json::Value;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Pipeline id: names the consumer group and the bookkeeping rows, and appears in
    /// metrics and logs.
    pub pipeline: String,
    /// Consume, merge and print the statements to stdout instead of writing them
    /// (Otter's dryRun). Positions are read from the target but never written.
    #[serde(default)]
    pub dry_run: bool,
    /// The source (`mysql://user@host:port`), read only for its clock, to measure lag
    /// by the source's time (see `lag.rs`); password from `OTTER_SOURCE_PASSWORD`.
    /// Managed apply takes it from the pipeline's definition when the credentials
    /// resolve here. Without it, lag assumes this host's clock agrees with the source's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    pub target: TargetConfig,
    pub kafka: KafkaConfig,
    #[serde(default)]
    pub apply: ApplyTuning,
    /// Table and column mapping rules, first match wins; unmatched tables keep their
    /// names. See `mapping.rs`.
    #[serde(default)]
    pub map: Vec<MapRule>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// `mysql://user@host:port`. The password comes from `OTTER_TARGET_PASSWORD` when
    /// set (a password in the URL is allowed for local use).
    pub url: String,
    /// Database of the bookkeeping tables (`apply_position`, `apply_skipped`); created
    /// when missing. See `schemas/target/README.md`.
    #[serde(default = "default_state_db")]
    pub state_db: String,
    /// Target connections shared by all partitions of this process: at most this many
    /// batches are written at once. Each batch is a few round trips besides its rows
    /// (start, position claim, position, commit), so with many partitions a small pool
    /// is where lag queues up (over 36 partitions at 5k rows/s, 4 -> 8 halved the
    /// steady p99 and 8 -> 16 took it from ~190 to ~133 ms, loadtest/RESULTS.md).
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// Connect timeout towards the target, milliseconds.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port]`.
    pub brokers: String,
    /// The capture's `kafka.topic_prefix`: every topic `<topic_prefix>.*` is consumed,
    /// including tables that appear later.
    pub topic_prefix: String,
    /// Consumer group; instances with the same group share the partitions. Default
    /// `otter-apply.<pipeline>`.
    #[serde(default)]
    pub group_id: Option<String>,
    /// Consumer group session timeout, milliseconds: how long a dead instance keeps
    /// its partitions.
    #[serde(default = "default_session_timeout_ms")]
    pub session_timeout_ms: u32,
    /// How long a rebalance waits for members to rejoin, and how long this process may
    /// go without polling before it leaves the group (`max.poll.interval.ms`),
    /// milliseconds. Kept short: Tansu 0.6 keeps a member whose session expired during a
    /// rebalance as the group leader until this runs out, and the group stalls meanwhile.
    #[serde(default = "default_rebalance_timeout_ms")]
    pub rebalance_timeout_ms: u32,
    /// How often the topic list is refreshed to find new table topics, milliseconds.
    /// Also bounds how long a fresh member waits for topics the broker listed late:
    /// with Tansu the first metadata answer can hold only some of the table topics.
    #[serde(default = "default_metadata_refresh_ms")]
    pub metadata_refresh_ms: u32,
    /// Longest time the broker may hold a fetch waiting for new records, milliseconds
    /// (`fetch.wait.max.ms`). Tansu 0.6 answers a waiting fetch only when this runs
    /// out, not when records arrive, so it is a floor under replication lag; the cost
    /// of a small value is one idle fetch per broker every interval (20 -> 5 ms took
    /// the p50 lag at 1k rows/s from 67 to 22 ms with the larger pool).
    #[serde(default = "default_fetch_wait_ms")]
    pub fetch_wait_ms: u32,
    /// Most bytes one fetch response may bring (`fetch.max.bytes`), KiB. Tansu 0.6 fills
    /// a response with up to this much (5 MiB at most) of stored, compressed batches,
    /// often of one partition, ignoring the per-partition limit, and librdkafka
    /// enqueues it whole: each partition's prefetch can overshoot `apply.prefetch_kbytes`
    /// by about one response. Lower it (1024 is the least) to bound memory with many
    /// partitions; but Tansu's sqlite engine never serves a record larger than this, so
    /// it must stay above the largest record (capture's `kafka.chunk_bytes`, 900 KiB by
    /// default; other producers' records may be larger).
    #[serde(default = "default_fetch_max_kbytes")]
    pub fetch_max_kbytes: u32,
}

/// What happens to a change the target refuses for good (constraint violation, missing
/// table, type mismatch) or a record that cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Stop the partition at the change (everything before it is committed) and report
    /// it; the rest of the pipeline continues.
    Stop,
    /// Record it in `apply_skipped` (in the same transaction as the position), count it,
    /// log it, and continue (Otter's skipLoadException).
    Skip,
}

/// What apply does with the schema changes in the stream (Flink CDC's schema change
/// behaviours). Whatever the policy, a schema change is ordered with its table's rows:
/// nothing after it is applied before it is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DdlPolicy {
    /// Apply every schema change to the target, once, after every partition of the
    /// table's topic has applied the rows before it.
    All,
    /// Apply only changes that add (tables, columns, indexes); pass over the rest
    /// (counted and logged with their statement): the target keeps dropped columns and
    /// tables, and old column types.
    Additive,
    /// Apply none (counted and logged): the target's schema is managed by hand.
    Ignore,
    /// Stop the table's partition at the first schema change, for an operator to apply
    /// it by hand and then list it in `apply.ddl_skip`.
    Stop,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyTuning {
    /// Most change records in one partition's batch (one target transaction).
    #[serde(default = "default_max_batch_records")]
    pub max_batch_records: usize,
    /// Most record bytes in one batch.
    #[serde(default = "default_max_batch_bytes")]
    pub max_batch_bytes: usize,
    /// Multi-row statements are cut at this size; a single larger row still goes alone
    /// (the target's `max_allowed_packet` must hold it).
    #[serde(default = "default_max_statement_bytes")]
    pub max_statement_bytes: usize,
    /// Inserts of at least this many rows in one statement go as prepared statements
    /// (binary protocol, parsed once per connection: far less work for the target on a
    /// backlog); fewer rows go as text, which needs no extra round trip. 0: text always.
    #[serde(default = "default_prepared_min_rows")]
    pub prepared_min_rows: usize,
    /// Records prefetched by librdkafka and not yet taken by the partition's worker,
    /// KiB (`queued.max.messages.kbytes`): bounds memory while a partition waits.
    #[serde(default = "default_prefetch_kbytes")]
    pub prefetch_kbytes: u32,
    /// Record bytes all partitions of this process may hold between the broker and the
    /// target at once (decoded, merged and written batches); past it batches end
    /// early. Bounds memory when many partitions have a backlog (decoded changes take
    /// a few times their record size).
    #[serde(default = "default_max_inflight_bytes")]
    pub max_inflight_bytes: usize,
    /// First delay before retrying after a transient failure, milliseconds (doubles up
    /// to 30 s).
    #[serde(default = "default_retry_ms")]
    pub retry_ms: u64,
    /// `stop` or `skip`, see [`OnError`].
    #[serde(default = "default_on_error")]
    pub on_error: OnError,
    /// `all`, `additive`, `ignore` or `stop`, see [`DdlPolicy`].
    #[serde(default = "default_ddl")]
    pub ddl: DdlPolicy,
    /// Schema changes passed over whatever the policy, by source position
    /// (`<binlog file>:<offset>`, as the error that stopped on it says): the documented
    /// way past a schema change the target refused, once it is dealt with by hand.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ddl_skip: Vec<String>,
}

impl Default for ApplyTuning {
    fn default() -> Self {
        ApplyTuning {
            max_batch_records: default_max_batch_records(),
            max_batch_bytes: default_max_batch_bytes(),
            max_statement_bytes: default_max_statement_bytes(),
            prepared_min_rows: default_prepared_min_rows(),
            prefetch_kbytes: default_prefetch_kbytes(),
            max_inflight_bytes: default_max_inflight_bytes(),
            retry_ms: default_retry_ms(),
            on_error: default_on_error(),
            ddl: default_ddl(),
            ddl_skip: Vec::new(),
        }
    }
}

fn default_state_db() -> String {
    "otter".into()
}
fn default_pool_size() -> usize {
    16
}
fn default_connect_timeout_ms() -> u64 {
    5_000
}
fn default_session_timeout_ms() -> u32 {
    10_000
}
fn default_rebalance_timeout_ms() -> u32 {
    20_000
}
fn default_metadata_refresh_ms() -> u32 {
    1_000
}
fn default_fetch_max_kbytes() -> u32 {
    5 * 1024
}
fn default_fetch_wait_ms() -> u32 {
    5
}
fn default_max_batch_records() -> usize {
    5_000
}
fn default_max_batch_bytes() -> usize {
    32 * 1024 * 1024
}
fn default_max_statement_bytes() -> usize {
    4 * 1024 * 1024
}
fn default_prepared_min_rows() -> usize {
    16
}
fn default_prefetch_kbytes() -> u32 {
    4 * 1024
}
fn default_max_inflight_bytes() -> usize {
    16 * 1024 * 1024
}
fn default_retry_ms() -> u64 {
    500
}
fn default_on_error() -> OnError {
    OnError::Stop
}
fn default_ddl() -> DdlPolicy {
    DdlPolicy::All
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Self::parse(&read(path)?, &path.display().to_string())
    }

    pub fn parse(text: &str, path: &str) -> Result<Config, ConfigError> {
        let mut c: Config = parse_toml(text, path)?;
        if let Ok(pw) = std::env::var("OTTER_TARGET_PASSWORD") {
            c.target.url = with_password(&c.target.url, &pw);
        }
        if let (Some(url), Ok(pw)) = (&c.source_url, std::env::var("OTTER_SOURCE_PASSWORD")) {
            c.source_url = Some(with_password(url, &pw));
        }
        c.validate()?;
        Ok(c)
    }

    /// The configuration a managed apply runs with: the pipeline's definition (its
    /// `target`, `kafka`, `apply` sections and `map` rules; `apply.dry_run`) and the
    /// password it references as found on this machine. Every problem at once, named
    /// by the definition's field.
    pub fn from_spec(spec: &PipelineSpec) -> Result<Config, ConfigError> {
        let mut p = Vec::new();
        let (kafka, mut tuning) = split_kafka("apply", &spec.kafka, &spec.apply, &mut p);
        let dry_run = match tuning.remove("dry_run") {
            None => false,
            Some(Value::Bool(b)) => b,
            Some(_) => {
                p.push("apply.dry_run: must be true or false".into());
                false
            }
        };
        let target: Option<TargetConfig> = section(
            "target",
            Value::Object(PipelineSpec::without_credentials(&spec.target)),
            &mut p,
        );
        let kafka: Option<KafkaConfig> =
            section("kafka (with apply.kafka)", Value::Object(kafka), &mut p);
        let apply: Option<ApplyTuning> = section("apply", Value::Object(tuning), &mut p);
        let map: Option<Vec<MapRule>> = section("map", Value::Array(spec.map.clone()), &mut p);
        // A missing password is reported, and the rest still checked.
        let password = spec
            .password("target")
            .map_err(|e| p.push(e))
            .unwrap_or_default();
        let (Some(mut target), Some(kafka), Some(apply), Some(map)) = (target, kafka, apply, map)
        else {
            return Err(ConfigError::Invalid(p));
        };
        target.url = with_password(&target.url, &password);
        // Only for the lag's clock: not having the source's credentials here is no
        // problem, the lag then trusts this host's clock.
        let source_url = spec
            .source
            .get("url")
            .and_then(Value::as_str)
            .zip(spec.password("source").ok())
            .map(|(u, pw)| with_password(u, &pw));
        let c = Config {
            pipeline: spec.name.clone(),
            dry_run,
            source_url,
            target,
            kafka,
            apply,
            map,
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
        if mysql_async::Opts::from_url(&self.target.url).is_err() {
            p.push("target.url: not a mysql:// URL".to_owned());
        }
        if !is_name(&self.target.state_db, b"") {
            p.push(format!(
                "target.state_db: `{}` must be non-empty [A-Za-z0-9_]",
                self.target.state_db
            ));
        }
        if self.target.pool_size == 0 {
            p.push("target.pool_size: must be at least 1".to_owned());
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
        let a = &self.apply;
        if a.max_batch_records == 0 {
            p.push("apply.max_batch_records: must be at least 1".to_owned());
        }
        if a.max_inflight_bytes < 1024 * 1024 {
            p.push("apply.max_inflight_bytes: must be at least 1048576 (1 MiB)".to_owned());
        }
        if self.kafka.fetch_max_kbytes < 1024 {
            p.push("kafka.fetch_max_kbytes: must be at least 1024".to_owned());
        }
        if a.prefetch_kbytes < 1024 {
            p.push("apply.prefetch_kbytes: must be at least 1024".to_owned());
        }
        if a.max_statement_bytes < 1024 {
            p.push("apply.max_statement_bytes: must be at least 1 KiB".to_owned());
        }
        if let Err(errors) = Mapping::new(&self.map) {
            p.extend(errors.iter().map(|e| format!("map: {e}")));
        }
        problems(p)
    }

    pub fn group_id(&self) -> String {
        self.kafka
            .group_id
            .clone()
            .unwrap_or_else(|| format!("otter-apply.{}", self.pipeline))
    }

    /// The configuration as TOML with the password removed, for `--check-config`.
    pub fn redacted(&self) -> String {
        let mut c = self.clone();
        c.target.url = redact_url(&c.target.url);
        c.source_url = c.source_url.as_deref().map(redact_url);
        toml::to_string_pretty(&c).unwrap_or_else(|e| format!("(cannot print: {e})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses() {
        let text = include_str!("../config.example.toml");
        let c = Config::parse(text, "config.example.toml").expect("example is valid");
        assert_eq!(c.group_id(), "otter-apply.demo");
        assert_eq!(c.apply.on_error, OnError::Stop);
        assert_eq!(c.map.len(), 1);
    }

    #[test]
    fn a_misspelt_key_is_named() {
        let text = include_str!("../config.example.toml").replace("pool_size", "pool_sise");
        let err = Config::parse(&text, "x.toml").expect_err("unknown field");
        let chain = format!("{}", std::error::Error::source(&err).expect("toml error"));
        assert!(chain.contains("pool_sise"), "{chain}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = r#"
pipeline = "bad name"
[target]
url = "http://x"
pool_size = 0
[kafka]
brokers = ""
topic_prefix = "a b"
[[map]]
source_table = "("
"#;
        let Err(ConfigError::Invalid(p)) = Config::parse(text, "x.toml") else {
            panic!("invalid config accepted")
        };
        assert_eq!(p.len(), 6, "{p:#?}");
    }
}
