//! The control plane end to end: pipelines defined with `otterctl`, served by real
//! `otter-capture serve` and `otter-apply serve` processes, against the ZooKeeper,
//! broker and MariaDB servers `make test` starts. Each test has its own ZooKeeper
//! root, database, topics and replica server id.
#![cfg(feature = "it")]

mod common;

use std::time::{Duration, Instant};

use common::*;
use otter_testkit as kit;
use serde_json::Value;

fn active(s: &Value) -> Option<String> {
    s["capture_active"].as_str().map(str::to_owned)
}

fn capture_running(s: &Value) -> bool {
    s["capture_status"] == "active"
}

async fn wait_running(p: &Ctl, names: &[&str]) {
    p.wait_status(
        Duration::from_secs(30),
        "capture and apply running",
        names,
        |s| capture_running(s) && s["apply"][0]["status"] == "applying",
    )
    .await;
}

async fn wait_leader_and_standby(p: &Ctl, names: &[&str]) {
    p.wait_status(
        Duration::from_secs(30),
        "an active capture with a standby",
        names,
        |s| {
            capture_running(s)
                && s["capture_standbys"]
                    .as_array()
                    .is_some_and(|a| a.len() == 1)
        },
    )
    .await;
}

/// Partitions held by all apply instances, `topic[p]`.
fn held(s: &Value) -> Vec<String> {
    let mut v: Vec<String> = s["apply"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| a["partitions"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_of_the_active_capture_hands_over_to_the_standby_within_10s() {
    let p = Ctl::new("failover");
    schema(&p.db).await;
    p.create("[capture.kafka]\npartitions = 2\n");
    let names = ["cap-a", "cap-b", "app-a", "app-b"];
    let mut caps = [p.serve("capture", "cap-a"), p.serve("capture", "cap-b")];
    let _apps = [p.serve("apply", "app-a"), p.serve("apply", "app-b")];
    wait_leader_and_standby(&p, &names).await;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let load = workload(p.db.clone(), stop_rx, true);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let leader = active(&p.status()).expect("a leader");
    let standby = if leader == "cap-a" { "cap-b" } else { "cap-a" };
    caps.iter_mut()
        .find(|c| c.1 == leader)
        .expect("leader process")
        .kill9();
    let killed = Instant::now();
    let s = p
        .wait_status(
            Duration::from_secs(15),
            "the standby to take over",
            &names,
            |s| active(s).as_deref() == Some(standby) && capture_running(s),
        )
        .await;
    let takeover = killed.elapsed();
    assert!(
        takeover < Duration::from_secs(10),
        "takeover took {takeover:?} (goal < 10 s); status {s:#}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_tx.send(true).expect("stop workload");
    let transactions = load.await.expect("workload");
    assert!(transactions > 50, "workload too small: {transactions}");
    p.wait_in_sync(Duration::from_secs(60), &names).await;
    // The keyless log gets two identical rows per transaction: a change applied
    // twice would make the multiset comparison above fail; check the count too.
    let rows = scalar(
        &kit::target_url(),
        &format!("SELECT COUNT(*) FROM `{}`.log", p.db),
    )
    .await;
    assert_eq!(rows as u64, transactions * 2);
    // Status says which apply instance holds what: all 6 partitions (t, log and the
    // heartbeat table, 2 each), each once.
    let s = p
        .wait_status(
            Duration::from_secs(10),
            "both applies to report partitions",
            &names,
            |s| held(s).len() == 6,
        )
        .await;
    let h = held(&s);
    let mut unique = h.clone();
    unique.dedup();
    assert_eq!(h, unique, "a partition held twice: {s:#}");
    eprintln!("takeover after kill -9: {takeover:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_mapping_change_and_delete_under_load() {
    let p = Ctl::new("pause");
    schema(&p.db).await;
    // One partition, so the stream has one order and a mapping change one boundary.
    // At first `note` is not replicated.
    let mapped = format!(
        "[capture.kafka]\npartitions = 1\n[[map]]\nsource_db = '{}'\nsource_table = 't'\nexclude = [\"note\"]\n",
        p.db
    );
    p.create(&mapped);
    let names = ["cap", "app"];
    let _cap = p.serve("capture", "cap");
    let _app = p.serve("apply", "app");
    wait_running(&p, &names).await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Inserts only: a row's `note` then tells which mapping applied its insert.
    let load = workload(p.db.clone(), stop_rx, false);
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Pause: both stop within seconds, at a committed position.
    p.ok(&["pipeline", "pause", &p.name]);
    let paused_at = Instant::now();
    p.wait_status(
        Duration::from_secs(10),
        "both services paused",
        &names,
        |s| s["capture_status"] == "active (paused)" && s["apply"][0]["status"] == "paused",
    )
    .await;
    let took = paused_at.elapsed();
    let count = format!("SELECT COUNT(*) FROM `{}`.t", p.db);
    let target_then = scalar(&kit::target_url(), &count).await;
    let position_then = p.status()["position"].clone();
    let source_then = scalar(&kit::source_url(), &count).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        scalar(&kit::source_url(), &count).await > source_then,
        "the workload goes on"
    );
    assert_eq!(
        scalar(&kit::target_url(), &count).await,
        target_then,
        "apply wrote while paused"
    );
    assert_eq!(
        p.status()["position"],
        position_then,
        "capture stored a position while paused"
    );

    // Resume: continues from there.
    p.ok(&["pipeline", "resume", &p.name]);
    p.wait_status(Duration::from_secs(10), "running again", &names, |s| {
        capture_running(s) && s["apply"][0]["status"] == "applying"
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Mapping change under load: replicate `note` from now on.
    let def2 = p.write(
        "p2.toml",
        &p.definition("[capture.kafka]\npartitions = 1\n"),
    );
    p.ok(&[
        "pipeline",
        "edit",
        &p.name,
        "-f",
        def2.to_str().expect("utf8"),
    ]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop_tx.send(true).expect("stop");
    let transactions = load.await.expect("workload");
    let db = &p.db;
    let q = |sql: String| async move { scalar(&kit::target_url(), &sql).await };
    let all = format!("SELECT COUNT(*) FROM `{db}`.t");
    kit::eventually(Duration::from_secs(60), "every row applied", || async {
        Ok((q(all.clone()).await as u64 == transactions).then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", p.logs(&names)));
    // Inserts are in id order; the switch happened once, between two records: every
    // row inserted before it lacks `note`, every row after has it.
    let last_without = q(format!("SELECT MAX(id) FROM `{db}`.t WHERE note IS NULL")).await;
    let first_with = q(format!(
        "SELECT MIN(id) FROM `{db}`.t WHERE note IS NOT NULL"
    ))
    .await;
    let with = q(format!(
        "SELECT COUNT(*) FROM `{db}`.t WHERE note IS NOT NULL"
    ))
    .await;
    assert!(
        last_without > 0 && with > 0,
        "both mappings applied: {last_without} {with}"
    );
    assert_eq!(
        first_with,
        last_without + 1,
        "the mapping changed at one boundary of the insert stream"
    );

    // Delete: refused while running, done once stopped; services go idle.
    let (code, _, err) = p.ctl(&["pipeline", "delete", &p.name]);
    assert_eq!(code, 1, "delete of a running pipeline: {err}");
    assert!(err.contains("stop"), "{err}");
    p.ok(&["pipeline", "stop", &p.name]);
    p.ok(&["pipeline", "delete", &p.name]);
    assert!(!p.ok(&["pipeline", "list"]).contains(&p.name));
    let (code, _, err) = p.ctl(&["status", &p.name]);
    assert_eq!(code, 4, "status of a deleted pipeline: {err}");
    kit::eventually(Duration::from_secs(10), "services idle", || async {
        let nodes: Value = serde_json::from_str(&p.ok(&["-o", "json", "nodes"]))?;
        let idle = nodes.as_array().into_iter().flatten().all(|n| {
            n["status"]
                .as_str()
                .is_some_and(|s| s.starts_with("waiting: pipeline not defined"))
        });
        Ok(idle.then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", p.logs(&names)));
    eprintln!("paused within {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_paused_past_its_session_publishes_nothing_after_it_resumes() {
    let p = Ctl::new("fence");
    schema(&p.db).await;
    p.create("[capture.kafka]\npartitions = 1\n");
    let names = ["fa", "fb", "fapp"];
    let caps = [p.serve("capture", "fa"), p.serve("capture", "fb")];
    let _app = p.serve("apply", "fapp");
    wait_leader_and_standby(&p, &names).await;
    insert_rows(&p.db, 1, 51).await;
    p.wait_in_sync(Duration::from_secs(30), &names).await;
    let topic = format!("{}.{}.t", p.prefix, p.db);
    let before = kit::topic_epochs(&topic, Duration::from_secs(2))
        .await
        .expect("topic");
    assert_eq!(before.len(), 1, "one leader so far: {before:?}");
    let (old_epoch, old_records) = before
        .iter()
        .next()
        .map(|(e, n)| (*e, *n))
        .expect("records");
    assert!(old_epoch.is_some(), "records carry the leader's epoch");

    // Freeze the leader (idle, everything acknowledged) past its session timeout.
    let leader = active(&p.status()).expect("leader");
    let frozen = caps.iter().find(|c| c.1 == leader).expect("leader process");
    frozen.signal("-STOP");
    insert_rows(&p.db, 51, 101).await;
    p.wait_status(
        Duration::from_secs(20),
        "the standby to take over",
        &names,
        |s| active(s).is_some_and(|a| a != leader) && capture_running(s),
    )
    .await;
    // Wake it while the source keeps changing: it must notice it lost the lease.
    frozen.signal("-CONT");
    insert_rows(&p.db, 101, 151).await;
    kit::eventually(
        Duration::from_secs(15),
        "the old leader to report the lost lease",
        || async { Ok(p.log(&leader).contains("leadership lost").then_some(())) },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", p.logs(&names)));
    insert_rows(&p.db, 151, 161).await;
    p.wait_in_sync(Duration::from_secs(60), &names).await;
    let after = kit::topic_epochs(&topic, Duration::from_secs(2))
        .await
        .expect("topic");
    assert_eq!(
        after.get(&old_epoch).copied(),
        Some(old_records),
        "the deposed leader published after losing its lease: {after:?}"
    );
    assert!(
        after.keys().any(|e| e > &old_epoch),
        "the successor publishes with a higher epoch: {after:?}"
    );
}

#[tokio::test]
async fn bad_definitions_are_refused_with_every_problem_named() {
    let p = Ctl::new("bad");
    let good = p.definition("");
    // Unknown key, bad regex, missing credentials: all reported at once.
    let bad = good
        .replace("description =", "colour = \"blue\"\ndescription =")
        .replace(
            &format!("include = ['{}\\..*']", p.db),
            "include = ['(unclosed']",
        )
        .replace(
            &format!(
                "[target]\nurl = \"{}\"\npassword_env = \"{PW_ENV}\"",
                split_url(&kit::target_url()).0
            ),
            &format!(
                "[target]\nurl = \"{}\"\npassword_env = \"OTTER_IT_UNSET_PW\"",
                split_url(&kit::target_url()).0
            ),
        );
    let f = p.write("bad.toml", &bad);
    let (code, out, err) = p.ctl(&["pipeline", "create", "-f", f.to_str().expect("utf8")]);
    assert_eq!(code, 1, "{out}{err}");
    for field in [
        "colour: unknown key",
        "tables.include: `(unclosed`",
        "target.password_env: environment variable OTTER_IT_UNSET_PW",
    ] {
        assert!(err.contains(field), "`{field}` not named in:\n{err}");
    }
    // A password in clear is refused, YAML included.
    let yaml = format!(
        "name: {}\nsource: {{url: 'mysql://otter:secret@127.0.0.1:3307', password_env: X, server_id: 9}}\n\
         target: {{url: 'mysql://otter@127.0.0.1:3308', password_env: X}}\nkafka: {{brokers: b, topic_prefix: t}}\n",
        p.name
    );
    let f = p.write("bad.yaml", &yaml);
    let (code, _, err) = p.ctl(&["pipeline", "create", "-f", f.to_str().expect("utf8")]);
    assert_eq!(code, 1);
    assert!(err.contains("source.url: contains a password"), "{err}");
    // An unreachable source is named, and nothing was created.
    let unreachable = good.replace(
        &split_url(&kit::source_url()).0,
        "mysql://otter@127.0.0.1:1",
    );
    let f = p.write("unreachable.toml", &unreachable);
    let (code, _, err) = p.ctl(&["pipeline", "create", "-f", f.to_str().expect("utf8")]);
    assert_eq!(code, 1);
    assert!(err.contains("source.url: cannot connect"), "{err}");
    assert!(!p.ok(&["pipeline", "list"]).contains(&p.name));
    // Wrong credentials are named as such, for the side they concern.
    let (code, _, err) = p.ctl_with(
        &[
            "pipeline",
            "create",
            "-f",
            p.write("good-pw.toml", &good).to_str().expect("utf8"),
        ],
        &[(PW_ENV, "not-the-password")],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("source.url") && err.contains("Access denied"),
        "{err}"
    );
    assert!(!p.ok(&["pipeline", "list"]).contains(&p.name));
    // The good one passes every check, including connecting to both servers.
    let f = p.write("good.toml", &good);
    p.ok(&[
        "pipeline",
        "create",
        "-f",
        f.to_str().expect("utf8"),
        "--state",
        "stopped",
    ]);
    let (code, _, err) = p.ctl(&["pipeline", "create", "-f", f.to_str().expect("utf8")]);
    assert_eq!(code, 1, "a second create is refused: {err}");
    assert!(err.contains("already exists"), "{err}");
    // `edit` without a file opens $EDITOR on the definition; the result is checked
    // like a create, and a refused edit changes nothing.
    let editor = |name: &str, sed: &str| {
        let path = p.write(name, &format!("#!/bin/sh\nsed -i '{sed}' \"$1\"\n"));
        let _ = std::process::Command::new("chmod")
            .arg("+x")
            .arg(&path)
            .status();
        path.to_str().expect("utf8").to_owned()
    };
    let good_edit = editor("ed1.sh", "s/retry_ms = 200/retry_ms = 300/");
    let (code, _, err) = p.ctl_with(
        &["pipeline", "edit", &p.name, "--no-check"],
        &[("EDITOR", good_edit.as_str())],
    );
    assert_eq!(code, 0, "{err}");
    assert!(p
        .ok(&["pipeline", "show", &p.name])
        .contains("retry_ms = 300"));
    let bad_edit = editor("ed2.sh", "s/retry_ms = 300/retry_mss = 1/");
    let (code, _, err) = p.ctl_with(
        &["pipeline", "edit", &p.name, "--no-check"],
        &[("EDITOR", bad_edit.as_str())],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("retry_mss"), "{err}");
    assert!(p
        .ok(&["pipeline", "show", &p.name])
        .contains("retry_ms = 300"));
}

#[tokio::test]
async fn positions_are_set_only_while_stopped_and_a_timestamp_finds_its_transaction() {
    let p = Ctl::new("pos");
    schema(&p.db).await;
    let f = p.write("p.toml", &p.definition(""));
    p.ok(&[
        "pipeline",
        "create",
        "-f",
        f.to_str().expect("utf8"),
        "--state",
        "paused",
        "--no-check",
    ]);
    let (code, _, err) = p.ctl(&[
        "position",
        "set",
        &p.name,
        "--file-pos",
        "mariadb-bin.000001:4",
    ]);
    assert_eq!(code, 1, "set while paused: {err}");
    assert!(err.contains("only while stopped"), "{err}");
    p.ok(&["pipeline", "stop", &p.name]);

    let head = |s: String| {
        let (f, o) = s.rsplit_once(':').expect("file:offset");
        (f.to_owned(), o.parse::<u64>().expect("offset"))
    };
    let before = head(kit::source_head().await.expect("head"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let at = scalar(&kit::source_url(), "SELECT UNIX_TIMESTAMP()").await;
    exec(
        &kit::source_url(),
        &[&format!("INSERT INTO `{}`.t VALUES (1, 1, 'ts')", p.db)],
    )
    .await;
    let after = head(kit::source_head().await.expect("head"));
    p.ok(&["position", "set", &p.name, "--timestamp", &at.to_string()]);
    let pos: Value =
        serde_json::from_str(&p.ok(&["-o", "json", "position", "show", &p.name])).expect("json");
    let found = (
        pos["file"].as_str().expect("file").to_owned(),
        pos["offset"].as_u64().expect("offset"),
    );
    assert!(
        found >= before && found < after,
        "{found:?} not in [{before:?}, {after:?})"
    );

    p.ok(&["position", "set", &p.name, "--gtid", "0-1-42"]);
    let pos: Value =
        serde_json::from_str(&p.ok(&["-o", "json", "position", "show", &p.name])).expect("json");
    assert_eq!(pos["gtids"], "0-1-42");
    assert_eq!(pos["file"], "");
    let (code, _, err) = p.ctl(&["position", "set", &p.name, "--gtid", "not-a-gtid"]);
    assert_eq!(code, 1, "{err}");
}

#[tokio::test]
async fn with_digest_acls_a_process_without_the_credentials_is_refused() {
    let p = Ctl::new("acl");
    let f = p.write("p.toml", &p.definition(""));
    let secret = [("OTTER_ZK_DIGEST", "otter:s3cret")];
    let (code, _, err) = p.ctl_with(
        &[
            "pipeline",
            "create",
            "-f",
            f.to_str().expect("utf8"),
            "--state",
            "stopped",
            "--no-check",
        ],
        &secret,
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = p.ctl_with(&["pipeline", "list"], &secret);
    assert_eq!(code, 0);
    assert!(out.contains(&p.name));
    for env in [vec![], vec![("OTTER_ZK_DIGEST", "otter:wrong")]] {
        let (code, _, err) = p.ctl_with(&["pipeline", "list"], &env);
        assert_eq!(code, 3, "{env:?}: {err}");
        assert!(err.contains("refused access"), "{err}");
    }
    // A service without them stops at start with the same message.
    let mut svc = p.serve("apply", "acl-app");
    let status = tokio::task::spawn_blocking(move || svc.0.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(!status.success());
    assert!(
        p.log("acl-app").contains("refused access"),
        "{}",
        p.log("acl-app")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_was_written_and_readiness_tells_the_roles() {
    let p = Ctl::new("metrics");
    schema(&p.db).await;
    p.create("[capture.kafka]\npartitions = 2\n");
    let names = ["mcap-a", "mcap-b", "mapp"];
    let _caps = [p.serve("capture", "mcap-a"), p.serve("capture", "mcap-b")];
    let _app = p.serve("apply", "mapp");
    wait_leader_and_standby(&p, &names).await;
    let s = p.status();
    let leader = active(&s).expect("leader");
    let endpoint = |instance: &str| endpoint_of(&p, instance);
    let standby = if leader == "mcap-a" {
        "mcap-b"
    } else {
        "mcap-a"
    };
    let (lead_ep, standby_ep, apply_ep) = (endpoint(&leader), endpoint(standby), endpoint("mapp"));
    assert_eq!(
        http_get(&lead_ep, "/readyz").await,
        (200, "capturing\n".into())
    );
    assert_eq!(
        http_get(&standby_ep, "/readyz").await,
        (200, "standby\n".into())
    );
    assert_eq!(http_get(&apply_ep, "/healthz").await.0, 200);

    // 100 transactions of 3 row inserts each.
    let src = kit::source_url();
    for i in 1..=100 {
        exec(
            &src,
            &[&format!(
                "BEGIN; INSERT INTO `{db}`.t VALUES ({i}, 0, 'm'); \
                 INSERT INTO `{db}`.log VALUES ({i}, 'a'), ({i}, 'b'); COMMIT",
                db = p.db
            )],
        )
        .await;
    }
    p.wait_in_sync(Duration::from_secs(60), &names).await;
    kit::eventually(Duration::from_secs(10), "counters to settle", || async {
        let cap = http_get(&lead_ep, "/metrics").await.1;
        let app = http_get(&apply_ep, "/metrics").await.1;
        let published = metric(
            &cap,
            "otter_capture_events_published_total",
            &["op=\"insert\""],
        );
        let transactions = metric(&cap, "otter_capture_transactions_total", &[]);
        let applied = metric(&app, "otter_apply_events_applied_total", &[]);
        // Transactions count every commit read, other tests' included.
        Ok((published == 300.0 && transactions >= 100.0 && applied == 300.0).then_some(()))
    })
    .await
    .unwrap_or_else(|e| {
        panic!("{e}\n{}", p.logs(&names));
    });
    // Reads, publish and statement timings, and the consumer lag back at 0.
    let settled = kit::eventually(
        Duration::from_secs(10),
        "the read and timing metrics",
        || async {
            let cap = http_get(&lead_ep, "/metrics").await.1;
            let app = http_get(&apply_ep, "/metrics").await.1;
            let read = metric(&cap, "otter_capture_events_read_total", &["op=\"insert\""]);
            let bytes = metric(&cap, "otter_capture_binlog_bytes_read_total", &[]);
            let published = metric(&cap, "otter_capture_publish_seconds_count", &[]);
            let statements = metric(&app, "otter_apply_statement_seconds_count", &[]);
            let written = metric(&app, "otter_apply_rows_written_total", &[]);
            let backlog = metric(&app, "otter_apply_backlog_records", &[]);
            let stalled = metric(&app, "otter_apply_stalled_seconds", &[]);
            Ok((read == 300.0
                && bytes > 0.0
                && published >= 100.0
                && statements >= 1.0
                && written == 300.0
                && backlog == 0.0
                && stalled == 0.0
                && app.contains("otter_apply_backlog_records{"))
            .then_some(()))
        },
    )
    .await;
    if let Err(e) = settled {
        let cap = http_get(&lead_ep, "/metrics").await.1;
        let app = http_get(&apply_ep, "/metrics").await.1;
        panic!("{e}\n{cap}\n{app}");
    }
    // The source is idle for this pipeline (other tests may write): within a probe
    // interval capture sees the head and is not seconds behind.
    kit::eventually(Duration::from_secs(15), "the behind gauges", || async {
        let cap = http_get(&lead_ep, "/metrics").await.1;
        let head = metric(&cap, "otter_capture_source_head", &["part=\"offset\""]);
        let behind = metric(&cap, "otter_capture_behind_seconds", &[]);
        Ok((head > 0.0 && behind < 5.0).then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let cap = http_get(&lead_ep, "/metrics").await.1;
    assert_eq!(metric(&cap, "otter_capture_leader", &[]), 1.0);
    // The binlog retention gauges: the source keeps its files (no expiry set by
    // infra/) and capture reads one of them.
    let oldest = metric(&cap, "otter_capture_source_binlog_oldest", &[]);
    let file = metric(&cap, "otter_capture_position", &["part=\"file\""]);
    let head = metric(&cap, "otter_capture_source_head", &["part=\"file\""]);
    assert!(
        oldest >= 1.0 && oldest <= file && file <= head,
        "oldest {oldest} <= position {file} <= head {head}"
    );
    let expire = scalar(
        &kit::source_url(),
        "SELECT CAST(@@binlog_expire_logs_seconds AS SIGNED)",
    )
    .await;
    assert_eq!(
        metric(&cap, "otter_capture_source_binlog_expire_seconds", &[]),
        expire as f64
    );
    let idle = http_get(&standby_ep, "/metrics").await.1;
    assert_eq!(metric(&idle, "otter_capture_leader", &[]), 0.0);
    assert_eq!(
        metric(&idle, "otter_capture_events_published_total", &[]),
        0.0
    );
    // t, log and the heartbeat table, 2 partitions each.
    let app = http_get(&apply_ep, "/metrics").await.1;
    assert_eq!(
        metric(&app, "otter_apply_partitions", &["state=\"held\""]),
        6.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_stays_low_on_an_idle_source_rises_while_paused_and_recovers() {
    let p = Ctl::new("lag");
    schema(&p.db).await;
    p.create("");
    let names = ["lcap", "lapp"];
    let _cap = p.serve("capture", "lcap");
    let _app = p.serve("apply", "lapp");
    wait_running(&p, &names).await;
    let ep = endpoint_of(&p, "lapp");
    let lag = || async {
        let m = http_get(&ep, "/metrics").await.1;
        m.contains("otter_apply_lag_seconds{")
            .then(|| metric(&m, "otter_apply_lag_seconds", &[]))
    };
    kit::eventually(
        Duration::from_secs(20),
        "a first heartbeat to arrive",
        || async { Ok(lag().await.filter(|l| *l < 3.0)) },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", p.logs(&names)));
    // Nothing is written to this pipeline's tables: the lag must stay near the 1 s
    // heartbeat interval, not grow with the idle time.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let l = lag().await.expect("lag");
        assert!(l < 3.0, "idle source, lag {l} s\n{}", p.logs(&names));
    }
    let m = http_get(&ep, "/metrics").await.1;
    let offset = metric(&m, "otter_apply_source_clock_offset_seconds", &[]);
    assert!(
        m.contains("otter_apply_source_clock_offset_seconds{") && offset.abs() < 1.0,
        "the source clock is read (same machine: offset ~0): {offset}"
    );
    // Paused: nothing moves, and the lag says so by growing.
    p.ok(&["pipeline", "pause", &p.name]);
    tokio::time::sleep(Duration::from_secs(6)).await;
    let paused = lag().await.expect("lag");
    assert!(paused > 4.0, "lag while paused for 6 s: {paused}");
    p.ok(&["pipeline", "resume", &p.name]);
    kit::eventually(Duration::from_secs(30), "the lag to fall back", || async {
        Ok(lag().await.filter(|l| *l < 3.0))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", p.logs(&names)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_blocked_by_the_target_is_reported_stuck_and_recovers() {
    let p = Ctl::new("stuck");
    schema(&p.db).await;
    p.create("");
    let names = ["scap", "sapp"];
    let _cap = p.serve("capture", "scap");
    let _app = p.serve("apply", "sapp");
    wait_running(&p, &names).await;
    let ep = endpoint_of(&p, "sapp");
    kit::eventually(
        Duration::from_secs(20),
        "a first heartbeat applied",
        || async {
            let m = http_get(&ep, "/metrics").await.1;
            Ok(m.contains("otter_apply_lag_seconds{").then_some(()))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", p.logs(&names)));
    // Another session holds a write lock on the target table: apply's statements wait.
    let mut lock = mysql_async::Conn::from_url(kit::target_url())
        .await
        .expect("target reachable");
    mysql_async::prelude::Queryable::query_drop(
        &mut lock,
        format!("LOCK TABLES `{}`.t WRITE", p.db),
    )
    .await
    .expect("lock");
    insert_rows(&p.db, 1, 6).await;
    let blocked = kit::eventually(
        Duration::from_secs(30),
        "records waiting and the stall counted",
        || async {
            let m = http_get(&ep, "/metrics").await.1;
            let backlog = metric(&m, "otter_apply_backlog_records", &[]);
            let stalled = metric(&m, "otter_apply_stalled_seconds", &[]);
            let lag = metric(&m, "otter_apply_lag_seconds", &[]);
            // Heartbeats (their own topic) still flow; the lag must not hide the stall.
            Ok((backlog >= 5.0 && stalled >= 6.0 && lag >= stalled - 1.0).then_some(()))
        },
    )
    .await;
    if let Err(e) = blocked {
        let m = http_get(&ep, "/metrics").await.1;
        panic!("{e}\n{m}\n{}", p.logs(&names));
    }
    // The registration otterctl reads is refreshed every 2 s.
    let status = || {
        let (code, out, err) = p.ctl(&["-o", "json", "status", "--stuck-after", "5", &p.name]);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<Value>(&out).expect("json")
    };
    let s = kit::eventually(Duration::from_secs(10), "status to say stuck", || async {
        let s = status();
        Ok((!s["stuck"].is_null()).then_some(s))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: {:#}", status()));
    let why = s["stuck"].as_str().unwrap_or_default();
    assert!(
        why.contains("apply sapp has") && why.contains("committed nothing"),
        "status names the stuck apply: {s:#}"
    );
    assert!(!why.contains("capture"), "capture moves on: {why}");
    assert!(s["backlog"].as_i64().unwrap_or(0) >= 5, "{s:#}");
    let table = p.ok(&["status", "--stuck-after", "5"]);
    assert!(table.contains("STUCK"), "{table}");
    // The default threshold (30 s) is not reached yet.
    assert!(p.status()["stuck"].is_null());

    mysql_async::prelude::Queryable::query_drop(&mut lock, "UNLOCK TABLES")
        .await
        .expect("unlock");
    drop(lock);
    p.wait_in_sync(Duration::from_secs(60), &names).await;
    kit::eventually(Duration::from_secs(15), "the stall to clear", || async {
        let m = http_get(&ep, "/metrics").await.1;
        let stalled = metric(&m, "otter_apply_stalled_seconds", &[]);
        let lag = metric(&m, "otter_apply_lag_seconds", &[]);
        Ok((stalled == 0.0 && lag < 3.0).then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", p.logs(&names)));
    p.wait_status(Duration::from_secs(10), "not stuck", &names, |s| {
        s["stuck"].is_null() && s["backlog"] == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// Diagnosed: under libfaketime (0.9.10, MT or not, monotonic faked or not) librdkafka's
// threads sit in futex waits and the consumer never joins its group: librdkafka computes
// its cond-wait deadlines from the (faked) realtime clock and libfaketime's translation of
// those waits back to the kernel's clock does not hold (cf. wolfcw/libfaketime#469). The
// correction itself is unit-tested in `otter_apply::lag`; a real skewed host needs a VM.
#[ignore = "libfaketime hangs librdkafka's timed waits; see the comment above"]
async fn lag_is_right_when_the_apply_hosts_clock_is_ten_minutes_off() {
    let p = Ctl::new("skew");
    schema(&p.db).await;
    p.create("");
    let names = ["kcap", "kapp"];
    let _cap = p.serve("capture", "kcap");
    // apply's wall clock runs 600 s ahead of the source's (and of capture's).
    let _app = p.serve_skewed("apply", "kapp", "+600s");
    wait_running(&p, &names).await;
    let ep = endpoint_of(&p, "kapp");
    kit::eventually(
        Duration::from_secs(30),
        "a measured offset and a low lag",
        || async {
            let m = http_get(&ep, "/metrics").await.1;
            if !m.contains("otter_apply_lag_seconds{") {
                return Ok(None);
            }
            let offset = metric(&m, "otter_apply_source_clock_offset_seconds", &[]);
            let lag = metric(&m, "otter_apply_lag_seconds", &[]);
            Ok(((offset + 600.0).abs() < 2.0 && lag < 3.0).then_some(()))
        },
    )
    .await
    .unwrap_or_else(|e| {
        panic!("{e}\n{}", p.logs(&names));
    });
    // Rows written while the clocks disagree arrive, and the lag stays honest.
    insert_rows(&p.db, 1, 21).await;
    p.wait_in_sync(Duration::from_secs(60), &names).await;
    for _ in 0..3 {
        let m = http_get(&ep, "/metrics").await.1;
        let lag = metric(&m, "otter_apply_lag_seconds", &[]);
        assert!(lag < 3.0, "lag {lag} s with a skewed apply clock");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
