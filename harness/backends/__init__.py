"""Load generators the session drives: local processes, cluster Jobs, or none (sample)."""
