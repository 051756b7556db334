"""The load generator's own health: a locustfile that raises, Locust processes out of CPU, workers
that went missing or were restarted.

Every latency and RPS figure of a run is measured by Locust. When its processes are saturated,
disconnected or crashing, those figures describe the load generator, not the target, and advice
such as "raise -u" makes things worse; these findings say so before anything else is believed.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pandas as pd

from analysis.data.load import RunData, as_float
from analysis.data.timeline import Window, merge_nearest, time_weights
from analysis.judge.adequacy import LoadSummary
from analysis.judge.findings import Finding
from analysis.judge.resources import WorkloadResult

# REFERENCE (Locust docs): CPU above 90 % in a Locust process makes its latencies untrustworthy;
# a fifth of the loaded time there is more than a transient at a ramp.
SATURATED_CPU_PCT = 90.0
SATURATED_SHARE = 0.2
# The CPU a Locust process should stay under at peak, leaving room for bursts and GC pauses.
HEADROOM_CPU_PCT = 70.0
_TOP_MESSAGES = 3
# The harness names its Locust Jobs ks-<run>-master and ks-<run>-worker (harness manifests).
_LOAD_GENERATOR_WORKLOAD = re.compile(r"^ks-.+-(worker|master)$")


def is_load_generator(workload: str) -> bool:
    return bool(_LOAD_GENERATOR_WORKLOAD.match(workload))


def is_master(workload: str) -> bool:
    """The run's own Locust master Job (``ks-<run>-master``)."""
    return is_load_generator(workload) and workload.endswith("-master")


def exception_count(data: RunData) -> float:
    counts = pd.to_numeric(data.exceptions["Count"], errors="coerce").fillna(0.0)
    return float(counts.sum())


def locustfile_exceptions(data: RunData, load: LoadSummary) -> Finding | None:
    """``locustfile_exceptions``: what the locustfile itself raised (locust/exceptions.csv)."""
    frame = data.exceptions.assign(
        Count=pd.to_numeric(data.exceptions["Count"], errors="coerce").fillna(0.0)
    )
    total = float(frame["Count"].sum())
    if total <= 0:
        return None
    top = frame.sort_values("Count", ascending=False).head(_TOP_MESSAGES)
    listed = "; ".join(
        f"{count:.0f}x {' '.join(str(message).split())[:160]}"
        for count, message in zip(top["Count"], top["Message"], strict=True)
    )
    requests = load.total_requests or 0.0
    # A task run either ends in an exception or (usually) makes a request; counting each request
    # as one task run gives the share of task runs that raised, at most.
    share = total / (total + requests)
    return Finding(
        "locustfile_exceptions",
        "high",
        "run",
        f"The locustfile raised {total:.0f} exception(s) in {len(frame)} kind(s) "
        f"against {requests:.0f} requests ({share:.0%} of task runs): {listed}.",
        "A task that raises stops before its request: the load applied is lower than the users "
        "suggest, and every finding about load and scaling describes a broken test, not the "
        "target.",
        "Fix the locustfile first (the tracebacks are in locust/exceptions.csv; run it locally "
        "with kubeswarm run --local); adding users only adds exceptions.",
        {
            "exceptions": round(total),
            "kinds": len(frame),
            "share_of_tasks": round(share, 4),
            "top_message": str(top["Message"].iloc[0])[:300],
        },
    )


def _loaded(frame: pd.DataFrame, window: Window) -> pd.DataFrame:
    lo, hi = window.loaded
    return frame[(frame["ts"] >= lo) & (frame["ts"] <= hi)]


