# Benchmarks (benchmarks/, not tests): `make bench` writes benchmarks/results/latest.{md,json}.
# Knobs: BENCH_REPS, BENCH_SIZES, BENCH_HISTORY_DAYS, BENCH_HISTORY_ROWS, BENCH_AIRFLOW_ROWS,
# BENCH_GENERATOR_ROWS, BENCH_BACKFILL=1 (real-scheduler backfill), BENCH_ARGS="--only one_day,...".
# Scratch data (cached raw partitions, warehouses, Airflow homes) goes to benchmarks/.work/.
.PHONY: bench bench-quick bench-experiments

BENCH_ARGS ?=

bench: $(MANIFEST) ## benchmarks: dbt vs bare DuckDB vs pandas, incremental, DAG parse, Airflow, generator
	$(PY) -m benchmarks.run $(BENCH_ARGS)

bench-quick: $(MANIFEST) ## benchmarks at small sizes, one run each (a smoke test; results in benchmarks/.work)
	$(PY) -m benchmarks.run --quick --results-dir benchmarks/.work/quick-results $(BENCH_ARGS)

bench-experiments: $(MANIFEST) ## measured what-ifs on copies of the dbt project and the DAG (experiments.md)
	$(PY) -m benchmarks.experiments $(BENCH_ARGS)
