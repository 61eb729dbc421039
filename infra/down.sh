#!/usr/bin/env bash
# Stops what infra/up.sh started. Safe to run twice. Data is kept; `infra/down.sh
# --wipe` also removes $OTTER_VAR.
#   infra/down.sh [--wipe] [source|target|zookeeper|broker|replica|bench-broker]...   (default: all)
# (tests restart single parts with `infra/down.sh target && infra/up.sh target`)
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

wipe=false
parts=()
for a in "$@"; do
  case "$a" in
    --wipe) wipe=true ;;
    source|target|zookeeper|broker|replica|bench-broker) parts+=("$a") ;;
    *) log "unknown argument $a (--wipe source|target|zookeeper|broker|replica|bench-broker)"; exit 2 ;;
  esac
done
[ ${#parts[@]} -eq 0 ] && parts=(bench-broker broker zookeeper replica target source)
for p in "${parts[@]}"; do
  case "$p" in
    broker) stop "Tansu" "$OTTER_VAR/run/tansu.pid" ;;
    zookeeper) stop "ZooKeeper" "$OTTER_VAR/run/zookeeper.pid" ;;
    target) stop "MariaDB target" "$OTTER_VAR/run/target.pid" ;;
    source) stop "MariaDB source" "$OTTER_VAR/run/source.pid" ;;
    replica) stop "MariaDB replica" "$OTTER_VAR/run/replica.pid" ;;
    bench-broker) stop "Tansu (memory)" "$OTTER_VAR/run/tansu-bench.pid" ;;
  esac
done
if $wipe; then
  log "removing $OTTER_VAR"
  rm -rf "$OTTER_VAR"
fi
