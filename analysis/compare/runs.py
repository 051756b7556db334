"""``compare``: two run directories judged by the same analysis, then side by side.

A run's ``report/summary.json`` is reused when it is current (written by this kubeswarm version,
after the last sample); otherwise the report is rebuilt first, so a comparison never sets a
summary from old rules against one from new rules.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.compare.diff import compare_summaries, run_info
from analysis.compare.model import Comparison
from analysis.data import schema
from analysis.data.load import load_run
from analysis.data.timeline import load_series
from analysis.pipeline import analyse
from analysis.render.compare_charts import AlignedRun
from analysis.render.summary import build_summary, kubeswarm_version


def check_run_dir(run_dir: Path) -> dict[str, Any]:
    """run.json's object; ValueError (one line) when ``run_dir`` is not a readable run."""
    if not run_dir.is_dir():
        raise ValueError(f"{run_dir} is not a directory")
    meta_path = run_dir / schema.RUN_JSON
    if not meta_path.is_file():
        if (run_dir / schema.SAMPLES_DIR).is_dir():
            return {}
        raise ValueError(f"{run_dir} is not a kubeswarm run directory (no run.json, no samples/)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{meta_path} is not valid JSON ({e}); is this a run directory?") from e
    if not isinstance(meta, dict):
        raise ValueError(f"{meta_path} holds {type(meta).__name__}, not a run's metadata object")
    return meta


def _newest_input_s(run_dir: Path) -> float:
    paths = [run_dir / schema.RUN_JSON]
    for sub in (schema.SAMPLES_DIR, schema.LOCUST_DIR):
        folder = run_dir / sub
        if folder.is_dir():
            paths.extend(folder.iterdir())
    return max((p.stat().st_mtime for p in paths if p.is_file()), default=0.0)


def current_summary(run_dir: Path) -> dict[str, Any] | None:
    """The run's summary.json if it is current, else None."""
    path = run_dir / schema.REPORT_DIR / "summary.json"
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(summary, dict) or summary.get("kubeswarm_version") != kubeswarm_version():
        return None
    if not _well_formed(summary):  # edited or cut by hand: rebuilt like a stale one
        return None
    return summary if path.stat().st_mtime >= _newest_input_s(run_dir) else None


# The parts of summary.json a comparison walks: lists of objects, and the load object.
_OBJECT_LISTS = ("hpas", "workloads", "findings", "slos", "whatif", "disruptions")


def _objects(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def _well_formed(summary: Mapping[str, Any]) -> bool:
    """Whether ``summary`` has the shape this version writes where a comparison reads it."""
    lists_ok = all(_objects(summary.get(key, [])) for key in _OBJECT_LISTS if key != "disruptions")
    if not (lists_ok and _objects(summary.get("disruptions") or [])):
        return False
    return (
        isinstance(summary.get("load", {}), dict)
        and all(_objects(hpa.get("scale_events", [])) for hpa in summary.get("hpas", []))
        and all(
            all(key in finding for key in ("code", "severity", "subject"))
            for finding in summary.get("findings", [])
        )
        and all(
            "hpa" in w and isinstance(w.get("changes"), dict) for w in summary.get("whatif", [])
        )
        and all(isinstance(slo.get("expr"), str) for slo in summary.get("slos", []))
    )


def _recorded_slos(meta: Mapping[str, Any]) -> list[str]:
    config = meta.get("config")
    slos = meta.get("slos") or (config.get("slos") if isinstance(config, dict) else None)
    return [str(s) for s in slos] if isinstance(slos, list) else []


def load_summary(run_dir: Path) -> tuple[dict[str, Any], bool]:
    """(summary, rebuilt): the current summary.json, or one rebuilt in memory by this version,
    judged on the SLOs the run recorded. A compared run directory is only read, never rewritten
    (it may be a baseline kept as a CI artifact)."""
    meta = check_run_dir(run_dir)
    summary = current_summary(run_dir)
    if summary is not None:
        return summary, False
    return build_summary(analyse(run_dir, _recorded_slos(meta))), True


def compare(
    baseline_dir: Path, candidate_dir: Path, tolerances: Mapping[str, float] | None = None
) -> Comparison:
    """Both runs analysed by this version, side by side, with the regressions beyond
    ``tolerances`` (see ``analysis.compare.tolerances``). ValueError (one line) for a directory
    that is not a run, an unreadable run.json or an unknown tolerance."""
    base, base_rebuilt = load_summary(baseline_dir)
    cand, cand_rebuilt = load_summary(candidate_dir)
    return compare_summaries(
        base,
        cand,
        tolerances,
        run_info(base, baseline_dir, base_rebuilt),
        run_info(cand, candidate_dir, cand_rebuilt),
    )


def aligned_run(run_dir: Path, label: str) -> AlignedRun:
    """The run's load and replicas against seconds since its ``test_start`` mark (else since
    run.json's start, else since its first sample)."""
    data = load_run(run_dir)
    load = load_series(data)
    starts = data.marks[data.marks["kind"] == "test_start"]["ts"].dropna()
    origin: float | None = float(starts.min()) if not starts.empty else None
    if origin is None:
        start = data.meta.get("start")
        origin = float(start) if isinstance(start, int | float) else None
    if origin is None:
        firsts = [float(f["ts"].min()) for f in (load, data.hpa) if not f.empty]
        origin = min(firsts, default=0.0)
    frame = pd.DataFrame(
        {
            "t": load["ts"] - origin,
            "users": load["users"],
            "rps": load["rps"],
            "p95_ms": load["p95_ms"],
        }
    )
    replicas = {
        str(name): pd.DataFrame(
            {"t": rows["ts"] - origin, "current": rows["current_replicas"]}
        ).sort_values("t")
        for name, rows in data.hpa.groupby("hpa")
    }
    return AlignedRun(label, data.run_id, frame, replicas)
