//! Test support for integration tests (dev-dependency only): where the servers that
//! `make test` starts are, and names no other test uses.
//!
//! A missing address fails the test with a message naming `make test`; an integration
//! test never passes because its server was absent.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn required(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run integration tests with `make test`, which starts the servers and sets it")
    })
}

/// `mysql://user:pass@host:port` of the source MariaDB (binlog on).
pub fn source_url() -> String {
    required("OTTER_IT_MYSQL_URL")
}

/// `mysql://user:pass@host:port` of the target MariaDB.
pub fn target_url() -> String {
    required("OTTER_IT_TARGET_URL")
}

/// Kafka bootstrap servers.
pub fn brokers() -> String {
    required("OTTER_IT_BROKERS")
}

/// ZooKeeper connect string.
pub fn zookeeper() -> String {
    required("OTTER_IT_ZK")
}

/// A name unique to this test run and call: `<prefix>_<pid>_<n>_<millis>`, safe as a
/// database name, topic prefix part or znode name.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() % 100_000_000);
    format!("{prefix}_{}_{n}_{ms}", std::process::id())
}

/// A replica server id unique to this test process and call: replicas of one source
/// need distinct ids (a second one with the same id makes the source drop the first).
pub fn next_server_id() -> u32 {
    static N: AtomicU32 = AtomicU32::new(0);
    10_000 + (std::process::id() % 10_000) * 100 + N.fetch_add(1, Ordering::Relaxed) % 100
}

/// An otter-capture configuration for one test: its own pipeline, topic prefix and
/// database (`db.*` tables), starting at `start`, against the source `url`; short
/// intervals so tests run fast.
pub fn capture_config_text(
    pipeline: &str,
    prefix: &str,
    db: &str,
    start: &str,
    url: &str,
) -> String {
    format!(
        r#"
pipeline = "{pipeline}"
[source]
url = "{url}"
server_id = {server_id}
start = "{start}"
[kafka]
brokers = "{brokers}"
topic_prefix = "{prefix}"
partitions = 3
linger_ms = 2
stall_timeout_ms = 8000
[zookeeper]
connect = "{zk}"
root = "/otter-it"
[tables]
include = ["{db}\\..*"]
[capture]
position_interval_ms = 50
retry_ms = 200
# Heartbeats (their own topic) are tested through the control plane; here they would
# only add a topic to the partition counts these tests assert.
heartbeat_ms = 0
"#,
        server_id = next_server_id(),
        brokers = brokers(),
        zk = zookeeper(),
    )
}

/// Runs `sql` on the server at `url`; panics naming the statement that failed.
pub async fn exec(url: &str, sql: &[&str]) {
    use mysql_async::prelude::Queryable;
    let mut c = mysql_async::Conn::from_url(url)
        .await
        .expect("server reachable");
    for s in sql {
        c.query_drop(*s)
            .await
            .unwrap_or_else(|e| panic!("{s}: {e}"));
    }
}

/// Runs `sql` on the source and the same on the target (schemas, until DDL sync).
pub async fn both(sql: &[&str]) {
    exec(&source_url(), sql).await;
    exec(&target_url(), sql).await;
}

/// The recorded MySQL/MariaDB binlogs (`shared/fixtures/mysql-binlogs` beside the
/// repository, or `OTTER_FIXTURES`). Panics with what to set when the folder is missing.
pub fn fixtures_dir() -> std::path::PathBuf {
    let dir = std::env::var_os("OTTER_FIXTURES")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/fixtures/mysql-binlogs")
        });
    assert!(
        dir.is_dir(),
        "fixture folder {} is missing (set OTTER_FIXTURES)",
        dir.display()
    );
    dir
}

/// The last `n` lines of `s` (log excerpts in failure messages).
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The lines of a service log (tracing's text format: timestamp, level, target, message)
/// logged at ERROR level. A WARN line quoting a server's `ERROR 1213 ...` is not one.
pub fn error_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("ERROR"))
        .collect()
}

/// A connection to the source server.
pub async fn source() -> anyhow::Result<mysql_async::Conn> {
    Ok(mysql_async::Conn::from_url(source_url()).await?)
}

/// The source's current binlog end, as `file:offset`.
pub async fn source_head() -> anyhow::Result<String> {
    use mysql_async::prelude::Queryable;
    let mut c = source().await?;
    // SHOW MASTER STATUS has more columns than the two read here.
    let row: Option<mysql_async::Row> = c.query_first("SHOW MASTER STATUS").await?;
    let row = row
        .ok_or_else(|| anyhow::anyhow!("the source has no binlog (SHOW MASTER STATUS is empty)"))?;
    let file: String = row
        .get(0)
        .ok_or_else(|| anyhow::anyhow!("no File column"))?;
    let pos: u64 = row
        .get(1)
        .ok_or_else(|| anyhow::anyhow!("no Position column"))?;
    Ok(format!("{file}:{pos}"))
}

