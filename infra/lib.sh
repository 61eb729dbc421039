# Shared settings for the infra scripts. Sourced, never run.
#
# Everything runs on 127.0.0.1. Runtime data (datadirs, logs, pid files) lives under
# $OTTER_VAR (default: <repo>/.otter, git-ignored); built tools are cached under
# $OTTER_TOOLS (default: ~/.cache/otter/tools) so a fresh clone on the same machine
# does not rebuild the broker.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OTTER_VAR=${OTTER_VAR:-$REPO_ROOT/.otter}
OTTER_TOOLS=${OTTER_TOOLS:-$HOME/.cache/otter/tools}

SOURCE_PORT=${OTTER_SOURCE_PORT:-3307}
TARGET_PORT=${OTTER_TARGET_PORT:-3308}
REPLICA_PORT=${OTTER_REPLICA_PORT:-3309}
ZK_PORT=${OTTER_ZK_PORT:-2181}
BROKER_PORT=${OTTER_BROKER_PORT:-9092}

TANSU_VERSION=0.6.0
TANSU_BIN=$OTTER_TOOLS/tansu-$TANSU_VERSION/bin/tansu

log() { printf '%s\n' "$*" >&2; }

# port_open PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port PORT SECONDS NAME LOGFILE: wait until PORT accepts, or fail naming the log.
wait_port() {
  local port=$1 secs=$2 name=$3 logfile=$4 i
  for ((i = 0; i < secs * 10; i++)); do
    port_open "$port" && return 0
    sleep 0.1
  done
  log "error: $name did not open 127.0.0.1:$port within ${secs}s; last lines of $logfile:"
  tail -n 20 "$logfile" >&2 || true
  return 1
}

# ensure_port_free PORT NAME: fail when something this repo did not start holds PORT.
ensure_port_free() {
  if port_open "$1"; then
    log "error: 127.0.0.1:$1 is taken by a process infra/ did not start; cannot start $2"
    return 1
  fi
}

# pid_alive FILE: true when FILE names a running process.
pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# start_bench_broker: a memory-engine Tansu on 127.0.0.1:9093 for the benchmarks (fast,
# not durable, wrong high watermarks); stopped on exit if this call started it.
start_bench_broker() {
  port_open 9093 && return 0
  mkdir -p "$OTTER_VAR/tansu-bench" "$OTTER_VAR/run" "$OTTER_VAR/log"
  log "starting a memory-engine Tansu on 127.0.0.1:9093 for the benchmark"
  (
    cd "$OTTER_VAR/tansu-bench"
    nohup "$TANSU_BIN" broker --listener-url tcp://127.0.0.1:9093 \
      --advertised-listener-url tcp://127.0.0.1:9093 --storage-engine memory://tansu/ \
      >"$OTTER_VAR/log/tansu-bench.log" 2>&1 &
    echo $! >"$OTTER_VAR/run/tansu-bench.pid"
  )
  wait_port 9093 30 "Tansu (memory)" "$OTTER_VAR/log/tansu-bench.log"
  trap 'kill "$(cat "$OTTER_VAR/run/tansu-bench.pid")" 2>/dev/null || true' EXIT
}

