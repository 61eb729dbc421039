#!/usr/bin/env bash
# Apply throughput benchmark, on the durable sqlite Tansu (:9092; apply needs correct
# high watermarks, which the memory engine does not give):
#   1. records a binlog of >= 1M row changes on the source (mixed insert/update/delete,
#      ~200-byte rows, 1,000-row statements);
#   2. fills the topics with it (otter-capture --stop-at), timed;
#   3. apply alone: otter-apply from the pre-filled topics into an empty target until
#      every record is committed (positions read from apply_position), timed, peak RSS;
#      then `verify` must say identical;
#   4. end to end: capture and apply started together on the same backlog (new topics,
#      empty target), timed to caught-up;
#   5. reference: the same binlog replayed serially into the empty target by the
#      server's own row applier (`mariadb-binlog | mariadb`, BINLOG statements: the
#      code a single-threaded replica SQL thread runs).
#
#   loadtest/apply-bench.sh
#   ROWS=300000 PARTITIONS=4 POOL=4 loadtest/apply-bench.sh
#
# Prints a table and appends a dated row to loadtest/RESULTS.md.
source "$(dirname "$0")/../infra/lib.sh"
source "$(dirname "$0")/workload.sh"

ROWS=${ROWS:-600000}                 # inserts; updates = ROWS*5/12, deletes = ROWS/4
PARTITIONS=${PARTITIONS:-4}
POOL=${POOL:-4}
BATCH=${BATCH:-5000}
OUT=$REPO_ROOT/loadtest/out
mkdir -p "$OUT"

"$REPO_ROOT/infra/up.sh" >/dev/null
# BENCH_BROKER=memory: a memory-engine Tansu on :9093 (fast, not durable; its high
# watermarks are wrong, which apply does not rely on) instead of the sqlite one on :9092,
# whose fetches slow down as topics grow (single-threaded sqlite scans).
BENCH_BROKER=${BENCH_BROKER:-sqlite}
BROKERS=127.0.0.1:$BROKER_PORT
if [ "$BENCH_BROKER" = memory ]; then
  BROKERS=127.0.0.1:9093
  start_bench_broker
