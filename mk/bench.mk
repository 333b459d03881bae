# Benchmarks (benchmarks/, not tests): `make bench` writes benchmarks/results/latest.{md,json}.
# Knobs: BENCH_REPS, BENCH_SIZES, BENCH_HISTORY_DAYS, BENCH_HISTORY_ROWS, BENCH_AIRFLOW_ROWS,
# BENCH_GENERATOR_ROWS, BENCH_BACKFILL=1 (real-scheduler backfill), BENCH_ARGS="--only one_day,...".
# Scratch data (cached raw partitions, warehouses, Airflow homes) goes to benchmarks/.work/.
.PHONY: bench bench-quick bench-experiments bench-year

BENCH_ARGS ?=
# bench-year (issue #8): BENCH_YEAR_CHUNK_DAYS are tried in order (the first always, the others while
# BENCH_YEAR_DEADLINE, UTC "HH:MM", allows); BENCH_YEAR_NOTE goes into the report.
BENCH_YEAR_DAYS ?= 365
BENCH_YEAR_ROWS ?= 100000
BENCH_YEAR_PERDAY_DAYS ?= 14
BENCH_YEAR_CHUNK_DAYS ?= 92 31
BENCH_YEAR_DEADLINE ?=
BENCH_YEAR_NOTE ?=

bench: $(MANIFEST) ## benchmarks: dbt vs bare DuckDB vs pandas, incremental, DAG parse, Airflow, generator
	$(PY) -m benchmarks.run $(BENCH_ARGS)

bench-quick: $(MANIFEST) ## benchmarks at small sizes, one run each (a smoke test; results in benchmarks/.work)
	$(PY) -m benchmarks.run --quick --results-dir benchmarks/.work/quick-results $(BENCH_ARGS)

bench-experiments: $(MANIFEST) ## measured what-ifs on copies of the dbt project and the DAG (experiments.md)
	$(PY) -m benchmarks.experiments $(BENCH_ARGS)

bench-year: $(MANIFEST) ## a year x 100k rows/day: bulk backfill vs per-day backfill vs bare DuckDB (~1 h; results/year.md)
	BENCH_YEAR_DEADLINE="$(BENCH_YEAR_DEADLINE)" BENCH_YEAR_NOTE="$(BENCH_YEAR_NOTE)" $(PY) -m benchmarks.bench_year \
		--days $(BENCH_YEAR_DAYS) --rows $(BENCH_YEAR_ROWS) --perday-days $(BENCH_YEAR_PERDAY_DAYS) \
		--chunk-days "$(BENCH_YEAR_CHUNK_DAYS)" $(BENCH_ARGS)
