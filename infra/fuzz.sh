#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ for FUZZ_SECS seconds each (see fuzz/README.md).
#   FUZZ_SECS=600 FUZZ_TARGETS="binlog envelope" infra/fuzz.sh
source "$(dirname "$0")/lib.sh"
set -euo pipefail
SECS=${FUZZ_SECS:-600}
TARGETS=${FUZZ_TARGETS:-binlog envelope}
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
cd "$REPO_ROOT/fuzz"
TD=$REPO_ROOT/target/fuzz
mkdir -p "$TD"
for t in $TARGETS; do
  log "fuzzing $t for ${SECS}s (corpus fuzz/corpus/$t)"
  rc=0
  cargo +nightly fuzz run -s none -O --target-dir "$TD" "$t" "corpus/$t" -- \
    -max_total_time="$SECS" -max_len=65536 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    >"$TD/$t.log" 2>&1 || rc=$?
  grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|==[0-9]+==|SUMMARY|thread .* panicked)' "$TD/$t.log" || true
  [ "$rc" -eq 0 ] || { log "$t: failed (exit $rc), see fuzz/artifacts/$t and $TD/$t.log"; exit 1; }
  log "minimising fuzz/corpus/$t"
  cargo +nightly fuzz cmin -s none -O --target-dir "$TD" "$t" "corpus/$t" -- -max_len=65536 >"$TD/$t.cmin.log" 2>&1 \
    || { log "$t: corpus minimisation failed, see $TD/$t.cmin.log"; exit 1; }
  log "$t: no crash in ${SECS}s, corpus $(ls "corpus/$t" | wc -l) files"
done
