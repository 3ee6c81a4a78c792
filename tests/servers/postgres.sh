#!/usr/bin/env bash
# PostgreSQL (Debian package postgresql) in a throw-away cluster on 127.0.0.1, trust auth:
# for tests that need a real relational store (gateway usage rows). Runs as the `postgres`
# user that the package creates (the server refuses to run as root).
#
# Usage:  tests/servers/postgres.sh install | start [PORT] | smoke [PORT] | stop [PORT]
# Env:    PORT (default 55432), PG_DIR (default $TMPDIR/human-postgres-PORT: the cluster must sit
#         where the postgres user can reach it, which a checkout under /root is not)
# URL for clients: postgresql://postgres@127.0.0.1:$PORT/postgres
set -euo pipefail
CMD="${1:-help}"
PORT="${2:-${PORT:-55432}}"
DIR="${PG_DIR:-${TMPDIR:-/tmp}/human-postgres-$PORT}"

bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
install() {
  [ -n "$(bin)" ] && return
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
}
as_pg() { su postgres -s /bin/bash -c "$*"; }
start() {
  if [ -n "$(bin)" ] && "$(bin)/pg_isready" -q -h 127.0.0.1 -p "$PORT" 2>/dev/null; then
    echo "postgres already answers on $PORT"; return
  fi
  install; B=$(bin)
  mkdir -p "$DIR"; chown postgres "$DIR"
  [ -f "$DIR/data/PG_VERSION" ] || as_pg "$B/initdb -D '$DIR/data' -A trust -U postgres" >/dev/null
  as_pg "$B/pg_ctl -D '$DIR/data' -l '$DIR/log' -w -o \"-p $PORT -k '$DIR' -c listen_addresses=127.0.0.1 -c fsync=off\" start" >/dev/null
  echo "postgres up: postgresql://postgres@127.0.0.1:$PORT/postgres (pid $(head -1 "$DIR/data/postmaster.pid"))"
}
stop() {
  [ -f "$DIR/data/postmaster.pid" ] || { echo "no postgres on $PORT"; return; }
  as_pg "$(bin)/pg_ctl -D '$DIR/data' -m fast -w stop" >/dev/null; echo "postgres on $PORT stopped"
}
case "$CMD" in
  install) install ;; start) start ;; stop) stop ;;
  smoke) psql -h 127.0.0.1 -p "$PORT" -U postgres -Atc 'select 1' ;;
  *) sed -n 2,9p "$0" ;;
esac
