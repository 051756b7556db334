"""Whether a run can be judged at all: a run that did not finish, or an HPA it watched but never
sampled, leaves the verdict ``incomplete`` (never ``pass``), whatever the SLOs say.

A CI gate reads the verdict and the exit code; a run cut short by Ctrl-C, a cancelled job or a
kill measured less than it was asked to, so passing it would pass what was never seen.
"""

from __future__ import annotations

from collections.abc import Sequence

from analysis.data.load import RunData
from analysis.judge.findings import Finding

# The codes that make a verdict ``incomplete`` (a failed SLO still makes it ``fail``).
INCOMPLETE_CODES = frozenset(("run_incomplete", "hpa_not_sampled"))

_STATUS_SEEN = {
    "interrupted": "run.json says the run was 'interrupted' (Ctrl-C or SIGTERM) before its end.",
    "failed": "run.json says the run 'failed' before its end.",
    "running": "run.json still says 'running': kubeswarm was killed before it could finish "
    "the run.",
}


def run_status_finding(data: RunData) -> list[Finding]:
    """``run_incomplete`` when run.json's status is anything but ``completed``."""
    status = data.meta.get("status")
    if status in (None, "completed"):
        return []
    return [
        Finding(
            "run_incomplete",
            "medium",
            "run",
            _STATUS_SEEN.get(str(status), f"run.json says the run is {status!r}."),
            "The load stopped early: peaks, scale-ups and final replicas may be missing, so the "
            "verdict is incomplete, not pass.",
            "Rerun to completion before trusting the numbers.",
            {"status": str(status)},
        )
    ]


def watched_hpas(meta: dict[str, object]) -> list[tuple[str | None, str]]:
    """(namespace or None, name) of every ``hpa/NAME`` the run watched, as run.json has them."""
    config = meta.get("config")
    watch = meta.get("watch") or (config.get("watch") if isinstance(config, dict) else None)
    found: list[tuple[str | None, str]] = []
    for target in watch if isinstance(watch, list) else []:
        parts = str(target).split("/")
        if len(parts) == 2 and parts[0] == "hpa":
            found.append((None, parts[1]))
        elif len(parts) == 3 and parts[1] == "hpa":
            found.append((parts[0], parts[2]))
    return found


def unsampled_hpa_findings(data: RunData) -> list[Finding]:
    """``hpa_not_sampled`` for each watched HPA with no row in hpa.csv."""
    names = data.hpa["hpa"].astype(str)
    spaces = data.hpa["namespace"].astype(str)
    out: list[Finding] = []
    for namespace, name in watched_hpas(data.meta):
        rows = names == name if namespace is None else (names == name) & (spaces == namespace)
        if bool(rows.any()):
            continue
        shown = name if namespace is None else f"{namespace}/{name}"
        out.append(
            Finding(
                "hpa_not_sampled",
                "high",
                shown,
                f"the run watched hpa/{name} but hpa.csv has no sample of it.",
                "Nothing about its scaling was measured, so the verdict is incomplete, not pass.",
                "Check that the HPA exists in that namespace and that kubeswarm may read it "
                "(kubeswarm render --rbac), then rerun.",
                {"hpa": shown},
            )
        )
    return out


def is_incomplete(findings: Sequence[Finding]) -> bool:
    return any(f.code in INCOMPLETE_CODES for f in findings)
