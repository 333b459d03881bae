-- Every run in the run registry, oldest first (runs not started yet last), with its duration in seconds.
select
    run_date, run_id, run_type, status, started_at, ended_at,
    epoch(ended_at - started_at) as duration_s,
    rows_in, rows_kept, rows_quarantined,
from main.pipeline_runs
order by started_at nulls last, run_id
