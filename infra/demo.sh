#!/usr/bin/env bash
# The README's first command: brings the stack up, builds and starts capture against
# the source MariaDB, writes a sample workload, and shows what reached Kafka.
source "$(dirname "$0")/lib.sh"

"$REPO_ROOT/infra/up.sh"
"$REPO_ROOT/infra/install.sh" python
log "building otter-capture"
(cd "$REPO_ROOT" && cargo build --release -q -p otter-capture)
BIN=${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/otter-capture

DEMO=$OTTER_VAR/demo
mkdir -p "$DEMO"
RUN=demo_$(date +%s)
sed -e "s/^pipeline = .*/pipeline = \"$RUN\"/" -e "s/^topic_prefix = .*/topic_prefix = \"$RUN\"/" \
  -e 's/^include = .*/include = ["demo_shop\\\\..*"]/' \
  "$REPO_ROOT/services/capture/config.example.toml" >"$DEMO/capture.toml"

SQL=(mariadb --no-defaults -h127.0.0.1 -P"$SOURCE_PORT" -uotter -potter)
"${SQL[@]}" -e "DROP DATABASE IF EXISTS demo_shop; CREATE DATABASE demo_shop"

log "starting otter-capture (pipeline $RUN, log $DEMO/capture.log)"
"$BIN" run --config "$DEMO/capture.toml" >"$DEMO/capture.log" 2>&1 &
CAPTURE=$!
trap 'kill $CAPTURE 2>/dev/null || true' EXIT
sleep 1

log "writing a sample workload to the source"
"${SQL[@]}" demo_shop <<'SQL'
CREATE TABLE customers (id INT UNSIGNED PRIMARY KEY, name VARCHAR(50) CHARACTER SET latin1,
  joined DATETIME(3), balance DECIMAL(20,4), tags SET('new','vip','churned'));
CREATE TABLE orders (id BIGINT PRIMARY KEY AUTO_INCREMENT, customer INT UNSIGNED,
  placed TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6), total DECIMAL(12,2), note JSON);
CREATE TABLE events (at DATETIME, what VARCHAR(20));  -- no primary key
INSERT INTO customers VALUES (1, 'Zoë', '2024-02-29 12:00:00.123', 1234.5678, 'new'),
  (2, 'Bjørn', '2023-01-01 00:00:00.000', -0.0001, 'vip,new');
BEGIN;
INSERT INTO orders (customer, total, note) VALUES (1, 99.90, '{"gift": true}'), (2, 10.00, NULL);
UPDATE customers SET balance = balance - 99.90 WHERE id = 1;
COMMIT;
UPDATE customers SET id = 3 WHERE id = 2;
INSERT INTO events VALUES ('2024-01-01 10:00:00', 'login'), ('2024-01-01 10:00:00', 'login');
DELETE FROM orders WHERE total < 50;
ALTER TABLE customers ADD COLUMN email VARCHAR(100);
INSERT INTO customers (id, name, email) VALUES (4, 'Ana', 'ana@example.com');
SQL

sleep 3
kill -TERM $CAPTURE
wait $CAPTURE || true
trap - EXIT
grep -E "INFO|WARN|ERROR" "$DEMO/capture.log" | sed 's/\x1b\[[0-9;]*m//g' | grep -v zookeeper_client | cut -c 28- || true
echo
echo "What reached Kafka (read back with an independent client):"
"$REPO_ROOT/infra/peek.py" "$RUN"
echo
echo "Decode a binlog file yourself:  $BIN decode $OTTER_VAR/mariadb-source/mariadb-bin.000001 | head"
