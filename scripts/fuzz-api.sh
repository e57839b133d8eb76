#!/usr/bin/env bash
# `make fuzz` (and CI): against a seeded `cruddur dev`, with a development token of a seeded
# user, first the TypeScript client generated from docs/openapi.yaml
# (tools/openapi-client/example.ts), then schemathesis driven by the document as the stack
# serves it (GET /openapi.json). It fails on any 5xx, any status or header the document does not list for the
# operation, any body that does not match its schema or content type, a request the schema
# calls invalid that is accepted, and a protected route that answers without a valid token.
#
# Starts, on free loopback ports and with nothing kept afterwards: an in-memory DynamoDB Local
# (scripts/ddb-local.sh) with the schema and demo data, and `cruddur dev` (a throwaway key
# file). Every wait is on a condition with a timeout; every process it started is stopped on
# exit. Prints how long each part took.
#
#   FUZZ_MAX_EXAMPLES   test cases per operation and phase (default 100: about 25 s): the bound on time
#   FUZZ_SEED           schemathesis's random seed (default: a fixed one, so CI is
#                       reproducible; `FUZZ_SEED=random` for a new one each run)
#   FUZZ_USER           the seeded user whose token the requests carry (default andrewbrown)
#   FUZZ_DEV_ARGS       more arguments for `cruddur dev` (e.g. `--like-aws`: DynamoDB's
#                       throttling, conflicts and lagging index, so 503s get checked too)
#   SCHEMATHESIS        the `st` to run (default: .venv's, installed by scripts/python-tools.sh)
#
# Extra arguments go to `st run` (e.g. `--include-operation-id create-message`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

max_examples="${FUZZ_MAX_EXAMPLES:-100}"
seed="${FUZZ_SEED:-20261201}"
user="${FUZZ_USER:-andrewbrown}"
started=$SECONDS
say() { echo "fuzz-api: $*" >&2; }
die() { say "$*"; exit 1; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for WHAT SECONDS PID COMMAND...: until COMMAND succeeds, while PID lives.
wait_for() {
  local what="$1" timeout="$2" pid="$3"; shift 3
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || die "$what: its process exited (log above)"
    ((SECONDS < deadline)) || die "$what: not within ${timeout}s"
    sleep 0.2 # the poll interval; what the loop waits on is the condition
  done
}

tmp="$(mktemp -d)"
ddb_port="$(free_port)"
api_port="$(free_port)"
dev_pid="" ddb_started=0

cleanup() {
  local status=$?
  if [[ -n "$dev_pid" ]]; then kill -TERM "$dev_pid" 2>/dev/null || true; wait "$dev_pid" 2>/dev/null || true; fi
  if [[ "$ddb_started" == 1 ]]; then scripts/ddb-local.sh stop "$ddb_port" >/dev/null 2>&1 || true; fi
  if [[ "$status" != 0 && -f "$tmp/cruddur-dev.log" ]]; then
    echo "---- cruddur dev (5xx and failures)" >&2
    grep -E '"?status"?[=:] ?5[0-9][0-9]|ERROR|panicked' "$tmp/cruddur-dev.log" | tail -n 40 >&2 || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -n "${SCHEMATHESIS:-}" ]]; then
  st="$SCHEMATHESIS"
else
  scripts/python-tools.sh
  st="$root/.venv/bin/st"
fi

phase=$SECONDS
cargo build --locked --bin cruddur
say "built cruddur in $((SECONDS - phase))s"

phase=$SECONDS
ddb_endpoint="http://127.0.0.1:$ddb_port"
scripts/ddb-local.sh start "$ddb_port"
ddb_started=1
cruddur=(target/debug/cruddur --endpoint-url "$ddb_endpoint")
"${cruddur[@]}" ddb schema-load >/dev/null
"${cruddur[@]}" ddb seed >/dev/null

dev_api="http://127.0.0.1:$api_port"
export CRUDDUR_DEV_KEY_FILE="$tmp/dev-signing-key.pk8"
# shellcheck disable=SC2086 # FUZZ_DEV_ARGS is a list of arguments
"${cruddur[@]}" dev --port "$api_port" ${FUZZ_DEV_ARGS:-} \
  --dead-letter-file "$tmp/dead-letter.jsonl" --push-dead-letter-file "$tmp/push-dead-letter.jsonl" \
  >"$tmp/cruddur-dev.log" 2>&1 &
