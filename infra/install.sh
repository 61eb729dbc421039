#!/usr/bin/env bash
# Installs what the local stack needs, from Debian's packages and crates.io only.
# Idempotent and quiet when everything is already present.
#
#   infra/install.sh            packages + broker
#   infra/install.sh packages   Debian packages only
#   infra/install.sh broker     Tansu only (cold build: ~12 min on 2 cores)
#   infra/install.sh bench      what loadtest/ needs (sysbench, pymysql, matplotlib, perf)
#   infra/install.sh chaos      what loadtest/chaos.py needs (pymysql)
source "$(dirname "$0")/lib.sh"

PACKAGES=(mariadb-server mariadb-client zookeeper cmake libcurl4-openssl-dev
  pkg-config python3-pip kcat prometheus faketime)

install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # The packages' own services are never used: policy-rc.d stops them from starting.
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
}

install_python_client() {
  # confluent-kafka: an independent Kafka client used by tests to read what capture
  # published (Debian's kcat is too old for Tansu; see shared INFRA-NOTES).
  python3 -c 'import confluent_kafka' 2>/dev/null && return 0
  log "installing confluent-kafka (PyPI) for tests"
  pip install -q confluent-kafka
}

# Debian's kcat (librdkafka 2.0.2) fails the ApiVersions handshake with Tansu; the
# confluent-kafka wheel ships a newer librdkafka. infra/kcat runs kcat against it.
install_kcat_lib() {
  local dir=$OTTER_TOOLS/kcat-lib lib
  [ -e "$dir/librdkafka.so.1" ] && return 0
  lib=$(python3 -c 'import confluent_kafka, os, glob; d = os.path.dirname(os.path.dirname(confluent_kafka.__file__)); print(sorted(glob.glob(d + "/confluent_kafka.libs/librdkafka-*.so.1"))[0])')
  mkdir -p "$dir"
  ln -sf "$lib" "$dir/librdkafka.so.1"
}

install_broker() {
  [ -x "$TANSU_BIN" ] && return 0
  # Tansu without storage features silently stores nothing; libsql = sqlite engine
  # (durable), dynostore = memory engine (fast, used only by benchmarks).
  log "building Tansu $TANSU_VERSION with its sqlite and memory engines (cold build ~12 min)"
  local root=$OTTER_TOOLS/tansu-$TANSU_VERSION
  mkdir -p "$root"
  cargo install tansu --version "$TANSU_VERSION" --locked --features libsql,dynostore \
    --root "$root.partial" --quiet
  mv "$root.partial/bin" "$root/bin"
  rm -rf "$root.partial"
}

# What loadtest/ needs besides the stack: sysbench for the workloads, pymysql and
# matplotlib for the driver and its chart, perf for the profiles.
install_bench() {
  PACKAGES=(sysbench python3-pymysql python3-matplotlib linux-perf time bc)
  install_packages
}

install_chaos() {
  PACKAGES=(python3-pymysql)
  install_packages
}

case "${1:-all}" in
  packages) install_packages ;;
  broker) install_packages; install_broker ;;
  python) install_python_client; install_kcat_lib ;;
  bench) install_bench ;;
  chaos) install_chaos ;;
  all) install_packages; install_python_client; install_kcat_lib; install_broker ;;
  *) log "usage: $0 [all|packages|broker|python|bench|chaos]"; exit 2 ;;
esac
