"""Plumbing every layer uses: settings-derived paths, dates, files, the warehouse connection, service processes."""
