"""Options of the demo's target and its autoscaler."""

from __future__ import annotations

from typing import Final

from harness.config.options.base import Option
from harness.config.values import (
    any_text,
    boolean,
    non_negative_int,
    positive_int,
)

DEMO_OPTIONS: Final = (
    # --- end of the locustfile's environment ---
    Option("all_runs", ("--all",), boolean, False, "every kubeswarm run", switch=True),
    # 0 lets the operating system pick a free port, so two UIs never collide.
    Option("port", ("--port",), non_negative_int, 0, "local port of the UI proxy (0 = any)"),
    # The demo's autoscaler mirrors an HPA; these are its spec, with Kubernetes' units.
    # 16 users at 5 requests/s each peak at 80 requests/s: about five demo workers' worth.
    Option(
        "demo_users",
        ("-u", "--users"),
        positive_int,
        16,
        "demo: peak users of the step load (5 requests/s each)",
        metavar="N",
    ),
    Option(
        "min_replicas",
        ("--min-replicas",),
        positive_int,
        1,
        "demo autoscaler: minimum gunicorn workers",
    ),
    Option(
        "max_replicas",
        ("--max-replicas",),
        positive_int,
        6,
        "demo autoscaler: maximum gunicorn workers (each costs a process on this machine)",
    ),
    Option(
        "cpu_target_pct",
        ("--cpu-target",),
        positive_int,
        70,
        "demo autoscaler: CPU target, percent of request",
    ),
    Option(
        "memory_target_pct",
        ("--memory-target",),
        positive_int,
        80,
        "demo autoscaler: memory target, percent of request",
    ),
    Option(
        "cpu_request",
        ("--cpu-request",),
        any_text,
        "100m",
        "demo target: CPU request per worker (Kubernetes quantity)",
    ),
    Option(
        "memory_request",
        ("--memory-request",),
        any_text,
        "128Mi",
        "demo target: memory request per worker (Kubernetes quantity)",
    ),
)
