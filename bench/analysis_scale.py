"""How long ``kubeswarm report`` takes on a big run, as a share of the run's own duration.

Synthesizes a 1-hour run at 1 s samples with 100 pods and 3 HPAs (every sample file written), then
times ``analysis.report.write_report`` on it (with one SLO and one what-if, so every part runs) and
prints the time as a fraction of the run's duration (target: under 0.5 %, i.e. 18 s for an hour;
``--target`` changes it) and the peak memory: the process's max RSS (ru_maxrss) around the timed
pass, and the peak of Python and NumPy allocations (tracemalloc) in a second, untimed pass
(``--no-tracemalloc`` skips it on big runs).

``--usage-resolution 15`` writes pods.csv as the harness writes it since snapshots (a workload's
pods when a new usage reading arrives or its replicas change); without it, every pod every tick.
The day-long case of issue 21 (under 0.1 % of 24 h, 86 s):

    python -m bench.analysis_scale --duration 86400 --interval 2 --pods 500 --hpas 5 \
        --usage-resolution 15 --target 0.001 --no-tracemalloc

    python bench/analysis_scale.py [--duration 3600] [--pods 100] [--hpas 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from analysis.report import write_report
from tests.fixtures.synthetic import scale_run

TARGET_FRACTION = 0.005


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=3600.0, help="run length in seconds")
    parser.add_argument("--interval", type=float, default=1.0, help="sample interval in seconds")
    parser.add_argument("--pods", type=int, default=100)
    parser.add_argument("--hpas", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="write the run here and keep it")
    parser.add_argument(
        "--usage-resolution", type=float, help="pods.csv as snapshots at this metrics resolution"
    )
    parser.add_argument("--target", type=float, default=TARGET_FRACTION, help="fraction of run")
    parser.add_argument("--no-tracemalloc", action="store_true", help="skip the second pass")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = (args.keep or Path(tmp)) / "bench-run"
        started = time.perf_counter()
        scale_run(
            run_dir,
            duration_s=args.duration,
            interval_s=args.interval,
            pods=args.pods,
            hpas=args.hpas,
            usage_resolution_s=args.usage_resolution,
        )
        synth_s = time.perf_counter() - started
        size = sum(p.stat().st_size for p in (run_dir / "samples").iterdir())
        rss_before_mib = _max_rss_mib()
        started = time.perf_counter()
        summary = write_report(run_dir, slos=["p95_ms<500"], whatifs=["svc0:max=20"])
        report_s = time.perf_counter() - started
        rss_mib = _max_rss_mib()
        # A second pass under tracemalloc for the peak of Python and NumPy allocations; it slows
        # allocation-heavy code several times, so it is not the timed pass.
        peak = None
        if not args.no_tracemalloc:
            tracemalloc.start()
            write_report(run_dir, slos=["p95_ms<500"], whatifs=["svc0:max=20"])
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        with (run_dir / "samples" / "pods.csv").open("rb") as pods_csv:
            pod_rows = sum(1 for _ in pods_csv) - 1
    fraction = report_s / args.duration
    print(
        f"run: {args.duration:.0f} s at {args.interval:g} s, {args.pods} pods, {args.hpas} HPAs, "
        f"{size / 2**20:.1f} MiB of samples, {pod_rows:,} pod rows (synthesized in "
        f"{synth_s:.1f} s)"
    )
    print(
        f"report: {report_s:.2f} s = {100 * fraction:.3f} % of the run "
        f"(target < {100 * args.target:g} %)"
    )
    allocated = "" if peak is None else f"{peak / 2**20:.0f} MiB allocated (tracemalloc); "
    print(
        f"peak memory: {allocated}process "
        f"max RSS {rss_mib:.0f} MiB ({rss_before_mib:.0f} MiB before the report)"
    )
    print(f"verdict {summary['verdict']}, {len(summary['findings'])} findings")
    return 0 if fraction < args.target else 1


if __name__ == "__main__":
    sys.exit(main())
