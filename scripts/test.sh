#!/usr/bin/env bash
# Runs every test. Starts an in-memory DynamoDB Local on a free port for the run and stops
# it afterwards, whatever happens; or uses the one named by CRUDDUR_TEST_DDB_ENDPOINT.
# Extra arguments go to `cargo test`. Then scripts/check-iam.sh evaluates the AWS calls the
# functions' tests recorded against their roles in template.yaml (every function must have
# recorded some when the whole suite ran).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if [[ -z "${CRUDDUR_TEST_DDB_ENDPOINT:-}" ]]; then
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  scripts/ddb-local.sh start "$port"
  trap 'scripts/ddb-local.sh stop "$port"' EXIT
  export CRUDDUR_TEST_DDB_ENDPOINT="http://127.0.0.1:$port"
fi

# The recordings of this run only; a part of the suite (any argument) may leave functions
# without recordings.
calls="${CARGO_TARGET_DIR:-$root/target}/iam-calls"
rm -rf "$calls"
export CRUDDUR_IAM_CALLS_DIR="$calls"
whole=()
(($#)) || whole=(--require-all)
# One command per line: under `set -e`, a failure inside an `&&` list does not stop the script.
scripts/check-template.sh
cargo test --workspace --locked "$@"
scripts/check-iam.sh "${whole[@]}" "$calls"
