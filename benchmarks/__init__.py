"""Benchmarks of the pipeline (``make bench``): not tests, numbers. Entry point: ``python -m benchmarks.run``."""
