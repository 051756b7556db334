"""How long ``kubeswarm report`` takes on a big run, as a share of the run's own duration.

Synthesizes a 1-hour run at 1 s samples with 100 pods and 3 HPAs (every sample file written), then
times ``analysis.report.write_report`` on it (with one SLO and one what-if, so every part runs) and
prints the time as a fraction of the run's duration (target: under 0.5 %, i.e. 18 s for an hour)
and the peak memory: the process's max RSS (ru_maxrss) around the timed pass, and the peak of
Python and NumPy allocations (tracemalloc) in a second, untimed pass.

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
        tracemalloc.start()
        write_report(run_dir, slos=["p95_ms<500"], whatifs=["svc0:max=20"])
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    fraction = report_s / args.duration
    print(
        f"run: {args.duration:.0f} s at {args.interval:g} s, {args.pods} pods, {args.hpas} HPAs, "
        f"{size / 2**20:.1f} MiB of samples (synthesized in {synth_s:.1f} s)"
    )
    print(
        f"report: {report_s:.2f} s = {100 * fraction:.3f} % of the run "
        f"(target < {100 * TARGET_FRACTION:.1f} %)"
    )
    print(
        f"peak memory: {peak / 2**20:.0f} MiB allocated by the report (tracemalloc); process "
        f"max RSS {rss_mib:.0f} MiB ({rss_before_mib:.0f} MiB before the report)"
    )
    print(f"verdict {summary['verdict']}, {len(summary['findings'])} findings")
    return 0 if fraction < TARGET_FRACTION else 1


if __name__ == "__main__":
    sys.exit(main())
