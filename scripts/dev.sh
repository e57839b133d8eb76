#!/usr/bin/env bash
# `make dev`: the whole system on this machine, in the foreground until Ctrl-C.
# Starts DynamoDB Local (persistent, under .dynamodb/data) unless one already answers on
# DDB_PORT, loads the schema, seeds demo data, then runs `cruddur dev` (API on
# http://127.0.0.1:4567 + stream pump). On exit it stops the DynamoDB Local it started.
# Extra arguments go to `cruddur dev`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

port="${DDB_PORT:-8000}"
data="${DDB_DATA:-.dynamodb/data}"
endpoint="http://localhost:$port"
cruddur=(target/debug/cruddur --endpoint-url "$endpoint")

cargo build --locked --bin cruddur

started_here=0
if scripts/ddb-local.sh status "$port"; then
  echo "Using the DynamoDB Local already answering on port $port" >&2
else
  scripts/ddb-local.sh start "$port" "$data"
  started_here=1
fi
stop_ddb() {
  if [[ "$started_here" == 1 ]]; then scripts/ddb-local.sh stop "$port"; fi
}
trap stop_ddb EXIT

"${cruddur[@]}" ddb schema-load
"${cruddur[@]}" ddb seed
cat >&2 <<HELP

  Tokens for the seeded users:   target/debug/cruddur token andrewbrown
  Stop with Ctrl-C.

HELP
# Not exec: the trap must run after the stack stops.
"${cruddur[@]}" dev "$@"
