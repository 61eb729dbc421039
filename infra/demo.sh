#!/usr/bin/env bash
# The README's first command: brings the stack up, builds the services and otterctl,
# defines a pipeline in ZooKeeper with otterctl, serves it with two captures (active +
# hot standby) and an apply, runs a sample workload, shows the target catching up and
# the pipeline's status, and ends with `verify`.
source "$(dirname "$0")/lib.sh"

"$REPO_ROOT/infra/up.sh"
"$REPO_ROOT/infra/install.sh" python
log "building otter-capture, otter-apply and otterctl (release)"
(cd "$REPO_ROOT" && cargo build --release -q -p otter-capture -p otter-apply -p otter-ctl)
BIN=${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release

DEMO=$OTTER_VAR/demo
mkdir -p "$DEMO"
RUN=demo_$(date +%s)
# The pipeline lives in ZooKeeper; its definition names where each machine finds the
# passwords (here: this environment variable), never the passwords themselves.
export OTTER_DEMO_PW=otter OTTER_ZK="127.0.0.1:$ZK_PORT"
cat >"$DEMO/pipeline.toml" <<TOML
name = "$RUN"
description = "make demo"
[source]
url = "mysql://otter@127.0.0.1:$SOURCE_PORT"
password_env = "OTTER_DEMO_PW"
server_id = 1001
[target]
url = "mysql://otter@127.0.0.1:$TARGET_PORT"
password_env = "OTTER_DEMO_PW"
[kafka]
brokers = "127.0.0.1:$BROKER_PORT"
topic_prefix = "$RUN"
[tables]
include = ['demo_shop\..*']
[capture.kafka]
partitions = 4
TOML

SRC=(mariadb --no-defaults -h127.0.0.1 -P"$SOURCE_PORT" -uotter -potter)
TGT=(mariadb --no-defaults -h127.0.0.1 -P"$TARGET_PORT" -uotter -potter)
SCHEMA="
CREATE TABLE customers (id INT UNSIGNED PRIMARY KEY, name VARCHAR(50) CHARACTER SET latin1,
  joined DATETIME(3), balance DECIMAL(20,4), tags SET('new','vip','churned'));
CREATE TABLE orders (id BIGINT PRIMARY KEY AUTO_INCREMENT, customer INT UNSIGNED,
  placed TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6), total DECIMAL(12,2), note JSON);
CREATE TABLE events (at DATETIME, what VARCHAR(20));  -- no primary key
"
# Schema changes are not replicated yet (issue 7): the tables are created on both sides.
for side in SRC TGT; do
  declare -n cmd=$side
  "${cmd[@]}" -e "DROP DATABASE IF EXISTS demo_shop; CREATE DATABASE demo_shop"
  "${cmd[@]}" demo_shop -e "$SCHEMA"
done

log "defining pipeline $RUN: otterctl pipeline create -f $DEMO/pipeline.toml"
"$BIN/otterctl" pipeline create -f "$DEMO/pipeline.toml"
log "starting two captures (one active, one hot standby) and one apply (logs in $DEMO)"
PIDS=()
# Fixed metrics ports: infra/prometheus/prometheus.yml scrapes them.
for i in 1 2; do
  "$BIN/otter-capture" serve --pipeline "$RUN" --instance "capture-$i" \
    --metrics-listen "127.0.0.1:918$i" >"$DEMO/capture-$i.log" 2>&1 &
  PIDS+=($!)
done
"$BIN/otter-apply" serve --pipeline "$RUN" --instance apply-1 \
  --metrics-listen 127.0.0.1:9183 >"$DEMO/apply.log" 2>&1 &
PIDS+=($!)
if [ "${PROMETHEUS:-0}" = 1 ]; then
  command -v prometheus >/dev/null || "$REPO_ROOT/infra/install.sh" packages
  mkdir -p "$DEMO/prometheus"
  cp "$REPO_ROOT/infra/prometheus/prometheus.yml" "$REPO_ROOT/infra/prometheus/alerts.yml" "$DEMO/prometheus/"
  prometheus --config.file "$DEMO/prometheus/prometheus.yml" --web.listen-address 127.0.0.1:9090 \
    --storage.tsdb.path "$DEMO/prometheus/data" >"$DEMO/prometheus.log" 2>&1 &
  PIDS+=($!)
  log "Prometheus on http://127.0.0.1:9090 (alerts: /alerts), scraping the demo's services"
