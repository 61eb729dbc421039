#!/usr/bin/env bash
# Records a new binlog fixture from the local source MariaDB:
#   infra/record-binlog.sh SCENARIO.sql OUT_FILE [SETUP_SQL]
# Rotates the binlog, runs SETUP_SQL (session/global settings, may be empty) and the
# scenario, rotates again and copies the finished binlog file to OUT_FILE. Add a row for
# it to services/capture/tests/data/README.md.
source "$(dirname "$0")/lib.sh"
[ $# -ge 2 ] || { log "usage: $0 SCENARIO.sql OUT_FILE [SETUP_SQL]"; exit 2; }
SQL=(mariadb --no-defaults -h127.0.0.1 -P"$SOURCE_PORT" -uotter -potter -N)
port_open "$SOURCE_PORT" || "$REPO_ROOT/infra/up.sh" source >/dev/null
"${SQL[@]}" -e "FLUSH BINARY LOGS"
FILE=$("${SQL[@]}" -e "SHOW MASTER STATUS" | awk '{print $1}')
{ [ -n "${3:-}" ] && echo "$3"; cat "$1"; } | "${SQL[@]}"
"${SQL[@]}" -e "FLUSH BINARY LOGS"
cp "$OTTER_VAR/mariadb-source/$FILE" "$2"
log "recorded $FILE -> $2 ($(stat -c %s "$2") bytes)"
