#!/usr/bin/env bash
# Capture throughput benchmark: records a binlog of >= 1M row changes on the source
# (mixed insert/update/delete, ~200-byte rows, 1,000-row transactions), then times
# otter-capture from the start of that binlog until the broker acknowledged
# everything (`run --stop-at`), and times decode alone on the same file.
#
#   loadtest/capture-bench.sh                 # memory-engine Tansu on :9093 (fast)
#   BENCH_BROKER=sqlite loadtest/capture-bench.sh   # the durable sqlite Tansu on :9092
#   ROWS=600000 PARTITIONS=4 loadtest/capture-bench.sh
#
# Prints a table and appends a dated row to loadtest/RESULTS.md.
source "$(dirname "$0")/../infra/lib.sh"
source "$(dirname "$0")/workload.sh"

ROWS=${ROWS:-600000}                 # inserts; updates = ROWS*5/12, deletes = ROWS/4
PARTITIONS=${PARTITIONS:-4}
BENCH_BROKER=${BENCH_BROKER:-memory}
OUT=$REPO_ROOT/loadtest/out
mkdir -p "$OUT"

"$REPO_ROOT/infra/up.sh" source zookeeper broker >/dev/null
command -v /usr/bin/time >/dev/null || { apt-get install -y -qq time >/dev/null; }

if [ "$BENCH_BROKER" = memory ]; then
  BROKERS=127.0.0.1:9093
  start_bench_broker
else
  BROKERS=127.0.0.1:$BROKER_PORT
fi

log "building otter-capture (release)"
(cd "$REPO_ROOT" && cargo build --release -q -p otter-capture)
BIN=${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/otter-capture

SQL=(mariadb --no-defaults -h127.0.0.1 -P"$SOURCE_PORT" -uotter -potter -N)
DB=bench_$(date +%s)
UPDATES=$((ROWS * 5 / 12))
DELETES=$((ROWS / 4))
TOTAL=$((ROWS + UPDATES + DELETES))

log "recording a binlog of $TOTAL row changes in $DB"
"${SQL[@]}" -e "FLUSH BINARY LOGS; CREATE DATABASE $DB; $(bench_table)"
START=$("${SQL[@]}" -e "SHOW MASTER STATUS" | awk '{print $1":"$2}')
t0=$(date +%s.%N)
bench_workload | "${SQL[@]}" "$DB"
t1=$(date +%s.%N)
END=$("${SQL[@]}" -e "SHOW MASTER STATUS" | awk '{print $1":"$2}')
FILE=${START%%:*}
BINLOG_BYTES=$(( ${END##*:} - ${START##*:} ))
log "source wrote $TOTAL changes in $(printf %.1f "$(echo "$t1 - $t0" | bc)") s; binlog $START .. $END ($((BINLOG_BYTES / 1048576)) MiB)"

RUN=bench_$(date +%s)
sed -e "s/^pipeline = .*/pipeline = \"$RUN\"/" -e "s/^topic_prefix = .*/topic_prefix = \"$RUN\"/" \
  -e "s/^start = .*/start = \"$START\"/" -e "s/^brokers = .*/brokers = \"$BROKERS\"/" \
  -e "s/^partitions = .*/partitions = $PARTITIONS/" -e "s/^include = .*/include = [\"$DB\\\\\\\\..*\"]/" \
  "$REPO_ROOT/services/capture/config.example.toml" >"$OUT/$RUN.toml"

log "capture: $START .. $END into $BENCH_BROKER Tansu ($BROKERS), $PARTITIONS partitions"
/usr/bin/time -f "%e %U %S %M" -o "$OUT/$RUN.time" \
  "$BIN" run --config "$OUT/$RUN.toml" --stop-at "$END" >"$OUT/$RUN.summary" 2>"$OUT/$RUN.log" \
  || { tail -n 20 "$OUT/$RUN.log" >&2; exit 1; }
read -r WALL USER SYS RSS_KB <"$OUT/$RUN.time"
SUMMARY=$(cat "$OUT/$RUN.summary")
CHANGES=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['changes'])" "$SUMMARY")
BYTES=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['bytes'])" "$SUMMARY")
[ "$CHANGES" -eq "$TOTAL" ] || { log "error: capture published $CHANGES changes, expected $TOTAL"; exit 1; }

log "decode only: $FILE (no broker)"
/usr/bin/time -f "%e %U %S %M" -o "$OUT/$RUN.decode.time" \
  "$BIN" decode "$OTTER_VAR/mariadb-source/$FILE" >/dev/null 2>"$OUT/$RUN.decode.log"
read -r DWALL DUSER DSYS DRSS_KB <"$OUT/$RUN.decode.time"

row() { printf '%-34s %s\n' "$1" "$2"; }
RATE=$(echo "$CHANGES / $WALL" | bc)
CPU=$(echo "$USER + $SYS" | bc)
PER_CORE=$(echo "$CHANGES / $CPU" | bc)
MBS=$(echo "scale=1; $BYTES / 1048576 / $WALL" | bc)
DRATE=$(echo "$TOTAL / $DWALL" | bc)
echo
row "row changes" "$CHANGES ($ROWS ins, $UPDATES upd, $DELETES del)"
row "binlog" "$((BINLOG_BYTES / 1048576)) MiB"
row "broker" "Tansu $BENCH_BROKER, $PARTITIONS partitions, lz4"
row "capture wall time" "$WALL s"
row "capture rows/s (wall)" "$RATE"
row "capture CPU (user+sys)" "$CPU s  -> $PER_CORE rows per CPU-second"
row "published" "$((BYTES / 1048576)) MiB of records, $MBS MiB/s"
row "capture peak RSS" "$((RSS_KB / 1024)) MiB"
row "decode only (1 thread) rows/s" "$DRATE  (peak RSS $((DRSS_KB / 1024)) MiB)"

MACHINE="$(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -m)"
RESULTS=$REPO_ROOT/loadtest/RESULTS.md
[ -f "$RESULTS" ] || printf '# Load test results\n\n' >"$RESULTS"
grep -q '^| date | bench' "$RESULTS" || cat >>"$RESULTS" <<'HDR'
| date | bench | machine | changes | broker | wall s | rows/s | rows/CPU-s | MiB/s | peak RSS MiB | decode-only rows/s |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
HDR
echo "| $(date -u +%Y-%m-%d) | capture | $MACHINE | $CHANGES | tansu-$BENCH_BROKER x$PARTITIONS | $WALL | $RATE | $PER_CORE | $MBS | $((RSS_KB / 1024)) | $DRATE |" >>"$RESULTS"
log "appended to loadtest/RESULTS.md"
