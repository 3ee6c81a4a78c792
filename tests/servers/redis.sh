#!/usr/bin/env bash
# Redis (Debian package redis-server) on 127.0.0.1, nothing kept on disk: for tests that need
# shared state across processes (gateway limits and budgets).
#
# Usage:  tests/servers/redis.sh install | start [PORT] | smoke [PORT] | stop [PORT]
# Env:    PORT (default 6390), STATE_DIR (default ./.servers)
# URL for clients: redis://127.0.0.1:$PORT/0
set -euo pipefail
CMD="${1:-help}"
PORT="${2:-${PORT:-6390}}"
STATE_DIR="${STATE_DIR:-$PWD/.servers}"
RUN_DIR="$STATE_DIR/run"
PIDFILE="$RUN_DIR/redis-$PORT.pid"

install() {
  command -v redis-server >/dev/null && return
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
}
start() {
  if redis-cli -p "$PORT" ping 2>/dev/null | grep -q PONG; then echo "redis already answers on $PORT"; return; fi
  install; mkdir -p "$RUN_DIR"
  redis-server --bind 127.0.0.1 --port "$PORT" --save '' --appendonly no --daemonize yes \
    --pidfile "$PIDFILE" --logfile "$RUN_DIR/redis-$PORT.log"
  for _ in $(seq 50); do redis-cli -p "$PORT" ping 2>/dev/null | grep -q PONG && { echo "redis up: redis://127.0.0.1:$PORT/0 (pid $(cat "$PIDFILE"))"; return; }; sleep 0.1; done
  echo "redis did not answer on $PORT" >&2; exit 1
}
stop() {
  [ -f "$PIDFILE" ] || { echo "no redis on $PORT"; return; }
  pid=$(cat "$PIDFILE"); kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$PIDFILE"; echo "stopped pid $pid"
}
case "$CMD" in
  install) install ;; start) start ;; stop) stop ;;
  smoke) redis-cli -p "$PORT" set human-smoke 1 >/dev/null && redis-cli -p "$PORT" get human-smoke ;;
  *) sed -n 2,7p "$0" ;;
esac
