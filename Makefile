# certplane: `make demo` runs the main job, `make test` the test suite, `make test-slow` the fault suite (see README).
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTEST_ARGS ?=

.PHONY: help bootstrap demo demo-down test test-slow test-core lint
help:
	@echo "make demo       issue, deploy and verify the local stack's certificates (installs what is missing)"
	@echo "make demo-down  destroy the local stack and stop the local servers"
	@echo "make test       the test suite, real engine and servers included (not the slow fault suite)"
	@echo "make test-slow  the fault suite (tests/reliability: ups killed mid-way, server faults, concurrent stacks; ~6 min)"
	@echo "make bench      certplane vs a floor of trivial dynamic resources at N=100 and 500 (BENCH_N='100 500 2000'), then bench_core; see bench/README.md"
	@echo "make bench-acme 50 ACME certificates on one Pebble: certplane vs the acme library floor, certbot and lego (installs both under ~/.cache/certplane/bench; BENCH_ACME_ARGS='--runs 3')"
	@echo "make bench-probe ./certplane check --probe over 200 nginx bindings vs a floor of raw concurrent TLS handshakes (BENCH_PROBE_ARGS='--runs 7'); see bench/README.md"
	@echo "make bench-shards 5,000 certificates sharded into 20 stacks on one backend, 2 at a time, vs a floor fleet sharded alike (BENCH_SHARDS_ARGS='--shards 10'); ~25 min"

bootstrap:
	@tools/bootstrap.sh

demo: bootstrap
	@tools/demo.sh up

demo-down: bootstrap
	@tools/demo.sh down

test: bootstrap
	@. tools/env.sh && python -m pytest -m "not slow" $(PYTEST_ARGS) tests

test-slow: bootstrap
	@. tools/env.sh && python -m pytest -m slow $(PYTEST_ARGS) tests/reliability

test-core: bootstrap
	@. tools/env.sh && python -m pytest -q tests/core tests/providers tests/components

lint: bootstrap
	@. tools/env.sh && python -m mypy --strict providers/core

BENCH_N ?= 100 500
.PHONY: bench
bench: bootstrap
	@. tools/env.sh && python bench/bench_fleet.py $(foreach n,$(BENCH_N),--n $(n)) && python bench/bench_core.py

BENCH_ACME_ARGS ?= --n 50 --runs 3
.PHONY: bench-acme
bench-acme: bootstrap
	@. tools/env.sh && python bench/bench_acme.py $(BENCH_ACME_ARGS)

BENCH_PROBE_ARGS ?= --n 200 --runs 7
.PHONY: bench-probe
bench-probe: bootstrap
	@. tools/env.sh && python bench/bench_probe.py $(BENCH_PROBE_ARGS)

BENCH_SHARDS_ARGS ?= --total 5000 --shards 20 --jobs 2
.PHONY: bench-shards
bench-shards: bootstrap
	@. tools/env.sh && python bench/bench_shards.py $(BENCH_SHARDS_ARGS)