dev_pid=$!
wait_for "cruddur dev's API document at $dev_api" 60 "$dev_pid" curl -sf "$dev_api/openapi.json"
token="$("${cruddur[@]}" token "$user" --api-url "$dev_api")"
say "stack up in $((SECONDS - phase))s (DynamoDB Local :$ddb_port, cruddur dev :$api_port)"

# First the TypeScript client generated from the document (tools/openapi-client): it must
# compile against the generated types and do its work on the fresh seed (before the fuzzer
# blocks, leaves and rate-limits its way through the data).
phase=$SECONDS
command -v npm >/dev/null 2>&1 || die "npm not found (apt-get install -y nodejs npm)"
(cd tools/openapi-client && npm ci --no-audit --no-fund --silent && npm run --silent build)
CRUDDUR_API_URL="$dev_api" CRUDDUR_TOKEN="$token" node tools/openapi-client/dist/example.js
say "generated, built and ran the TypeScript client's example in $((SECONDS - phase))s"

# Random uuids and handles only ever meet 404s. Half of the generated conversation ids and
# handles are taken instead from what the seed made (the caller's conversations, the seeded
# users), so the requests reach the handlers' real work: sending, reading, adding, leaving,
# blocking, and the rate limit's 429.
inbox="$(curl -sf -H "Authorization: Bearer $token" "$dev_api/api/message_groups?limit=100")"
INBOX="$inbox" USER_HANDLE="$user" python3 - >"$tmp/schemathesis.toml" <<'PY'
import json, os
conversations = [item["uuid"] for item in json.loads(os.environ["INBOX"])]
assert conversations, "the seeded user has no conversations"
others = [h for h in ("andrewbrown", "bayko", "londo") if h != os.environ["USER_HANDLE"]]
handles = others + [os.environ["USER_HANDLE"]]
def values(items):
    return "[" + ", ".join(json.dumps(item) for item in items) + "]"
print(f"""[dictionaries.conversations]
values = {values(conversations)}
[dictionaries.handles]
values = {values(handles)}
[dictionaries.at_handles]
values = {values("@" + h for h in handles)}

[parameters]
"path.message_group_uuid" = {{ dictionary = "conversations", probability = 0.5 }}
"path.handle" = {{ dictionary = "at_handles", probability = 0.5 }}
"body.message_group_uuid" = {{ dictionary = "conversations", probability = 0.5 }}
"body.handle" = {{ dictionary = "handles", probability = 0.5 }}
"body.handles[*]" = {{ dictionary = "handles", probability = 0.5 }}
""")
PY

# The checks, each named so that a new schemathesis default cannot change what CI means:
#   not_a_server_error            no 5xx
#   status_code_conformance       every status the document lists for the operation
#   content_type_conformance      and its content type
#   response_headers_conformance  required headers (Retry-After on 429 and 503) present and valid
#   response_schema_conformance   every body matches its schema
#   negative_data_rejection       what the schema calls invalid is refused with a 4xx
#   ignored_auth                  a protected route refuses a request without a valid token
#   missing_required_header       ... and one with its Authorization header left out
#   unsupported_method            a method the path does not have is 405 (or 404)
# Left out, with the reason: positive_data_acceptance (a valid request to a conversation
# that does not exist or a user who is not there is rightly 404), and the stateful checks
# (use_after_free, ensure_resource_availability, object_level_authorization: the document
# declares no links between operations).
checks=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection,ignored_auth,missing_required_header,unsupported_method

seed_args=(--seed "$seed")
[[ "$seed" == random ]] && seed_args=()

phase=$SECONDS
status=0
# From the scratch directory: schemathesis keeps a cache of crashes in its working directory.
(cd "$tmp" && "$st" --config-file "$tmp/schemathesis.toml" run "$dev_api/openapi.json" \
  --url "$dev_api" \
  --header "Authorization: Bearer $token" \
  --checks "$checks" \
  --phases examples,coverage,fuzzing \
  --max-examples "$max_examples" \
  "${seed_args[@]}" \
  --generation-database none \
  --request-timeout 10 \
  --workers 2 \
  --no-color \
  "$@") || status=$?
say "schemathesis took $((SECONDS - phase))s (max $max_examples examples per operation, seed $seed)"
say "finished in $((SECONDS - started))s"
exit "$status"
