"""The composition roots, one module per mode; the CLI picks a mode by its name.

    local.py     kubeswarm run --local    Locust processes here, watched processes sampled
    cluster.py   kubeswarm run            preflight, Locust Jobs, the Kubernetes sampler
    demo.py      kubeswarm demo           the demo target, its autoscaler and Locust here
    sample.py    kubeswarm sample         only the Kubernetes sampler, for a duration
    parts.py     ``Parts`` and ``launch``: what every mode shares, added once

A mode's module is imported only when it is picked, so a local run never loads the Kubernetes
client. A new mode is one module plus one line in ``mode_named``.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from harness.modes.parts import Mode, Parts, launch

ModeName = Literal["local", "cluster", "demo", "sample"]
MODE_NAMES: tuple[ModeName, ...] = get_args(ModeName)

__all__ = ["MODE_NAMES", "Mode", "ModeName", "Parts", "launch", "mode_named"]


def mode_named(name: ModeName) -> Mode[Any]:
    """The mode called ``name``, with its default parts."""
    if name == "local":
        from harness.modes.local import LocalMode

        return LocalMode()
    if name == "cluster":
        from harness.modes.cluster import ClusterMode

        return ClusterMode()
    if name == "demo":
        from harness.modes.demo import DemoMode

        return DemoMode()
    from harness.modes.sample import SampleMode

    return SampleMode()
