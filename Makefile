# The two commands: `make demo` and `make test`. Everything else is here too; `make help` lists it.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BOOTSTRAP ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
TEST_WORKERS ?= 2
DBT := $(CURDIR)/$(VENV)/bin/dbt
STAMP := $(VENV)/.installed

# Paths and services (override on the command line or in the environment).
# The profile: embedded (default: one DuckDB file, LocalExecutor) or cluster (PostgreSQL, Celery workers,
# DuckLake: mk/cluster.mk, docs/scaling-out.md), whose data lives in its own folder.
PIPELINE_PROFILE ?= embedded
CLUSTER_DIR ?= $(CURDIR)/cluster
CLUSTER_DATA_DIR ?= $(CLUSTER_DIR)/data
ifeq ($(PIPELINE_PROFILE),cluster)
export PIPELINE_CLUSTER_DIR ?= $(CLUSTER_DIR)
export PIPELINE_DATA_DIR ?= $(CLUSTER_DATA_DIR)
endif
export PIPELINE_DATA_DIR ?= $(CURDIR)/data
export DUCKDB_PATH ?= $(PIPELINE_DATA_DIR)/warehouse.duckdb
export AIRFLOW_HOME ?= $(CURDIR)/airflow_home
export DO_NOT_TRACK := 1
export AIRFLOW__COSMOS__ENABLE_TELEMETRY := False

DEMO_START ?= 2024-01-01
DEMO_END ?= 2024-01-07
MAX_ACTIVE_RUNS ?= 3
REPROCESS ?= none
ROWS ?= 1000

DBT_SOURCES := $(shell find dbt_project/models dbt_project/macros dbt_project/tests -type f 2>/dev/null) \
	dbt_project/dbt_project.yml dbt_project/profiles.yml
MANIFEST := dbt_project/target/manifest.json

