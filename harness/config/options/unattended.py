"""Options of unattended runs: the controller Job, its results and the CronJob."""

from __future__ import annotations

from typing import Final

from harness.config.options.base import Option
from harness.config.values import (
    any_text,
    boolean,
    non_negative_duration,
)

UNATTENDED_OPTIONS: Final = (
    # Unattended runs (harness/unattended): the run's controller is kubeswarm itself, a Job.
    Option(
        "detach",
        ("--detach",),
        boolean,
        False,
        "cluster: run the whole run (sampling, results, report) as a controller Job in the "
        "cluster; prints the run id and returns once the controller runs",
        switch=True,
    ),
    Option(
        "results_pvc",
        ("--results-pvc",),
        any_text,
        None,
        "--detach: PersistentVolumeClaim the run directory is written to (kept after the "
        "controller ends)",
        metavar="NAME",
    ),
    # A nightly run is fetched the next morning: a day covers it, and a finished controller
    # holds only a few MiB of memory while it serves the run directory.
    Option(
        "keep_results_s",
        ("--keep-results",),
        non_negative_duration,
        86400.0,
        "--detach: how long the finished controller serves the run directory to `kubeswarm "
        "fetch` (0: it exits with the verdict's exit code at once)",
        metavar="DURATION",
    ),
    Option(
        "controller_run",
        ("--controller-run",),
        any_text,
        None,
        "set by --detach and --cronjob, not by hand: run as the in-cluster controller of run "
        "RUN ('new': a run id of its own)",
        metavar="RUN",
    ),
    Option(
        "cronjob",
        ("--cronjob",),
        boolean,
        False,
        "print a CronJob that starts this run on --schedule, compared with the previous "
        "completed run of the same name (needs --results-pvc)",
        switch=True,
    ),
    Option(
        "schedule",
        ("--schedule",),
        any_text,
        None,
        "--cronjob: when, in cron syntax ('0 3 * * *': 03:00 every day)",
        metavar="CRON",
    ),
)
