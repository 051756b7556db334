"""The column schema of every CSV in a run directory: the contract between harness and analysis.

The harness writes these files and the analysis reads them; both take the column names from here so
the two can never drift apart. ``ts`` is always epoch seconds (float, UTC). An empty cell means
"not measured", never zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

ColumnKind = Literal["float", "int", "str", "bool"]


@dataclass(frozen=True)
class CsvSchema:
    """One append-only CSV file under ``samples/``."""

    file_name: str
    columns: tuple[tuple[str, ColumnKind], ...]
    # Columns added after the first release: a run directory written before them lacks them, which
    # is "not measured", not a broken file.
    added_later: frozenset[str] = frozenset()
    # Files added after the first release: absent from older run directories without harm.
    added_later_file: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)


LOCUST: Final = CsvSchema(
    "locust.csv",
    (
        ("ts", "float"),
        ("state", "str"),
        ("user_count", "int"),
        ("worker_count", "int"),
        ("rps", "float"),
        ("fail_per_s", "float"),
        ("fail_ratio", "float"),
        ("p50_ms", "float"),
        ("p95_ms", "float"),
    ),
)

HPA: Final = CsvSchema(
    "hpa.csv",
    (
        ("ts", "float"),
        ("namespace", "str"),
        ("hpa", "str"),
        ("target_kind", "str"),
        ("target_name", "str"),
        ("min_replicas", "int"),
        ("max_replicas", "int"),
        ("current_replicas", "int"),
        ("desired_replicas", "int"),
        ("able_to_scale", "bool"),
        ("scaling_active", "bool"),
        ("scaling_limited", "bool"),
        # status.lastScaleTime: when the controller itself last changed the scale, so scale
        # events are timed to the second rather than to the sample tick.
        ("last_scale_ts", "float"),
        # The HPA's controller ownerReference (``ScaledObject``/``my-app`` when KEDA made it),
        # and spec.behavior as the API has it (JSON; empty = the controller's defaults).
        ("owner_kind", "str"),
        ("owner_name", "str"),
        ("behavior", "str"),
    ),
    added_later=frozenset({"last_scale_ts", "owner_kind", "owner_name", "behavior"}),
)

# ``metric`` is the resource name (``cpu``, ``memory``) or, for other metric types, the metric's
# name. ``current_value``/``target_value`` are the per-pod averages (``averageValue``; a Value
# target's ``value`` where that is all there is) in the units of pods.csv (millicores for cpu,
# bytes for memory) or the metric's own unit. Added later: the metric's source type (Resource,
# ContainerResource, Pods, Object, External), its target type (Utilization, AverageValue, Value),
# ``current_total``/``target_total`` (a Value target's ``value``: the whole metric, not per pod),
# the metric's label selector (``k=v,k2 in (a,b)``), the container of a ContainerResource metric
# and the described object of an Object metric (``Kind/name``).
HPA_METRICS: Final = CsvSchema(
    "hpa_metrics.csv",
    (
        ("ts", "float"),
        ("namespace", "str"),
        ("hpa", "str"),
        ("metric", "str"),
        ("current_utilization", "float"),
        ("target_utilization", "float"),
        ("current_value", "float"),
        ("target_value", "float"),
        ("metric_type", "str"),
        ("target_type", "str"),
        ("current_total", "float"),
        ("target_total", "float"),
        ("selector", "str"),
        ("container", "str"),
        ("described_object", "str"),
    ),
    added_later=frozenset(
        {
            "metric_type",
            "target_type",
            "current_total",
            "target_total",
            "selector",
            "container",
            "described_object",
        }
    ),
)

WORKLOADS: Final = CsvSchema(
    "workloads.csv",
    (
        ("ts", "float"),
        ("namespace", "str"),
        ("kind", "str"),
        ("name", "str"),
        ("replicas", "int"),
        ("ready_replicas", "int"),
        ("available_replicas", "int"),
    ),
)

# pods.csv holds snapshots: all of a workload's pods at a tick, written when any of their rows
# changed since the workload's last snapshot (a pod came or went, its state, or the metrics API's
# new usage, every 15 s) and at least this often. A snapshot holds until the next one; a pause
# in pods.csv longer than this is a gap in sampling. Runs written before it have one per tick.
PODS_HEARTBEAT_S: Final = 60.0

PODS: Final = CsvSchema(
    "pods.csv",
    (
        ("ts", "float"),
        ("namespace", "str"),
        ("pod", "str"),
        ("workload", "str"),
        ("phase", "str"),
        ("ready", "bool"),
        ("restarts", "int"),
        ("last_termination_reason", "str"),
        ("cpu_m", "float"),
        ("memory_bytes", "float"),
        ("cpu_request_m", "float"),
        ("cpu_limit_m", "float"),
        ("memory_request_bytes", "float"),
        ("memory_limit_bytes", "float"),
        # What the HPA controller reads besides usage (replica_calculator.go groupPods): when the
        # pod started (status.startTime, else metadata.creationTimestamp), when its Ready
        # condition last changed (lastTransitionTime), and whether it is being deleted
        # (metadata.deletionTimestamp set: such pods are ignored like failed ones).
        ("start_ts", "float"),
        ("ready_since_ts", "float"),
        ("deleting", "bool"),
        # When metrics.k8s.io measured cpu_m and memory_bytes (the PodMetrics timestamp): the
        # API refreshes them only every metrics resolution (15 s by default), so ts - usage_ts
        # is how old the usage in this row is.
        ("usage_ts", "float"),
    ),
    added_later=frozenset({"start_ts", "ready_since_ts", "deleting", "usage_ts"}),
)

EVENTS: Final = CsvSchema(
    "events.csv",
    (
        ("ts", "float"),
        ("namespace", "str"),
        ("kind", "str"),
        ("name", "str"),
        ("reason", "str"),
        ("type", "str"),
        ("message", "str"),
    ),
)

MARKS: Final = CsvSchema("marks.csv", (("ts", "float"), ("kind", "str"), ("detail", "str")))

# The load generator's own health, one row per Locust worker process per tick, from the master's
# ``/stats/requests`` ``workers[]``: ``cpu_pct`` is percent of one core (Locust's psutil reading),
# ``memory_bytes`` the process's RSS. A Locust process above ~90 % CPU times requests late.
WORKERS: Final = CsvSchema(
    "workers.csv",
    (
        ("ts", "float"),
        ("worker", "str"),
        ("state", "str"),
        ("user_count", "int"),
        ("cpu_pct", "float"),
        ("memory_bytes", "float"),
    ),
    added_later_file=True,
)

# The Locust master process's own resources (local and demo runs; a cluster run's master is a pod).
MASTER: Final = CsvSchema(
    "master.csv",
    (
        ("ts", "float"),
        ("cpu_pct", "float"),
        ("memory_bytes", "float"),
    ),
    added_later_file=True,
)

ALL_SAMPLES: Final = (
    LOCUST,
    HPA,
    HPA_METRICS,
    WORKLOADS,
    PODS,
    EVENTS,
    MARKS,
    WORKERS,
    MASTER,
)

MarkKind = Literal[
    "test_start",
    "spawn_complete",
    "stage",
    "chaos",
    "test_stop",
    "sampler_gap",
    "ramp_stop",
    "workers_added",
]

# Locust's own files, copied unmodified into ``locust/``.
LOCUST_FILES: Final = (
    "stats.csv",
    "stats_history.csv",
    "failures.csv",
    "exceptions.csv",
    "report.html",
)

# The response-time percentiles Locust 2.x writes in its stats and history CSVs.
LOCUST_PERCENTILE_COLUMNS: Final = (
    "50%",
    "66%",
    "75%",
    "80%",
    "90%",
    "95%",
    "98%",
    "99%",
    "99.9%",
    "99.99%",
    "100%",
)

# Columns of Locust 2.x ``*_stats_history.csv`` (``--csv``), as Locust writes them.
LOCUST_STATS_HISTORY_COLUMNS: Final = (
    "Timestamp",
    "User Count",
    "Type",
    "Name",
    "Requests/s",
    "Failures/s",
    *LOCUST_PERCENTILE_COLUMNS,
    "Total Request Count",
    "Total Failure Count",
    "Total Median Response Time",
    "Total Average Response Time",
    "Total Min Response Time",
    "Total Max Response Time",
    "Total Average Content Size",
)

RUN_JSON: Final = "run.json"
SAMPLES_DIR: Final = "samples"
LOCUST_DIR: Final = "locust"
REPORT_DIR: Final = "report"

# Columns of Locust 2.x ``*_stats.csv``: one row per entry plus the ``Aggregated`` row.
LOCUST_STATS_COLUMNS: Final = (
    "Type",
    "Name",
    "Request Count",
    "Failure Count",
    "Median Response Time",
    "Average Response Time",
    "Min Response Time",
    "Max Response Time",
    "Average Content Size",
    "Requests/s",
    "Failures/s",
    *LOCUST_PERCENTILE_COLUMNS,
)

# Columns of Locust 2.x ``*_failures.csv``.
LOCUST_FAILURES_COLUMNS: Final = ("Method", "Name", "Error", "Occurrences")

# Columns of Locust 2.x ``*_exceptions.csv``: errors raised by the locustfile's own code (a task
# that raises), which never become requests. ``Nodes`` lists the workers that saw it.
LOCUST_EXCEPTIONS_COLUMNS: Final = ("Count", "Message", "Traceback", "Nodes")
