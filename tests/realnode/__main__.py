"""A real single-node cluster on this machine, standalone: `make dev-cluster` / `dev-cluster-down`.

    python -m tests.realnode up      build if needed, start, print the kubeconfig; returns
    python -m tests.realnode down    stop everything and restore the host (also after a crash)

The processes outlive `up` (they are not tied to it); `down` finds them by the PIDs recorded
in the state directory.
"""

from __future__ import annotations

import argparse
import sys

from ._node import RealNode, RealNodeError, RealNodeUnavailable, build, state_dir
from ._teardown import cleanup


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.realnode", description=__doc__)
    parser.add_argument("action", choices=("up", "down"))
    args = parser.parse_args(argv)
    if args.action == "down":
        cleanup(state_dir(), None, keep_dir=False)
        print("real node stopped; host restored")
        return 0
    try:
        artifacts = build()
        node = RealNode(artifacts, die_with_parent=False)
        try:
            node.start()
        except BaseException:
            node.stop()
            raise
    except RealNodeUnavailable as err:
        print(f"cannot run a real node here: {err}", file=sys.stderr)
        return 2
    except RealNodeError as err:
        print(f"the real node did not start: {err}", file=sys.stderr)
        return 1
    print(f"\nkubeconfig: {node.kubeconfig}")
    print(f"  export KUBECONFIG={node.kubeconfig}")
    print(
        "images: localhost/kubeswarm-locust:2.47.0 (kubeswarm run --image ...), "
        "localhost/kubeswarm-python:3.11"
    )
    print("stop it with: make dev-cluster-down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
