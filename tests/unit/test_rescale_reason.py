"""The metric that drove a scale-up is the one the controller named in its SuccessfulRescale
event, in every mode: the demo's live ``scale:`` line once named one metric and summary.json
another, because the report guessed from samples a tick apart from the controller's sync."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.judge.scaling import rescale_metric
from tests.fixtures import scenarios as sc
from tests.unit.test_analysis_findings import report, steady

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("New size: 5; reason: cpu resource utilization (percentage of request) above target",
         (5, "cpu")),
        ("New size: 3; reason: memory resource above target", (3, "memory")),
        ("New size: 4; reason: cpu container resource utilization (percentage of request) above "
         "target", (4, "cpu")),
        ("New size: 6; reason: pods metric queue_depth above target", (6, "queue_depth")),
        ("New size: 2; reason: external metric jobs_waiting(&LabelSelector{MatchLabels:"
         "map[string]string{queue: orders,},}) above target", (2, "jobs_waiting")),
        ("New size: 7; reason: Service metric requests_per_second above target",
         (7, "requests_per_second")),
        ("New size: 2; reason: All metrics below target", (2, None)),
        ("Scaled up replica set web-5d8f to 3", None),
    ],
)  # fmt: skip
def test_the_controllers_words_name_the_metric(
    message: str, expected: tuple[int, str | None] | None
) -> None:
    assert rescale_metric(message) == expected


def test_a_scale_up_is_driven_by_what_the_controller_said_not_by_the_nearest_sample(
    tmp_path: Path,
) -> None:
    """At the tick the samples show CPU highest; the controller, at its sync, scaled on memory."""
    n = 20
    users = [0] * 4 + [100] * 16
    replicas = [2] * 8 + [4] * 12
    samples = steady("api", n, 2)
    samples.update(
        {
            "locust": sc.locust(users),
            "hpa": sc.hpa("api", replicas, high=10),
            "hpa_metrics": sc.metrics("api", "cpu", [95.0] * n, 60.0)
            + sc.metrics("api", "memory", [70.0] * n, 60.0),
            "workloads": sc.workloads("api", replicas),
            "marks": sc.marks(4, 19),
            "events": [
                {
                    "ts": sc.ts(8) - 2.0,
                    "namespace": sc.NS,
                    "kind": "HorizontalPodAutoscaler",
                    "name": "api",
                    "reason": "SuccessfulRescale",
                    "type": "Normal",
                    "message": "New size: 4; reason: memory resource utilization (percentage of "
                    "request) above target",
                }
            ],
        }
    )
    summary = report(sc.build(tmp_path / "run", n, samples))
    (event,) = summary["hpas"][0]["scale_events"]
    assert (event["from"], event["to"], event["metric"]) == (2, 4, "memory")
    # Without the controller's word, the samples' highest ratio is all there is.
    samples["events"] = []
    summary = report(sc.build(tmp_path / "guess", n, samples))
    assert summary["hpas"][0]["scale_events"][0]["metric"] == "cpu"
