//! The broker's disk fills up under a running pipeline: capture reports the failed
//! delivery (with the source position) and stores no position past what the broker
//! acknowledged; once the disk has room again and the broker is back, every change
//! arrives, once. Its own test binary: it runs a second Tansu on a 12 MiB tmpfs it
//! mounts (so it needs mount rights, as root on this machine has; without them it prints
//! SKIPPED and does nothing), whose binary
//! `OTTER_IT_TANSU` names.
//!
//! Tansu 0.6 itself does not recover from a full disk: its storage stops answering
//! (`UnableToSend`) until it is restarted, so the test restarts it, as an operator
//! would after freeing space.
#![cfg(feature = "it")]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use otter_testkit as kit;

const PORT: u16 = 19095;

struct Disk {
    dir: std::path::PathBuf,
    broker: Option<Child>,
}

impl Disk {
    /// `None` when this process may not mount (not root, or a container without
    /// CAP_SYS_ADMIN): the test then says loudly that it did not run.
    fn mount(dir: std::path::PathBuf) -> Option<Disk> {
        std::fs::create_dir_all(&dir).expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=12m", "tmpfs"])
            .arg(&dir)
            .output()
            .expect("mount runs");
        if !out.status.success() {
            eprintln!(
                "SKIPPED a_full_broker_disk_loses_nothing_and_duplicates_nothing: cannot mount a tmpfs at {} ({}); run as root with mount rights",
                dir.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Some(Disk { dir, broker: None })
    }

    fn start_broker(&mut self) {
        let tansu = std::env::var("OTTER_IT_TANSU")
            .expect("OTTER_IT_TANSU names the Tansu binary: run the tests with `make test`");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.with_extension("tansu.log"))
            .expect("log");
        let url = format!("tcp://127.0.0.1:{PORT}");
        self.broker = Some(
            Command::new(tansu)
                .args([
                    "broker",
                    "--listener-url",
                    &url,
                    "--advertised-listener-url",
                    &url,
                ])
                .args(["--storage-engine", "sqlite://tansu.db"])
                .current_dir(&self.dir)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("tansu starts"),
        );
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", PORT)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the test broker does not listen on {PORT}");
    }

    fn stop_broker(&mut self) {
        if let Some(mut b) = self.broker.take() {
            let _ = b.kill();
            let _ = b.wait();
        }
    }

    fn grow(&self) {
        let ok = Command::new("mount")
            .args(["-o", "remount,size=256m"])
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "growing the tmpfs");
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        self.stop_broker();
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

async fn count(url: &str, db: &str) -> i64 {
    scalar(url, &format!("SELECT COUNT(*) FROM `{db}`.big")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_broker_disk_loses_nothing_and_duplicates_nothing() {
    let p = Ctl::new("fulldisk");
    let Some(mut disk) = Disk::mount(p.dir.join("broker-disk")) else {
        return;
    };
    disk.start_broker();
    schema(&p.db).await;
    both(&[&format!(
        "CREATE TABLE `{}`.big (id INT PRIMARY KEY, b MEDIUMBLOB)",
        p.db
    )])
    .await;
    let def = p
        .definition("[capture.kafka]\npartitions = 2\n")
        .replace(&kit::brokers(), &format!("127.0.0.1:{PORT}"));
    let f = p.write("p.toml", &def);
    p.ok(&["pipeline", "create", "-f", f.to_str().expect("utf8")]);
    let names = ["fcap", "fapp"];
    let _cap = p.serve("capture", "fcap");
    let _app = p.serve("apply", "fapp");
    p.wait_capture_active(&names).await;
    insert_rows(&p.db, 1, 6).await;
    p.wait_in_sync(Duration::from_secs(60), &names).await;

    // 80 rows of ~200 KB: more than the broker's 12 MiB disk holds.
    let src = kit::source_url();
    for i in 0..40 {
        exec(
            &src,
            &[&format!(
                "INSERT INTO `{db}`.big SELECT {i} * 2 + seq, \
                 (SELECT GROUP_CONCAT(RANDOM_BYTES(1024) SEPARATOR '') FROM `{db}`.seq_1_to_200) \
                 FROM `{db}`.seq_0_to_1",
                db = p.db
            )],
        )
        .await;
    }
    let s = p
        .wait_status(
            Duration::from_secs(60),
            "capture to report the failed delivery",
            &names,
            |s| {
                s["last_error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("was not delivered"))
            },
        )
        .await;
    let message = s["last_error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("mariadb-bin."),
        "the error names the source position: {message}"
    );
    let stuck = count(&kit::target_url(), &p.db).await;
    assert!(
        stuck < 80,
        "not everything got through a full disk ({stuck})"
    );

    // Room again, broker restarted: every change arrives, once.
    disk.stop_broker();
    disk.grow();
    disk.start_broker();
    p.wait_in_sync(Duration::from_secs(120), &names).await;
    assert_eq!(count(&kit::target_url(), &p.db).await, 80);
}
