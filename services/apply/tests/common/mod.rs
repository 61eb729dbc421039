//! Shared helpers of the apply integration tests: the whole pipeline (capture and apply
//! as real processes) against the servers `make test` starts.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use otter_apply::mapping::Mapping;
use otter_apply::verify::{self, TableReport};
use otter_testkit as kit;
#[allow(unused_imports)]
pub use otter_testkit::{both, error_lines, exec, tail};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The capture binary, built by the same `cargo test --workspace` run.
pub fn capture_bin() -> PathBuf {
    let apply = PathBuf::from(env!("CARGO_BIN_EXE_otter-apply"));
    let bin = apply.with_file_name("otter-capture");
    assert!(
        bin.exists(),
        "{} is missing: run the workspace's tests with `make test` (it builds otter-capture too)",
        bin.display()
    );
    bin
}

pub async fn source_head() -> String {
    kit::source_head().await.expect("source binlog position")
}

/// One pipeline of a test: its own database, topic prefix, ZooKeeper root, configs.
pub struct Pipeline {
    pub name: String,
    pub db: String,
    pub prefix: String,
    pub dir: PathBuf,
    pub capture_config: PathBuf,
    pub apply_config: PathBuf,
}

impl Pipeline {
    /// Writes the configs; capture starts at the source's current end.
    pub async fn new(tag: &str, apply_extra: &str) -> Pipeline {
        let name = kit::unique(tag);
        let db = kit::unique(tag);
        let prefix = kit::unique("it");
        let dir = std::env::temp_dir().join(kit::unique("otter-apply-it"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let capture_config = dir.join("capture.toml");
        let apply_config = dir.join("apply.toml");
        let start = source_head().await;
        std::fs::write(
            &capture_config,
            kit::capture_config_text(&name, &prefix, &db, &start, &kit::source_url()),
        )
        .expect("capture config");
        std::fs::write(
            &apply_config,
            format!(
                r#"pipeline = "{name}"
[target]
url = "{tgt}"
state_db = "otter_it"
pool_size = 3
[kafka]
brokers = "{brokers}"
topic_prefix = "{prefix}"
session_timeout_ms = 6000
rebalance_timeout_ms = 10000
metadata_refresh_ms = 1000
[apply]
retry_ms = 100
{apply_extra}
"#,
                tgt = kit::target_url(),
                brokers = kit::brokers(),
            ),
        )
        .expect("apply config");
        Pipeline {
            name,
            db,
            prefix,
            dir,
            capture_config,
            apply_config,
        }
    }

    fn spawn(&self, bin: &Path, config: &Path, log: &str) -> Proc {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(log))
            .expect("log file");
        Command::new(bin)
            .args(["run", "--config"])
            .arg(config)
            .env(
                "RUST_LOG",
                std::env::var("OTTER_TEST_LOG")
                    .unwrap_or_else(|_| "info,zookeeper_client=warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map(Proc)
            .unwrap_or_else(|e| panic!("{} starts: {e}", bin.display()))
    }

    pub fn capture(&self) -> Proc {
        self.spawn(&capture_bin(), &self.capture_config, "capture.log")
    }

    pub fn apply(&self) -> Proc {
        self.apply_logging_to("apply.log")
    }

    /// An apply instance with its own log file (in the pipeline's directory).
    pub fn apply_logging_to(&self, log: &str) -> Proc {
        self.spawn(
            Path::new(env!("CARGO_BIN_EXE_otter-apply")),
            &self.apply_config,
            log,
        )
    }

    /// Apply with its stdout captured (dry run prints statements there).
    pub fn apply_piped(&self) -> Child {
        Command::new(env!("CARGO_BIN_EXE_otter-apply"))
            .args(["run", "--config"])
            .arg(&self.apply_config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("otter-apply starts")
    }

    pub fn log(&self, which: &str) -> String {
        std::fs::read_to_string(self.dir.join(which)).unwrap_or_default()
    }

    /// Compares the pipeline's database on source and target.
    pub async fn verify(&self, mapping: &Mapping) -> Vec<TableReport> {
        verify_tables(&format!("{}\\..*", self.db), mapping).await
    }

    /// Waits until verify says identical; panics with the last report and the logs.
    pub async fn wait_in_sync(&self, timeout: Duration) {
        let start = std::time::Instant::now();
        loop {
            let pattern = format!("{}\\..*", self.db);
            let (reports, text, same) =
                match try_verify_tables(&pattern, &Mapping::identity()).await {
                    Ok(reports) => {
                        let (text, same) = verify::render(&reports);
                        (reports, text, same)
                    }
                    Err(e) => (Vec::new(), e, false),
                };
            if same && !reports.is_empty() {
                return;
            }
            if start.elapsed() > timeout {
                panic!(
                    "not in sync after {timeout:?}:\n{text}\n--- apply log (tail):\n{}\n--- capture log (tail):\n{}",
                    tail(&self.log("apply.log"), 40),
                    tail(&self.log("capture.log"), 20)
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

impl Pipeline {
    /// Waits until one table of the pipeline's database is identical on both sides.
    pub async fn wait_table_in_sync(&self, table: &str) {
        let pattern = format!("{}\\.{table}", self.db);
        let r = kit::eventually(Duration::from_secs(60), table, || async {
            let r = try_verify_tables(&pattern, &Mapping::identity())
                .await
                .unwrap_or_default();
            Ok(r.first().filter(|r| r.identical()).cloned())
        })
        .await;
        if let Err(e) = r {
            let (text, _) = verify::render(&verify_tables(&pattern, &Mapping::identity()).await);
            panic!(
                "{e}\n{text}\n--- apply log:\n{}",
                tail(&self.log("apply.log"), 40)
            );
        }
    }
}

pub async fn verify_tables(pattern: &str, mapping: &Mapping) -> Vec<TableReport> {
    try_verify_tables(pattern, mapping)
        .await
        .unwrap_or_else(|e| panic!("verify: {e}"))
}

/// [`verify_tables`], with the error (a table whose columns differ cannot be compared
/// row by row, e.g. while a schema change is on its way).
pub async fn try_verify_tables(
    pattern: &str,
    mapping: &Mapping,
) -> Result<Vec<TableReport>, String> {
    let src = mysql_async::Pool::new(kit::source_url().as_str());
    let tgt = mysql_async::Pool::new(kit::target_url().as_str());
    let re = regex::Regex::new(&format!("^(?:{pattern})$")).expect("pattern");
    let r = verify::compare(&src, &tgt, mapping, &[re], 100, 50)
        .await
        .map_err(|e| otter_core::error::chain(&e));
    let _ = src.disconnect().await;
    let _ = tgt.disconnect().await;
    r
}

/// A service process that is killed when dropped, so a failing test leaves nothing
/// running.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn kill9(p: &mut Proc) {
    let _ = p.0.kill();
    let _ = p.0.wait();
}

/// SIGTERM and wait: a clean stop.
pub fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// Restarts one part of the local stack (`target`, `broker`, ...).
pub fn restart(part: &str) {
    let root = repo_root();
    let ok = Command::new("bash")
        .arg(root.join("infra/down.sh"))
        .arg(part)
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        && Command::new("bash")
            .arg(root.join("infra/up.sh"))
            .arg(part)
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    assert!(ok, "restarting {part} failed");
}

/// Rows of `sql` on the target, as strings.
pub async fn target_rows(sql: &str) -> Vec<mysql_async::Row> {
    let mut c = mysql_async::Conn::from_url(kit::target_url())
        .await
        .expect("target reachable");
    c.query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
}
