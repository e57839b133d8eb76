#!/usr/bin/env bash
# `make watch-check` (and CI): every function answers under `cargo lambda watch` as documented.
#
# Starts, on free loopback ports and with nothing kept afterwards: an in-memory DynamoDB Local
# (scripts/ddb-local.sh) with the schema and demo data, `cruddur dev` (for its development
# keys and its Management API stand-in; a throwaway key file), and `make watch`'s
# scripts/watch.sh. Then sends every function of the stack (the template's Handlers, which
# tests/template.rs holds to functions::Function::ALL) its default event from events/, as
# `make invoke` does (scripts/watch-invoke.sh), and checks the answer:
#
#   stream consumers   no batchItemFailures for the valid batch
#   HTTP API           the status README's API table documents for the route (204 where it
#                      says `204`, else 200)
#                      (update-message and delete-message: about a message sent for the
#                      purpose, see scripts/watch-invoke.sh)
#   Cognito triggers   the event back (a trigger that accepts returns what it was given)
#   ws-authorizer      an Allow for execute-api:Invoke, for a fresh development token
#   ws-connect/-disconnect  status 200
#   ws-typing          status 200 (one-way route: what the client gets, it posts)
#   ws-presence        status 200 and one frame (two-way route): `presence`, or the shared
#                      `error` frame {type, action, code, message} of the action
#
# Every wait is on a condition (a port answering, an answer received) with a timeout. Every
# process it started is stopped on exit, whatever happens. Prints how long each part took.
#
#   WATCH_CHECK_INVOKE_TIMEOUT   seconds one invocation may take (default 180: the first
#                                `cargo run` of a bin may still have to link it)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

invoke_timeout="${WATCH_CHECK_INVOKE_TIMEOUT:-180}"
started=$SECONDS
say() { echo "watch-check: $*" >&2; }
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

answers_http() { [[ "$(curl -s -o /dev/null -m 1 -w '%{http_code}' "$1" || true)" != 000 ]]; }

tmp="$(mktemp -d)"
ddb_port="$(free_port)"
api_port="$(free_port)"
invoke_port="$(free_port)"
dev_pid="" watch_pid="" ddb_started=0

