# boxoffice — the same steps CI runs (.ci/run).
CARGO ?= cargo
LISTEN ?= 127.0.0.1:8080

.PHONY: run demo test loadtest lint fmt bench build clean

## Build and start the server on $(LISTEN) with a demo event (memory only, no Redis).
run:
	$(CARGO) run --release --bin boxoffice -- serve --listen $(LISTEN) --demo

## The gate in front of the example booking backend (examples/booking) on
## loopback, with a small gated event: prints the URL to open; Ctrl-C stops it.
## Ports: API_PORT (8080), GATE_PORT (8081), BACKEND_PORT (8082).
demo:
	CARGO=$(CARGO) ./scripts/demo.sh

## Every test: unit, property, integration, server, browser, and the
## operator's kit against a real Prometheus (tests/ops_prometheus.rs). The
## browser and Prometheus tests fail (instead of skipping) when Chromium or
## prometheus/promtool is missing: the line above installs them, so a skip
## here would hide a broken set-up.
test:
	./scripts/ensure-test-deps.sh
	BOXOFFICE_REQUIRE_BROWSER=1 BOXOFFICE_REQUIRE_PROMETHEUS=1 $(CARGO) test --workspace
	./target/debug/boxoffice-loadtest run --quiet --scenario loadtest/scenarios/smoke.toml --server-bin target/debug/boxoffice --out target/loadtest-smoke
	./scripts/demo-check.sh target/debug/boxoffice
	./scripts/demo-gate-check.sh

## The flash-sale simulator's default scenario (about a minute, loopback
## only): a release server it starts and stops itself, 50,000 virtual users,
## a venue and a coupon that sell out; exits non-zero if a truth check fails.
## The report: target/loadtest/report.html (and report.json).
loadtest:
	$(CARGO) build --release --workspace --bin boxoffice --bin boxoffice-loadtest
	./target/release/boxoffice-loadtest run --scenario loadtest/scenarios/default.toml --server-bin target/release/boxoffice --out target/loadtest
	@echo "report: target/loadtest/report.html"

## Formatting and clippy, warnings are errors; no dependency may need a newer
## Rust than Cargo.toml's rust-version (scripts/check-msrv.sh).
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	CARGO=$(CARGO) ./scripts/check-msrv.sh

fmt:
	$(CARGO) fmt --all

## Criterion benchmarks of the engine, then the side-by-side comparison with the
## Redis design, that design behind an HTTP front and bare hyper (starts its own
## redis-servers and servers; rewrites its section of docs/benchmarks.md and
## docs/compare.svg). HTTP front under wrk: scripts/http-bench.sh.
bench:
	./scripts/ensure-test-deps.sh
	$(CARGO) bench -p boxoffice-bench --bench engine
	$(CARGO) run --release -p boxoffice-bench --bin compare -- --out docs/benchmarks.md

build:
	$(CARGO) build --release

clean:
	$(CARGO) clean