# Feature areas keep their targets in mk/*.mk (docs, dashboard, sql shell, benchmarks, ...).
-include mk/*.mk

.PHONY: help install lock manifest generate demo system-packages test test-fast lint airflow airflow-stop airflow-status \
	backfill backfill-bulk rerun full-refresh status summary clean distclean

help: ## list the targets
	@grep -h -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-15s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@command -v $(PYTHON_BOOTSTRAP) >/dev/null || { echo "Python 3.11 is needed ($(PYTHON_BOOTSTRAP) not found; set PYTHON_BOOTSTRAP=...)"; exit 1; }
	@test -x $(PY) || $(PYTHON_BOOTSTRAP) -m venv $(VENV)
	@echo "Installing pinned requirements (requirements-dev.txt: the app's and the dev tools') into $(VENV) (about a minute)..."
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m pip check
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install the pinned requirements

LOCK_TOOLS := $(VENV)-lock
lock: ## re-pin requirements.txt (the app) and requirements-dev.txt (+ dev tools) from pyproject.toml
	@test -x $(LOCK_TOOLS)/bin/pip-compile || { $(PYTHON_BOOTSTRAP) -m venv $(LOCK_TOOLS) && $(LOCK_TOOLS)/bin/pip install --quiet pip-tools==7.5.2; }
	$(LOCK_TOOLS)/bin/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links --no-annotate \
		--output-file requirements.txt pyproject.toml
	$(LOCK_TOOLS)/bin/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links --no-annotate \
		--extra dev -c requirements.txt --output-file requirements-dev.txt pyproject.toml

# The DAG's builds pass --profile and --target (Cosmos's ProfileConfig); dbt reuses a partial parse only
# when they match the parse's own, so the first scheduled build after `make manifest` needs no full parse.
DBT_TARGET := $(if $(filter cluster,$(PIPELINE_PROFILE)),cluster,dev)
$(MANIFEST): $(STAMP) $(DBT_SOURCES)
	@echo "Parsing the dbt project (manifest for the DAGs)..."
	cd dbt_project && $(DBT) parse --quiet --profile ecommerce --target $(DBT_TARGET)
	@touch $(MANIFEST)

manifest: $(MANIFEST) ## dbt parse: the manifest Cosmos renders the DAG from

generate: $(STAMP) ## generate raw partitions: make generate START=2024-01-01 END=2024-01-07 [ROWS=1000]
	$(VENV)/bin/ecompipe generate --start-date $(START) --end-date $(END) --rows $(ROWS)

demo: $(MANIFEST) ## fresh clone -> a week of data through Airflow -> per-date summary
	$(VENV)/bin/ecompipe generate --start-date $(DEMO_START) --end-date $(DEMO_END) --rows $(ROWS)
	PIPELINE_SCHEDULE_END_DATE=$(DEMO_END) $(VENV)/bin/ecompipe demo $(DEMO_START) $(DEMO_END)
	$(VENV)/bin/ecompipe summary $(DEMO_START) $(DEMO_END)

airflow: $(MANIFEST) $(DOCS_INDEX) ## start Airflow 3 (scheduler, dag-processor, triggerer, api-server) for this repo
	$(VENV)/bin/ecompipe airflow start

airflow-stop: ## stop exactly the Airflow processes `make airflow` started
	$(VENV)/bin/ecompipe airflow stop

airflow-status: ## which Airflow components run, and the UI address
	$(VENV)/bin/ecompipe airflow status

backfill: $(MANIFEST) ## make backfill START=... END=... [MAX_ACTIVE_RUNS=3] [REPROCESS=none|failed|completed]
	@test -n "$(START)" -a -n "$(END)" || { echo "usage: make backfill START=2024-01-01 END=2024-01-31"; exit 2; }
	$(VENV)/bin/ecompipe backfill $(START) $(END) --max-active-runs $(MAX_ACTIVE_RUNS) --reprocess $(REPROCESS)

rerun: $(MANIFEST) ## reprocess one date through Airflow: make rerun DATE=2024-01-15
	@test -n "$(DATE)" || { echo "usage: make rerun DATE=2024-01-15"; exit 2; }
	$(VENV)/bin/ecompipe rerun $(DATE)

CHUNK_DAYS ?= 31
backfill-bulk: $(MANIFEST) ## a long range fast, one dbt build per chunk: make backfill-bulk START=... END=... [CHUNK_DAYS=31]
	@test -n "$(START)" -a -n "$(END)" || { echo "usage: make backfill-bulk START=2024-01-01 END=2024-12-31 [CHUNK_DAYS=31]"; exit 2; }
	$(VENV)/bin/ecompipe backfill-bulk $(START) $(END) --chunk-days $(CHUNK_DAYS)

full-refresh: $(MANIFEST) ## rebuild every model from every raw partition (dbt build --full-refresh)
	cd dbt_project && $(if $(filter cluster,$(PIPELINE_PROFILE)),$(CURDIR)/$(VENV)/bin/ecompipe-dbt,$(DBT)) build --full-refresh

status: $(STAMP) ## each date's status (loaded, failed, no raw file, never run): make status START=... END=...
	@test -n "$(START)" -a -n "$(END)" || { echo "usage: make status START=2024-01-01 END=2024-01-31"; exit 2; }
	$(VENV)/bin/ecompipe status $(START) $(END)

summary: $(STAMP) ## per-date summary: make summary START=2024-01-01 END=2024-01-07
	$(VENV)/bin/ecompipe summary $(or $(START),$(DEMO_START)) $(or $(END),$(DEMO_END))

system-packages: ## install the Debian packages the tests need (Chromium, PostgreSQL, Redis), when run as root
	@scripts/install_debian_packages.sh chromium postgresql redis-server

test: $(MANIFEST) system-packages ## the whole test suite (unit, dbt, DAG integrity, pages, real Airflow)
	@# On TEST_WORKERS pytest-xdist workers (0: one process; docs/testing.md). The slowest tests are listed
	@# at the end: the suite must stay well under an hour on 2 cores.
	$(PY) -m pytest -ra --durations=15 -n $(TEST_WORKERS)

test-fast: $(MANIFEST) ## the quick tiers: unit and DAG integrity (about a minute; `make test` runs everything)
	$(PY) -m pytest -ra tests/unit tests/dags

lint: $(MANIFEST) ## ruff (Python), sqlfluff (dbt SQL) and dbt-score (every model >= 9)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
	cd dbt_project && ../$(VENV)/bin/sqlfluff lint
	cd dbt_project && ../$(VENV)/bin/dbt-score lint --manifest target/manifest.json --fail-any-item-under 9

clean: ## remove generated data, Airflow home and dbt target (keeps .venv)
	-@test -x $(VENV)/bin/ecompipe && $(VENV)/bin/ecompipe airflow stop >/dev/null 2>&1 || true
	rm -rf data airflow_home dbt_project/target dbt_project/logs logs

distclean: clean ## clean, and remove .venv
	rm -rf $(VENV)
