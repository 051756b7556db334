"""Memory and CPU per workload: peaks against requests and limits, OOM kills, restarts, whether
memory follows load, and krr-style recommendations with their formulas.

Percentages are given of both the request and the limit because they answer different questions:
the HPA computes utilization from requests, the OOM killer acts on limits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.data.load import RunData
from analysis.data.timeline import Window, resample

MI = 2**20
# krr: memory limit = peak working set x 1.15; after an OOM kill the recorded peak is cut off at the
# limit, so take 1.25 x the larger of peak and limit.
LIMIT_HEADROOM = 1.15
LIMIT_HEADROOM_AFTER_OOM = 1.25
# Quantile standing for the per-pod floor of memory ("baseline"): 90 % of samples are above it.
BASELINE_QUANTILE = 0.10
CPU_REQUEST_QUANTILE = 0.95
CPU_ROUND_M = 5.0
# The per-pod working set a memory request must hold under the HPA target: a high percentile of
# the loaded samples, so one spike does not set the request.
TYPICAL_QUANTILE = 0.95
# Load per pod must swing at least 50 % to judge whether memory follows it; memory that moves less
# than 20 % of its mean over that range (least-squares line) is flat.
LOAD_SWING_MIN = 0.5
MEMORY_SWING_FLAT = 0.2

MEMORY_LIMIT_FORMULA = (
    "peak working set per pod x 1.15; after an OOM kill max(peak, limit) x 1.25 "
    "(krr's rule); never below the recommended request; rounded up to 1Mi"
)
MEMORY_REQUEST_FORMULA_HPA = (
    "95th percentile of the per-pod working set while loaded / HPA memory target, rounded up to "
    "1Mi: the HPA divides usage by the request, so at the usage observed per pod memory "
    "utilization stays at or under the target and memory alone cannot pin replicas at max"
)
MEMORY_REQUEST_FORMULA_PLAIN = (
    "peak working set per pod (no HPA scales this workload on memory), rounded up to 1Mi"
)
CPU_REQUEST_FORMULA = "95th percentile of per-pod CPU usage while loaded, rounded up to 5m"


@dataclass(frozen=True)
class Recommendation:
    memory_request_bytes: float | None
    memory_limit_bytes: float | None
    cpu_request_m: float | None
    memory_request_formula: str
    memory_limit_formula: str = MEMORY_LIMIT_FORMULA
    cpu_request_formula: str = CPU_REQUEST_FORMULA


@dataclass(frozen=True)
class WorkloadResult:
    namespace: str
    name: str
    pods_seen: int
    peak_memory_bytes: float | None  # highest working set of any one pod
    baseline_memory_bytes: float | None
    memory_request_bytes: float | None
    memory_limit_bytes: float | None
    peak_cpu_m: float | None
    p95_cpu_m: float | None
    cpu_request_m: float | None
    oom_kills: int
    restarts: int  # all restarts during the run, OOM kills included
    oom_times: tuple[float, ...]
    memory_follows_load: bool | None  # None: load per pod did not vary enough to tell
    memory_swing: float | None
    load_swing: float | None
    hpa_memory_target: float | None  # percent, of the HPA that scales this workload on memory
    recommendation: Recommendation
    memory: pd.DataFrame = field(repr=False)  # ts, pod, memory_bytes (for charts)
    # The per-pod floor measured without load (before the first user, after the last); None when
    # no pod was sampled then. When known it is the baseline: memory under load says nothing
    # about what a pod holds at rest.
    unloaded_memory_bytes: float | None = None
    # The per-pod floor under load (10th percentile of the loaded samples).
    loaded_floor_memory_bytes: float | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def pct_of_request(self, value: float | None) -> float | None:
        return _pct(value, self.memory_request_bytes)

    @property
    def peak_memory_pct_of_request(self) -> float | None:
        return _pct(self.peak_memory_bytes, self.memory_request_bytes)

    @property
    def peak_memory_pct_of_limit(self) -> float | None:
        return _pct(self.peak_memory_bytes, self.memory_limit_bytes)


def _pct(value: float | None, of: float | None) -> float | None:
    if value is None or of is None or of <= 0:
        return None
    return 100.0 * value / of


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _last_known(series: pd.Series[float]) -> float | None:
    valid = series.dropna()
    return float(valid.iloc[-1]) if not valid.empty else None


def _restarts(
    pods: pd.DataFrame, first_tick: float, interval_s: float
) -> tuple[int, int, list[float]]:
    """(restarts, OOM kills, OOM times) during the run, per pod from its restart counter."""
    restarts = ooms = 0
    times: list[float] = []
    for _, rows in pods.groupby("pod", sort=False):
        counts = rows["restarts"].to_numpy(float)
        valid = ~np.isnan(counts)
        if not valid.any():
            continue
        counts, ts = counts[valid], rows["ts"].to_numpy(float)[valid]
        reasons = rows["last_termination_reason"].to_numpy(str)[valid]
        # A pod already there at the first tick brought its old restarts along; a later one did not.
        before = counts[0] if ts[0] <= first_tick + interval_s else 0.0
        steps = np.diff(np.concatenate(([before], counts)))
        for i in np.flatnonzero(steps > 0):
            restarts += int(steps[i])
            if reasons[i] == "OOMKilled":
                ooms += int(steps[i])
                times.append(float(ts[i]))
    return restarts, ooms, times


def _load_and_memory_swing(
    load_per_pod: np.ndarray, memory: np.ndarray
) -> tuple[float | None, float | None]:
    """(load swing, memory swing): how far load per pod ranged (share of its high end), and how
    much memory per pod moves over that range by a least-squares line (share of its mean)."""
    valid = np.isfinite(load_per_pod) & np.isfinite(memory)
    x, y = load_per_pod[valid], memory[valid]
    if x.size < 5:
        return None, None
    low, high = float(np.quantile(x, 0.02)), float(np.quantile(x, 0.98))
    if high <= 0 or float(y.mean()) <= 0:
        return None, None
    load_swing = (high - low) / high
    if np.ptp(x) == 0:
        return load_swing, 0.0
    slope = float(np.polyfit(x, y, 1)[0])
    return load_swing, abs(slope) * (high - low) / float(y.mean())


def _follows_load(
    pods: pd.DataFrame, load: pd.DataFrame, window: Window, interval_s: float
) -> tuple[bool | None, float | None, float | None]:
    """Per tick over the whole run: mean working set per ready pod against RPS per ready pod. A
    tick outside the loaded window with no Locust sample had no load: RPS 0, so the samples
    taken at rest count too."""
    ready = pods[pods["ready"].fillna(False).astype(bool) & pods["memory_bytes"].notna()]
    if ready.empty or load.empty:
        return None, None, None
    origin_s = window.start_s
    per_tick = resample(
        ready, origin_s, interval_s, memory=("memory_bytes", "mean"), pods=("pod", "nunique")
    )
    rps = resample(load, origin_s, interval_s, rps=("rps", "mean"))
    joined = per_tick.join(rps, how="left")
    if window.load_start_s is not None:
        lo, hi = window.loaded
        tick_ts = origin_s + joined.index.to_numpy(float)
        at_rest = (tick_ts + interval_s <= lo) | (tick_ts > hi)
        joined.loc[at_rest & joined["rps"].isna().to_numpy(), "rps"] = 0.0
    joined = joined.dropna(subset=["rps"])
    load_swing, memory_swing = _load_and_memory_swing(
        (joined["rps"] / joined["pods"]).to_numpy(float), joined["memory"].to_numpy(float)
    )
    if load_swing is None or memory_swing is None or load_swing < LOAD_SWING_MIN:
        return None, memory_swing, load_swing
    return memory_swing >= MEMORY_SWING_FLAT, memory_swing, load_swing


def _unloaded_floor(pods: pd.DataFrame, window: Window) -> float | None:
    """The per-pod memory floor before the first user and after the last one, if sampled."""
    if window.load_start_s is None:
        return None
    lo, hi = window.loaded
    rest = pods[(pods["ts"] < lo) | (pods["ts"] > hi)]["memory_bytes"].dropna()
    return float(rest.quantile(BASELINE_QUANTILE)) if not rest.empty else None


def recommend(
    *,
    peak: float | None,
    typical: float | None,
    limit: float | None,
    ooms: int,
    p95_cpu: float | None,
    memory_target: float | None,
) -> Recommendation:
    """krr-style requests and limits; the formulas travel with the numbers into the report."""

    def mi(value: float) -> float:
        return float(math.ceil(value / MI) * MI)

    request: float | None = None
    if memory_target is not None and typical is not None and memory_target > 0:
        request = mi(typical / (memory_target / 100.0))
        request_formula = MEMORY_REQUEST_FORMULA_HPA
    else:
        request = mi(peak) if peak is not None else None
        request_formula = MEMORY_REQUEST_FORMULA_PLAIN
    new_limit: float | None = None
    if peak is not None:
        if ooms:
            new_limit = mi(max(peak, limit or 0.0) * LIMIT_HEADROOM_AFTER_OOM)
        else:
            new_limit = mi(peak * LIMIT_HEADROOM)
        new_limit = max(new_limit, request or 0.0)
    cpu = math.ceil(p95_cpu / CPU_ROUND_M) * CPU_ROUND_M if p95_cpu is not None else None
    return Recommendation(request, new_limit, cpu, request_formula)


def analyse_workload(
    pods: pd.DataFrame,
    load: pd.DataFrame,
    window: Window,
    *,
    interval_s: float,
    first_tick: float,
    memory_target: float | None,
) -> WorkloadResult:
    """One workload's rows of pods.csv into a ``WorkloadResult``."""
    namespace, name = str(pods["namespace"].iloc[0]), str(pods["workload"].iloc[0])
    memory = pods["memory_bytes"].dropna()
    lo, hi = window.loaded
    loaded_cpu = pods[(pods["ts"] >= lo) & (pods["ts"] <= hi)]["cpu_m"].dropna()
    if loaded_cpu.empty:
        loaded_cpu = pods["cpu_m"].dropna()
    peak = _finite(float(memory.max())) if not memory.empty else None
    loaded_memory = pods[(pods["ts"] >= lo) & (pods["ts"] <= hi)]["memory_bytes"].dropna()
    unloaded = _unloaded_floor(pods, window)
    loaded_floor = (
        float(loaded_memory.quantile(BASELINE_QUANTILE)) if not loaded_memory.empty else None
    )
    if unloaded is not None:
        baseline: float | None = unloaded
    else:
        baseline = float(memory.quantile(BASELINE_QUANTILE)) if not memory.empty else None
    if loaded_memory.empty:
        loaded_memory = memory
    typical = float(loaded_memory.quantile(TYPICAL_QUANTILE)) if not loaded_memory.empty else None
    p95_cpu = float(loaded_cpu.quantile(CPU_REQUEST_QUANTILE)) if not loaded_cpu.empty else None
    limit = _last_known(pods["memory_limit_bytes"])
    restarts, ooms, oom_times = _restarts(pods, first_tick, interval_s)
    follows, memory_swing, load_swing = _follows_load(pods, load, window, interval_s)
    return WorkloadResult(
        namespace=namespace,
        name=name,
        pods_seen=int(pods["pod"].nunique()),
        peak_memory_bytes=peak,
        baseline_memory_bytes=baseline,
        memory_request_bytes=_last_known(pods["memory_request_bytes"]),
        memory_limit_bytes=limit,
        peak_cpu_m=_finite(float(pods["cpu_m"].max())) if pods["cpu_m"].notna().any() else None,
        p95_cpu_m=p95_cpu,
        cpu_request_m=_last_known(pods["cpu_request_m"]),
        oom_kills=ooms,
        restarts=restarts,
        oom_times=tuple(oom_times),
        memory_follows_load=follows,
        memory_swing=memory_swing,
        load_swing=load_swing,
        hpa_memory_target=memory_target,
        recommendation=recommend(
            peak=peak,
            typical=typical,
            limit=limit,
            ooms=ooms,
            p95_cpu=p95_cpu,
            memory_target=memory_target,
        ),
        memory=pods[["ts", "pod", "memory_bytes"]].reset_index(drop=True),
        unloaded_memory_bytes=unloaded,
        loaded_floor_memory_bytes=loaded_floor,
    )


def analyse_workloads(
    data: RunData, load: pd.DataFrame, window: Window, memory_targets: dict[tuple[str, str], float]
) -> list[WorkloadResult]:
    """Every workload in pods.csv; ``memory_targets`` maps (namespace, workload) to an HPA's
    memory target in percent."""
    pods = data.pods
    if pods.empty:
        return []
    first_tick = float(pods["ts"].min())
    results = []
    for (namespace, name), rows in pods.groupby(["namespace", "workload"], sort=True):
        results.append(
            analyse_workload(
                rows.sort_values("ts"),
                load,
                window,
                interval_s=data.sample_interval_s,
                first_tick=first_tick,
                memory_target=memory_targets.get((str(namespace), str(name))),
            )
        )
    return results
