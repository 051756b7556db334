"""Does kubeswarm cost load? Requests/s of one locustfile run by ``kubeswarm run --local`` and by
bare ``locust`` master + workers with the same flags, alternated in one run against one server.

    python -m bench.loadgen_overhead [--rounds 3] [--seconds 20] [--workers 1] [--users 20]

Prints each round, and the median over rounds of kubeswarm / bare requests/s (target >= 0.95).
Everything targets 127.0.0.1 and stops by itself; every process is stopped by its pid.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from harness.processes import ProcessGroup, free_port

LOCUSTFILE = textwrap.dedent("""
    from locust import FastHttpUser, constant, task

    class Flat(FastHttpUser):
        wait_time = constant(0)

        @task
        def index(self) -> None:
            self.client.get("/")
""")


def _aggregated_rps(stats_csv: Path) -> float:
    with stats_csv.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if row["Name"] == "Aggregated":
                return float(row["Requests/s"])  # requests over the whole run, by Locust
    raise RuntimeError(f"no Aggregated row in {stats_csv}")


def run_kubeswarm(locustfile: Path, host: str, args: argparse.Namespace, work: Path) -> float:
    out = work / "runs"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "run",
            "--local",
            "-f",
            str(locustfile),
            "-H",
            host,
            "-u",
            str(args.users),
            "-r",
            str(args.users),
            "-t",
            f"{args.seconds}s",
            "--workers",
            str(args.workers),
            "--autoquit",
            "5",
            "--out",
            str(out),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    newest = max(out.iterdir(), key=lambda p: p.stat().st_mtime)
    return _aggregated_rps(newest / "locust" / "stats.csv")


def run_bare(locustfile: Path, host: str, args: argparse.Namespace, work: Path) -> float:
    port = free_port()
    prefix = work / f"bare-{time.monotonic_ns()}"
    group = ProcessGroup(work / "logs")
    try:
        master = group.start(
            "bare-master",
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(locustfile),
                "--master",
                "--headless",
                "--master-bind-host",
                "127.0.0.1",
                "--master-bind-port",
                str(port),
                "--expect-workers",
                str(args.workers),
                "-H",
                host,
                "-u",
                str(args.users),
                "-r",
                str(args.users),
                "-t",
                f"{args.seconds}s",
                "--csv",
                str(prefix),
                "--only-summary",
            ],
        )
        for index in range(args.workers):
            group.start(
                f"bare-worker-{index}",
                [
                    sys.executable,
                    "-m",
                    "locust",
                    "-f",
                    str(locustfile),
                    "--worker",
                    "--master-host",
                    "127.0.0.1",
                    "--master-port",
                    str(port),
                ],
            )
        master.process.wait(timeout=args.seconds + 120)
    finally:
        group.stop_all()
    return _aggregated_rps(Path(f"{prefix}_stats.csv"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--users", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kubeswarm-bench-") as tmp:
        work = Path(tmp)
        locustfile = work / "flat.py"
        locustfile.write_text(LOCUSTFILE, encoding="utf-8")
        server_port = free_port()
        servers = ProcessGroup(work / "logs")
        servers.start(
            "server",
            [sys.executable, "-m", "bench.fast_server", str(server_port)],
            cwd=Path(__file__).resolve().parent.parent,
        )
        time.sleep(1.0)
        host = f"http://127.0.0.1:{server_port}"
        results: dict[str, list[float]] = {"kubeswarm": [], "bare": []}
        try:
            for round_index in range(args.rounds):
                order = [("kubeswarm", run_kubeswarm), ("bare", run_bare)]
                if round_index % 2:
                    order.reverse()
                for name, runner in order:
                    rps = runner(locustfile, host, args, work)
                    results[name].append(rps)
                    print(f"round {round_index + 1}: {name:<9} {rps:8.1f} req/s", flush=True)
        finally:
            servers.stop_all()
    ours = statistics.median(results["kubeswarm"])
    bare = statistics.median(results["bare"])
    # Each round's two runs are neighbours in time, so their ratio cancels slow drift in load.
    paired = [k / b for k, b in zip(results["kubeswarm"], results["bare"], strict=True)]
    print(f"median req/s: kubeswarm {ours:.1f}, bare locust {bare:.1f}")
    print("per-round ratios: " + ", ".join(f"{r:.3f}" for r in paired))
    print(
        f"ratio kubeswarm/bare (median of rounds): {statistics.median(paired):.3f} (target >= 0.95)"
    )


if __name__ == "__main__":
    main()