fi
trap 'kill ${PIDS[*]} 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do
  "$BIN/otterctl" -o json status "$RUN" 2>/dev/null | grep -q '"capture_status": "active"' && break
  sleep 0.2
done
"$BIN/otterctl" status "$RUN"
echo

log "writing a sample workload to the source"
"${SRC[@]}" demo_shop <<'SQL'
INSERT INTO customers VALUES (1, 'Zoë', '2024-02-29 12:00:00.123', 1234.5678, 'new'),
  (2, 'Bjørn', '2023-01-01 00:00:00.000', -0.0001, 'vip,new');
BEGIN;
INSERT INTO orders (customer, total, note) VALUES (1, 99.90, '{"gift": true}'), (2, 10.00, NULL);
UPDATE customers SET balance = balance - 99.90 WHERE id = 1;
COMMIT;
UPDATE customers SET id = 3 WHERE id = 2;
INSERT INTO events VALUES ('2024-01-01 10:00:00', 'login'), ('2024-01-01 10:00:00', 'login');
DELETE FROM orders WHERE total < 50;
INSERT INTO customers (id, name, joined, balance, tags)
  SELECT 100 + seq, CONCAT('customer ', seq), NOW(3), seq / 7, 'new' FROM seq_1_to_20000;
INSERT INTO orders (customer, total, note)
  SELECT 100 + seq % 20000, seq % 1000 + 0.99, JSON_OBJECT('n', seq) FROM seq_1_to_50000;
UPDATE orders SET total = total * 2 WHERE id % 3 = 0;
DELETE FROM customers WHERE id % 10 = 0;
INSERT INTO events SELECT NOW(), 'batch' FROM seq_1_to_5000;
SQL

count() { "$@" -N -e "SELECT CONCAT_WS(' ', (SELECT COUNT(*) FROM demo_shop.customers), (SELECT COUNT(*) FROM demo_shop.orders), (SELECT COUNT(*) FROM demo_shop.events))"; }
echo
printf '%6s   %-28s   %-28s\n' "" "source: customers/orders/events" "target: customers/orders/events"
start=$(date +%s)
while :; do
  s=$(count "${SRC[@]}"); t=$(count "${TGT[@]}")
  printf '%5ss   %-28s   %-28s\n' "$(($(date +%s) - start))" "$s" "$t"
  [ "$s" = "$t" ] && break
  if [ $(($(date +%s) - start)) -gt 300 ]; then log "target did not catch up in 300 s; see $DEMO/apply.log"; break; fi
  sleep 1
done
echo
log "comparing source and target (otter-apply verify)"
if "$BIN/otter-apply" verify --source "mysql://otter:otter@127.0.0.1:$SOURCE_PORT" \
  --target "mysql://otter:otter@127.0.0.1:$TARGET_PORT" --tables 'demo_shop\..*'; then
  ok=0
else
  ok=1
fi
echo
"$BIN/otterctl" status "$RUN"
echo
"$BIN/otterctl" nodes
if [ "${PROMETHEUS:-0}" = 1 ]; then
  echo
  log "the pipeline keeps running: graphs and alerts on http://127.0.0.1:9090; write to demo_shop on 127.0.0.1:$SOURCE_PORT to see them move. Press Enter to stop."
  read -r _
fi
kill -TERM "${PIDS[@]}"
wait "${PIDS[@]}" 2>/dev/null || true
trap - EXIT
"$BIN/otterctl" pipeline stop "$RUN" >/dev/null
"$BIN/otterctl" pipeline delete "$RUN" >/dev/null
echo
echo "Logs: $DEMO/capture-1.log, $DEMO/capture-2.log, $DEMO/apply.log.  Peek at the Kafka records: infra/peek.py $RUN"
exit $ok
