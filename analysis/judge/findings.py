"""Findings: what was seen, why it matters and what to change, with numbers; the run-wide ones
(data problems, sampler gaps, load, errors, SLOs) are here, those about HPAs and workloads in
``analysis.judge.target_findings``.

Codes are stable identifiers (summary.json, docs/run-directory.md). Severities: ``high`` means
the run shows a problem that will hurt in production (the verdict becomes ``warn``), ``medium``
something to fix or check, ``info`` context. Thresholds are the module constants here and in
``scaling``/``resources``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from analysis.data import schema
from analysis.data.load import DataProblem, RunData
from analysis.data.timeline import Window
from analysis.judge.adequacy import Adequacy, LoadSummary
from analysis.judge.slo import SloResult

Severity = Literal["high", "medium", "info"]
SEVERITY_ORDER: dict[str, int] = {"high": 0, "medium": 1, "info": 2}

# A gap is a pause longer than 3 ticks; gaps adding up to a tenth of the run (or one over a
# minute) make the run's numbers doubtful.
GAP_TICKS = 3.0
GAP_SHARE_MEDIUM = 0.1
GAP_LONGEST_MEDIUM_S = 60.0
ERROR_RATE_MEDIUM = 0.01
ERROR_RATE_HIGH = 0.05
_IMPORTANT_FILES = (
    "hpa.csv",
    "hpa_metrics.csv",
    "pods.csv",
    "locust.csv",
    "stats.csv",
    "stats_history.csv",
)


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    subject: str  # namespace/name of an HPA or workload, or "run"
    seen: str
    why: str
    change: str
    data: dict[str, float | int | str | None] = field(default_factory=dict)

    @property
    def message(self) -> str:
        return " ".join(part for part in (self.seen, self.why, self.change) if part)


def _important(data: RunData, file: str) -> bool:
    """Whether a missing file leaves a hole: Locust's own files and the sampler's locust.csv stand
    in for each other, and a local run that watched nothing has no HPA or pods to record."""
    name = file.rsplit("/", 1)[-1]
    if name not in _IMPORTANT_FILES:
        return False
    if name == "locust.csv":
        return data.stats_history.empty
    if name in ("stats.csv", "stats_history.csv"):
        return data.locust.empty and data.mode != "sample"  # sample runs have no Locust
    config = data.meta.get("config")
    watched = config.get("watch") if isinstance(config, dict) else None
    return not (data.mode == "local" and not watched)


def _missing_file_advice(file: str) -> str:
    if file.startswith("locust/"):
        return (
            "Locust's files are fetched from the master while it waits after the test "
            "(--autoquit): give it longer, or look at why the master ended early (its log)."
        )
    return (
        "Check the sampler's permissions and the metrics API (metrics-server) for the next run; "
        "a file that is missing entirely usually means the harness stopped early."
    )


def problem_findings(data: RunData, window: Window) -> list[Finding]:
    """``metrics_missing`` per file and one ``sampler_gaps`` for the run."""
    findings: list[Finding] = []
    by_file: dict[str, list[DataProblem]] = {}
    for problem in data.problems:
        if problem.kind != "truncated":
            by_file.setdefault(problem.file, []).append(problem)
    for file, problems in by_file.items():
        important = _important(data, file)
        detail = "; ".join(p.detail for p in problems)
        findings.append(
            Finding(
                "metrics_missing",
                "medium" if important else "info",
                "run",
                f"{file}: {detail}.",
                "Whatever that file records is left out of this report and of the SLO gates.",
                _missing_file_advice(file),
                {"file": file},
            )
        )
    for column, what in (("memory_bytes", "pod memory"), ("cpu_m", "pod CPU")):
        if not data.pods.empty and data.pods[column].isna().all():
            findings.append(
                Finding(
                    "metrics_missing",
                    "medium",
                    "run",
                    f"{what} was never measured in pods.csv.",
                    "Without usage the memory/CPU checks and the what-if replay have nothing to "
                    "use.",
                    "Install metrics-server (the metrics.k8s.io API) or check the sampler's access "
                    "to it.",
                    {"file": "samples/pods.csv", "column": column},
                )
            )
    gaps = sampler_gaps(data, window)
    if gaps is not None:
        findings.append(gaps)
    return findings


def sampler_gaps(data: RunData, window: Window) -> Finding | None:
    """Pauses in the sampler's ticks, ``sampler_gap`` marks and lines cut by a kill."""
    interval = data.sample_interval_s
    longest, total, count = 0.0, 0.0, 0
    # pods.csv is written when its pods change and at least every PODS_HEARTBEAT_S
    for frame, longest_quiet_s in (
        (data.hpa, 0.0),
        (data.pods, schema.PODS_HEARTBEAT_S + interval),
        (data.locust, 0.0),
    ):
        ticks = np.unique(frame["ts"].to_numpy(float))
        if ticks.size < 2:
            continue
        diffs = np.diff(ticks)
        gaps = diffs[diffs > max(GAP_TICKS * interval, longest_quiet_s)]
        if gaps.size and float(gaps.sum()) > total:
            longest, total, count = float(gaps.max()), float(gaps.sum()), int(gaps.size)
    marks = int((data.marks["kind"] == "sampler_gap").sum())
    truncated = sorted(p.file for p in data.problems if p.kind == "truncated")
    if not count and not marks and not truncated:
        return None
    share = total / window.duration_s if window.duration_s > 0 else 0.0
    severity: Severity = (
        "medium" if share >= GAP_SHARE_MEDIUM or longest >= GAP_LONGEST_MEDIUM_S else "info"
    )
    parts = []
    if count:
        parts.append(
            f"{count} pause(s) in sampling longer than {GAP_TICKS:.0f} ticks of "
            f"{interval:g} s, {total:.0f} s in all ({share:.0%} of the run), longest "
            f"{longest:.0f} s"
        )
    if marks:
        parts.append(f"{marks} sampler_gap mark(s)")
    if truncated:
        parts.append(
            "last line cut mid-write in " + ", ".join(truncated) + " (the harness was killed)"
        )
    return Finding(
        "sampler_gaps",
        severity,
        "run",
        "; ".join(parts) + ".",
        "Scale events, peaks and OOM kills inside a gap are missed or timed late.",
        "Check the harness machine's load and the API server's latency; lengthen "
        "--sample-interval if ticks cannot keep up.",
        {
            "gaps": count,
            "longest_gap_s": round(longest, 1),
            "total_gap_s": round(total, 1),
            "marks": marks,
            "truncated_files": len(truncated),
        },
    )


