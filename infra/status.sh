#!/usr/bin/env bash
# Says what runs where, and what is missing. Exit 0 when everything runs.
source "$(dirname "$0")/lib.sh"
set +e
missing=0
row() { printf '%-16s %-8s %-18s %s\n' "$@"; }
check() { # check NAME PIDFILE PORT
  local name=$1 pidf=$2 port=$3
  if pid_alive "$pidf" && port_open "$port"; then
    row "$name" running "127.0.0.1:$port" "pid $(cat "$pidf")"
  elif port_open "$port"; then
    row "$name" foreign "127.0.0.1:$port" "port taken by a process infra/ did not start"
    missing=1
  else
    row "$name" stopped "127.0.0.1:$port" "start with: infra/up.sh"
    missing=1
  fi
}
row COMPONENT STATE ADDRESS DETAIL
check "mariadb-source" "$OTTER_VAR/run/source.pid" "$SOURCE_PORT"
check "mariadb-target" "$OTTER_VAR/run/target.pid" "$TARGET_PORT"
check "zookeeper" "$OTTER_VAR/run/zookeeper.pid" "$ZK_PORT"
check "broker (tansu)" "$OTTER_VAR/run/tansu.pid" "$BROKER_PORT"
for bin in mariadbd java; do
  command -v "$bin" >/dev/null || { echo "missing: $bin (run infra/install.sh)"; missing=1; }
done
[ -x "$TANSU_BIN" ] || { echo "missing: $TANSU_BIN (run infra/install.sh broker)"; missing=1; }
echo "data: $OTTER_VAR"
exit $missing
