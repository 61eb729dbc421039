#!/usr/bin/env bash
# Starts the local stack on 127.0.0.1, installing what is missing first:
#   MariaDB source  :3307  (log_bin, ROW, FULL image, FULL row metadata, GTID)
#   MariaDB target  :3308
#   ZooKeeper       :2181
#   Tansu (Kafka)   :9092  (sqlite engine: durable across restarts)
# and, only when named (loadtest/ uses it):
#   MariaDB replica :3309  (a native replica of the source for the benchmark
#                           baseline; replicates only the `bench` database)
# Safe to run twice: running parts are left alone. Data lives under $OTTER_VAR.
#   infra/up.sh [source|target|zookeeper|broker]...   (default: all)
source "$(dirname "$0")/lib.sh"

"$REPO_ROOT/infra/install.sh" packages
"$REPO_ROOT/infra/install.sh" broker
mkdir -p "$OTTER_VAR/log" "$OTTER_VAR/run"

# start_mariadb NAME PORT SERVER_ID EXTRA_ARGS...
start_mariadb() {
  local name=$1 port=$2 server_id=$3
  shift 3
  local dir=$OTTER_VAR/mariadb-$name sock=$OTTER_VAR/run/$name.sock
  local pidf=$OTTER_VAR/run/$name.pid logf=$OTTER_VAR/log/mariadb-$name.err
  if pid_alive "$pidf" && port_open "$port"; then return 0; fi
  ensure_port_free "$port" "MariaDB $name"
  if [ ! -d "$dir/mysql" ]; then
    log "initialising MariaDB $name datadir"
    mariadb-install-db --no-defaults --datadir="$dir" --user=root \
      --auth-root-authentication-method=socket >"$OTTER_VAR/log/install-$name.log" 2>&1 \
      || { tail -n 20 "$OTTER_VAR/log/install-$name.log" >&2; return 1; }
  fi
  log "starting MariaDB $name on 127.0.0.1:$port"
  # --no-defaults makes the server latin1: the charset is set explicitly.
  nohup mariadbd --no-defaults --user=root --datadir="$dir" --port="$port" \
    --bind-address=127.0.0.1 --socket="$sock" --pid-file="$pidf" --log-error="$logf" \
    --server-id="$server_id" --character-set-server=utf8mb4 \
    --collation-server=utf8mb4_general_ci --skip-name-resolve \
    --max-allowed-packet=64M --innodb-buffer-pool-size=256M \
    --innodb-log-file-size=256M --innodb-flush-log-at-trx-commit=2 --sync-binlog=0 \
    --max-connections=500 "$@" >/dev/null 2>&1 &
  wait_port "$port" 60 "MariaDB $name" "$logf"
  # The server answers on the port a little before it accepts logins.
  local i
  for ((i = 0; i < 100; i++)); do
    mariadb --no-defaults -uroot --socket="$sock" -e "SELECT 1" >/dev/null 2>&1 && break
    sleep 0.1
  done
  mariadb --no-defaults -uroot --socket="$sock" <<'SQL'
CREATE USER IF NOT EXISTS 'otter'@'%' IDENTIFIED BY 'otter';
GRANT ALL PRIVILEGES ON *.* TO 'otter'@'%' WITH GRANT OPTION;
SQL
}

start_zookeeper() {
  local dir=$OTTER_VAR/zookeeper pidf=$OTTER_VAR/run/zookeeper.pid logf=$OTTER_VAR/log/zookeeper.log
  if pid_alive "$pidf" && port_open "$ZK_PORT"; then return 0; fi
  ensure_port_free "$ZK_PORT" ZooKeeper
  mkdir -p "$dir/data"
  cat >"$dir/zoo.cfg" <<CFG
tickTime=500
dataDir=$dir/data
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,stat,mntr,cons
minSessionTimeout=1000
maxSessionTimeout=60000
CFG
  log "starting ZooKeeper on 127.0.0.1:$ZK_PORT"
  nohup java -Xmx256m -Dzookeeper.log.dir="$OTTER_VAR/log" \
    -cp "/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-simple.jar:/usr/share/java/netty-all.jar" \
    org.apache.zookeeper.server.ZooKeeperServerMain "$dir/zoo.cfg" >"$logf" 2>&1 &
  echo $! >"$pidf"
  wait_port "$ZK_PORT" 60 "ZooKeeper" "$logf"
  local i reply
  for ((i = 0; i < 100; i++)); do
    reply=$( (exec 3<>"/dev/tcp/127.0.0.1/$ZK_PORT"; printf ruok >&3; timeout 1 cat <&3) 2>/dev/null || true)
    [ "$reply" = imok ] && return 0
    sleep 0.1
  done
  log "error: ZooKeeper does not answer ruok; see $logf"
  return 1
}

start_broker() {
  local dir=$OTTER_VAR/tansu pidf=$OTTER_VAR/run/tansu.pid logf=$OTTER_VAR/log/tansu.log
  if pid_alive "$pidf" && port_open "$BROKER_PORT"; then return 0; fi
  ensure_port_free "$BROKER_PORT" Tansu
  mkdir -p "$dir"
  log "starting Tansu on 127.0.0.1:$BROKER_PORT (sqlite engine)"
  # The sqlite path is resolved against the working directory: cd first.
  (
    cd "$dir"
    nohup "$TANSU_BIN" broker \
      --listener-url "tcp://127.0.0.1:$BROKER_PORT" \
      --advertised-listener-url "tcp://127.0.0.1:$BROKER_PORT" \
      --storage-engine "${OTTER_BROKER_STORAGE:-sqlite://tansu.db}" >"$logf" 2>&1 &
    echo $! >"$pidf"
  )
  wait_port "$BROKER_PORT" 30 "Tansu" "$logf"
}

parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(source target zookeeper broker)
for p in "${parts[@]}"; do
  case $p in
    source) start_mariadb source "$SOURCE_PORT" 1 --log-bin=mariadb-bin --binlog-format=ROW \
      --binlog-row-image=FULL --binlog-row-metadata=FULL --gtid-domain-id=0 ;;
    target) start_mariadb target "$TARGET_PORT" 2 ;;
    # Same settings as the target; serial SQL thread (slave_parallel_threads=0).
    replica) start_mariadb replica "$REPLICA_PORT" 3 --skip-slave-start \
      --replicate-wild-do-table=bench.% --relay-log=relay-bin ;;
    zookeeper) start_zookeeper ;;
    broker) start_broker ;;
    *) log "unknown part $p (source|target|zookeeper|broker|replica)"; exit 2 ;;
  esac
done
# Started parts fail above on their own; with parts named, another part being down
# (restarted by loadtest/chaos.py, say) is shown, not an error.
"$REPO_ROOT/infra/status.sh" || [ "$#" -gt 0 ]
