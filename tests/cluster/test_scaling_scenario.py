"""Issue 5's scenario: the real HPA scales on simulated memory, kubeswarm records and judges it.

A Deployment (2 replicas, requests 100m CPU / 128Mi memory) and an autoscaling/v2 HPA (min 2,
max 6, memory and CPU utilization targets of 80 %, a short scale-down stabilization window) run
on the control plane. kubeswarm's own sampler (``KubeSampler``) ticks on the session's
fixed schedule into a real ``RunStore`` in a background thread, as ``kubeswarm sample`` does,
while the test plays the load: it raises the simulated per-pod memory far above the target (CPU
stays low), lets the real HPA controller scale up through real metrics-server readings, then
lowers the usage and watches the replicas hold for the stabilization window and drop after it.
The run directory is then analysed by ``analysis.report.write_report`` and checked for what a user
would look at: the samples (hpa.csv, hpa_metrics.csv, pods.csv) and summary.json's HPA entry.

Needs simulated pod usage, so it runs on the local kwok control plane only.
"""

from __future__ import annotations

import csv
import json
import queue
import threading
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from analysis.data import schema
from analysis.data.units import parse_quantity
from analysis.report import write_report
from harness.config.values import WatchTarget
from harness.kube.client import KubeClient, connect
from harness.samplers.kube import KubeSampler
from harness.session.schedule import Schedule, run_ticks
from harness.session.store import RunStore

from ._controlplane import Cluster
from .test_controlplane import (
    SimulatedUsage,
    dig,
    plain,
    wait_for,
    web_deployment,
    web_hpa,
)

pytestmark = pytest.mark.cluster

NAME = "web"
SELECTOR = f"app={NAME}"
MIN_REPLICAS, MAX_REPLICAS = 2, 6
#: The HPA's scale-down stabilization window: short, to keep the test bounded.
WINDOW_S = 30
#: The sampler's tick.
INTERVAL_S = 1.0
#: What `web_deployment` requests per pod, and `web_hpa`'s utilization targets.
CPU_REQUEST_M = 100
MEMORY_REQUEST_BYTES = 128 * 2**20
TARGET_PCT = 80.0
#: Per-pod usage. Low: 20 % of the memory request, 10 % of the CPU request. High: 300Mi is 234 %
#: of the request (target 80 %), which wants 8 pods: the HPA goes to its max of 6 in one step.
CPU_USAGE = "10m"
LOW_MEMORY, LOW_MEMORY_BYTES = "25Mi", 25 * 2**20
HIGH_MEMORY, HIGH_MEMORY_BYTES = "300Mi", 300 * 2**20
#: How long after a change of usage every sampled reading reflects it: metrics-server scrapes
#: every 10 s, the HPA controller syncs every 5 s, the sampler ticks every second.
SETTLE_S = 20.0
HPA_SYNC_S = 5.0  # kube-controller-manager's --horizontal-pod-autoscaler-sync-period here


