"""Scale-up times as kubeswarm reports them vs the HPA's own, on a real node.

Starts the real-node tier's single-node cluster (tests/realnode; root, cached build), deploys
the example target with its HPA, waits until the HPA has computed its first status (so every
later change is a change the run can see), then runs the shipped step load with `kubeswarm run
--watch hpa/example-web`. Each reported scale event (summary.json `hpas[].scale_events`) is
matched with the HPA's SuccessfulRescale event of the same new size (`kubectl describe hpa`;
one-second timestamps) and the error of the reported time is printed, with the sampling
interval it is bounded by.

    python -m bench.realnode_scale_lag [--interval 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.realnode._node import RealNode, build
from tests.realnode._workloads import (
    LOCUSTFILES,
    create_namespace,
    deploy_and_wait,
    example_target,
    finish,
    run_args,
    run_dir,
    start_run,
    wait_for,
)

NAMESPACE = "bench-scale-lag"


def _stamp(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def rescale_events(node: RealNode, namespace: str) -> list[tuple[float, int]]:
    """(time, new size) of every SuccessfulRescale, oldest first."""
    _, body = node.api(f"/api/v1/namespaces/{namespace}/events")
    found = []
    for event in body.get("items", []):
        match = re.search(r"New size: (\d+)", event.get("message") or "")
        if event.get("reason") == "SuccessfulRescale" and match:
            when = event.get("eventTime") or event.get("firstTimestamp")
            found.append((_stamp(str(when)), int(match.group(1))))
    return sorted(found)


def _hpa_counted(node: RealNode) -> bool:
    path = f"/apis/autoscaling/v2/namespaces/{NAMESPACE}/horizontalpodautoscalers/example-web"
    _, body = node.api(path)
    return bool(body.get("status", {}).get("desiredReplicas"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=2.0, help="kubeswarm's --interval")
    args = parser.parse_args(argv)
    node = RealNode(build(lambda line: None), progress=lambda line: None)
    node.start()
    try:
        create_namespace(node, NAMESPACE)
        deploy_and_wait(node, NAMESPACE, example_target())
        wait_for("the HPA's first status", lambda: _hpa_counted(node), 120)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "runs"
            run = run_args(node, NAMESPACE, out, "-f", str(LOCUSTFILES / "step_load.py"))
            run += ["-H", "http://example-web:8080", "-u", "12", "-r", "12", "-t", "90s"]
            run += ["--workers", "2", "--processes", "1", "--watch", "hpa/example-web"]
            run += ["--interval", f"{args.interval:g}s"]
            log = Path(tmp) / "log"
            code = finish(start_run(run, log), log, 300)
            if code != 0:
                print(log.read_text()[-3000:], file=sys.stderr)
                return 1
            summary: dict[str, Any] = json.loads(
                (run_dir(out) / "report" / "summary.json").read_text()
            )
        reported = [(float(e["ts"]), int(e["to"])) for e in summary["hpas"][0]["scale_events"]]
        controller = rescale_events(node, NAMESPACE)
        print(f"sampling interval {args.interval:g} s; event timestamps have 1 s resolution")
        print(f"{'to':>3} {'HPA event':>12} {'kubeswarm':>12} {'error s':>8}")
        errors = []
        for ts, size in controller:
            near = [r for r, to in reported if to == size]
            if not near:
                print(f"{size:>3} {ts:12.0f} {'(none)':>12}")
                continue
            mine = min(near, key=lambda r: abs(r - ts))
            errors.append(mine - ts)
            print(f"{size:>3} {ts:12.0f} {mine:12.1f} {mine - ts:+8.1f}")
        unmatched = [to for _, to in reported if to not in {s for _, s in controller}]
        if errors:
            worst = max(abs(e) for e in errors)
            print(
                f"matched {len(errors)} of {len(controller)} rescales; worst |error| {worst:.1f} s"
            )
        if unmatched:
            print(f"reported without a SuccessfulRescale: {unmatched}")
        print(f"measured {dt.datetime.now(dt.UTC):%Y-%m-%d}", file=sys.stderr)
    finally:
        node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