cleanup() {
  local status=$?
  if [[ -n "$watch_pid" ]]; then
    # Its own process group: watch, watchexec and every `cargo run` of a function.
    kill -TERM -- "-$watch_pid" 2>/dev/null || true
    wait "$watch_pid" 2>/dev/null || true
  fi
  if [[ -n "$dev_pid" ]]; then kill -TERM "$dev_pid" 2>/dev/null || true; wait "$dev_pid" 2>/dev/null || true; fi
  if [[ "$ddb_started" == 1 ]]; then scripts/ddb-local.sh stop "$ddb_port" >/dev/null 2>&1 || true; fi
  if [[ "$status" != 0 ]]; then
    for log in "$tmp"/*.log; do
      [[ -f "$log" ]] || continue
      echo "---- $(basename "$log") (last 40 lines)" >&2
      tail -n 40 "$log" >&2
    done
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

scripts/python-tools.sh

# What `cargo lambda watch` runs (`cargo run --bin <function> --features functions/watch`,
# dev profile, target/debug), built first so that no invocation waits on a build.
phase=$SECONDS
cargo build --locked --bins --features functions/watch
say "built the bins in $((SECONDS - phase))s"

phase=$SECONDS
ddb_endpoint="http://127.0.0.1:$ddb_port"
scripts/ddb-local.sh start "$ddb_port"
ddb_started=1
cruddur=(target/debug/cruddur --endpoint-url "$ddb_endpoint")
"${cruddur[@]}" ddb schema-load
"${cruddur[@]}" ddb seed

dev_api="http://127.0.0.1:$api_port"
export CRUDDUR_DEV_KEY_FILE="$tmp/dev-signing-key.pk8"
"${cruddur[@]}" dev --port "$api_port" \
  --dead-letter-file "$tmp/dead-letter.jsonl" --push-dead-letter-file "$tmp/push-dead-letter.jsonl" \
  >"$tmp/cruddur-dev.log" 2>&1 &
dev_pid=$!
wait_for "cruddur dev's keys at $dev_api" 60 "$dev_pid" curl -sf "$dev_api/.well-known/jwks.json"

export DDB_ENDPOINT="$ddb_endpoint" DEV_API="$dev_api" INVOKE_ADDRESS=127.0.0.1 INVOKE_PORT="$invoke_port"
setsid scripts/watch.sh --ignore-changes >"$tmp/watch.log" 2>&1 &
watch_pid=$!
wait_for "cargo lambda watch on port $invoke_port" 120 "$watch_pid" answers_http "http://127.0.0.1:$invoke_port/"
say "stack up in $((SECONDS - phase))s (DynamoDB Local :$ddb_port, cruddur dev :$api_port, watch :$invoke_port)"

mapfile -t functions < <(sed -n 's/^ *Handler: *//p' template.yaml)
((${#functions[@]} > 0)) || die "no Handler in template.yaml"

failed=()
for fn in "${functions[@]}"; do
  phase=$SECONDS
  event="$(scripts/watch-invoke.sh --event "$fn")"
  if ! answer="$(timeout "$invoke_timeout" scripts/watch-invoke.sh "$fn" 2>"$tmp/invoke.err")"; then
    say "FAIL $fn ($event): no answer within ${invoke_timeout}s: $(tail -n 5 "$tmp/invoke.err")"
    failed+=("$fn")
    continue
  fi
  if verdict="$(python3 - "$fn" "$event" "$answer" 2>&1 <<'PY'
import json, re, sys

fn, event_file, raw = sys.argv[1], sys.argv[2], sys.argv[3]
event = json.load(open(event_file))
try:
    answer = json.loads(raw)
except ValueError:
    sys.exit(f"not JSON: {raw[:300]}")

def expect(ok, what):
    if not ok:
        sys.exit(f"expected {what}, got {raw[:400]}")

if "Records" in event:
    expect(answer == {"batchItemFailures": []}, "no batchItemFailures")
    print(json.dumps(answer))
elif event.get("routeKey", "").split(" ")[0] in ("GET", "POST", "PUT", "DELETE", "PATCH"):
    # The status README's API table documents for the function's route.
    row = next((line for line in open("README.md") if re.match(rf"^\| `[A-Z]+ [^`]*` \| `{re.escape(fn)}` \|", line)), None)
    expect(row is not None, f"a row for {fn} in README's API table")
    status = 204 if "`204`" in row.split("|")[3] else 200
    expect(answer.get("statusCode") == status, f"status {status}")
    print(f"{event['routeKey']} → {status}")
elif "triggerSource" in event:
    expect(answer == event, "the event back")
    print(f"{event['triggerSource']}: the event back")
elif event.get("type") == "REQUEST" and event.get("methodArn"):
    statements = answer.get("policyDocument", {}).get("Statement", [])
    expect(answer.get("principalId") and any(
        s.get("Effect") == "Allow" and "execute-api:Invoke" in json.dumps(s.get("Action"))
        for s in statements), "an Allow for execute-api:Invoke")
    print(f"Allow for {answer['principalId']}")
elif event.get("requestContext", {}).get("eventType") in ("CONNECT", "DISCONNECT") or (
        event.get("requestContext", {}).get("eventType") == "MESSAGE" and fn == "ws-typing"):
    # One-way routes: the answer is an empty 200 (what the client gets is posted).
    expect(answer.get("statusCode") == 200, "status 200")
    print(f"{event['requestContext']['eventType']} → 200")
elif event.get("requestContext", {}).get("eventType") == "MESSAGE":
    # The route's response is the frame the client gets. The event's connection has no
    # item in the seeded table, so either frame is an answer as documented.
    expect(answer.get("statusCode") == 200, "status 200")
    try:
        frame = json.loads(answer.get("body") or "")
    except ValueError:
        frame = {}
    route = event["requestContext"]["routeKey"]
    expect(frame.get("type") == route or (frame.get("type") == "error" and frame.get("action") == route
           and frame.get("code") and frame.get("message")), f"a {route} frame or its error frame")
    print(f"MESSAGE {route} → {frame.get('type')} {frame.get('code', '')}")
else:
    sys.exit(f"no rule for the answer to {event_file}")
PY
  )"; then
    say "ok   $fn ($event, $((SECONDS - phase))s): $verdict"
  else
    say "FAIL $fn ($event): $verdict"
    failed+=("$fn")
  fi
done

if ((${#failed[@]} > 0)); then
  die "${#failed[@]} of ${#functions[@]} functions did not answer as documented: ${failed[*]}"
fi
say "all ${#functions[@]} functions answered as documented, in $((SECONDS - started))s"