fi
command -v /usr/bin/time >/dev/null || { apt-get install -y -qq time >/dev/null; }
log "building otter-capture and otter-apply (release)"
(cd "$REPO_ROOT" && cargo build --release -q -p otter-capture -p otter-apply)
BIN=${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release

SRC=(mariadb --no-defaults -h127.0.0.1 -P"$SOURCE_PORT" -uotter -potter -N)
TGT=(mariadb --no-defaults -h127.0.0.1 -P"$TARGET_PORT" -uotter -potter -N)
DB=abench_$(date +%s)
UPDATES=$((ROWS * 5 / 12))
DELETES=$((ROWS / 4))
TOTAL=$((ROWS + UPDATES + DELETES))
TABLE=$(bench_table)
fresh_target() { "${TGT[@]}" -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB; $TABLE"; }

log "recording a binlog of $TOTAL row changes in $DB"
"${SRC[@]}" -e "FLUSH BINARY LOGS; CREATE DATABASE $DB; $TABLE"
START=$("${SRC[@]}" -e "SHOW MASTER STATUS" | awk '{print $1":"$2}')
bench_workload | "${SRC[@]}" "$DB"
END=$("${SRC[@]}" -e "SHOW MASTER STATUS" | awk '{print $1":"$2}')
FILE=${START%%:*}

configs() { # configs RUN -> $OUT/RUN.capture.toml, $OUT/RUN.apply.toml
  sed -e "s/^pipeline = .*/pipeline = \"$1\"/" -e "s/^topic_prefix = .*/topic_prefix = \"$1\"/" \
    -e "s/^start = .*/start = \"$START\"/" -e "s/^partitions = .*/partitions = $PARTITIONS/" \
    -e "s/^brokers = .*/brokers = \"$BROKERS\"/" \
    -e "s/^include = .*/include = [\"$DB\\\\\\\\..*\"]/" \
    "$REPO_ROOT/services/capture/config.example.toml" >"$OUT/$1.capture.toml"
  sed -e "s/^pipeline = .*/pipeline = \"$1\"/" -e "s/^topic_prefix = .*/topic_prefix = \"$1\"/" \
    -e "s/^pool_size = .*/pool_size = $POOL/" -e "s/^max_batch_records = .*/max_batch_records = $BATCH/" \
    -e "s/^brokers = .*/brokers = \"$BROKERS\"/" \
    -e '/^# Mapping rules/,$d' \
    "$REPO_ROOT/services/apply/config.example.toml" >"$OUT/$1.apply.toml"
}
applied() { # applied RUN -> records committed to the target so far
  "${TGT[@]}" -e "SELECT COALESCE(SUM(next_offset), 0) FROM otter.apply_position WHERE pipeline = '$1'" 2>/dev/null || echo 0
}
wait_applied() { # wait_applied RUN RECORDS PID
  while [ "$(applied "$1")" -lt "$2" ]; do
    kill -0 "$3" 2>/dev/null || { log "error: otter-apply exited; see $OUT/$1.apply.log"; exit 1; }
    sleep 0.2
  done
}
now() { date +%s.%N; }
secs() { printf %.1f "$(echo "$2 - $1" | bc)"; }

# 2. Pre-fill the topics.
RUN=abench_$(date +%s)
configs "$RUN"
log "filling topics: capture $START .. $END, $PARTITIONS partitions"
t0=$(now)
"$BIN/otter-capture" run --config "$OUT/$RUN.capture.toml" --stop-at "$END" >"$OUT/$RUN.summary" 2>"$OUT/$RUN.capture.log" \
  || { tail -n 20 "$OUT/$RUN.capture.log" >&2; exit 1; }
FILL=$(secs "$t0" "$(now)")
RECORDS=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['records'])" "$OUT/$RUN.summary")

# 3. Apply alone.
fresh_target
log "apply: $RECORDS records into an empty target (pool $POOL, batches of $BATCH)"
t0=$(now)
/usr/bin/time -f "%e %U %S %M" -o "$OUT/$RUN.apply.time" \
  "$BIN/otter-apply" run --config "$OUT/$RUN.apply.toml" 2>"$OUT/$RUN.apply.log" &
APID=$!
sleep 0.2
APPLY_PID=$(pgrep -P $APID otter-apply || echo $APID)
wait_applied "$RUN" "$RECORDS" "$APID"
APPLY_WALL=$(secs "$t0" "$(now)")
kill -TERM "$APPLY_PID"; wait $APID || true
read -r _ AUSER ASYS ARSS_KB <"$OUT/$RUN.apply.time"
log "verify"
if ! "$BIN/otter-apply" verify --source "mysql://otter:otter@127.0.0.1:$SOURCE_PORT" \
  --target "mysql://otter:otter@127.0.0.1:$TARGET_PORT" --tables "$DB\\..*" >"$OUT/$RUN.verify"; then
  cat "$OUT/$RUN.verify"; log "error: target differs from source"; exit 1
fi
tail -n 1 "$OUT/$RUN.verify"

# 4. End to end on the same backlog.
fresh_target
RUN2=${RUN}_e2e
configs "$RUN2"
log "end to end: capture + apply together from $START"
t0=$(now)
"$BIN/otter-capture" run --config "$OUT/$RUN2.capture.toml" --stop-at "$END" >"$OUT/$RUN2.summary" 2>"$OUT/$RUN2.capture.log" &
CPID=$!
"$BIN/otter-apply" run --config "$OUT/$RUN2.apply.toml" 2>"$OUT/$RUN2.apply.log" &
APID=$!
wait_applied "$RUN2" "$RECORDS" "$APID"
E2E=$(secs "$t0" "$(now)")
kill -TERM "$APID"; wait "$APID" || true
wait "$CPID" || true

# 5. The server's own serial row applier on the same binlog.
fresh_target
log "reference: mariadb-binlog | mariadb (serial BINLOG statements)"
t0=$(now)
mariadb-binlog --no-defaults --start-position="${START##*:}" --stop-position="${END##*:}" \
  "$OTTER_VAR/mariadb-source/$FILE" | "${TGT[@]}"
NATIVE=$(secs "$t0" "$(now)")

rate() { echo "$TOTAL / $1" | bc; }
CPU=$(echo "$AUSER + $ASYS" | bc)
row() { printf '%-38s %s\n' "$1" "$2"; }
echo
row "row changes" "$TOTAL ($ROWS ins, $UPDATES upd, $DELETES del), $RECORDS records"
row "broker" "Tansu $BENCH_BROKER, $PARTITIONS partitions, lz4"
row "fill topics (capture alone)" "$FILL s  ($(rate "$FILL") rows/s)"
row "apply alone, pre-filled topics" "$APPLY_WALL s  ($(rate "$APPLY_WALL") rows/s)"
row "apply CPU (user+sys), peak RSS" "$CPU s ($(echo "$TOTAL / $CPU" | bc) rows per CPU-s), $((ARSS_KB / 1024)) MiB"
row "end to end catch-up (capture+apply)" "$E2E s  ($(rate "$E2E") rows/s)"
row "server's serial row applier" "$NATIVE s  ($(rate "$NATIVE") rows/s)"
row "apply alone / serial applier" "$(echo "scale=2; $NATIVE / $APPLY_WALL" | bc)x"

MACHINE="$(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -m)"
RESULTS=$REPO_ROOT/loadtest/RESULTS.md
grep -q '^| date | apply bench' "$RESULTS" || cat >>"$RESULTS" <<'HDR'

| date | apply bench | machine | changes | partitions x pool | fill s | apply s | apply rows/s | apply rows/CPU-s | apply RSS MiB | e2e s | e2e rows/s | serial applier rows/s |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
HDR
echo "| $(date -u +%Y-%m-%d) | apply (tansu-$BENCH_BROKER) | $MACHINE | $TOTAL | $PARTITIONS x $POOL | $FILL | $APPLY_WALL | $(rate "$APPLY_WALL") | $(echo "$TOTAL / $CPU" | bc) | $((ARSS_KB / 1024)) | $E2E | $(rate "$E2E") | $(rate "$NATIVE") |" >>"$RESULTS"
log "appended to loadtest/RESULTS.md"
