"""The Locust master's memory over the run, for runs long enough for its growth to matter.

Locust's master keeps a stats history that grows with request names times run seconds (Locust
#2045, about 2 MiB an hour with few names): a 10-minute run never notices, a day-long soak may.
The series comes from ``samples/master.csv`` (local and demo runs: the master process's RSS) or,
when it is absent, from the master pod's rows of ``pods.csv`` where the metrics API measured it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.data.load import RunData
from analysis.judge.loadgen import is_master

# Shown on the page when the run lasted this long, or when the master grew by this much.
LONG_RUN_S = 600.0
NOTABLE_GROWTH_BYTES = 64 * 2**20
_MIB = 2**20


@dataclass(frozen=True)
class MasterMemory:
    source: str  # master.csv (the process) or pods.csv (the master pod)
    samples: int
    duration_s: float
    first_bytes: float
    last_bytes: float
    peak_bytes: float
    slope_mib_per_h: float | None  # least-squares slope over the run; None under 2 samples
    shown: bool  # long enough (or grown enough) for the report to show it

    @property
    def growth_bytes(self) -> float:
        return self.last_bytes - self.first_bytes

    def sentence(self) -> str:
        slope = "" if self.slope_mib_per_h is None else f", {self.slope_mib_per_h:+.1f} MiB/h"
        return (
            f"Locust master memory: {self.first_bytes / _MIB:.0f} → "
            f"{self.last_bytes / _MIB:.0f} MiB over {self.duration_s / 60:.0f} min "
            f"(peak {self.peak_bytes / _MIB:.0f} MiB{slope})"
        )


def _series(data: RunData) -> tuple[str, pd.DataFrame]:
    master = data.master.dropna(subset=["memory_bytes"])
    if not master.empty:
        return "master.csv", master[["ts", "memory_bytes"]]
    pods = data.pods[data.pods["workload"].map(is_master).astype(bool)]
    pods = pods.dropna(subset=["memory_bytes"])
    summed = pods.groupby("ts")["memory_bytes"].sum().reset_index()
    return "pods.csv", summed


def master_memory(data: RunData) -> MasterMemory | None:
    """None when the run recorded no memory of its master."""
    source, series = _series(data)
    if series.empty:
        return None
    ts = series["ts"].to_numpy(dtype=float)
    memory = series["memory_bytes"].to_numpy(dtype=float)
    duration = float(ts[-1] - ts[0])
    slope = None
    if ts.size >= 2 and duration > 0:
        hours = (ts - ts[0]) / 3600.0
        slope = float(np.polyfit(hours, memory / _MIB, 1)[0])
    first, last = float(memory[0]), float(memory[-1])
    shown = duration >= LONG_RUN_S or abs(last - first) >= NOTABLE_GROWTH_BYTES
    return MasterMemory(
        source, int(ts.size), duration, first, last, float(memory.max()), slope, shown
    )
