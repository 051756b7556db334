"""Options of the judgement: SLO gates, sizing, what-ifs, the baseline and the report's forms."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from harness.config.options.base import Option
from harness.config.values import (
    any_text,
    positive_float,
    slo_expression,
    whatif_spec,
)

VERDICT_OPTIONS: Final = (
    Option(
        "slos",
        ("--slo",),
        slo_expression,
        (),
        "pass/fail gate such as p95_ms<500 or oom_kills==0 (repeatable)",
        multiple=True,
        metavar="EXPR",
    ),
    Option(
        "target_rps",
        ("--target-rps",),
        positive_float,
        None,
        "size for this load: replicas needed at the measured knee and the HPA CPU target "
        "that keeps each pod under it (requests/s)",
        metavar="N",
    ),
    Option(
        "whatif",
        ("--whatif",),
        whatif_spec,
        (),
        "replay the run with changed HPA settings: HPA:key=value,... (repeatable)",
        multiple=True,
        metavar="SPEC",
    ),
    # Results teams gate on: a baseline to compare with, JUnit for CI, markdown for a PR.
    Option(
        "baseline",
        ("--baseline",),
        Path,
        None,
        "run directory to compare with: regressions beyond tolerance fail the verdict",
        metavar="RUN",
    ),
    Option(
        "tolerances",
        ("--tolerance",),
        any_text,
        (),
        "regression tolerance NAME=VALUE, e.g. p95_ms=15%% or error_rate=1 (repeatable)",
        multiple=True,
        metavar="NAME=VALUE",
    ),
    Option(
        "junit",
        ("--junit",),
        Path,
        None,
        "write a JUnit XML file: one case per SLO, high finding and regression",
        metavar="FILE",
    ),
    Option(
        "report_format",
        ("--format",),
        any_text,
        "text",
        "summary printed: text, or md (the markdown of report/report.md)",
        metavar="FORMAT",
    ),
    Option(
        "compare_out",
        ("--out",),
        Path,
        None,
        "directory for compare.json and compare.html (default: print only)",
        metavar="DIR",
    ),
)
