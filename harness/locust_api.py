"""Locust's master, read and steered through its web API, whatever carries the HTTP requests.

Locally the requests go straight to 127.0.0.1; in a cluster they go through the API server's service
proxy. Both are a ``Transport``; this module only knows Locust's routes and JSON. Routes and fields
follow Locust 2.x ``web.py``: ``/stats/requests``, ``/stop``, the CSV routes and ``/stats/report``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import requests

from analysis.data import schema
from harness.errors import LoadGeneratorError
from harness.session.core import RowSink

# Locust's web routes for its own result files, and the names they get in ``locust/``.
RESULT_ROUTES: Final = (
    ("stats.csv", "/stats/requests/csv"),
    ("stats_history.csv", "/stats/requests_full_history/csv"),
    ("failures.csv", "/stats/failures/csv"),
    ("exceptions.csv", "/exceptions/csv"),
    ("report.html", "/stats/report"),
)

RUNNING_STATES: Final = frozenset({"spawning", "running"})
FINISHED_STATES: Final = frozenset({"stopped"})


class Transport(Protocol):
    """GET and POST to Locust's web port; raises ``LoadGeneratorError`` when it cannot."""

    def get(self, path: str, timeout_s: float) -> bytes: ...

    def post(self, path: str, form: Mapping[str, str], timeout_s: float) -> bytes: ...


class DirectTransport:
    """Plain HTTP to a web port this machine can reach (the local backend)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = requests.Session()

    def get(self, path: str, timeout_s: float) -> bytes:
        return self._send("GET", path, None, timeout_s)

    def post(self, path: str, form: Mapping[str, str], timeout_s: float) -> bytes:
        return self._send("POST", path, form, timeout_s)

    def close(self) -> None:
        self._session.close()

    def _send(
        self, method: str, path: str, form: Mapping[str, str] | None, timeout_s: float
    ) -> bytes:
        url = self.base_url + path
        try:
            response = self._session.request(method, url, data=form, timeout=timeout_s)
        except requests.RequestException as e:
            raise LoadGeneratorError(f"{method} {url} failed: {e}") from e
        if response.status_code >= 400:
            raise LoadGeneratorError(f"{method} {url} answered {response.status_code}")
        return response.content


@dataclass(frozen=True)
class LocustSample:
    """One poll of ``/stats/requests``: a row of ``samples/locust.csv``."""

    ts: float
    state: str
    user_count: int
    worker_count: int | None
    rps: float
    fail_per_s: float
    fail_ratio: float
    p50_ms: float | None
    p95_ms: float | None

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


def parse_stats(body: bytes, ts: float) -> LocustSample:
    """The master's ``/stats/requests`` JSON as a sample; no percentiles before any request."""
    try:
        data = json.loads(body)
        percentiles = data.get("current_response_time_percentiles") or {}
        return LocustSample(
            ts=ts,
            state=str(data["state"]),
            user_count=int(data.get("user_count") or 0),
            worker_count=_optional_int(data.get("worker_count")),
            rps=float(data.get("current_rps") or 0.0),
            fail_per_s=float(data.get("current_fail_per_sec") or 0.0),
            fail_ratio=float(data.get("fail_ratio") or 0.0),
            p50_ms=_optional_float(percentiles.get("response_time_percentile_0.5")),
            p95_ms=_optional_float(percentiles.get("response_time_percentile_0.95")),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise LoadGeneratorError(
            f"Locust answered /stats/requests with something unexpected: {e}"
        ) from e


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _optional_float(value: Any) -> float | None:
    return None if value in (None, "N/A", "") else float(value)


class LocustApi:
    """What the harness asks of a Locust master."""

    def __init__(self, transport: Transport, timeout_s: float = 10.0) -> None:
        self.transport = transport
        self.timeout_s = timeout_s

    def sample(self) -> LocustSample:
        return self.read()[0]

    def read(self) -> tuple[LocustSample, list[dict[str, Any]]]:
        """One ``/stats/requests``: the run's sample and its workers' rows (``workers.csv``)."""
        body = self.transport.get("/stats/requests", self.timeout_s)
        now = time.time()
        return parse_stats(body, now), parse_workers(body, now)

    def stop(self) -> None:
        self.transport.post("/stop", {}, self.timeout_s)

    def fetch_results(self, locust_dir: Path) -> dict[str, str]:
        """Saves Locust's own files into ``locust_dir``; returns what could not be fetched and why.

        Each file is fetched on its own, so one missing route (the full history needs ``--csv`` and
        ``--csv-full-history``) does not cost the others.
        """
        missing: dict[str, str] = {}
        for file_name, route in RESULT_ROUTES:
            try:
                body = self.transport.get(route, max(self.timeout_s, 30.0))
            except LoadGeneratorError as e:
                missing[file_name] = str(e)
                continue
            (locust_dir / file_name).write_bytes(body)
        return missing


@dataclass
class LocustWatch:
    """What the harness has seen of the master: samples into ``locust.csv``, state-change marks."""

    api: LocustApi
    last: LocustSample | None = None
    seen_running: bool = False
    spawned: bool = False
    finished: bool = False
    last_answer_s: float | None = None

    def poll(self, store: RowSink) -> LocustSample | None:
        try:
            sample, workers = self.api.read()
        except LoadGeneratorError:
            return None
        store.append(schema.WORKERS, workers)
        self.last_answer_s = sample.ts
        running = sample.state in RUNNING_STATES
        if running and not self.seen_running:
            store.mark("test_start", f"{sample.user_count} users", sample.ts)
        elif running and self.last and sample.user_count != self.last.user_count:
            store.mark("stage", f"{sample.user_count} users", sample.ts)
        if sample.state == "running" and not self.spawned:
            self.spawned = True
            store.mark("spawn_complete", f"{sample.user_count} users", sample.ts)
        if sample.state in FINISHED_STATES and self.seen_running and not self.finished:
            store.mark("test_stop", sample.state, sample.ts)
            self.finished = True
        self.seen_running |= running
        store.append(schema.LOCUST, [sample.as_row()])
        self.last = sample
        return sample


def parse_workers(body: bytes, ts: float) -> list[dict[str, Any]]:
    """The master's ``/stats/requests`` ``workers[]`` as rows of ``samples/workers.csv``.

    Locust reports each worker process as ``{id, state, user_count, cpu_usage, memory_usage}``
    (cpu_usage: percent of one core; memory_usage: RSS bytes). A master without workers (a
    standalone Locust) has no such list: no rows. A worker without a reading gets an empty cell.
    """
    try:
        workers = json.loads(body).get("workers") or []
    except (ValueError, AttributeError) as e:
        raise LoadGeneratorError(
            f"Locust answered /stats/requests with something unexpected: {e}"
        ) from e
    rows: list[dict[str, Any]] = []
    for worker in workers:
        if not isinstance(worker, Mapping):
            continue
        rows.append(
            {
                "ts": ts,
                "worker": str(worker.get("id", "")),
                "state": str(worker.get("state", "")),
                "user_count": _optional_int(worker.get("user_count")),
                "cpu_pct": _optional_float(worker.get("cpu_usage")),
                "memory_bytes": _optional_float(worker.get("memory_usage")),
            }
        )
    return rows
