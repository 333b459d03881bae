# The cluster profile (docs/scaling-out.md): PostgreSQL + Redis + Airflow with CeleryExecutor and
# CLUSTER_WORKERS Celery workers, the warehouse on DuckLake (catalog in that PostgreSQL). Everything
# lives under CLUSTER_DIR and listens on 127.0.0.1. Included by the main Makefile (PY, VENV, STAMP,
# MANIFEST come from it). Other targets run on the cluster with PIPELINE_PROFILE=cluster, e.g.
# `make backfill PIPELINE_PROFILE=cluster START=... END=...`, `make sql PIPELINE_PROFILE=cluster`.
.PHONY: cluster-up cluster-status cluster-down cluster-demo

CLUSTER_TARGETS := cluster-up cluster-status cluster-down cluster-demo
# These targets are the cluster profile whatever the environment says; its data has its own folder.
$(CLUSTER_TARGETS): export PIPELINE_PROFILE := cluster
$(CLUSTER_TARGETS): export PIPELINE_CLUSTER_DIR := $(CLUSTER_DIR)
$(CLUSTER_TARGETS): export PIPELINE_DATA_DIR := $(CLUSTER_DATA_DIR)

cluster-up: $(MANIFEST) ## start the cluster: PostgreSQL, Redis, Airflow (Celery), workers; prints UI + login
	@scripts/install_debian_packages.sh postgresql redis-server
	$(VENV)/bin/ecompipe cluster up

cluster-status: $(STAMP) ## which parts of the cluster run, the UI address and login
	$(VENV)/bin/ecompipe cluster status

cluster-down: $(STAMP) ## stop every process of the cluster (its data stays in CLUSTER_DIR)
	$(VENV)/bin/ecompipe cluster down

cluster-demo: $(MANIFEST) ## the demo week through the cluster (3 dates at a time on the workers), then the summary
	@scripts/install_debian_packages.sh postgresql redis-server
	$(VENV)/bin/ecompipe generate --start-date $(DEMO_START) --end-date $(DEMO_END) --rows $(ROWS)
	PIPELINE_SCHEDULE_END_DATE=$(DEMO_END) $(VENV)/bin/ecompipe cluster demo $(DEMO_START) $(DEMO_END)
	$(VENV)/bin/ecompipe summary $(DEMO_START) $(DEMO_END)
