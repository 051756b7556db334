"""Write run directories from literal frames, and synthesize large ones.

Tests build each situation a finding describes from a few literal rows; the scale benchmark needs
an hour of 1 s samples for 100 pods. Both write exactly what the harness writes (the columns of
``analysis.schema``, ``true``/``false`` booleans, empty cells for "not measured").
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import schema

MI = 2**20
_TABLES = {table.file_name.removesuffix(".csv"): table for table in schema.ALL_SAMPLES}


def _cells(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if values.dtype == bool or str(values.dtype) == "boolean":
            out[column] = values.map({True: "true", False: "false"}).fillna("")
    return out


def write_samples(
    run_dir: Path, name: str, rows: pd.DataFrame | Sequence[Mapping[str, Any]], strict: bool = True
) -> Path:
    """``samples/<name>.csv`` from rows; with ``strict`` every schema column must be present."""
    table = _TABLES[name]
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    unknown = set(frame.columns) - set(table.names)
    if unknown:
        raise ValueError(f"{table.file_name}: unknown columns {sorted(unknown)}")
    if strict:
        frame = frame.reindex(columns=list(table.names))
    else:
        frame = frame[[c for c in table.names if c in frame.columns]]
    path = run_dir / schema.SAMPLES_DIR / table.file_name
    path.parent.mkdir(parents=True, exist_ok=True)
    _cells(frame).to_csv(path, index=False, lineterminator="\n")
    return path


def write_run(
    run_dir: Path,
    meta: Mapping[str, Any],
    samples: Mapping[str, pd.DataFrame | Sequence[Mapping[str, Any]]],
    locust_files: Mapping[str, str] | None = None,
) -> Path:
    """A whole run directory: run.json, the given samples, and Locust's files given as text."""
    run_dir.mkdir(parents=True, exist_ok=True)
    defaults = {
        "id": run_dir.name,
        "version": "test",
        "mode": "cluster",
        "config": {},
        "status": "completed",
        "sample_interval_s": 1.0,
    }
    (run_dir / schema.RUN_JSON).write_text(json.dumps({**defaults, **meta}), encoding="utf-8")
    for name, rows in samples.items():
        write_samples(run_dir, name, rows)
    for file_name, text in (locust_files or {}).items():
        path = run_dir / schema.LOCUST_DIR / file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return run_dir


def _ramp(t: np.ndarray, duration_s: float, peak_users: int) -> np.ndarray:
    """Users step up in four equal stages over the first half, hold, then drop at 90 %."""
    stage = np.minimum(np.floor(t / (duration_s / 8)) + 1, 4)
    users = stage * peak_users / 4
    return np.where(t >= 0.9 * duration_s, 0.0, users)


def scale_run(
    run_dir: Path,
    *,
    duration_s: float = 3600.0,
    interval_s: float = 1.0,
    pods: int = 100,
    hpas: int = 3,
    start_s: float = 1_800_000_000.0,
    seed: int = 7,
) -> Path:
    """An hour-long run with ``hpas`` HPAs sharing ``pods`` pods, every sample file filled."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, duration_s, interval_s)
    ts = start_s + t
    users = _ramp(t, duration_s, 400)
    rps = users * 2.5 * (1 + 0.05 * rng.standard_normal(t.size)).clip(0)
    locust = pd.DataFrame(
        {
            "ts": ts,
            "state": np.where(users > 0, "running", "stopped"),
            "user_count": users,
            "worker_count": 4,
            "rps": rps,
            "fail_per_s": rps * 0.001,
            "fail_ratio": 0.001,
            "p50_ms": 20 + users / 20,
            "p95_ms": 80 + users / 4,
        }
    )
    per_hpa = pods // hpas
    load_share = users / users.max()
    hpa_rows, metric_rows, workload_rows, pod_frames = [], [], [], []
    for h in range(hpas):
        name = f"svc{h}"
        replicas = np.maximum(2, np.ceil(load_share * per_hpa)).astype(float)
        cpu_util = 40 + 40 * load_share
        base = {"ts": ts, "namespace": "load", "hpa": name}
        hpa_rows.append(
            pd.DataFrame(
                {
                    **base,
                    "target_kind": "Deployment",
                    "target_name": name,
                    "min_replicas": 2,
                    "max_replicas": per_hpa,
                    "current_replicas": replicas,
                    "desired_replicas": replicas,
                    "able_to_scale": True,
                    "scaling_active": True,
                    "scaling_limited": replicas >= per_hpa,
                }
            )
        )
        for metric, util, target in (
            ("cpu", cpu_util, 60.0),
            ("memory", 70 + 5 * load_share, 80.0),
        ):
            metric_rows.append(
                pd.DataFrame(
                    {
                        **base,
                        "metric": metric,
                        "current_utilization": util,
                        "target_utilization": target,
                    }
                )
            )
        workload_rows.append(
            pd.DataFrame(
                {
                    "ts": ts,
                    "namespace": "load",
                    "kind": "Deployment",
                    "name": name,
                    "replicas": replicas,
                    "ready_replicas": replicas,
                    "available_replicas": replicas,
                }
            )
        )
        for p in range(per_hpa):
            running = replicas > p
            pod_frames.append(
                pd.DataFrame(
                    {
                        "ts": ts[running],
                        "namespace": "load",
                        "pod": f"{name}-{p:03d}",
                        "workload": name,
                        "phase": "Running",
                        "ready": True,
                        "restarts": 0,
                        "last_termination_reason": "",
                        "cpu_m": (cpu_util[running] * 2.5 + rng.normal(0, 5, running.sum())).clip(
                            0
                        ),
                        "memory_bytes": (180 + 20 * load_share[running]) * MI,
                        "cpu_request_m": 250.0,
                        "cpu_limit_m": 1000.0,
                        "memory_request_bytes": 256.0 * MI,
                        "memory_limit_bytes": 512.0 * MI,
                    }
                )
            )
    marks = pd.DataFrame(
        {
            "ts": [ts[0], ts[int(t.size * 0.9)]],
            "kind": ["test_start", "test_stop"],
            "detail": ["", "stopped"],
        }
    )
    meta = {
        "start": float(ts[0]),
        "end": float(ts[-1]),
        "sample_interval_s": interval_s,
        "mode": "cluster",
    }
    return write_run(
        run_dir,
        meta,
        {
            "locust": locust,
            "hpa": pd.concat(hpa_rows),
            "hpa_metrics": pd.concat(metric_rows),
            "workloads": pd.concat(workload_rows),
            "pods": pd.concat(pod_frames),
            "marks": marks,
            "events": pd.DataFrame(columns=list(schema.EVENTS.names)),
        },
    )
