#!/usr/bin/env bash
# The third-party OpenAI-compatible servers the interop tests (tests/interop) talk to,
# installed and run on 127.0.0.1 only. Nobody on this project wrote them: that is the point.
#
#   bash tests/interop/servers.sh start    # install if needed, start all, wait until ready
#   bash tests/interop/servers.sh stop     # stop exactly the PIDs that start recorded
#   bash tests/interop/servers.sh status   # what runs, where, which versions
#   bash tests/interop/servers.sh smoke    # a few curl checks against the running servers
#
# Servers (ports overridable by env; tests/interop/conftest.py reads the same variables):
#   LiteLLM proxy  PyPI litellm[proxy]==$LITELLM_VERSION   http://127.0.0.1:$LITELLM_PORT (4011)
#                  mock models from tests/interop/litellm/config.yaml, key sk-test-master
#   aimock         npm @copilotkit/aimock@$AIMOCK_VERSION  http://127.0.0.1:$AIMOCK_PORT/v1 (4013)
#                  fixtures from tests/interop/aimock/fixtures/, no key
#   aimock (auth)  the same, with AIMOCK_API_KEYS=sk-aimock-test   http://127.0.0.1:$AIMOCK_AUTH_PORT/v1 (4014)
#
# All state (venv, node_modules, pid and log files, versions.txt) lives in .servers/ at the
# repository root (git-ignored). Needs python3 (with venv), node >= 20 and npm (smoke: curl).
# Installs are idempotent; LiteLLM takes about 40 s and 760 MB the first time.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CMD="${1:-help}"

STATE_DIR="${STATE_DIR:-$ROOT/.servers}"
RUN_DIR="$STATE_DIR/run"
VERSIONS="$STATE_DIR/versions.txt"

LITELLM_VERSION="${LITELLM_VERSION:-1.108.7}"
LITELLM_PORT="${LITELLM_PORT:-4011}"
LITELLM_VENV="${LITELLM_VENV:-$STATE_DIR/venv-litellm}"
LITELLM_CONFIG="$HERE/litellm/config.yaml"
LITELLM_KEY="sk-test-master"

AIMOCK_VERSION="${AIMOCK_VERSION:-1.43.0}"
AIMOCK_PORT="${AIMOCK_PORT:-4013}"
AIMOCK_AUTH_PORT="${AIMOCK_AUTH_PORT:-4014}"
AIMOCK_AUTH_KEY="sk-aimock-test"
AIMOCK_DIR="$STATE_DIR/aimock"
AIMOCK_PKG="$AIMOCK_DIR/node_modules/@copilotkit/aimock"
AIMOCK_BIN="$AIMOCK_PKG/dist/cli.js"
AIMOCK_FIXTURES="$HERE/aimock/fixtures"

READY_TIMEOUT="${READY_TIMEOUT:-180}"   # seconds; a cold LiteLLM import on a slow CI box is slow

log() { printf 'servers.sh: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---- install -----------------------------------------------------------------------------

litellm_installed_version() {
  "$LITELLM_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("litellm"))' 2>/dev/null || true
}

install_litellm() {
  if [ -x "$LITELLM_VENV/bin/litellm" ] && [ "$(litellm_installed_version)" = "$LITELLM_VERSION" ] \
     && "$LITELLM_VENV/bin/python" -c "import prisma" 2>/dev/null; then
    return 0
  fi
  log "installing litellm[proxy]==$LITELLM_VERSION into $LITELLM_VENV (about 40 s)"
  python3 -m venv "$LITELLM_VENV" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
  # prisma is only imported so that a request WITHOUT a key gets a clean 401 instead of
  # a 500 (LiteLLM's auth error path imports it); no database is used.
  "$LITELLM_VENV/bin/pip" install --quiet --disable-pip-version-check \
      "litellm[proxy]==$LITELLM_VERSION" prisma \
    || die "pip install litellm[proxy]==$LITELLM_VERSION failed"
  [ -x "$LITELLM_VENV/bin/litellm" ] || die "litellm installed but $LITELLM_VENV/bin/litellm is missing"
}

aimock_installed_version() {
  [ -f "$AIMOCK_PKG/package.json" ] || return 0
  node -e 'process.stdout.write(require(process.argv[1]).version)' "$AIMOCK_PKG/package.json" 2>/dev/null || true
}

install_aimock() {
  command -v node >/dev/null || die "node is not installed (aimock needs Node >= 20)"
  command -v npm >/dev/null || die "npm is not installed"
  if [ -f "$AIMOCK_BIN" ] && [ "$(aimock_installed_version)" = "$AIMOCK_VERSION" ]; then
    return 0
  fi
  log "installing @copilotkit/aimock@$AIMOCK_VERSION into $AIMOCK_DIR"
  mkdir -p "$AIMOCK_DIR"
  (cd "$AIMOCK_DIR" && npm install --no-audit --no-fund --no-save --loglevel=error --prefix . \
      "@copilotkit/aimock@$AIMOCK_VERSION") || die "npm install @copilotkit/aimock@$AIMOCK_VERSION failed"
  [ -f "$AIMOCK_BIN" ] || die "aimock installed but $AIMOCK_BIN is missing"
}

install_all() {
  mkdir -p "$STATE_DIR" "$RUN_DIR"
  # The two installs are independent: run them side by side (LiteLLM dominates).
  install_litellm & local lpid=$!
  install_aimock & local apid=$!
  local failed=0
  wait "$lpid" || failed=1
  wait "$apid" || failed=1
  [ "$failed" = 0 ] || die "install failed (see the messages above)"
}

# ---- processes ---------------------------------------------------------------------------

pidfile() { echo "$RUN_DIR/$1.pid"; }
logfile() { echo "$RUN_DIR/$1.log"; }

running() {  # name -> 0 when the recorded PID is alive
  local f; f="$(pidfile "$1")"
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}

# Readiness probes use python3, not curl: a fresh Debian machine may not have curl.
port_answers() {  # port -> 0 when something accepts connections on it
  python3 - "$1" <<'PY' 2>/dev/null
import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
PY
}

http_ok() {  # url -> 0 when it answers 2xx
  python3 - "$1" <<'PY' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=2).close()
PY
}

