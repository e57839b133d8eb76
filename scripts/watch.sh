#!/usr/bin/env bash
# `make watch`: `cargo lambda watch` with what every function needs to run against the local
# stack, in the foreground until Ctrl-C. Each function runs as its own bin (`cargo run --bin
# <invoked function> --features functions/watch`), as AWS_LAMBDA_FUNCTION_NAME=<function>.
#
#   DynamoDB    DDB_ENDPOINT (http://localhost:$DDB_PORT, DDB_PORT 8000: `make dev`'s or
#               `make seed`'s), TABLE_NAME (cruddur-messages), dummy credentials
#   ws-authorizer
#               the development issuer and app client of `cruddur dev`, and the key it
#               publishes at DEV_API/.well-known/jwks.json
#   messaging-push
#               WEBSOCKET_API_ENDPOINT=DEV_API: `cruddur dev`'s Management API stand-in
#
# DEV_API is `make dev`'s stack (http://127.0.0.1:4567). Without it running, every function
# but those two still works; ws-authorizer then fails to fetch keys, and the push fails its
# posts (within seconds: every post has a 2 s connect timeout and at most 4 attempts).
#
# Builds every function's bin first (the dev profile, target/debug), so that no invocation
# waits on a build. Listens on INVOKE_ADDRESS:INVOKE_PORT (::1 and 9000, where `cargo lambda
# invoke` sends by default; cargo lambda watch would listen on every interface). An
# invocation waits at most WATCH_TIMEOUT seconds (120: room to rebuild a bin after an edit),
# so one sent to a function that exited at start (cargo lambda watch never answers it)
# fails then instead of hanging.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

ddb_endpoint="${DDB_ENDPOINT:-http://localhost:${DDB_PORT:-8000}}"
dev_api="${DEV_API:-http://127.0.0.1:4567}"
dev_api="${dev_api%/}"

# cargo-lambda finds zig through the first python3 on PATH: the venv's.
export PATH="$root/.venv/bin:$PATH" SAM_CLI_TELEMETRY=0
export TABLE_NAME="${TABLE_NAME:-cruddur-messages}"
export AWS_ENDPOINT_URL="$ddb_endpoint"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local
unset AWS_PROFILE AWS_SESSION_TOKEN
# local::auth::DEV_ISSUER and DEV_CLIENT_ID: what `cruddur token` signs (the watch check
# fails with no Allow if they drift).
export JWT_ISSUER="https://cruddur.local/dev"
export JWT_AUDIENCE="cruddur-local-dev"
export JWKS_URL="$dev_api/.well-known/jwks.json"
export WEBSOCKET_API_ENDPOINT="$dev_api"

cargo build --locked --bins --features functions/watch
exec cargo lambda watch --locked --features functions/watch \
  --invoke-address "${INVOKE_ADDRESS:-::1}" --invoke-port "${INVOKE_PORT:-9000}" \
  --timeout "${WATCH_TIMEOUT:-120}" "$@"
