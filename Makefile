# The two commands a new user needs: `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export UV_PYTHON_DOWNLOADS := never
# compile site-packages once at install: with PYTHONDONTWRITEBYTECODE set (as on CI) every
# process would otherwise recompile dlt, dbt and pandas (≈10 s per process measured)
export UV_COMPILE_BYTECODE := 1
export PATH := $(HOME)/.local/bin:$(PATH)
ELT := .venv/bin/elt
YEARS ?= 1

.PHONY: help setup demo test test-unit test-integration lint format clean

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

setup:  ## install uv if missing, then the locked environment (.venv)
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet --user uv \
		|| python3 -m pip install --quiet uv
	@uv sync --frozen

demo: setup  ## start the warehouse, make demo sources, run the whole pipeline on them
	$(ELT) up
	$(ELT) demo-data --years $(YEARS)
	$(ELT) run jaffle_daily
	$(ELT) docs build
	@echo
	@echo "Done. Look at the published marts:  eval \"\$$($(ELT) env)\" && psql -c 'select * from analytics.customers limit 5'"
	@echo "Stop the warehouse with: $(ELT) down"
	@echo "Data docs (runs, checks, freshness, dbt lineage, GX results) are in .elt/site/index.html"
	@echo "Serve them with: $(ELT) docs serve   then open http://127.0.0.1:8580/"

lint: setup  ## ruff (format + check), mypy (strict on elt/) and sqlfluff (dbt templater)
	.venv/bin/ruff format --check .
	.venv/bin/ruff check .
	.venv/bin/mypy --config-file pyproject.toml
	@# the dbt templater compiles models, so it needs a warehouse: lint's own (not the tests'),
	@# stopped again whatever the outcome (under xdist no test session stops .elt/test's)
	ELT_HOME=$(CURDIR)/.elt/lint bash -c 'eval "$$(.venv/bin/elt env)" && .venv/bin/sqlfluff lint dbt_project; status=$$?; .venv/bin/elt down >/dev/null 2>&1; exit $$status' 

format: setup  ## apply ruff formatting and sqlfluff fixes
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

test: setup lint browser redis  ## the full suite: lint, unit and integration tests (what CI runs)
	.venv/bin/pytest -q -n 2 --dist loadfile --no-loadscope-reorder --durations=30 tests

.PHONY: browser
browser:  ## Debian's chromium for the browser tests (apt-get, as root, only when missing)
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y chromium; \
	else echo "/usr/bin/chromium is missing and the browser tests need it:" \
		"run 'sudo apt-get update && sudo apt-get install -y chromium', then make test again"; \
		exit 1; fi

.PHONY: redis
redis:  ## Debian's redis-server, the Celery broker of `elt airflow up --executor celery` (only when missing)
	@if [ -x /usr/bin/redis-server ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y redis-server; \
	else echo "/usr/bin/redis-server is missing and the Celery tests need it:" \
		"run 'sudo apt-get update && sudo apt-get install -y redis-server', then make test again"; \
		exit 1; fi

test-unit: setup  ## fast tests, no services
	.venv/bin/pytest -q tests/unit

test-integration: setup  ## tests on the embedded PostgreSQL and local servers
	.venv/bin/pytest -q tests/integration

clean:  ## stop local services and delete .elt/ and build output
	-@test -x $(ELT) && $(ELT) demo-api stop >/dev/null 2>&1 || true
	-@test -x $(ELT) && $(ELT) down >/dev/null 2>&1 || true
	-@test -x $(ELT) && ELT_HOME=$(CURDIR)/.elt/test $(ELT) down >/dev/null 2>&1 || true
	-@test -x $(ELT) && ELT_HOME=$(CURDIR)/.elt/lint $(ELT) down >/dev/null 2>&1 || true
	rm -rf .elt dbt_project/target dbt_project/logs .pytest_cache .ruff_cache .mypy_cache

.PHONY: k8s k8s-validate

k8s:  ## render every k8s overlay into .elt/k8s/<env>.yaml (kubectl kustomize through uvx)
	k8s/validate.sh render

k8s-validate:  ## render the k8s overlays and check them offline: schema, checkov, hadolint
	k8s/validate.sh

.PHONY: bench bench-quick bench-ingest

bench: setup  ## every benchmark at full scale, 3 rounds (~100 min on 2 cores); tables into BENCHMARKS.md
	.venv/bin/python -m bench full

bench-quick: setup  ## smoke run: every case family at a small scale (< 5 min)
	.venv/bin/python -m bench quick

bench-ingest: setup  ## database ingestion vs COPY, dlt defaults and pandas on >= 1M order items
	.venv/bin/python -m bench ingest

.PHONY: soak

SOAK_RUNS ?= 8
SOAK_SEED ?= 1

soak: setup  ## incremental ingests with random faults (SOAK_RUNS=8); rows, duplicates, losses
	@ELT_HOME=$(CURDIR)/.elt/soak .venv/bin/python -m tests.reliability.soak \
		--runs $(SOAK_RUNS) --seed $(SOAK_SEED); status=$$?; \
		ELT_HOME=$(CURDIR)/.elt/soak $(ELT) down >/dev/null 2>&1; exit $$status
