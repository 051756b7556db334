"""The run session: one lifecycle for every mode, the run directory store and the tick schedule."""
