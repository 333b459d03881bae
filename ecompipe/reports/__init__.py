"""What people look at: the dbt docs site, the dashboard, the per-date summary."""
