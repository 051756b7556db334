"""Loading a run directory: the CSV schemas, typed frames, time windows, quantities."""
