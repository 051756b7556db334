"""Two runs side by side: what got better, what got worse, and whether anything regressed
beyond its tolerance (``kubeswarm compare``, ``--baseline``).

Public surface: ``compare`` (two run directories), ``compare_summaries`` (two summary.json dicts),
``parse_tolerance`` and ``DEFAULT_TOLERANCES``, ``format_comparison`` (terminal),
``write_comparison`` (compare.json, compare.html) and the ``Comparison`` data it all returns.
"""

from analysis.compare.diff import compare_summaries
from analysis.compare.model import (
    Comparison,
    Delta,
    FindingRef,
    Regression,
    RunInfo,
    SloComparison,
    SubjectComparison,
    WhatIfComparison,
)
from analysis.compare.output import format_comparison, write_comparison
from analysis.compare.runs import compare, load_summary
from analysis.compare.tolerances import DEFAULT_TOLERANCES, TOLERANCES, parse_tolerance

__all__ = [
    "DEFAULT_TOLERANCES",
    "TOLERANCES",
    "Comparison",
    "Delta",
    "FindingRef",
    "Regression",
    "RunInfo",
    "SloComparison",
    "SubjectComparison",
    "WhatIfComparison",
    "compare",
    "compare_summaries",
    "format_comparison",
    "load_summary",
    "parse_tolerance",
    "write_comparison",
]
