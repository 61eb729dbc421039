//! Helpers of the control-plane tests: a pipeline defined with `otterctl` under its own
//! ZooKeeper root, and `otter-capture serve` / `otter-apply serve` processes, all
//! against the servers `make test` starts.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use otter_apply::mapping::Mapping;
use otter_apply::verify;
use otter_testkit as kit;
pub use otter_testkit::{both, exec, tail};

/// Environment variable the test definitions name for both passwords.
pub const PW_ENV: &str = "OTTER_IT_CTL_PW";

pub fn bin(name: &str) -> PathBuf {
    let ctl = PathBuf::from(env!("CARGO_BIN_EXE_otterctl"));
    if name == "otterctl" {
        return ctl;
    }
    let b = ctl.with_file_name(name);
    assert!(
        b.exists(),
        "{} is missing: run the workspace's tests with `make test`",
        b.display()
    );
    b
}

/// `mysql://user@host:port` and the password of a `mysql://user:pw@host:port` URL.
pub fn split_url(url: &str) -> (String, String) {
    let (scheme, rest) = url.split_once("://").expect("scheme");
    let (userinfo, host) = rest.rsplit_once('@').expect("user@host");
    let (user, pw) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    (format!("{scheme}://{user}@{host}"), pw.to_owned())
}

pub async fn scalar(url: &str, sql: &str) -> i64 {
    let mut c = mysql_async::Conn::from_url(url)
        .await
        .expect("server reachable");
    let v: Option<Option<i64>> = c
        .query_first(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    v.flatten().unwrap_or(0)
}

pub struct Ctl {
    pub name: String,
    pub db: String,
    pub prefix: String,
    pub root: String,
    pub dir: PathBuf,
    pub server_id: u32,
}

impl Ctl {
    pub fn new(tag: &str) -> Ctl {
        let dir = std::env::temp_dir().join(kit::unique("otter-ctl-it"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Ctl {
            name: kit::unique(tag),
            db: kit::unique(tag),
            prefix: kit::unique("ctl"),
            root: format!("/otter-it/{}", kit::unique("ctl")),
            dir,
            server_id: kit::next_server_id(),
        }
    }

    /// A definition of this pipeline: its database's tables, `extra` appended.
    pub fn definition(&self, extra: &str) -> String {
        let (src, _) = split_url(&kit::source_url());
        let (tgt, _) = split_url(&kit::target_url());
        format!(
            r#"name = "{name}"
description = "control-plane test"
[source]
url = "{src}"
password_env = "{PW_ENV}"
server_id = {sid}
[target]
url = "{tgt}"
password_env = "{PW_ENV}"
[kafka]
brokers = "{brokers}"
topic_prefix = "{prefix}"
[tables]
include = ['{db}\..*']
[capture]
position_interval_ms = 100
[apply]
retry_ms = 200
{extra}
"#,
            name = self.name,
            sid = self.server_id,
            brokers = kit::brokers(),
            prefix = self.prefix,
            db = self.db,
        )
    }

    /// Creates this pipeline (running) from its definition with `extra` appended.
    pub fn create(&self, extra: &str) {
        let def = self.write("p.toml", &self.definition(extra));
        self.ok(&["pipeline", "create", "-f", def.to_str().expect("utf8")]);
    }

    pub fn write(&self, file: &str, text: &str) -> PathBuf {
        let p = self.dir.join(file);
        std::fs::write(&p, text).expect("write");
        p
    }

    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        let (_, pw) = split_url(&kit::source_url());
        c.env("OTTER_ZK", kit::zookeeper())
            .env("OTTER_ZK_ROOT", &self.root)
            .env(PW_ENV, pw)
            .env_remove("OTTER_ZK_DIGEST")
            .env_remove("VISUAL");
        c
    }

    /// Runs otterctl; returns (exit code, stdout, stderr).
    pub fn ctl(&self, args: &[&str]) -> (i32, String, String) {
        self.ctl_with(args, &[])
    }

    pub fn ctl_with(&self, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
        let mut c = self.command(&bin("otterctl"));
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let Output {
            status,
            stdout,
            stderr,
        } = c.output().expect("otterctl runs");
        (
            status.code().unwrap_or(-1),
            String::from_utf8_lossy(&stdout).into_owned(),
            String::from_utf8_lossy(&stderr).into_owned(),
        )
    }

    /// otterctl that must succeed.
    pub fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.ctl(args);
        assert_eq!(code, 0, "otterctl {args:?} failed ({code}): {err}{out}");
        out
    }

    pub fn status(&self) -> serde_json::Value {
        let out = self.ok(&["-o", "json", "status", &self.name]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("status JSON: {e}: {out}"))
    }

    /// Starts `otter-<service> serve` as `instance`, logging to `<instance>.log`.
    pub fn serve(&self, service: &str, instance: &str) -> Proc {
        let mut c = self.command(&bin(&format!("otter-{service}")));
        c.args(["serve", "--pipeline", &self.name, "--instance", instance]);
        self.spawn(c, instance)
    }

    /// [`Ctl::serve`] with the process's wall clock moved by `skew` (libfaketime, e.g.
    /// `+600s`, preloaded into the service itself); its monotonic clock is left alone.
    pub fn serve_skewed(&self, service: &str, instance: &str, skew: &str) -> Proc {
        let lib = std::fs::read_dir("/usr/lib")
            .into_iter()
            .flatten()
            .flatten()
            .map(|d| d.path().join("faketime/libfaketimeMT.so.1"))
            .find(|p| p.exists())
            .expect("libfaketime is missing: infra/install.sh packages installs it");
        let mut c = self.command(&bin(&format!("otter-{service}")));
        c.args(["serve", "--pipeline", &self.name, "--instance", instance])
            .env("LD_PRELOAD", lib)
            .env("FAKETIME", skew)
            // A host whose wall clock is wrong still has a true monotonic clock; faking that
            // too breaks librdkafka's timed waits (the consumer never joins its group).
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        self.spawn(c, instance)
    }

    fn spawn(&self, mut c: Command, instance: &str) -> Proc {
        let log = std::fs::File::create(self.dir.join(format!("{instance}.log"))).expect("log");
        c.env(
            "RUST_LOG",
            std::env::var("OTTER_TEST_LOG").unwrap_or_else(|_| "info,zookeeper_client=warn".into()),
        )
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map(|c| Proc(c, instance.to_owned()))
        .expect("service starts")
    }

    pub fn log(&self, instance: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{instance}.log"))).unwrap_or_default()
    }

    pub fn logs(&self, instances: &[&str]) -> String {
        instances
            .iter()
            .map(|i| format!("--- {i} (tail):\n{}", tail(&self.log(i), 25)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits until `check(status)` holds; panics with the status and logs.
    pub async fn wait_status(
        &self,
        timeout: Duration,
        what: &str,
        instances: &[&str],
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let start = std::time::Instant::now();
        loop {
            let s = self.status();
            if check(&s) {
                return s;
            }
            if start.elapsed() > timeout {
                panic!(
                    "timed out after {timeout:?} waiting for {what}; status: {s:#}\n{}",
                    self.logs(instances)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits (30 s) until the pipeline's capture is active.
    pub async fn wait_capture_active(&self, instances: &[&str]) {
        self.wait_status(Duration::from_secs(30), "capture active", instances, |s| {
            s["capture_status"] == "active"
        })
        .await;
    }

    pub async fn wait_in_sync(&self, timeout: Duration, instances: &[&str]) {
        let start = std::time::Instant::now();
        loop {
            let reports = verify_tables(&format!("{}\\..*", self.db)).await;
            let (text, same) = verify::render(&reports);
            if same && !reports.is_empty() {
                return;
            }
            if start.elapsed() > timeout {
                panic!(
                    "not in sync after {timeout:?}:\n{text}\n{}",
                    self.logs(instances)
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

pub async fn verify_tables(pattern: &str) -> Vec<verify::TableReport> {
    let src = mysql_async::Pool::new(kit::source_url().as_str());
    let tgt = mysql_async::Pool::new(kit::target_url().as_str());
    let re = regex::Regex::new(&format!("^(?:{pattern})$")).expect("pattern");
    let r = verify::compare(&src, &tgt, &Mapping::identity(), &[re], 100, 50)
        .await
        .unwrap_or_else(|e| panic!("verify: {}", otter_core::error::chain(&e)));
    let _ = src.disconnect().await;
    let _ = tgt.disconnect().await;
    r
}

/// A service process, killed when dropped.
pub struct Proc(pub Child, pub String);

impl Proc {
    pub fn kill9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([sig, &self.0.id().to_string()])
            .status();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A background workload on `db`: each transaction inserts a new row into `t`, bumps
/// a counter of an earlier one (when `updates`), and appends an identical pair of rows
/// to the keyless `log` (so a change applied twice shows up as a difference). Runs
/// until `stop`; returns the number of transactions.
pub fn workload(
    db: String,
    stop: tokio::sync::watch::Receiver<bool>,
    updates: bool,
) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut c = mysql_async::Conn::from_url(kit::source_url())
            .await
            .expect("source");
        let mut n = 0u64;
        while !*stop.borrow() {
            n += 1;
            let sql = format!(
                "BEGIN; INSERT INTO `{db}`.t (id, n, note) VALUES ({n}, 0, 'r{n}'); \
                 UPDATE `{db}`.t SET n = n + 1 WHERE id = {} AND {updates}; \
                 INSERT INTO `{db}`.log (k, v) VALUES ({}, 'x'), ({}, 'x'); COMMIT",
                n / 2 + 1,
                n % 5,
                n % 5
            );
            c.query_drop(sql).await.expect("workload transaction");
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        n
    })
}

/// Inserts rows `from..to` into `db.t`, one transaction each.
pub async fn insert_rows(db: &str, from: u64, to: u64) {
    let url = kit::source_url();
    for i in from..to {
        exec(
            &url,
            &[&format!("INSERT INTO `{db}`.t VALUES ({i}, 0, 'x')")],
        )
        .await;
    }
}

pub async fn schema(db: &str) {
    both(&[
        &format!("CREATE DATABASE `{db}`"),
        &format!("CREATE TABLE `{db}`.t (id BIGINT PRIMARY KEY, n INT NOT NULL, note VARCHAR(40))"),
        &format!("CREATE TABLE `{db}`.log (k INT NOT NULL, v VARCHAR(10))"),
    ])
    .await;
}

/// Runs `infra/<script>.sh <part>` (`down`/`up` of `zookeeper`, `broker`, ...).
pub fn infra(script: &str, part: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let ok = Command::new("bash")
        .arg(root.join(format!("infra/{script}.sh")))
        .arg(part)
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "infra/{script}.sh {part} failed");
}

/// `GET http://<addr><path>`: status code and body.
pub async fn http_get(addr: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{addr}: {e}"));
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .expect("request");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("response");
    let code = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (code, body)
}

/// Sum of the samples of `name` whose labels contain every `label="value"` in `with`.
pub fn metric(text: &str, name: &str, with: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter(|l| with.iter().all(|w| l.contains(w)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The `host:port` of `instance`'s metrics endpoint, from its registration.
pub fn endpoint_of(p: &Ctl, instance: &str) -> String {
    let nodes: serde_json::Value =
        serde_json::from_str(&p.ok(&["-o", "json", "nodes"])).expect("json");
    nodes
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| n["instance"] == instance)
        .and_then(|n| n["metrics"].as_str())
        .unwrap_or_else(|| panic!("{instance} registers its metrics endpoint: {nodes:#}"))
        .to_owned()
}
