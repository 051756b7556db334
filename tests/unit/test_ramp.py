"""The ramp shape's tick logic, driven by a fake runner holding Locust-like totals (no network).

The locustfile imports ``locust``, which patches the standard library with gevent on import; the
tests load it with a small stand-in module instead, so the test process stays unpatched.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from analysis.judge import capacity
from tests.local.helpers import REPO

pytestmark = pytest.mark.unit


class _StubShape:
    runner: Any = None

    start_time = 0.0


def _identity(*args: Any, **kwargs: Any) -> Any:
    return args[0] if args and callable(args[0]) else None


@pytest.fixture(scope="module")
def ramp() -> Iterator[types.ModuleType]:
    stub = types.ModuleType("locust")
    stub.FastHttpUser = object  # type: ignore[attr-defined]
    stub.LoadTestShape = _StubShape  # type: ignore[attr-defined]
    stub.constant_pacing = _identity  # type: ignore[attr-defined]
    stub.task = _identity  # type: ignore[attr-defined]
    saved = sys.modules.get("locust")
    sys.modules["locust"] = stub
    try:
        spec = importlib.util.spec_from_file_location(
            "ramp_under_test", REPO / "locustfiles/ramp.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["ramp_under_test"] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("ramp_under_test", None)
        if saved is None:
            sys.modules.pop("locust", None)
        else:
            sys.modules["locust"] = saved


@dataclass
class FakeTotal:
    num_requests: int = 0
    num_failures: int = 0
    response_times: dict[int, int] = field(default_factory=dict)


@dataclass
class FakeRunner:
    """What the shape reads: ``stats.total`` and ``environment.parsed_options``."""

    total: FakeTotal = field(default_factory=FakeTotal)
    users: int = 0
    stats: Any = None
    environment: Any = None

    def __post_init__(self) -> None:
        self.stats = types.SimpleNamespace(total=self.total)
        options = types.SimpleNamespace(num_users=40, spawn_rate=10.0)
        self.environment = types.SimpleNamespace(parsed_options=options)

    def serve(self, seconds: int, rps: int, latency_ms: int, fail_share: float = 0.0) -> None:
        """``seconds`` of ``rps`` requests each taking ``latency_ms``."""
        n = seconds * rps
        self.total.num_requests += n
        self.total.num_failures += round(n * fail_share)
        self.total.response_times[latency_ms] = self.total.response_times.get(latency_ms, 0) + n


ENV = {
    "KUBESWARM_RAMP_STEP_USERS": "10",
    "KUBESWARM_RAMP_HOLD_S": "30",
    "KUBESWARM_RAMP_BREAK_S": "10",
    "KUBESWARM_RAMP_P95_MS": "200",
    "KUBESWARM_RAMP_ERROR_RATE": "0.02",
}


def drive(
    ramp: types.ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    latency_by_users: dict[int, int],
    fail_by_users: dict[int, float] | None = None,
    seconds: int = 300,
) -> tuple[Any, list[tuple[int, int | None]]]:
    """Runs the shape one tick per second; the fake service answers by the current users."""
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    shape = ramp.RampShape()
    runner = FakeRunner()
    shape.runner = runner
    clock = {"t": 0.0}
    monkeypatch.setattr(shape, "elapsed_s", lambda: clock["t"])
    trace: list[tuple[int, int | None]] = []
    users = 0
    for second in range(seconds):
        clock["t"] = float(second)
        result = shape.tick()
        trace.append((second, None if result is None else result[0]))
        if result is None:
            break
        users = result[0]
        runner.serve(
            1, users * 5, latency_by_users.get(users, 50), (fail_by_users or {}).get(users, 0.0)
        )
    return shape, trace


def test_steps_up_and_stops_when_p95_stays_broken(
    ramp: types.ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kubeswarm.ramp")
    shape, trace = drive(ramp, monkeypatch, {10: 40, 20: 80, 30: 900})
    assert [u for _, u in trace[:31]] == [10] * 30 + [20]
    assert trace[-1] == (90, None)  # three 30 s steps, the third broken
    assert shape.stop.reason == "p95_ms"
    assert shape.stop.users == 30 and shape.stop.step == 3
    assert shape.stop.observed == 900 and shape.stop.threshold == 200
    assert len(shape.steps) == 3
    stop_lines = [r.getMessage() for r in caplog.records if " stop " in r.getMessage()]
    assert stop_lines == [shape.stop.line]
    assert stop_lines[0].startswith("kubeswarm ramp: stop reason=p95_ms step=3 users=30 ")


def test_a_spike_the_hpa_absorbs_early_in_a_step_does_not_stop_it(
    ramp: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Step 2 is slow for its first 15 s only (a scale-up catching up), then fine.
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    controller = ramp.RampController(ramp.RampSettings.from_env(dict(ENV), users=40))
    total = FakeTotal()
    users: int | None = None
    for second in range(130):
        result = controller.tick(
            ramp.Totals(
                float(second), total.num_requests, total.num_failures, dict(total.response_times)
            )
        )
        if result is None:
            break
        users = result[0]
        slow = users == 20 and controller.step_start + 15 > second
        total.num_requests += users * 5
        latency = 2000 if slow else 30
        total.response_times[latency] = total.response_times.get(latency, 0) + users * 5
    assert controller.stop is not None
    assert controller.stop.reason == "max_users" and controller.stop.users == 40


def test_errors_stop_the_ramp(ramp: types.ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    shape, _ = drive(ramp, monkeypatch, {}, fail_by_users={20: 0.1})
    assert shape.stop.reason == "error_rate" and shape.stop.users == 20
    assert shape.stop.observed == pytest.approx(0.1)


def test_a_service_that_stops_answering_stops_the_ramp(
    ramp: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    controller = ramp.RampController(ramp.RampSettings.from_env(dict(ENV), users=40))
    stops = [controller.tick(ramp.Totals(float(t), 100, 0, {30: 100})) for t in range(31)]
    assert stops[-1] is None and controller.stop.reason == "no_responses"


def test_window_stats_are_deltas_of_cumulative_totals(ramp: types.ModuleType) -> None:
    old = ramp.Totals(0.0, 100, 0, {10: 100})
    new = ramp.Totals(10.0, 200, 5, {10: 180, 400: 20})
    stats = ramp.window_stats(old, new)
    assert stats.requests == 100 and stats.error_rate == pytest.approx(0.05)
    assert stats.p95_ms == 400  # 20 of the 100 new requests took 400 ms


def test_settings_default_from_users_and_hpa_timing(ramp: types.ModuleType) -> None:
    settings = ramp.RampSettings.from_env({}, users=40, spawn_rate=None)
    assert settings.max_users == 40 and settings.step_users == 4
    assert settings.hold_s == 75  # sync 15 s + metrics 40 s + judged 20 s
    assert settings.p95_ms == 500 and settings.error_rate == 0.01
    with pytest.raises(ValueError, match="KUBESWARM_RAMP_HOLD_S"):
        ramp.RampSettings.from_env({"KUBESWARM_RAMP_HOLD_S": "-5"})
    with pytest.raises(ValueError, match="shorter than"):
        ramp.RampSettings.from_env({"KUBESWARM_RAMP_HOLD_S": "10", "KUBESWARM_RAMP_BREAK_S": "10"})


def test_the_default_hold_is_the_one_check_ramp_accepts(ramp: types.ModuleType) -> None:
    assert ramp.minimum_hold_s() == capacity.minimum_hold_s()
    assert capacity.check_ramp(ramp.minimum_hold_s(), 15) is None
