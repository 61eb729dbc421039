#!/usr/bin/env bash
# Stops what infra/up.sh started. Safe to run twice. Data is kept; `infra/down.sh
# --wipe` also removes $OTTER_VAR.
source "$(dirname "$0")/lib.sh"

stop() { # stop NAME PIDFILE
  local name=$1 pidf=$2 pid i
  pid_alive "$pidf" || { rm -f "$pidf"; return 0; }
  pid=$(cat "$pidf")
  log "stopping $name (pid $pid)"
  kill "$pid" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidf"
}

stop "Tansu" "$OTTER_VAR/run/tansu.pid"
stop "ZooKeeper" "$OTTER_VAR/run/zookeeper.pid"
stop "MariaDB target" "$OTTER_VAR/run/target.pid"
stop "MariaDB source" "$OTTER_VAR/run/source.pid"
if [ "${1:-}" = --wipe ]; then
  log "removing $OTTER_VAR"
  rm -rf "$OTTER_VAR"
fi
