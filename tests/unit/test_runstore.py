"""The run directory contract: files, headers once, empty cells, and survival of a SIGKILL."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from analysis.data import schema
from harness.session.store import RunStore, new_run_id

pytestmark = pytest.mark.unit


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_layout_and_metadata(tmp_path: Path) -> None:
    store = RunStore.create(
        tmp_path,
        name="web",
        mode="local",
        config={"users": 3},
        sample_interval_s=2.0,
        now_s=1_700_000_000.0,
    )
    assert store.directory.name == "20231114-221320-web"
    for sub in ("samples", "locust", "report"):
        assert (store.directory / sub).is_dir()
    for table in schema.ALL_SAMPLES:
        header = (store.directory / "samples" / table.file_name).read_text().splitlines()
        assert header == [",".join(table.names)]
    store.finish("completed", end_s=1_700_000_060.0)
    meta = json.loads((store.directory / "run.json").read_text())
    assert meta["mode"] == "local"
    assert meta["status"] == "completed"
    assert (meta["start"], meta["end"]) == (1_700_000_000.0, 1_700_000_060.0)
    assert meta["config"] == {"users": 3}


def test_same_second_runs_get_distinct_directories(tmp_path: Path) -> None:
    first = RunStore.create(
        tmp_path, name="web", mode="local", config={}, sample_interval_s=1.0, now_s=1_700_000_000.0
    )
    second = RunStore.create(
        tmp_path, name="web", mode="local", config={}, sample_interval_s=1.0, now_s=1_700_000_000.0
    )
    first.close()
    second.close()
    assert first.directory != second.directory


def test_header_once_empty_means_not_measured(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path, name="x", mode="local", config={}, sample_interval_s=1.0)
    store.append(
        schema.PODS,
        [
            {
                "ts": 1.5,
                "namespace": "ns",
                "pod": "p",
                "ready": True,
                "cpu_m": None,
                "memory_bytes": 1024.0,
            }
        ],
    )
    store.finish("completed")
    reopened = RunStore(store.directory, store.metadata)
    reopened.append(schema.PODS, [{"ts": 2.0, "pod": "p", "ready": False}])
    reopened.close()
    path = store.directory / "samples" / "pods.csv"
    assert path.read_text().count("ts,namespace") == 1
    rows = _rows(path)
    assert rows[0]["cpu_m"] == ""
    assert rows[0]["memory_bytes"] == "1024"
    assert rows[0]["ready"] == "true"
    assert rows[1]["ready"] == "false"


def test_unknown_column_is_refused(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path, name="x", mode="local", config={}, sample_interval_s=1.0)
    with pytest.raises(ValueError, match="unknown columns \\['cpu'\\]"):
        store.append(schema.PODS, [{"ts": 1.0, "cpu": 3}])
    store.close()


def test_run_id_is_utc() -> None:
    assert new_run_id("demo", 0.0) == "19700101-000000-demo"


def test_sigkilled_writer_leaves_every_flushed_tick(tmp_path: Path) -> None:
    writer = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from analysis.data import schema
        from harness.session.store import RunStore
        store = RunStore.create(Path({str(tmp_path)!r}), name="k", mode="local", config={{}},
                                sample_interval_s=0.01)
        print(store.directory, flush=True)
        tick = 0
        while True:
            tick += 1
            store.append(schema.LOCUST, [{{"ts": float(tick), "state": "running",
                                          "user_count": tick, "rps": tick / 2}}])
            store.append(schema.PODS, [{{"ts": float(tick), "pod": f"p{{i}}"}} for i in range(3)])
            store.flush()
            print(tick, flush=True)
            time.sleep(0.01)
    """)
    process = subprocess.Popen(
        [sys.executable, "-c", writer],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    assert process.stdout is not None
    directory = Path(process.stdout.readline().strip())
    last = 0
    while last < 25:
        last = int(process.stdout.readline())
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    process.stdout.close()
    locust_rows = _rows(directory / "samples" / "locust.csv")
    pod_rows = _rows(directory / "samples" / "pods.csv")
    # Every tick reported as flushed is there in full; at most the tick in flight is extra.
    assert last <= len(locust_rows) <= last + 1
    assert [int(r["user_count"]) for r in locust_rows[:last]] == list(range(1, last + 1))
    assert len(pod_rows) >= 3 * last
    assert json.loads((directory / "run.json").read_text())["status"] == "running"
