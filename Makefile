# One entry point per task; CI (.ci/run) calls `make test`.
.PHONY: dev test fmt lint sqlx-prepare sim openapi bench-engine bench-stores bench-sim bench-api bench-retention bench-insights bench-ops soak

dev: ## Start the local platform: Postgres, migrations, simulator, API, two workers; prints URL + admin token
	scripts/dev.sh

test: ## fmt check, clippy -D warnings, the whole test suite against a real Postgres
	scripts/test.sh

fmt:
	cargo fmt --all

lint:
	cargo clippy --workspace --all-targets -- -D warnings

sqlx-prepare: ## regenerate .sqlx/ (the query macros' offline cache) after changing a query or a migration
	scripts/with-postgres.sh scripts/sqlx-prepare.sh

openapi: ## regenerate the committed api/openapi.json from the code
	cargo run -q -p urumi-api -- openapi > api/openapi.json

bench-engine: ## N runs x K no-op steps x W worker processes; prints figures, last line RESULT {json}
	cargo build --release -p urumi-bench
	scripts/with-postgres.sh ./target/release/bench-engine $(ARGS)

bench-retention: ## 10,000 stores with a year of churn: table sizes before/after pruning, prune rows/s, claim p99 while pruning; last line RESULT {json}
	cargo build --release -p urumi-bench
	scripts/with-postgres.sh ./target/release/bench-retention $(ARGS)

bench-insights: ## 1,000,000 step rows over 30 days: each insight query's p50/p99 per window (24 h, 7 d, 30 d) and its plan; last line RESULT {json}
	cargo build --release -p urumi-bench
	scripts/with-postgres.sh ./target/release/bench-insights $(ARGS)

bench-ops: ## 10,000 failed runs replayed (a retry loop vs one operation) while customers start runs: dry-run ms, seconds to all started, interactive p99 before/after, two owners' shares; last line RESULT {json}
	cargo build --release -p urumi-bench
	scripts/with-postgres.sh ./target/release/bench-ops $(ARGS)

bench-stores: ## provision 1,000 stores against the simulator with 2 worker processes, then suspend, resume and back them up in bulk (one operation each); last line RESULT {json}
	cargo build --release -p urumi-bench -p urumi-worker
	scripts/with-postgres.sh ./target/release/bench-stores $(ARGS)

bench-api: ## create 10,000 stores through the API, then GET/list load (wrk); req/s, p99, RSS; last line RESULT {json}
	command -v wrk >/dev/null || apt-get install -y wrk
	cargo build --release -p urumi-bench -p urumi-api
	scripts/with-postgres.sh ./target/release/bench-api $(ARGS)

bench-sim: ## GETs/s and server-side applies/s from one client; RSS holding 10,000 stores; last line RESULT {json}
	sim/scripts/bench-sim.sh

soak: ARGS ?= --stores 150 --seconds 300
soak: ## chaos soak: stores provisioned while workers are SIGKILLed, Postgres and the API restarted, faults injected; invariants, last line RESULT {json}
	cargo build -p urumi-sim -p urumi-api -p urumi-worker -p urumi-bench --bins
	$${CARGO_TARGET_DIR:-target}/debug/soak $(ARGS)

sim: ## the Kubernetes API simulator in the foreground (SIM_ADDR, SIM_KUBECONFIG)
	cargo run --release -p urumi-sim --bin urumi-sim
