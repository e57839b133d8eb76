#!/usr/bin/env bash
# `make invoke`: sends a function its event from events/ in a running `cargo lambda watch`
# (`make watch`, scripts/watch.sh) and prints the answer.
#
#   scripts/watch-invoke.sh FUNCTION [EVENT]     EVENT: a name in events/ or a path
#   scripts/watch-invoke.sh --event FUNCTION [EVENT]   only print the event file it would send
#
# Without EVENT, a function's default event is events/FUNCTION.json or
# events/api-FUNCTION.json; the two stream consumers get events/stream-insert-message.json
# and create-message events/api-create-message-to-handle.json. ws-authorizer's default event
# carries a made-up Cognito token; it is sent with a fresh development token for TOKEN_USER
# (andrewbrown, seeded) instead, from `cruddur token` against DDB_ENDPOINT and DEV_API, so the
# answer is an Allow from the local stack's keys. update-message, delete-message,
# add-reaction and remove-reaction address a message by its uuid, which no seed can fix in
# advance (a uuid carries its send's time and random bits): their default events are sent
# about a message sent for the purpose into the event's conversation with `cruddur messages
# send`, by the event's caller (londo, seeded) for an edit or delete, by the other member
# (bayko) for a reaction; MESSAGE_USER picks another sender.
#
# INVOKE_ADDRESS / INVOKE_PORT: where the watch listens (::1, 9000, as scripts/watch.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

print_only=0
if [[ "${1:-}" == "--event" ]]; then print_only=1; shift; fi
fn="${1:-}"
event="${2:-}"
[[ -n "$fn" ]] || { echo "usage: $0 [--event] FUNCTION [EVENT]" >&2; exit 2; }

default_event() {
  case "$1" in
    messaging-stream | messaging-push) echo events/stream-insert-message.json ;;
    create-message) echo events/api-create-message-to-handle.json ;;
    *) for file in "events/$1.json" "events/api-$1.json"; do
         if [[ -f "$file" ]]; then echo "$file"; return; fi
       done ;;
  esac
}

if [[ -n "$event" ]]; then
  if [[ -f "$event" ]]; then file="$event"; else file="events/${event%.json}.json"; fi
else
  file="$(default_event "$fn")"
fi
[[ -n "$file" && -f "$file" ]] || { echo "no event file for $fn${event:+ (EVENT=$event)}; see events/" >&2; exit 2; }
if [[ "$print_only" == 1 ]]; then echo "$file"; exit 0; fi

if [[ "$fn" == ws-authorizer && -z "$event" ]]; then
  ddb_endpoint="${DDB_ENDPOINT:-http://localhost:${DDB_PORT:-8000}}"
  dev_api="${DEV_API:-http://127.0.0.1:4567}"
  [[ -x target/debug/cruddur ]] || cargo build --locked --quiet --bin cruddur
  token="$(target/debug/cruddur --endpoint-url "$ddb_endpoint" token "${TOKEN_USER:-andrewbrown}" --api-url "$dev_api")"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  TOKEN="$token" python3 - "$file" > "$tmp/ws-authorizer.json" <<'PY'
import json, os, sys
event = json.load(open(sys.argv[1]))
event["queryStringParameters"]["token"] = os.environ["TOKEN"]
event["multiValueQueryStringParameters"]["token"] = [os.environ["TOKEN"]]
json.dump(event, sys.stdout)
PY
  file="$tmp/ws-authorizer.json"
fi

# The routes about one message: the event's message is sent first, by the member the event
# needs (its caller, the sender, for an edit or delete; the other member for a reaction).
case "$fn" in
  update-message | delete-message) message_sender="${MESSAGE_USER:-londo}" ;;
  add-reaction | remove-reaction) message_sender="${MESSAGE_USER:-bayko}" ;;
  *) message_sender="" ;;
esac
if [[ -n "$message_sender" && -z "$event" ]]; then
  ddb_endpoint="${DDB_ENDPOINT:-http://localhost:${DDB_PORT:-8000}}"
  [[ -x target/debug/cruddur ]] || cargo build --locked --quiet --bin cruddur
  group="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["pathParameters"]["message_group_uuid"])' "$file")"
  sent="$(target/debug/cruddur --endpoint-url "$ddb_endpoint" messages send --as "$message_sender" \
    --group "$group" "Sent by watch-invoke.sh for $fn to change")"
  message="$(sed -n 's/^sent \([0-9a-f-]*\) in .*/\1/p' <<<"$sent")"
  [[ -n "$message" ]] || { echo "could not send a message to $fn: $sent" >&2; exit 1; }
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  MESSAGE="$message" python3 - "$file" > "$tmp/$fn.json" <<'PY'
import json, os, sys
event = json.load(open(sys.argv[1]))
old = event["pathParameters"]["message_uuid"]
event["pathParameters"]["message_uuid"] = os.environ["MESSAGE"]
for part in (event, event["requestContext"]["http"]):
    key = "rawPath" if part is event else "path"
    part[key] = part[key].replace(old, os.environ["MESSAGE"])
json.dump(event, sys.stdout, ensure_ascii=False)
PY
  file="$tmp/$fn.json"
fi

PATH="$root/.venv/bin:$PATH" cargo lambda invoke "$fn" --data-file "$file" \
  --invoke-address "${INVOKE_ADDRESS:-::1}" --invoke-port "${INVOKE_PORT:-9000}" --output-format json