def _rps_per_cpu_pct(workers: pd.DataFrame, load: pd.DataFrame, interval_s: float) -> float | None:
    """Requests/s the generator made per percent of one core, summed over its processes."""
    cpu = workers.groupby("ts", as_index=False)["cpu_pct"].sum()
    cpu = cpu[cpu["cpu_pct"] > 0]
    if cpu.empty or load.empty:
        return None
    joined = merge_nearest(cpu, load[["ts", "rps"]].dropna(), interval_s).dropna()
    joined = joined[joined["rps"] > 0]
    if joined.empty:
        return None
    return float((joined["rps"] / joined["cpu_pct"]).median())


def generator_saturated(
    data: RunData, load: pd.DataFrame, summary: LoadSummary, window: Window
) -> Finding | None:
    """``load_generator_saturated``: a Locust process above 90 % CPU for a fifth of the load."""
    workers = _loaded(data.workers.dropna(subset=["cpu_pct"]), window)
    if workers.empty:
        return None
    interval = data.sample_interval_s
    saturated: dict[str, tuple[float, float]] = {}
    for worker, rows in workers.groupby("worker", sort=True):
        weights = time_weights(rows["ts"].to_numpy(float), interval)
        hot = rows["cpu_pct"].to_numpy(float) > SATURATED_CPU_PCT
        share = float(weights[hot].sum() / weights.sum()) if weights.sum() > 0 else 0.0
        if share >= SATURATED_SHARE:
            saturated[str(worker)] = (share, float(rows["cpu_pct"].max()))
    if not saturated:
        return None
    processes = int(workers["worker"].nunique())
    per_pct = _rps_per_cpu_pct(workers, _loaded(load, window), interval)
    peak_rps = summary.peak_rps
    if per_pct and peak_rps:
        needed = math.ceil(peak_rps / (per_pct * HEADROOM_CPU_PCT))
        basis = (
            f"measured {per_pct * 100:.0f} req/s per core of Locust, so a peak of "
            f"{peak_rps:.0f} req/s needs {needed} processes to stay under "
            f"{HEADROOM_CPU_PCT:.0f}% CPU each"
        )
    else:
        peak_cpu = float(workers.groupby("ts")["cpu_pct"].sum().max())
        needed = math.ceil(peak_cpu / HEADROOM_CPU_PCT)
        basis = (
            f"the processes used {peak_cpu:.0f}% of a core in all at the peak, so {needed} "
            f"processes keep each under {HEADROOM_CPU_PCT:.0f}%"
        )
    needed = max(needed, processes + 1)
    worst = max(saturated.items(), key=lambda item: item[1][0])
    return Finding(
        "load_generator_saturated",
        "high",
        "run",
        f"{len(saturated)} of {processes} Locust worker process(es) ran above "
        f"{SATURATED_CPU_PCT:.0f}% CPU for a sizeable share of the loaded time (worst: "
        f"{worst[0]} {worst[1][0]:.0%} of it, peak {worst[1][1]:.0f}%).",
        "A Locust process at full CPU sends requests late and times responses late: the "
        "latencies and RPS measured then are the load generator's, not the target's.",
        f"Run at least {needed} Locust processes ({basis}): raise --workers or --processes, and "
        "give each worker pod one core per process.",
        {
            "saturated_workers": len(saturated),
            "worker_processes": processes,
            "worst_share_of_loaded_time": round(worst[1][0], 3),
            "rps_per_core": None if per_pct is None else round(per_pct * 100, 1),
            "recommended_processes": needed,
        },
    )


def expected_workers(meta: dict[str, Any]) -> int | None:
    """``load.workers x load.processes`` of run.json's config, when it says."""
    config = meta.get("config")
    load = config.get("load") if isinstance(config, dict) else None
    if not isinstance(load, dict):
        return None
    workers, processes = as_float(load.get("workers")), as_float(load.get("processes"))
    if workers is None or workers <= 0:
        return None
    return round(workers * (processes if processes and processes > 0 else 1))


