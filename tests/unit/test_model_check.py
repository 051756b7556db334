"""The model's check against the controller, on recordings whose decisions were worked out by
hand from the controller's rules (not by the model): a KEDA-made HPA on an External
AverageValue metric, the same HPA with a spec.behavior, a tampered decision, and recordings that
cannot support the comparison."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from analysis.pipeline import analyse
from analysis.render.summary import build_summary
from tests.fixtures.scenarios import NS, build

pytestmark = pytest.mark.unit

T0 = 1_800_000_000.0
HPA = "keda-hpa-orders"
# (sync time s, current, queue total, desired) at the controller's 15 s syncs, 100 per pod:
# 1 pod, 340 -> ceil(3.4) = 4 (scale-up limit max(2 x 1, 4) = 4);
# 4 pods, 800 -> 8 (limit 8); 8 pods, 820 -> 1.025 is within tolerance: 8;
# 8 pods, 200 -> 2, but the last 300 s recommended 8: stays 8 (no spec.behavior).
SYNCS = [(2.0, 1, 340.0, 4), (17.0, 4, 800.0, 8), (32.0, 8, 820.0, 8), (47.0, 8, 200.0, 8)]


def _recording(
    syncs: list[tuple[float, int, float, int]],
    *,
    behavior: dict[str, Any] | None = None,
    interval_s: float = 5.0,
    readings: bool = True,
    ticks: int = 13,
    offset_s: float = 0.0,
    last_scale: bool = False,
) -> dict[str, list[dict[str, Any]]]:
    """The sampler's view of ``syncs``: each tick records the last sync at or before it; with
    ``last_scale`` the status's lastScaleTime too (the last sync that changed the replicas)."""
    hpa, metrics = [], []
    for tick in range(ticks):
        t = offset_s + tick * interval_s
        seen = [s for s in syncs if s[0] <= t]
        if not seen:
            continue
        _, current, queue, desired = seen[-1]
        scaled = [s[0] for s in seen if s[3] != s[1]]
        hpa.append(
            {
                "ts": T0 + t,
                "namespace": NS,
                "hpa": HPA,
                "target_kind": "Deployment",
                "target_name": "orders",
                "min_replicas": 1,
                "max_replicas": 20,
                "current_replicas": current,
                "desired_replicas": desired,
                "able_to_scale": True,
                "scaling_active": True,
                "scaling_limited": False,
                "owner_kind": "ScaledObject",
                "owner_name": "orders",
                "behavior": json.dumps(behavior) if behavior else None,
                "last_scale_ts": T0 + scaled[-1] if last_scale and scaled else None,
            }
        )
        metrics.append(
            {
                "ts": T0 + t,
                "namespace": NS,
                "hpa": HPA,
                "metric": "s0-queue_depth",
                # the status's averageValue: ceil(milli total / status replicas)
                "current_value": round(queue / current, 3) if readings else None,
                "target_value": 100.0,
                "metric_type": "External",
                "target_type": "AverageValue",
                "selector": "scaledobject.keda.sh/name=orders",
            }
        )
    return {"hpa": hpa, "hpa_metrics": metrics}


def _summary_hpa(tmp_path: Path, samples: dict[str, Any], interval_s: float = 5.0) -> Any:
    run = build(tmp_path / "run", 13, samples, meta={"sample_interval_s": interval_s})
    analysis = analyse(run)
    summary = build_summary(analysis)
    (hpa,) = summary["hpas"]
    return hpa, summary


def test_keda_external_hpa_is_reproduced_and_explained_in_its_terms(tmp_path: Path) -> None:
    hpa, summary = _summary_hpa(tmp_path, _recording(SYNCS))
    check = hpa["model_check"]
    assert (check["decisions"], check["exact"], check["within_one"]) == (4, 4, 4)
    assert check["sentence"] == (
        "the model reproduced 4 of 4 of the controller's decisions (100 %)"
    )
    assert (hpa["owner"], hpa["managed_by"]) == ("ScaledObject/orders", "KEDA")
    (metric,) = hpa["metrics"]
    assert metric["sentence"] == (
        "s0-queue_depth (scaledobject.keda.sh/name=orders) peaked at 340 per pod "
        "against a target of 100"
    )
    assert "model_mismatch" not in {f["code"] for f in summary["findings"]}


def test_behavior_recorded_on_the_hpa_is_replayed(tmp_path: Path) -> None:
    """No scale-down stabilization: 200 / 100 = 2, at most 100 % down per 15 s -> 2."""
    syncs = [*SYNCS[:3], (47.0, 8, 200.0, 2)]
    behavior = {"scaleDown": {"stabilizationWindowSeconds": 0}}
    hpa, _ = _summary_hpa(tmp_path, _recording(syncs, behavior=behavior))
    assert hpa["model_check"]["exact"] == 4
    # without the behavior the same recording is a mismatch: the check is not a tautology
    hpa, _ = _summary_hpa(tmp_path / "plain", _recording(syncs))
    assert hpa["model_check"]["exact"] == 3


