//! The monitoring shipped in `infra/` refers only to metrics the services emit: every
//! `otter_*` name in the alert rules and the Grafana dashboard is one of the names the
//! services register (`metrics::ALL`), so a renamed metric cannot silently blank a panel
//! or an alert; and the metrics reference (`schemas/metrics/README.md`) lists exactly
//! those names. (`infra/check-monitoring.sh` checks syntax and the rules' unit tests
//! with promtool.)

use std::collections::BTreeSet;

fn names_in(text: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"[a-z_:]*otter_[a-z_:]+").expect("regex");
    re.find_iter(text)
        // Recording rules (`level:metric:operations`) are not metrics.
        .filter(|m| !m.as_str().contains(':'))
        .map(|m| {
            let n = m.as_str();
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| n.strip_suffix(s))
                .unwrap_or(n)
                .to_owned()
        })
        // Recording-rule names of the dashboard check, not metrics.
        .filter(|n| !n.starts_with("otter_dashboard_"))
        .collect()
}

fn known() -> BTreeSet<String> {
    otter_capture::metrics::ALL
        .iter()
        .chain(otter_apply::metrics::ALL)
        .map(|s| (*s).to_owned())
        .collect()
}

#[test]
fn the_metrics_reference_lists_exactly_the_metrics_the_services_emit() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let doc = std::fs::read_to_string(root.join("schemas/metrics/README.md")).expect("read");
    // The reference tables: one row per metric, its name first.
    let listed: BTreeSet<String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `otter_"))
        .filter_map(|l| l.split('`').next())
        .map(|n| format!("otter_{n}"))
        .collect();
    let known = known();
    let missing: Vec<_> = known.difference(&listed).collect();
    let extra: Vec<_> = listed.difference(&known).collect();
    assert!(
        missing.is_empty(),
        "not in schemas/metrics/README.md: {missing:?}"
    );
    assert!(extra.is_empty(), "listed but not emitted: {extra:?}");
}

#[test]
fn alerts_and_dashboards_use_only_metrics_the_services_emit() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let known = known();
    for file in [
        "infra/prometheus/alerts.yml",
        "infra/grafana/dashboards/otter.json",
    ] {
        let text = std::fs::read_to_string(root.join(file)).expect("monitoring file");
        let used = names_in(&text);
        assert!(used.len() >= 5, "{file} uses too few metrics: {used:?}");
        let unknown: Vec<_> = used.difference(&known).collect();
        assert!(
            unknown.is_empty(),
            "{file} refers to metrics no service emits: {unknown:?}"
        );
    }
}

#[test]
fn the_dashboard_has_the_panels_operators_need() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let d: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("infra/grafana/dashboards/otter.json")).expect("read"),
    )
    .expect("dashboard JSON");
    let titles: Vec<String> = d["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .map(|p| p["title"].as_str().unwrap_or_default().to_lowercase())
        .collect();
    for want in [
        "throughput",
        "behind",
        "batch",
        "errors",
        "position",
        "roles",
    ] {
        assert!(
            titles.iter().any(|t| t.contains(want)),
            "no `{want}` panel in {titles:?}"
        );
    }
}
