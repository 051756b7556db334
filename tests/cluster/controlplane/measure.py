"""Start the local control plane, print its start time and memory, stop it.

    python tests/cluster/controlplane/measure.py [--nodes N] [--settle SECONDS]

Prints the seconds `ControlPlane.start()` took (binaries already built; run build.sh first to
leave the build out), the resident memory (RSS) of each component after `--settle` seconds, the
total, and checks that no component process is left after `stop()`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _controlplane import ControlPlane, find_binaries


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--settle", type=float, default=10.0, help="seconds before measuring RSS")
    args = parser.parse_args()

    bin_dir = find_binaries(lambda line: print(line, file=sys.stderr))
    cp = ControlPlane(nodes=args.nodes, bin_dir=bin_dir)
    t0 = time.monotonic()
    cp.start()
    started_s = time.monotonic() - t0
    pids = cp.pids
    try:
        time.sleep(args.settle)
        rss: dict[str, int] = {}
        for name, pid in pids.items():
            try:
                rss[name] = psutil.Process(pid).memory_info().rss
            except psutil.NoSuchProcess:
                rss[name] = 0
    finally:
        cp.stop()
    print(f"start_seconds {started_s:.1f}")
    for name, value in sorted(rss.items(), key=lambda kv: -kv[1]):
        print(f"rss_mib {name} {value / 2**20:.0f}")
    print(f"rss_mib_total {sum(rss.values()) / 2**20:.0f}")
    left = [f"{name} ({pid})" for name, pid in pids.items() if psutil.pid_exists(pid)]
    if left:
        # A zombie would still "exist"; stop() waits for each child, so there should be none.
        print(f"processes left after stop(): {', '.join(left)}")
        return 1
    print("processes left after stop(): none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