def _connected_per_tick(data: RunData, window: Window) -> tuple[pd.DataFrame, str]:
    """``ts, connected``: worker processes not missing per tick, from workers.csv, else the
    master's worker_count in locust.csv."""
    workers = _loaded(data.workers, window)
    if not workers.empty:
        alive = workers.assign(up=(workers["state"] != "missing").astype(float))
        up = alive.groupby("ts")["up"].sum()
        frame = pd.DataFrame({"ts": up.index.to_numpy(float), "connected": up.to_numpy(float)})
        return frame, "samples/workers.csv"
    locust = _loaded(data.locust, window).dropna(subset=["worker_count"])
    frame = pd.DataFrame(
        {"ts": locust["ts"].to_numpy(float), "connected": locust["worker_count"].to_numpy(float)}
    )
    return frame, "samples/locust.csv worker_count"


def workers_missing(data: RunData, window: Window) -> Finding | None:
    """``workers_missing``: fewer worker processes than expected while the load ran."""
    counts, source = _connected_per_tick(data, window)
    if counts.empty or window.load_start_s is None:
        return None
    expected = expected_workers(data.meta)
    if expected is None:
        expected = round(float(counts["connected"].max()))
    loaded_workers = _loaded(data.workers, window)
    missing_names = sorted(
        {str(w) for w in loaded_workers[loaded_workers["state"] == "missing"]["worker"]}
    )
    fewest = round(float(counts["connected"].min()))
    if fewest >= expected and not missing_names:
        return None
    weights = time_weights(counts["ts"].to_numpy(float), data.sample_interval_s)
    short = counts["connected"].to_numpy(float) < expected
    share = float(weights[short].sum() / weights.sum()) if weights.sum() > 0 else 0.0
    first_short = counts["ts"].to_numpy(float)[short]
    when = (
        f", first {first_short[0] - window.load_start_s:.0f} s into the load"
        if first_short.size
        else ""
    )
    named = f" (reported missing: {', '.join(missing_names[:5])})" if missing_names else ""
    return Finding(
        "workers_missing",
        "high",
        "run",
        f"Locust's master counted as few as {fewest} of {expected} expected worker processes "
        f"during the load, short for {share:.0%} of the loaded time{when}{named}; from {source}.",
        "A missing worker's users stop sending: the load applied was lower than configured, so "
        "low RPS and an HPA that stayed put say nothing about the target.",
        "Look at the worker pods' logs and restarts: workers go missing when their CPU is "
        "saturated (heartbeats stop), when they are OOM-killed, or when the master is "
        "unreachable; give each worker a core per process and more memory.",
        {
            "expected_workers": expected,
            "fewest_workers": fewest,
            "share_of_loaded_time_short": round(share, 3),
            "missing_workers": len(missing_names),
        },
    )


def generator_restarts(workloads: list[WorkloadResult]) -> list[Finding]:
    """``load_generator_restarts``: the Locust pods themselves restarted or were OOM-killed."""
    out: list[Finding] = []
    for w in workloads:
        if not is_load_generator(w.name) or w.restarts <= 0:
            continue
        out.append(
            Finding(
                "load_generator_restarts",
                "high",
                w.key,
                f"{w.key} (a Locust Job of this run) restarted {w.restarts} time(s), "
                f"{w.oom_kills} of them OOM kills.",
                "A restarted Locust worker loses its users and its statistics since the last "
                "report; a restarted master loses the whole run's statistics.",
                "Raise --worker-memory (Locust's memory grows with entries x run time; group "
                "dynamic URLs with name=) and check the previous container's log.",
                {"restarts": w.restarts, "oom_kills": w.oom_kills},
            )
        )
    return out


def loadgen_findings(
    data: RunData,
    load: pd.DataFrame,
    summary: LoadSummary,
    window: Window,
    workloads: list[WorkloadResult],
) -> list[Finding]:
    found = [
        locustfile_exceptions(data, summary),
        generator_saturated(data, load, summary, window),
        workers_missing(data, window),
    ]
    return [f for f in found if f is not None] + generator_restarts(workloads)
