# Training snapshot: the last N days of fct_transaction_features as one Parquet file + manifest.
# Included by the main Makefile (PY, STAMP, PIPELINE_DATA_DIR, DUCKDB_PATH come from it).
# The DAG `training_snapshot` does the same after every successful daily run or bulk chunk.

.PHONY: training-snapshot

training-snapshot: $(STAMP) ## last N days of features -> data/features/training/<id>/: make training-snapshot [DAYS=30] [AS_OF=YYYY-MM-DD]
	$(VENV)/bin/ecompipe snapshot $(if $(DAYS),--days $(DAYS)) $(if $(AS_OF),--as-of $(AS_OF))
