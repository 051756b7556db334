"""Options of the load: what Locust runs, how hard and for how long."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from harness.config.options.base import Option, workers_count
from harness.config.values import (
    any_text,
    positive_duration,
    positive_float,
    positive_int,
)

LOAD_OPTIONS: Final = (
    Option(
        "locustfile",
        ("-f", "--locustfile"),
        Path,
        None,
        "Python locustfile to run (shipped examples: kubeswarm's locustfiles/)",
        metavar="FILE",
    ),
    Option(
        "host",
        ("-H", "--host"),
        any_text,
        None,
        "base URL of the target, as the load generators see it",
        metavar="URL",
    ),
    # 10 users with a spawn rate of 10/s is Locust's own quick-try scale: visible, not heavy.
    Option(
        "users",
        ("-u", "--users"),
        positive_int,
        10,
        "peak number of concurrent users",
        metavar="N",
    ),
    Option(
        "spawn_rate",
        ("-r", "--spawn-rate"),
        positive_float,
        10.0,
        "users started per second",
        metavar="R",
    ),
    # One minute is long enough for an HPA sync (15 s) plus metrics delay to show a reaction.
    Option(
        "run_time_s",
        ("-t", "--run-time"),
        positive_duration,
        60.0,
        "how long the load runs (90s, 5m, 1h30m)",
        metavar="DURATION",
    ),
    Option(
        "workers",
        ("--workers",),
        workers_count,
        2,
        "Locust worker processes (local) or worker pods (cluster); auto: start with one and "
        "add workers while their CPU stays above 85%% (up to --max-workers)",
        metavar="W|auto",
    ),
    # Without a bound, auto would add workers for as long as the load generator is busy.
    Option(
        "max_workers",
        ("--max-workers",),
        positive_int,
        None,
        "with --workers auto: the most workers to run (locally at most one per core)",
        metavar="N",
    ),
    # One Locust process per core; a pod gets one core unless --processes says otherwise.
    Option(
        "processes",
        ("--processes",),
        positive_int,
        1,
        "Locust processes forked inside each worker",
        metavar="P",
    ),
    # The last seconds of a run are when results are fetched; 30 s leaves room for retries.
    Option(
        "autoquit_s",
        ("--autoquit",),
        positive_duration,
        30.0,
        "seconds the master stays up after the run so results can be fetched",
        metavar="DURATION",
    ),
    # 90 s is long enough for two scale-ups and a hold at the demo's 5 s autoscaler sync.
    # --run-time as in `run` (so KUBESWARM_RUN_TIME and the run-time key serve both);
    # --duration is the demo's first spelling.
    Option(
        "duration_s",
        ("-t", "--duration", "--run-time"),
        positive_duration,
        90.0,
        "how long the demo load runs (90s, 2m)",
        metavar="DURATION",
    ),
)