def test_a_decision_off_by_more_than_one_is_an_info_finding(tmp_path: Path) -> None:
    tampered = [SYNCS[0], (17.0, 4, 800.0, 6), *SYNCS[2:]]
    hpa, summary = _summary_hpa(tmp_path, _recording(tampered))
    check = hpa["model_check"]
    assert (check["decisions"], check["exact"], check["within_one"]) == (4, 3, 3)
    (mismatch,) = check["mismatches"]
    assert (mismatch["ts"], mismatch["model"], mismatch["controller"]) == (T0 + 20.0, 8, 6)
    assert "s0-queue_depth 200 against 100" in mismatch["why"]
    assert "current 4" in mismatch["why"]
    (finding,) = [f for f in summary["findings"] if f["code"] == "model_mismatch"]
    assert finding["severity"] == "info"
    assert finding["subject"] == f"{NS}/{HPA}"
    assert finding["data"] == {"ts": T0 + 20.0, "model": 8, "controller": 6}
    assert "1 off by more" in check["sentence"]


def test_sampling_coarser_than_the_sync_says_why_instead_of_a_number(tmp_path: Path) -> None:
    hpa, _ = _summary_hpa(tmp_path, _recording(SYNCS, interval_s=20.0), interval_s=20.0)
    check = hpa["model_check"]
    assert check["decisions"] == 0
    assert check["exact_pct"] is None
    assert check["not_checked"] == (
        "sampled every 20 s, coarser than the controller's 15 s sync: decisions between two "
        "samples are unseen"
    )
    assert check["sentence"].startswith("the model was not checked: sampled every 20 s")


def test_missing_metric_readings_say_why(tmp_path: Path) -> None:
    hpa, _ = _summary_hpa(tmp_path, _recording(SYNCS, readings=False))
    assert hpa["model_check"]["not_checked"] == (
        "the HPA's metric readings (status.currentMetrics) were never recorded"
    )


def test_whatif_replays_an_external_metric_and_says_how_far_it_was_checked(tmp_path: Path) -> None:
    """The queue's recorded totals replayed (340, 800, 820, 200 at 15 s syncs): against 100
    per pod 4, 8, 8, 8; capped at 5; against 200 per pod ceil(1.7) = 2, then 4."""
    run = build(tmp_path / "run", 13, _recording(SYNCS), meta={"sample_interval_s": 5.0})
    analysis = analyse(
        run, whatifs=[f"{HPA}:max=5", f"{HPA}:metric_target=200", f"{HPA}:cpu_request=1"]
    )
    capped, halved, unrelated = build_summary(analysis)["whatif"]
    assert (capped["unchanged_peak_replicas"], capped["predicted_peak_replicas"]) == (8, 5)
    assert (halved["predicted_peak_replicas"], halved["predicted_final_replicas"]) == (4, 4)
    assert halved["model_check"] == (
        "the model reproduced 4 of 4 of the controller's decisions (100 %)"
    )
    assert unrelated["changes_decisions"] is False


def test_a_controller_faster_than_the_assumed_sync_is_replayed_at_the_times_it_acted(
    tmp_path: Path,
) -> None:
    """A controller syncing every 5 s (a real node's kube-controller-manager) checked against the
    assumed 15 s period, sampled every second half a second off its syncs. Its scale-up policy
    (1 pod per 8 s) makes every decision depend on when the previous one was made, so a change
    may only be put on the 15 s grid (phase from lastScaleTime) when a grid point lies between
    the sample before it and the one that showed it; else at the time it was seen, half a
    second late here. Worked by hand: from 1 pod, a queue of 1000 against 100 per pod wants 10
    at every sync; the policy allows one more pod whenever no pod was added in the last 8 s,
    so 2 at 1 s, 3 at 11 s, ... 7 at 51 s, and every sync between keeps the replicas."""
    behavior = {
        "scaleUp": {
            "stabilizationWindowSeconds": 0,
            "selectPolicy": "Max",
            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 8}],
        }
    }
    syncs: list[tuple[float, int, float, int]] = [(-4.0, 1, 50.0, 1)]  # before the load
    replicas = 1
    for k in range(12):
        current = replicas
        if k % 2 == 0:  # 1, 11, 21, ... s: the last addition is 10 s old
            replicas += 1
        syncs.append((1.0 + 5 * k, current, 1000.0, replicas))
    samples = _recording(
        syncs, behavior=behavior, interval_s=1.0, ticks=61, offset_s=0.5, last_scale=True
    )
    hpa, summary = _summary_hpa(tmp_path, samples, interval_s=1.0)
    check = hpa["model_check"]
    # the status before the load and one change at each of the 12 syncs
    assert (check["decisions"], check["exact"], check["mismatches"]) == (13, 13, [])
    assert "model_mismatch" not in {f["code"] for f in summary["findings"]}
    # without the policy the model would go from 1 pod to 4 at once: the policy was replayed
    plain = _recording(syncs, interval_s=1.0, ticks=61, offset_s=0.5, last_scale=True)
    hpa, _ = _summary_hpa(tmp_path / "plain", plain, interval_s=1.0)
    assert hpa["model_check"]["exact"] < 13
