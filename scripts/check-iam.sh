#!/usr/bin/env bash
# Least privilege, checked (docs/ARCHITECTURE.md): evaluates every AWS call the functions'
# tests recorded (testkit's RecordFunctionCalls, one file per function in CALLS_DIR) against
# that function's role in the translated template.yaml, offline, with no AWS account.
#
#   scripts/check-iam.sh [--require-all] [CALLS_DIR]
#
# CALLS_DIR defaults to $CRUDDUR_IAM_CALLS_DIR, else target/iam-calls. scripts/test.sh runs
# it after the tests, with --require-all when the whole suite ran (then a function whose
# role grants DynamoDB actions must have recorded calls). The evaluator,
# @cloud-copilot/iam-simulate (AGPL-3.0: a test tool, never deployed), is pinned in
# tools/iam-check/package-lock.json and installed here with `npm ci`; the SAM translator
# comes from .venv (scripts/python-tools.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

flags=()
if [[ "${1:-}" == --require-all ]]; then flags+=(--require-all); shift; fi
target="${CARGO_TARGET_DIR:-$root/target}"
calls="${1:-${CRUDDUR_IAM_CALLS_DIR:-$target/iam-calls}}"
tool="$root/tools/iam-check"

die() { echo "check-iam: $*" >&2; exit 1; }

command -v node >/dev/null 2>&1 || die "node not found. Install Node.js 20+ (apt-get install -y nodejs npm)"
if [[ ! -f "$tool/node_modules/.package-lock.json" || "$tool/package-lock.json" -nt "$tool/node_modules/.package-lock.json" ]]; then
  command -v npm >/dev/null 2>&1 || die "npm not found. Install Node.js 20+ (apt-get install -y nodejs npm)"
  (cd "$tool" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
scripts/python-tools.sh

# The checker's own tests first (tools/iam-check/check.test.mjs): what it must catch, on a
# small stack of their own.
node --test --test-reporter=dot "$tool/"
mkdir -p "$target"
stack="$target/iam-stack.json"
# The translation must not reach AWS: no credentials, a fixed region.
env -u AWS_PROFILE -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN \
  AWS_DEFAULT_REGION=us-east-1 .venv/bin/python "$tool/stack.py" template.yaml >"$stack"
node "$tool/check.mjs" "$stack" "$calls" "${flags[@]}"
