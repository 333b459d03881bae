"""What DAG files import at parse time: assets, task defaults, sensors, deadlines. No I/O at import."""
