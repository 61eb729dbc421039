#!/usr/bin/env bash
# Checks the monitoring config shipped in infra/: Prometheus alert rules (syntax and
# their unit tests) and the scrape config. Run by `make test`.
source "$(dirname "$0")/lib.sh"
command -v promtool >/dev/null || "$REPO_ROOT/infra/install.sh" packages
cd "$REPO_ROOT/infra/prometheus"
promtool check rules alerts.yml
promtool test rules alerts_test.yml
promtool check config --syntax-only prometheus.yml
# Every Grafana panel query must be valid PromQL: check them as recording rules.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$REPO_ROOT/infra/grafana/dashboards/otter.json" >"$tmp/panels.yml" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print("groups:\n  - name: dashboard\n    rules:")
for p in d["panels"]:
    for i, t in enumerate(p.get("targets", [])):
        expr = t["expr"].replace("$pipeline", ".*")
        print(f"      - record: otter_dashboard_panel_{p['id']}_{i}")
        print(f"        expr: {json.dumps(expr)}")
PY
promtool check rules "$tmp/panels.yml"
