"""Shared code for the e-commerce partitioned pipeline (paths, dates, generator, exports, summaries)."""