# Prefix that runs a command as the leader of its own process group (pgid == its PID ==
# $!), detached from the terminal, so that `stop` can end the server and any child it
# spawned by that one id. (setsid(1) forks when the caller has job control, so $! would
# be wrong; a shell function would leave a subshell in between.)
DETACH=(python3 -c 'import os, signal, sys
try:
    os.setsid()          # not a group leader yet: new session and group
except OSError:
    pass                 # job control already made us a group leader
signal.signal(signal.SIGHUP, signal.SIG_IGN)
os.execvp(sys.argv[1], sys.argv[1:])')

launch() {  # name port cmd...
  local name="$1" port="$2"; shift 2
  if running "$name"; then
    log "$name already running (pid $(cat "$(pidfile "$name")"))"; return 0
  fi
  if port_answers "$port"; then
    log "ERROR: port $port already answers, but not from a $name this script started;" \
        "stop that process first (or set the port variables)"
    return 1
  fi
  "${DETACH[@]}" "$@" >"$(logfile "$name")" 2>&1 </dev/null &
  echo $! >"$(pidfile "$name")"
}

wait_ready() {  # name url
  local name="$1" url="$2" deadline=$((SECONDS + READY_TIMEOUT))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if http_ok "$url"; then return 0; fi
    if ! running "$name"; then
      log "$name exited before it was ready; last lines of $(logfile "$name"):"
      tail -40 "$(logfile "$name")" >&2 || true
      rm -f "$(pidfile "$name")"
      return 1
    fi
    sleep 0.5
  done
  log "$name not ready after ${READY_TIMEOUT}s ($url); last lines of $(logfile "$name"):"
  tail -40 "$(logfile "$name")" >&2 || true
  return 1
}

stop_one() {
  local name="$1" f pid
  f="$(pidfile "$name")"
  if [ ! -f "$f" ]; then log "$name: not started by this script (no $f)"; return 0; fi
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    # DETACH made the server the leader of its own process group: end that group only.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    log "$name stopped (pid $pid)"
  else
    log "$name was not running (stale pid $pid)"
  fi
  rm -f "$f"
}

aimock_args() {  # port
  printf '%s\n' "$AIMOCK_BIN" --host 127.0.0.1 --port "$1" --fixtures "$AIMOCK_FIXTURES" \
    --chunk-size 8 --validate-on-load --log-level info
}

start_litellm() {
  launch litellm "$LITELLM_PORT" env -u DATABASE_URL \
    LITELLM_MASTER_KEY="$LITELLM_KEY" LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_TELEMETRY=False \
    NO_PROXY='*' no_proxy='*' \
    "$LITELLM_VENV/bin/litellm" --config "$LITELLM_CONFIG" --host 127.0.0.1 --port "$LITELLM_PORT"
}

start_aimock() {
  local args; mapfile -t args < <(aimock_args "$AIMOCK_PORT")
  launch aimock "$AIMOCK_PORT" env -u AIMOCK_API_KEYS node "${args[@]}"
}

start_aimock_auth() {
  local args; mapfile -t args < <(aimock_args "$AIMOCK_AUTH_PORT")
  launch aimock-auth "$AIMOCK_AUTH_PORT" env AIMOCK_API_KEYS="$AIMOCK_AUTH_KEY" node "${args[@]}"
}

write_versions() {
  {
    echo "litellm $(litellm_installed_version)"
    echo "aimock $(aimock_installed_version)"
    echo "node $(node --version 2>/dev/null | sed 's/^v//')"
    echo "python $("$LITELLM_VENV/bin/python" -c 'import platform; print(platform.python_version())' 2>/dev/null)"
  } >"$VERSIONS"
}

start() {
  install_all
  if ! { start_aimock && start_aimock_auth && start_litellm; }; then
    stop
    exit 1
  fi
  local ok=1
  wait_ready aimock "http://127.0.0.1:$AIMOCK_PORT/health" || ok=0
  wait_ready aimock-auth "http://127.0.0.1:$AIMOCK_AUTH_PORT/health" || ok=0
  wait_ready litellm "http://127.0.0.1:$LITELLM_PORT/health/liveliness" || ok=0
  if [ "$ok" != 1 ]; then
    log "ERROR: a server did not come up (log tails above); stopping the others"
    stop
    exit 1
  fi
  write_versions
  log "ready: litellm $(litellm_installed_version) on http://127.0.0.1:$LITELLM_PORT (key $LITELLM_KEY);" \
      "aimock $(aimock_installed_version) on http://127.0.0.1:$AIMOCK_PORT/v1 and" \
      "http://127.0.0.1:$AIMOCK_AUTH_PORT/v1 (key $AIMOCK_AUTH_KEY); logs in $RUN_DIR"
}

stop() {
  stop_one litellm
  stop_one aimock-auth
  stop_one aimock
}

status() {
  local name port rc=0
  for entry in "litellm:$LITELLM_PORT" "aimock:$AIMOCK_PORT" "aimock-auth:$AIMOCK_AUTH_PORT"; do
    name="${entry%%:*}"; port="${entry##*:}"
    if running "$name"; then
      echo "$name: running, pid $(cat "$(pidfile "$name")"), http://127.0.0.1:$port, log $(logfile "$name")"
    else
      echo "$name: not running"; rc=3
    fi
  done
  [ -f "$VERSIONS" ] && sed 's/^/version: /' "$VERSIONS"
  return "$rc"
}

smoke() {  # needs curl
  command -v curl >/dev/null || die "smoke needs curl"
  local fail=0 J="Content-Type: application/json" msg='"messages":[{"role":"user","content":"hi"}]'
  check() {  # name expected_status body_regex curl-args...
    local name="$1" want="$2" re="$3" out code; shift 3
    out="$(curl -sS -N --max-time 20 -w '\n%{http_code}' "$@" 2>/dev/null || true)"
    code="${out##*$'\n'}"; out="${out%$'\n'*}"
    if [ "$code" = "$want" ] && grep -Eq -- "$re" <<<"$out"; then echo "ok   $name ($code)"
    else echo "FAIL $name: status $code, body: ${out:0:300}"; fail=1; fi
  }
  local L="http://127.0.0.1:$LITELLM_PORT" A="http://127.0.0.1:$AIMOCK_PORT/v1" S="http://127.0.0.1:$AIMOCK_AUTH_PORT/v1"
  check litellm-plain 200 'Hello from the LiteLLM mock server' "$L/chat/completions" \
    -H "Authorization: Bearer $LITELLM_KEY" -H "$J" -d "{\"model\":\"mock-gpt\",$msg}"
  check litellm-no-key 401 'auth_error' "$L/chat/completions" -H "$J" -d "{\"model\":\"mock-gpt\",$msg}"
  check aimock-plain 200 'Hello from aimock' "$A/chat/completions" -H "$J" -d "{\"model\":\"any\",$msg}"
  check aimock-auth-no-key 401 'invalid_api_key' "$S/chat/completions" -H "$J" -d "{\"model\":\"any\",$msg}"
  check aimock-auth-key 200 'Hello from aimock' "$S/chat/completions" -H "$J" \
    -H "Authorization: Bearer $AIMOCK_AUTH_KEY" -d "{\"model\":\"any\",$msg}"
  return "$fail"
}

case "$CMD" in
  install) install_all; write_versions ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  smoke) smoke ;;
  *) sed -n '2,19p' "$0"; exit 2 ;;
esac