class BackgroundSampler:
    """kubeswarm's sampler as a run drives it: ``KubeSampler.tick`` on the session's fixed
    schedule, in a thread of its own. That thread is the only one writing to the store: marks
    asked for by the test are queued and written at the start of the next tick (with the time
    they were asked for)."""

    def __init__(self, kube: KubeClient, store: RunStore, namespace: str, start_s: float) -> None:
        self.store = store
        self.start_s = start_s
        self.sampler = KubeSampler(kube, [WatchTarget("hpa", NAME)], namespace, since_s=start_s)
        self.notices: list[str] = []
        self.ticks = 0
        self.error: BaseException | None = None
        self._marks: queue.Queue[tuple[schema.MarkKind, str, float]] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kubeswarm-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def mark(self, kind: schema.MarkKind, detail: str) -> float:
        ts = time.time()
        self._marks.put((kind, detail, ts))
        return ts

    def _write_marks(self) -> None:
        while True:
            try:
                kind, detail, ts = self._marks.get_nowait()
            except queue.Empty:
                return
            self.store.mark(kind, detail, ts)

    def _tick(self, now: float) -> bool:
        self._write_marks()
        result = self.sampler.tick(now, self.store)
        self.notices.extend(result.notices)
        self.ticks += 1
        return not self._stop.is_set()

    def _run(self) -> None:
        try:
            self._tick(time.time())
            self.store.flush()
            run_ticks(self.store, Schedule(INTERVAL_S, self.start_s), self._tick)
        except BaseException as err:  # re-raised in the test's thread by check()/stop()
            self.error = err

    def check(self) -> None:
        if self.error is not None:
            raise AssertionError(f"the sampler thread failed: {self.error!r}") from self.error
        assert self._thread.is_alive(), "the sampler thread stopped"

    def wait_ticks(self, count: int, timeout_s: float) -> None:
        target = self.ticks + count
        wait_for(f"{count} sampler ticks", lambda: self.ticks >= target, timeout_s, 0.1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        assert not self._thread.is_alive(), "the sampler thread did not stop"
        self._write_marks()  # marks asked for after the last tick
        if self.error is not None:
            raise AssertionError(f"the sampler thread failed: {self.error!r}") from self.error


def read_samples(run_dir: Path, table: schema.CsvSchema) -> list[dict[str, str]]:
    with (run_dir / schema.SAMPLES_DIR / table.file_name).open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def pod_metrics(custom: client.CustomObjectsApi, namespace: str) -> list[dict[str, Any]]:
    """The target's PodMetrics (metrics.k8s.io), as the API server's JSON."""
    listed: Any = custom.list_namespaced_custom_object(
        "metrics.k8s.io", "v1beta1", namespace, "pods", label_selector=SELECTOR
    )
    items: list[dict[str, Any]] = listed["items"]
    return items


def num(cell: str) -> float:
    assert cell != "", "an empty cell (not measured) where a value was expected"
    return float(cell)


def between(rows: list[dict[str, str]], lo: float, hi: float) -> list[dict[str, str]]:
    return [r for r in rows if lo <= float(r["ts"]) <= hi]


def test_memory_scale_up_and_stabilized_scale_down_are_recorded_and_judged(
    cluster: Cluster, api_client: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    if not cluster.simulated:
        pytest.skip("needs simulated pod usage (the local kwok control plane)")
    apps = client.AppsV1Api(api_client)
    core = client.CoreV1Api(api_client)
    autoscaling = client.AutoscalingV2Api(api_client)
    custom = client.CustomObjectsApi(api_client)

    # ------------------------------------------------------------------ target and HPA
    apps.create_namespaced_deployment(namespace, web_deployment(NAME, replicas=MIN_REPLICAS))
    usage = SimulatedUsage(core, namespace, SELECTOR)
    usage.set(cpu=CPU_USAGE, memory=LOW_MEMORY)
    autoscaling.create_namespaced_horizontal_pod_autoscaler(namespace, web_hpa(NAME, WINDOW_S))

    def hpa_status() -> dict[str, Any]:
        hpa = plain(autoscaling.read_namespaced_horizontal_pod_autoscaler(NAME, namespace))
        status: dict[str, Any] = hpa["status"] or {}
        return status

    def utilization(status: dict[str, Any]) -> dict[str, int]:
        return {
            m["resource"]["name"]: m["resource"]["current"]["averageUtilization"]
            for m in status.get("currentMetrics") or []
            if dig(m, "resource", "current", "averageUtilization") is not None
        }

    def replicas() -> int:
        value: int = plain(apps.read_namespaced_deployment(NAME, namespace))["spec"]["replicas"]
        return value

    def steady_low() -> dict[str, int] | None:
        usage.apply()
        status = hpa_status()
        got = utilization(status)
        ready = set(got) == {"memory", "cpu"} and status.get("desiredReplicas") == MIN_REPLICAS
        return got if ready else None

    began = time.monotonic()
    baseline = wait_for("the HPA to read memory and CPU of the 2 pods", steady_low, 90, 1)
    took = {"baseline_s": time.monotonic() - began}
    assert baseline["memory"] < TARGET_PCT, baseline

    # ------------------------------------------------------------------ kubeswarm's sampler
    kube = connect(cluster.kubeconfig, namespace=namespace, environ={})
    start = time.time()
    store = RunStore.create(
        tmp_path / "runs",
        name="scaling",
        mode="cluster",
        config={"watch": [f"hpa/{NAME}"], "namespace": namespace},
        sample_interval_s=INTERVAL_S,
        now_s=start,
    )
    # the controller's sync period, which the model check replays (kcm runs with 5 s here)
    store.update(namespace=namespace, watch=[f"hpa/{NAME}"], hpa_sync_period_s=HPA_SYNC_S)
    sampler = BackgroundSampler(kube, store, namespace, start)
    sampler.start()
    status = "failed"
    try:
        sampler.wait_ticks(3, 30)  # a baseline before the load

        # -------------------------------------------------------------- load: memory up
        raised = sampler.mark("test_start", f"memory per pod {LOW_MEMORY} -> {HIGH_MEMORY}")
        usage.set(cpu=CPU_USAGE, memory=HIGH_MEMORY)

        def scaled_up() -> bool:
            sampler.check()
            usage.apply()
            return (hpa_status().get("desiredReplicas") or 0) > MIN_REPLICAS

        wait_for("the HPA to want more than 2 replicas", scaled_up, 60, 1)
        took["scale_up_s"] = time.time() - raised

        def all_at_max_report_high() -> bool:
            # The HPA at its max, every pod ready and visible in metrics.k8s.io at the high usage.
            sampler.check()
            usage.apply()
            dep = plain(apps.read_namespaced_deployment(NAME, namespace))
            if dep["spec"]["replicas"] != MAX_REPLICAS:
                return False
            if dig(dep, "status", "readyReplicas") != MAX_REPLICAS:
                return False
            listed = pod_metrics(custom, namespace)
            memory = [
                sum(parse_quantity(c["usage"]["memory"]) for c in item["containers"])
                for item in listed
            ]
            return len(memory) == MAX_REPLICAS and all(m == HIGH_MEMORY_BYTES for m in memory)

        wait_for("6 ready replicas, each reporting the high usage", all_at_max_report_high, 90, 1)
        took["at_max_with_metrics_s"] = time.time() - raised
        sampler.wait_ticks(3, 30)

        # -------------------------------------------------------------- load gone: memory down
        # The HPA keeps the highest recommendation of the last WINDOW_S seconds. It keeps
        # recommending 6 until it sees the new usage, which metrics-server reads at its next
        # scrape of kwok (every 10 s). Lowering the usage right after a scrape makes the drop
        # reach the HPA about 10 s later, so its last high recommendation (at most one 5 s sync
        # earlier) comes after the drop: then no scale-down may come before drop + WINDOW_S.
        # (Lowered at a random moment, the bound from the drop would be WINDOW_S minus a sync.)
        _wait_for_fresh_scrape(custom, namespace, sampler)
        usage.set(cpu=CPU_USAGE, memory=LOW_MEMORY)
        lowered = sampler.mark("stage", f"memory per pod {HIGH_MEMORY} -> {LOW_MEMORY}")
        while time.time() < lowered + WINDOW_S:
            sampler.check()
            usage.apply()
            got = replicas()
            assert got == MAX_REPLICAS, (
                f"scaled to {got} {time.time() - lowered:.1f}s after the usage went down, "
                f"inside the {WINDOW_S}s stabilization window"
            )
            time.sleep(0.5)

        def scaled_down() -> float | None:
            sampler.check()
            usage.apply()
            return time.time() - lowered if replicas() < MAX_REPLICAS else None

        dropped_after = wait_for("the HPA to scale down after the window", scaled_down, 45, 0.5)
        took["scale_down_s"] = dropped_after
        assert dropped_after >= WINDOW_S

        def back_at_min() -> bool:
            sampler.check()
            usage.apply()
            return bool(hpa_status().get("currentReplicas") == MIN_REPLICAS)

        wait_for("the HPA back at 2 replicas", back_at_min, 30, 1)
        sampler.wait_ticks(3, 30)
        status = "completed"
    finally:
        try:
            sampler.stop()
        finally:
            store.finish("completed" if status == "completed" else "failed")
            kube.close()

    summary = write_report(store.directory)
    run_dir = store.directory
    high_lo, high_hi = raised + SETTLE_S, lowered
    low_lo = lowered + SETTLE_S
    run = json.loads((run_dir / schema.RUN_JSON).read_text(encoding="utf-8"))
    assert run["status"] == "completed" and run["end"] >= lowered

    # ------------------------------------------------------------------ hpa.csv
    hpa = sorted(read_samples(run_dir, schema.HPA), key=lambda r: float(r["ts"]))
    assert {r["hpa"] for r in hpa} == {NAME}
    assert {(r["min_replicas"], r["max_replicas"]) for r in hpa} == {("2", "6")}
    desired = [(float(r["ts"]), int(num(r["desired_replicas"]))) for r in hpa]
    current = [(float(r["ts"]), int(num(r["current_replicas"]))) for r in hpa]
    assert {n for ts, n in desired if ts < raised} == {MIN_REPLICAS}, "no baseline at min"
    assert {n for ts, n in current if ts < raised} == {MIN_REPLICAS}
    first_up = next(i for i, (_, n) in enumerate(desired) if n > MIN_REPLICAS)
    assert desired[first_up - 1][1] == MIN_REPLICAS
    assert raised < desired[first_up][0] < lowered
    assert max(n for ts, n in current if ts < lowered) == MAX_REPLICAS
    # No scale-down while the usage was high; the first one at least a window after the drop.
    high_part = [n for ts, n in desired if desired[first_up][0] <= ts < lowered]
    assert high_part == sorted(high_part), f"desired replicas fell under load: {high_part}"
    first_down = next(
        ts for (_, before), (ts, n) in pairwise(desired) if ts > lowered and n < before
    )
    assert first_down - lowered >= WINDOW_S, (first_down - lowered, WINDOW_S)
    assert desired[-1][1] == MIN_REPLICAS and current[-1][1] == MIN_REPLICAS
    # On the fixed schedule: a row every tick, no gap, no sampler_gap mark.
    times = [ts for ts, _ in desired]
    assert max(b - a for a, b in pairwise(times)) < 2.5 * INTERVAL_S
    marks = read_samples(run_dir, schema.MARKS)
    assert [m["kind"] for m in marks] == ["test_start", "stage"], marks

    # ------------------------------------------------------------------ hpa_metrics.csv
    metrics = read_samples(run_dir, schema.HPA_METRICS)
    memory = [r for r in metrics if r["metric"] == "memory"]
    cpu = [r for r in metrics if r["metric"] == "cpu"]
    assert {num(r["target_utilization"]) for r in memory + cpu} == {TARGET_PCT}
    high_memory = [num(r["current_utilization"]) for r in between(memory, high_lo, high_hi)]
    assert len(high_memory) >= 10, "too few samples of the high phase"
    assert min(high_memory) > TARGET_PCT, high_memory
    assert max(high_memory) == pytest.approx(100 * HIGH_MEMORY_BYTES / MEMORY_REQUEST_BYTES, abs=2)
    quiet = between(memory, start, raised) + between(memory, low_lo, float("inf"))
    assert quiet and all(num(r["current_utilization"]) < TARGET_PCT for r in quiet)
    cpu_seen = [num(r["current_utilization"]) for r in cpu if r["current_utilization"]]
    assert cpu_seen and max(cpu_seen) < TARGET_PCT, "CPU was meant to stay low"

    # ------------------------------------------------------------------ pods.csv
    pods = read_samples(run_dir, schema.PODS)
    assert {r["workload"] for r in pods} == {NAME}
    assert {num(r["memory_request_bytes"]) for r in pods} == {MEMORY_REQUEST_BYTES}
    assert {num(r["cpu_request_m"]) for r in pods} == {CPU_REQUEST_M}
    high_pods = [r for r in between(pods, high_lo, high_hi) if r["memory_bytes"]]
    assert len({r["pod"] for r in high_pods}) == MAX_REPLICAS, "not every pod had a reading"
    for row in high_pods:
        assert num(row["memory_bytes"]) == pytest.approx(HIGH_MEMORY_BYTES, rel=0.05), row
    low_pods = [r for r in between(pods, low_lo, float("inf")) if r["memory_bytes"]]
    assert low_pods
    for row in low_pods:
        assert num(row["memory_bytes"]) == pytest.approx(LOW_MEMORY_BYTES, rel=0.05), row

    # ------------------------------------------------------------------ summary.json
    assert json.loads((run_dir / schema.REPORT_DIR / "summary.json").read_text()) == summary
    assert (run_dir / schema.REPORT_DIR / "report.html").is_file()
    (entry,) = summary["hpas"]
    assert (entry["namespace"], entry["name"]) == (namespace, NAME)
    assert (entry["min_replicas"], entry["max_replicas"]) == (MIN_REPLICAS, MAX_REPLICAS)
    assert entry["start_replicas"] == MIN_REPLICAS
    assert entry["peak_replicas"] > MIN_REPLICAS
    assert entry["peak_replicas"] == MAX_REPLICAS
    assert entry["final_replicas"] == MIN_REPLICAS
    assert entry["driving_metric"] == "memory"
    # 300Mi per pod whatever the replica count: the HPA wanted ~18 pods and sat at its max.
    assert entry["status"] == "at_max"
    (at_max,) = [f for f in summary["findings"] if f["code"] == "hpa_at_max"]
    assert at_max["subject"] == f"{namespace}/{NAME}" and at_max["severity"] == "high"
    assert at_max["data"]["wanted_replicas"] == 18
    assert entry["target_utilization"] == {"memory": TARGET_PCT, "cpu": TARGET_PCT}
    assert entry["peak_utilization"]["memory"] > TARGET_PCT
    assert entry["peak_utilization"]["cpu"] < TARGET_PCT
    events = entry["scale_events"]
    ups = [e for e in events if e["to"] > e["from"]]
    downs = [e for e in events if e["to"] < e["from"]]
    assert ups and ups[0]["from"] == MIN_REPLICAS and ups[0]["to"] > MIN_REPLICAS, events
    assert raised < ups[0]["ts"] < lowered
    # No Locust here: the test_start mark is the load step the scale-up is timed from.
    assert ups[0]["lag_s"] == pytest.approx(ups[0]["ts"] - raised, abs=1.5), events
    assert all(e["metric"] == "memory" for e in ups), events
    assert downs and downs[-1]["to"] == MIN_REPLICAS, events
    assert min(e["ts"] for e in downs) - lowered >= WINDOW_S, events
    (workload,) = summary["workloads"]
    assert workload["name"] == NAME
    assert workload["memory_request_bytes"] == MEMORY_REQUEST_BYTES
    assert workload["peak_memory_bytes"] == pytest.approx(HIGH_MEMORY_BYTES, rel=0.05)
    assert workload["oom_kills"] == 0 and workload["restarts"] == 0
    # The model replayed at the real controller's syncs (issue 19: >= 98 % exact, all within one)
    check = entry["model_check"]
    assert check["not_checked"] is None and check["decisions"] >= 5, check
    assert check["exact"] >= 0.98 * check["decisions"], check["mismatches"]
    assert check["within_one"] == check["decisions"], check["mismatches"]

    # What happened, for the test log (-s / on failure).
    took["test_s"] = time.monotonic() - began
    print(json.dumps({"took": took, "notices": sampler.notices, "verdict": summary["verdict"]}))
    print(json.dumps(entry))
    print(json.dumps(summary["findings"], indent=1))


def _wait_for_fresh_scrape(
    custom: client.CustomObjectsApi, namespace: str, sampler: BackgroundSampler
) -> None:
    """Return right after metrics-server has taken a new reading of the target's pods."""

    def timestamp() -> str | None:
        try:
            listed = pod_metrics(custom, namespace)
        except ApiException:
            return None
        stamps = sorted({str(item.get("timestamp")) for item in listed})
        return stamps[-1] if stamps else None

    before = timestamp()

    def changed() -> bool:
        sampler.check()
        now = timestamp()
        return now is not None and now != before

    wait_for("metrics-server's next scrape", changed, 20, 0.1)
