#!/usr/bin/env bash
# Lints template.yaml offline, with no AWS account or credentials: cfn-lint (CloudFormation
# schemas and best practices) and `sam validate --lint` (the SAM transform, then cfn-lint on
# its output). Both come pinned from .venv (scripts/python-tools.sh). Whether the template
# matches the code (schema, function names, stream filter, routes, IAM scope) is checked by
# crates/functions/tests/template.rs, part of `cargo test`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

scripts/python-tools.sh

export SAM_CLI_TELEMETRY=0
# Nothing here may reach AWS: no profile, no credentials, a fixed region for the transform.
unset AWS_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"

template="${1:-template.yaml}"
echo "check-template: cfn-lint $template" >&2
.venv/bin/cfn-lint "$template"
echo "check-template: sam validate --lint $template" >&2
.venv/bin/sam validate --lint --template-file "$template"