/// Polls `check` every 100 ms until it returns `Some`, or fails after `timeout` with
/// `what` in the message.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if start.elapsed() > timeout {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads every record of `topic` from the beginning with a plain Kafka consumer,
/// until `want` records arrived or `timeout` passed, joining chunked records
/// (`otter_core::chunk`). Returns (partition, key, value) in partition order
/// (partition 0 first), each partition in offset order.
pub async fn read_topic(
    topic: &str,
    want: usize,
    timeout: Duration,
) -> anyhow::Result<Vec<(i32, Vec<u8>, Vec<u8>)>> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers())
            .set("group.id", unique("reader"))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .create()?;
        // The topic may not exist yet (capture creates it with its first record):
        // wait for it rather than reading zero partitions forever.
        let start = std::time::Instant::now();
        let parts = loop {
            let md = consumer.fetch_metadata(Some(&topic), Duration::from_secs(5))?;
            let n = md.topics().first().map_or(0, |t| t.partitions().len());
            if n > 0 || start.elapsed() > timeout {
                break n;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut tpl = TopicPartitionList::new();
        for p in 0..parts {
            tpl.add_partition_offset(&topic, p as i32, Offset::Beginning)?;
        }
        consumer.assign(&tpl)?;
        drop(tpl);
        let mut out = Vec::new();
        let mut chunks = otter_core::chunk::Reassembler::default();
        let start = std::time::Instant::now();
        while out.len() < want && start.elapsed() < timeout {
            if let Some(m) = consumer.poll(Duration::from_millis(200)) {
                use rdkafka::message::Headers;
                let m = m?;
                let header = m.headers().and_then(|h| {
                    h.iter()
                        .find(|h| h.key == otter_core::chunk::CHUNK_HEADER)
                        .and_then(|h| h.value.map(<[u8]>::to_vec))
                });
                let payload = m.payload().unwrap_or_default();
                if let Some(value) =
                    chunks.push(m.partition(), m.offset(), header.as_deref(), payload)?
                {
                    out.push((m.partition(), m.key().unwrap_or_default().to_vec(), value));
                }
            }
        }
        out.sort_by_key(|(p, _, _)| *p);
        Ok(out)
    })
    .await?
}

/// How many records of each capture epoch (`source.epoch` of the envelope; `None` =
/// without one, or a chunk) `topic` holds, reading every partition from the beginning
/// until nothing new arrives for `idle`.
pub async fn topic_epochs(
    topic: &str,
    idle: Duration,
) -> anyhow::Result<std::collections::BTreeMap<Option<i64>, u64>> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers())
            .set("group.id", unique("epochs"))
            .set("enable.auto.commit", "false")
            .create()?;
        let md = consumer.fetch_metadata(Some(&topic), Duration::from_secs(5))?;
        let parts = md.topics().first().map_or(0, |t| t.partitions().len());
        let mut tpl = TopicPartitionList::new();
        for p in 0..parts {
            tpl.add_partition_offset(&topic, p as i32, Offset::Beginning)?;
        }
        consumer.assign(&tpl)?;
        let mut out = std::collections::BTreeMap::new();
        let mut last = std::time::Instant::now();
        while last.elapsed() < idle {
            if let Some(m) = consumer.poll(Duration::from_millis(100)) {
                let m = m?;
                last = std::time::Instant::now();
                let epoch = otter_core::codec::decode_with_epoch(m.payload().unwrap_or_default())
                    .ok()
                    .and_then(|(_, e)| e);
                *out.entry(epoch).or_insert(0) += 1;
            }
        }
        Ok(out)
    })
    .await?
}

#[cfg(test)]
mod tests {
    #[test]
    fn error_lines_reads_the_level_not_the_message() {
        let log = "2026-12-06T02:00:00.000001Z  WARN otter_apply::worker: retrying: ERROR 1213 (40001): Deadlock\n\
                   2026-12-06T02:00:00.000002Z ERROR otter_apply::worker: batch failed\n\
                   2026-12-06T02:00:00.000003Z  INFO otter_apply: ERROR in a message";
        assert_eq!(
            super::error_lines(log),
            vec!["2026-12-06T02:00:00.000002Z ERROR otter_apply::worker: batch failed"]
        );
    }
}
