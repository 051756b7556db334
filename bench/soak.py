"""A long local run: does anything grow per tick? The harness's RSS slope, the Locust master's RSS
slope, the run directory's growth per hour and the report's time.

Runs ``kubeswarm run --local`` (one master, one worker) against a fast local server for
``--seconds`` and samples, every 10 s, the RSS of the kubeswarm process and of the Locust master
it started (found among its children by ``--master``; read, never signalled) and the size of the
run directory. Slopes are least-squares fits after the first minute (start-up allocations).

What it compresses, so that ten minutes say what hours would: ``--interval 1s`` (the bound) ticks
twice as often as the default 2 s, so per-tick growth shows twice as fast; ``--names 50`` request
names (``name=``) grow the master's stats history (Locust #2045: entries x seconds) about ten times
faster than a typical locustfile with a handful. Everything targets 127.0.0.1; every process
started is stopped by its pid.

    python -m bench.soak [--seconds 600] [--names 50] [--users 20]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import psutil

from analysis.report import write_report
from harness.processes import ProcessGroup, free_port

LOCUSTFILE = textwrap.dedent("""
    import random

    from locust import FastHttpUser, constant, task

    NAMES = {names}

    class Many(FastHttpUser):
        wait_time = constant(0.05)

        @task
        def item(self) -> None:
            index = random.randrange(NAMES)
            self.client.get(f"/item/{{index}}", name=f"/item/{{index}}")
""")


def tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def slope_per_hour(times: list[float], values: list[float]) -> float:
    if len(times) < 3:
        return float("nan")
    fit = np.polyfit(np.asarray(times), np.asarray(values), 1)
    return float(fit[0]) * 3600.0


def master_of(harness: psutil.Process) -> psutil.Process | None:
    for child in harness.children(recursive=True):
        try:
            if "--master" in child.cmdline():
                return child
        except psutil.Error:
            continue
    return None


def readings(harness: subprocess.Popen[bytes], out: Path, every_s: float) -> dict[str, list[float]]:
    """Every ``every_s`` until the run ends: seconds since start, harness and master RSS (MiB),
    run directory size (MiB)."""
    samples: dict[str, list[float]] = {"t": [], "harness": [], "master": [], "dir": []}
    watched = psutil.Process(harness.pid)
    start = time.monotonic()
    while harness.poll() is None:
        time.sleep(every_s)
        master = master_of(watched)
        runs = list(out.iterdir()) if out.exists() else []
        if master is None or not runs:
            continue
        try:
            harness_rss, master_rss = watched.memory_info().rss, master.memory_info().rss
        except psutil.Error:
            continue
        samples["t"].append(time.monotonic() - start)
        samples["harness"].append(harness_rss / 2**20)
        samples["master"].append(master_rss / 2**20)
        samples["dir"].append(tree_size(runs[0]) / 2**20)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--names", type=int, default=50)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--every", type=float, default=10.0, help="seconds between readings")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        locustfile = work / "many_names.py"
        locustfile.write_text(LOCUSTFILE.format(names=args.names), encoding="utf-8")
        group = ProcessGroup(work / "logs")
        port = free_port()
        group.start("server", [sys.executable, "-m", "bench.fast_server", str(port)])
        out = work / "runs"
        harness = subprocess.Popen(
            [
                sys.executable, "-m", "harness", "run", "--local",
                "-f", str(locustfile), "-H", f"http://127.0.0.1:{port}",
                "-u", str(args.users), "-r", str(args.users), "-t", f"{args.seconds}s",
                "--workers", "1", "--interval", "1s", "--autoquit", "5", "--out", str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            samples = readings(harness, out, args.every)
        finally:
            if harness.poll() is None:
                harness.terminate()
                harness.wait(timeout=60)
            group.stop_all()
        run_dir = next(out.iterdir())
        started = time.perf_counter()
        write_report(run_dir)
        report_s = time.perf_counter() - started
    steady = [i for i, t in enumerate(samples["t"]) if t >= 60.0]
    t = [samples["t"][i] for i in steady]

    def fit(key: str) -> float:
        return slope_per_hour(t, [samples[key][i] for i in steady])

    ticks_per_hour = 3600.0  # at --interval 1s
    harness_slope = fit("harness")
    print(
        f"soak: {args.seconds} s at --interval 1s, {args.names} request names, "
        f"{len(t)} readings after the first minute"
    )
    print(
        f"harness RSS: {samples['harness'][0]:.1f} -> {samples['harness'][-1]:.1f} MiB, "
        f"slope {harness_slope:+.2f} MiB/h = {harness_slope * 1024 / ticks_per_hour:+.3f} KiB "
        "per tick"
    )
    print(
        f"Locust master RSS: {samples['master'][0]:.1f} -> {samples['master'][-1]:.1f} MiB, "
        f"slope {fit('master'):+.2f} MiB/h"
    )
    print(f"run directory: {samples['dir'][-1]:.2f} MiB, growth {fit('dir'):+.1f} MiB/h")
    print(f"report: {report_s:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
