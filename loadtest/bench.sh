#!/usr/bin/env bash
# otter side by side with MariaDB's own replication (issue 8). Sets up what
# loadtest/bench.py needs, then runs it with the given arguments:
#   loadtest/bench.sh --scenario oltp                    (what `make bench` runs)
#   loadtest/bench.sh --scenario all --steady-secs 60
# Installs sysbench, pymysql, matplotlib and perf (Debian), starts the stack and the
# native replica (:3309), a fresh memory-engine Tansu (:9093, stopped on exit) and
# builds otter in release mode.
source "$(dirname "$0")/../infra/lib.sh"

"$REPO_ROOT/infra/install.sh" bench
"$REPO_ROOT/infra/up.sh" >/dev/null
"$REPO_ROOT/infra/up.sh" replica >/dev/null
# A fresh broker per run: the memory engine keeps every earlier run's topics in RAM.
"$REPO_ROOT/infra/down.sh" bench-broker 2>/dev/null
start_bench_broker
log "building otter-capture and otter-apply (release)"
(cd "$REPO_ROOT" && cargo build --release -q -p otter-capture -p otter-apply)
/usr/bin/python3 "$REPO_ROOT/loadtest/bench.py" "$@"
