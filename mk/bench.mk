# Benchmarks (benchmarks/, not tests): one runner, `python -m benchmarks.run`, writes
# benchmarks/results/latest.{md,json}. Knobs: BENCH_ARGS="--only one_day,airflow --reps 5 --sizes 1000,100000"
# (see `$(PY) -m benchmarks.run --help`) or the matching BENCH_* variables (BENCH_REPS, BENCH_SIZES,
# BENCH_BACKFILL=1 for a real-scheduler backfill, BENCH_YEAR_DAYS, ...). Scratch data: benchmarks/.work/.
.PHONY: bench bench-quick bench-year

BENCH_ARGS ?=

bench: $(MANIFEST) ## benchmarks: one day (dbt vs bare DuckDB vs pandas), incremental, DAG parse, Airflow, generator
	$(PY) -m benchmarks.run $(BENCH_ARGS)

bench-quick: $(MANIFEST) ## the benchmarks at small sizes, one run each (a smoke test; results in benchmarks/.work)
	$(PY) -m benchmarks.run --quick --results-dir benchmarks/.work/quick-results $(BENCH_ARGS)

bench-year: $(MANIFEST) ## a year x 100k rows/day through the bulk DAG vs daily backfill vs bare DuckDB (~1 h)
	$(PY) -m benchmarks.run --only year $(BENCH_ARGS)
