"""run.json through its typed record: what reads, what is refused in one line, what round-trips."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from analysis.data.runjson import (
    SCHEMA_VERSION,
    RunRecord,
    RunRecordError,
    read_run_record,
)

pytestmark = pytest.mark.unit

# What the harness wrote before run.json had a schema version (a local run, as RunStore wrote it).
UNVERSIONED: dict[str, Any] = {
    "id": "20260101-120000-web",
    "version": "0.9.0",
    "mode": "local",
    "config": {"load": {"users": 10}, "watch": ["cmd/gunicorn"]},
    "start": 1767268800.0,
    "end": 1767268860.5,
    "status": "completed",
    "sample_interval_s": 2.0,
    "processes": [101, 102],
    "locust_web": "http://127.0.0.1:8089",
    "watch": ["cmd/gunicorn"],
    "slos": ["p95_ms<500"],
}


def _write(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "run.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_unversioned_run_json_reads_as_version_1(tmp_path: Path) -> None:
    record = read_run_record(_write(tmp_path, json.dumps(UNVERSIONED)))
    assert record.schema_version == SCHEMA_VERSION == 1
    assert record.mode == "local"
    assert record.processes == (101, 102)
    assert record.watch == ("cmd/gunicorn",)
    assert record.end == 1767268860.5
    assert record.extra == {}


def test_run_directory_is_accepted_for_its_run_json(tmp_path: Path) -> None:
    _write(tmp_path, json.dumps(UNVERSIONED))
    assert read_run_record(tmp_path).id == UNVERSIONED["id"]


def test_round_trip_keeps_every_field_and_unknown_keys(tmp_path: Path) -> None:
    written = {
        **UNVERSIONED,
        "mode": "cluster",
        "context": "kind-kind",
        "namespace": "shop",
        "server": "https://127.0.0.1:6443",
        "server_version": "v1.35.0",
        "objects": ["Job/x-master", "Service/x-master"],
        "chaos": [{"action": "pod-delete"}],  # a field a later harness adds
    }
    record = read_run_record(_write(tmp_path, json.dumps(written)))
    assert record.extra == {"chaos": [{"action": "pod-delete"}]}
    again = json.loads(record.to_json())
    assert again == {**written, "schema_version": SCHEMA_VERSION}


def test_demo_fields(tmp_path: Path) -> None:
    spec = {"min_replicas": 1, "max_replicas": 6, "metrics": []}
    record = read_run_record(
        _write(
            tmp_path,
            json.dumps({**UNVERSIONED, "mode": "demo", "hpa_spec": spec, "hpa_sync_period_s": 5}),
        )
    )
    assert record.hpa_spec == spec
    assert record.hpa_sync_period_s == 5.0


def test_with_fields_checks_known_and_keeps_unknown() -> None:
    record = RunRecord(id="r", mode="sample", start=1.0)
    updated = record.with_fields(status="completed", end=2.0, note="x")
    assert (updated.status, updated.end, updated.extra) == ("completed", 2.0, {"note": "x"})
    with pytest.raises(RunRecordError, match="status must be one of"):
        record.with_fields(status="done")


def test_optional_fields_left_out_when_unset() -> None:
    data = json.loads(RunRecord(id="r", mode="sample", start=1.0).to_json())
    assert set(data) == {
        "id",
        "mode",
        "start",
        "version",
        "config",
        "end",
        "status",
        "sample_interval_s",
        "schema_version",
    }


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        ("[1, 2]", "not a JSON object"),
        ('{"id": "x", "mode": "local"}', "not a kubeswarm run.json (no start)"),
        ('{"name": "something else"}', "(no id, mode, start)"),
        ('{"id": "x", "mode": "k8s", "start": 1}', "mode must be one of local, cluster"),
        ('{"id": "x", "mode": "local", "start": "yesterday"}', "start must be a number"),
        ('{"id": "x", "mode": "local", "start": 1, "processes": ["a"]}', "list of process ids"),
        ('{"id": "x", "mode": "local", "start": 1, "schema_version": "2"}', "schema_version"),
    ],
)
def test_not_a_run_is_one_line(tmp_path: Path, content: str | bytes, expected: str) -> None:
    with pytest.raises(RunRecordError) as caught:
        read_run_record(_write(tmp_path, content))
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message
    assert str(tmp_path / "run.json") in message
    assert isinstance(caught.value, ValueError)


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(RunRecordError, match="no such file"):
        read_run_record(tmp_path / "run.json")


def test_extra_cannot_shadow_a_field() -> None:
    with pytest.raises(ValueError, match="repeats field"):
        RunRecord(id="r", mode="local", start=1.0, extra={"status": "completed"})
