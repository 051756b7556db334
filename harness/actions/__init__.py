"""Timed actions the session runs against the target while the load runs (``--chaos``)."""
