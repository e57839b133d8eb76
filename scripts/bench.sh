#!/usr/bin/env bash
# `make bench`: builds the benchmark with the `measure` profile (optimised), starts a fresh
# in-memory DynamoDB Local, prints the figures (Markdown) and stops it. Extra arguments go
# to cruddur-bench (e.g. --suite stream). Init times need `make build` first. The cost
# suite also writes target/bench/costs.json, which scripts/capacity.py reads.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

cargo build --locked --profile measure -p bench
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
scripts/ddb-local.sh start "$port"
trap 'scripts/ddb-local.sh stop "$port"' EXIT
CRUDDUR_TEST_DDB_ENDPOINT="http://127.0.0.1:$port" target/measure/cruddur-bench "$@"
