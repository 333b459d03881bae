# What people look at: the dbt docs site, the pipeline dashboard, a DuckDB SQL shell.
# Included by the main Makefile (PY, VENV, STAMP, DBT_SOURCES, PIPELINE_DATA_DIR, DUCKDB_PATH come from it).

DOCS_INDEX := dbt_project/target/docs/index.html
VIEWS_DUCKDB_CLI := $(VENV)/bin/duckdb
# SQL string literals (quotes doubled) of the paths the shell targets use.
views_sql_quote = '$(subst ','',$(1))'
VIEWS_WAREHOUSE_NAME := $(basename $(notdir $(DUCKDB_PATH)))
VIEWS_SNAPSHOT := $(PIPELINE_DATA_DIR)/snapshot/$(notdir $(DUCKDB_PATH))
VIEWS_SQL_HINT := Example queries: dbt_project/analyses/*.sql, e.g. .read dbt_project/analyses/top_customers.sql

.PHONY: docs docs-generate docs-serve dashboard sql sql-snapshot

# The published site, regenerated when the dbt project changes (`make airflow` can depend on it:
# Cosmos shows this folder under Browse in the Airflow UI).
$(DOCS_INDEX): $(STAMP) $(DBT_SOURCES) $(wildcard dbt_project/analyses/*)
	$(VENV)/bin/ecompipe docs generate

docs-generate: $(STAMP) ## dbt docs generate (+ the single-file static site) into dbt_project/target/docs
	$(VENV)/bin/ecompipe docs generate

docs-serve: $(STAMP) ## serve the generated dbt docs on 127.0.0.1 (DBT_DOCS_PORT, DBT_DOCS_HOST)
	$(VENV)/bin/ecompipe docs serve

docs: docs-generate ## generate the dbt docs and serve them on 127.0.0.1 (DBT_DOCS_PORT, DBT_DOCS_HOST)
	$(VENV)/bin/ecompipe docs serve

dashboard: $(STAMP) ## pipeline dashboard: one HTML file + PNGs in $PIPELINE_DATA_DIR/dashboard/
	$(VENV)/bin/ecompipe dashboard

sql: $(STAMP) ## DuckDB shell on the warehouse, read-only (example queries: dbt_project/analyses/)
ifeq ($(PIPELINE_PROFILE),cluster)
	@$(PY) -m ecompipe.reports.lake_shell
else
	@test -f "$(DUCKDB_PATH)" || { echo "No warehouse at $(DUCKDB_PATH): run the pipeline first (make demo)."; exit 1; }
	@echo "DuckDB shell on $(DUCKDB_PATH), read-only. $(VIEWS_SQL_HINT). While it is open the pipeline cannot write (.quit to leave; make sql-snapshot never blocks it)."
	@$(VIEWS_DUCKDB_CLI) -readonly -cmd "SET VARIABLE pipeline_data_dir = $(call views_sql_quote,$(PIPELINE_DATA_DIR))" "$(DUCKDB_PATH)"
endif

sql-snapshot: $(STAMP) ## DuckDB shell on a copy of the warehouse taken now: never blocks the pipeline
	@test -f "$(DUCKDB_PATH)" || { echo "No warehouse at $(DUCKDB_PATH): run the pipeline first (make demo)."; exit 1; }
	@mkdir -p "$(dir $(VIEWS_SNAPSHOT))" && rm -f "$(VIEWS_SNAPSHOT)" "$(VIEWS_SNAPSHOT).wal"
	@$(VIEWS_DUCKDB_CLI) -c "ATTACH $(call views_sql_quote,$(DUCKDB_PATH)) AS \"$(VIEWS_WAREHOUSE_NAME)\" (READ_ONLY); ATTACH $(call views_sql_quote,$(VIEWS_SNAPSHOT)) AS snapshot_copy; COPY FROM DATABASE \"$(VIEWS_WAREHOUSE_NAME)\" TO snapshot_copy;"
	@echo "DuckDB shell on $(VIEWS_SNAPSHOT), a copy of $(DUCKDB_PATH) taken now (writable scratch). $(VIEWS_SQL_HINT)."
	@$(VIEWS_DUCKDB_CLI) -cmd "SET VARIABLE pipeline_data_dir = $(call views_sql_quote,$(PIPELINE_DATA_DIR))" "$(VIEWS_SNAPSHOT)"
