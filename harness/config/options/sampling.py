"""Options of what is recorded, where and how often."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from harness.config.options.base import Option
from harness.config.values import (
    boolean,
    parse_watch,
    positive_duration,
    run_name,
    sample_interval,
)

SAMPLING_OPTIONS: Final = (
    Option(
        "watch",
        ("--watch",),
        parse_watch,
        (),
        "what to sample: hpa/NAME, deployment/NAME, NAMESPACE/hpa/NAME; local: pid/PID, "
        "cmd/PATTERN (repeatable)",
        multiple=True,
        metavar="TARGET",
    ),
    Option(
        "out_dir",
        ("--out",),
        Path,
        Path("runs"),
        "where run directories are written",
        metavar="DIR",
    ),
    Option(
        "name",
        ("--name",),
        run_name,
        None,
        "run name used in the run id and object names (default: from the locustfile)",
    ),
    # Two seconds resolves Locust's 1 s stats and the HPA's 15 s sync without bloating files;
    # bounded to 1-15 s, what those sources can give (harness.config.values.sample_interval).
    Option(
        "sample_interval_s",
        ("--interval",),
        sample_interval,
        2.0,
        "seconds between samples (1s to 15s)",
        metavar="DURATION",
    ),
    # kube-controller-manager's --horizontal-pod-autoscaler-sync-period by default; managed
    # control planes keep it. The model check and the what-ifs replay at this pace.
    Option(
        "hpa_sync_period_s",
        ("--hpa-sync-period",),
        positive_duration,
        15.0,
        "cluster: the HPA controller's sync period (kube-controller-manager "
        "--horizontal-pod-autoscaler-sync-period), which the model check and what-ifs replay",
        metavar="DURATION",
    ),
    Option(
        "open_browser",
        ("--open",),
        boolean,
        False,
        "open the Locust web UI in a browser",
        switch=True,
    ),
)
