"""Options of disruptions of the target while the load runs."""

from __future__ import annotations

from typing import Final

from harness.config.chaos import parse_chaos, parse_chaos_pick, parse_chaos_target
from harness.config.options.base import Option
from harness.config.values import boolean

CHAOS_OPTIONS: Final = (
    # Disruptions under load; none by default: deleting pods is never done unasked.
    Option(
        "chaos",
        ("--chaos",),
        parse_chaos,
        (),
        "disrupt the target while the load runs: pod-delete or pod-kill, COUNT pods (default "
        "1), WHEN after the test started, e.g. pod-kill:2@60s (repeatable)",
        multiple=True,
        metavar="ACTION[:COUNT]@WHEN",
    ),
    Option(
        "chaos_target",
        ("--chaos-target",),
        parse_chaos_target,
        None,
        "workload whose pods --chaos disrupts: deployment/NAME, NAMESPACE/deployment/NAME; "
        "local: pid/PID, cmd/PATTERN (default: the first watched HPA's workload or process)",
        metavar="TARGET",
    ),
    # `render --rbac --chaos`: the same flag as a switch, for the one command that prints
    # permissions instead of running disruptions.
    Option(
        "rbac_chaos",
        ("--chaos",),
        boolean,
        False,
        "with --rbac: add the Role that lets --chaos delete pods",
        switch=True,
    ),
    # The oldest ready pods are the ones a rollout or a node drain takes first.
    Option(
        "chaos_pick",
        ("--chaos-pick",),
        parse_chaos_pick,
        "oldest",
        "which pods --chaos hits: oldest (ready ones first) or random",
        metavar="oldest|random",
    ),
    # Seeing what would be hit before hitting it: the safety check a careful user runs first.
    Option(
        "chaos_dry_run",
        ("--chaos-dry-run",),
        boolean,
        False,
        "with --chaos: print which pods or worker processes each disruption would hit now, "
        "then exit without starting anything",
        switch=True,
    ),
)