def load_findings(load: LoadSummary, adequacy: Adequacy) -> list[Finding]:
    """``load_too_low`` and ``errors_under_load``."""
    out: list[Finding] = []
    if adequacy.too_low:
        states = "; ".join(adequacy.hpa_states)
        why = (
            f"An HPA the load does not push shows nothing ({states}): this run cannot tell "
            "whether the service scales with load."
            if states
            else "An HPA the load does not push shows nothing: this run cannot tell whether the "
            "service scales with load."
        )
        change = (
            "Fix the locustfile first (see locustfile_exceptions): more users only raise more "
            "exceptions. Then check -H points at the target."
            if adequacy.broken_locustfile
            else "Raise -u (users) or lower the locustfile's wait_time, add workers if the load "
            "generators are CPU-bound, and check -H points at the target."
        )
        out.append(
            Finding(
                "load_too_low",
                "high" if adequacy.nothing_sent else "medium",
                "run",
                "The test did not load the target: " + "; ".join(adequacy.reasons) + ".",
                why,
                change,
                {
                    "rps_per_user": None
                    if adequacy.rps_per_user is None
                    else round(adequacy.rps_per_user, 3),
                    "rps_per_user_source": adequacy.rps_per_user_source,
                    "total_requests": load.total_requests,
                },
            )
        )
    rate = load.error_rate
    if rate is not None and rate >= ERROR_RATE_MEDIUM:
        out.append(
            Finding(
                "errors_under_load",
                "high" if rate >= ERROR_RATE_HIGH else "medium",
                "run",
                f"{rate:.1%} of {load.total_requests:.0f} requests failed.",
                "Failures under load are what users see; they also skew latency percentiles.",
                "Look at locust/failures.csv for which endpoints fail, and at the pods' restarts "
                "and at-max findings for why.",
                {"error_rate": round(rate, 4)},
            )
        )
    return out


def _observed_text(result: SloResult) -> str:
    if result.observed is None:
        return "not measured"
    if result.at_least:
        return f"at least {result.observed:.4g} (still running when the run ended)"
    return f"{result.observed:.4g}"


def slo_findings(results: Iterable[SloResult]) -> list[Finding]:
    return [
        Finding(
            "slo_failed",
            "high",
            "run",
            f"SLO {r.expr} failed: observed {_observed_text(r)}.",
            "The run's verdict is fail, and kubeswarm exits with code 1 so CI stops here.",
            "Fix what the other findings point at, or adjust the gate if it was wrong.",
            {"expr": r.expr, "observed": r.observed},
        )
        for r in results
        if not r.passed
    ]


def ordered(findings: Sequence[Finding]) -> list[Finding]:
    """Highest severity first, stable within a severity."""
    return sorted(findings, key=lambda f: SEVERITY_ORDER[f.severity])
