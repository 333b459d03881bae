"""What Airflow tasks run: generate, ingest, fingerprint, record, report, bulk-build, snapshot."""
