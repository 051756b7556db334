"""``--whatif`` parsing and the replay through the HPA model."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from analysis.hpa.model import DEFAULT_BEHAVIOR, Behavior
from analysis.judge.whatif import parse_whatif, recorded_behavior
from analysis.report import write_report
from tests.fixtures import scenarios as sc

pytestmark = pytest.mark.unit


def test_parse_keeps_the_values_as_written() -> None:
    whatif = parse_whatif("shop/web:memory_request=768Mi, max=10,cpu_target=70%")
    assert whatif.hpa == "shop/web"
    assert whatif.changes == {"memory_request": "768Mi", "max": "10", "cpu_target": "70%"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("web", "expected HPA:key=value"),
        ("web:", "expected HPA:key=value"),
        ("web:memory=1Gi", "unknown key 'memory'"),
        ("web:memory_request", "is not key=value"),
        ("web:memory_request=lots", "not a Kubernetes quantity"),
        ("web:max=0", "whole number of replicas"),
        ("web:min=5,max=3", "min is above max"),
        ("web:cpu_target=-5", "percentage from 1 to 1000"),
        ("web:scale_down_window=soon", "not a duration"),
    ],
)
def test_malformed_whatif_is_one_line_value_error(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as error:
        parse_whatif(text)
    assert "\n" not in str(error.value)


def test_unknown_hpa_names_the_ones_recorded(tmp_path: Path) -> None:
    run_dir = sc.pinned_by_memory(tmp_path / "run")
    with pytest.raises(ValueError, match=r"unknown HPA 'nope'; this run has: shop/web"):
        write_report(run_dir, whatifs=["nope:max=3"])


def test_memory_limit_cannot_change_the_hpa(tmp_path: Path) -> None:
    summary = write_report(
        sc.pinned_by_memory(tmp_path / "run"), whatifs=["web:memory_limit=200Mi"]
    )
    result = summary["whatif"][0]
    assert result["changes_decisions"] is False
    assert result["predicted_peak_replicas"] == result["unchanged_peak_replicas"]
    notes = " ".join(result["notes"])
    assert "memory_limit cannot change what the HPA does" in notes
    assert "240Mi (120% of it) would have been OOM-killed" in notes


def test_raising_the_memory_request_unpins_the_hpa(tmp_path: Path) -> None:
    summary = write_report(
        sc.pinned_by_memory(tmp_path / "run"),
        whatifs=["web:memory_request=512Mi", "shop/web:max=3"],
    )
    bigger_request, lower_max = summary["whatif"]
    assert bigger_request["recorded_peak_replicas"] == 4
    assert bigger_request["unchanged_peak_replicas"] == 4  # the model reproduces the pinning
    assert bigger_request["predicted_peak_replicas"] < 4
    assert bigger_request["changes_decisions"] is True
    assert "baseline" in bigger_request["assumption"]
    assert (lower_max["predicted_peak_replicas"], lower_max["predicted_final_replicas"]) == (3, 3)
    assert (tmp_path / "run" / "report" / "whatif.png").is_file()


def test_request_of_a_resource_the_hpa_does_not_use(tmp_path: Path) -> None:
    n = 10
    samples = {
        "locust": sc.locust([50] * n),
        "hpa": sc.hpa("api", [2] * n, high=6),
        "hpa_metrics": sc.metrics("api", "cpu", [55.0] * n, 60.0),
        "pods": sc.pods("api", [2] * n, lambda t, p: (100.0, 110.0)),
    }
    summary = write_report(
        sc.build(tmp_path / "run", n, samples), whatifs=["api:memory_request=1Gi"]
    )
    result = summary["whatif"][0]
    assert result["changes_decisions"] is False
    assert any("does not scale on memory" in note for note in result["notes"])


def test_nothing_to_replay_without_pods(tmp_path: Path) -> None:
    n = 5
    samples = {
        "hpa": sc.hpa("api", [2] * n, high=6),
        "hpa_metrics": sc.metrics("api", "cpu", [55.0] * n, 60.0),
    }
    summary = write_report(sc.build(tmp_path / "run", n, samples), whatifs=["api:max=3"])
    result = summary["whatif"][0]
    assert result["predicted_peak_replicas"] is None
    assert result["changes_decisions"] is None
    assert any("nothing to replay" in note for note in result["notes"])


def test_behavior_recorded_in_run_json_is_replayed() -> None:
    demo = Behavior(
        DEFAULT_BEHAVIOR.scale_up, replace(DEFAULT_BEHAVIOR.scale_down, stabilization_window_s=10.0)
    )
    meta = json.loads(json.dumps({"hpa_spec": {"min_replicas": 1, "behavior": asdict(demo)}}))
    assert recorded_behavior(meta) == demo
    assert recorded_behavior({}) is None
    assert recorded_behavior({"hpa_spec": {"behavior": {"scale_up": {}}}}) is None
