//! What otter writes into ZooKeeper matches the JSON Schemas published in
//! `schemas/zookeeper/`, so tools reading the tree can rely on them.

use otter_coord::topology::{Desired, Instance, LastError, PipelineSpec, StateNode};
use otter_coord::{CapturePosition, TableVersion};
use serde_json::Value;

fn check(schema: &str, value: &impl serde::Serialize) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../schemas/zookeeper")
        .join(schema);
    let schema: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("schema file")).expect("schema JSON");
    let v = jsonschema::validator_for(&schema).expect("schema compiles");
    let value = serde_json::to_value(value).expect("serializes");
    let errors: Vec<String> = v
        .iter_errors(&value)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{} does not match {}: {errors:?}\n{value:#}",
        value,
        path.display()
    );
}

#[test]
fn every_node_otter_writes_matches_its_schema() {
    let spec: PipelineSpec = serde_json::from_value(
        toml::from_str::<Value>(
            r#"
name = "orders"
description = "d"
[source]
url = "mysql://otter@db1:3306"
password_env = "SRC_PW"
server_id = 7
[target]
url = "mysql://otter@db2:3306"
password_file = "/etc/otter/pw"
[kafka]
brokers = "k:9092"
topic_prefix = "otter.orders"
[tables]
include = ['shop\..*']
[[map]]
source_db = "shop"
target_db = "shop_copy"
[capture]
position_interval_ms = 100
[capture.kafka]
partitions = 2
[apply]
dry_run = false
"#,
        )
        .expect("toml"),
    )
    .expect("spec");
    assert!(spec.problems().is_empty(), "{:?}", spec.problems());
    check("pipeline.schema.json", &spec);
    check(
        "state.schema.json",
        &StateNode {
            desired: Desired::Paused,
            updated_ms: 1,
            by: "otterctl@h".into(),
        },
    );
    check(
        "error.schema.json",
        &LastError {
            service: "apply".into(),
            instance: "a1".into(),
            code: "record_undecodable".into(),
            class: "permanent".into(),
            message: "m".into(),
            at_ms: 1,
        },
    );
    let mut i = Instance::new("a1", "apply", "orders");
    i.partitions = vec!["otter.orders.shop.t[0]".into()];
    i.rate = 12.5;
    check("instance.schema.json", &i);
    check(
        "capture-position.schema.json",
        &CapturePosition {
            file: "mariadb-bin.000001".into(),
            offset: 4,
            gtids: "0-1-5".into(),
            source_server_id: 1,
            updated_ms: 1,
            source_ts: 1_700_000_000,
            schema_versions: vec![TableVersion {
                db: "d".into(),
                table: "t".into(),
                version: 2,
            }],
        },
    );
}

#[test]
fn a_definition_with_a_password_in_its_url_fails_the_schema_too() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../schemas/zookeeper/pipeline.schema.json");
    let schema: Value = serde_json::from_slice(&std::fs::read(path).expect("read")).expect("json");
    let v = jsonschema::validator_for(&schema).expect("compiles");
    let bad = serde_json::json!({
        "name": "p",
        "source": {"url": "mysql://u:secret@h:1", "password_env": "X", "server_id": 1},
        "target": {"url": "mysql://u@h:2", "password_env": "X"},
        "kafka": {"brokers": "b", "topic_prefix": "t"}
    });
    assert!(!v.is_valid(&bad));
}
