"""One clock for people: the charts count from the test's start, as the live view, ``-t`` and
``--chaos @WHEN`` do (a kill said "at 26s" on the console once stood at ~29 s on the chart,
which counted from the run's start, three seconds of startup earlier)."""

from __future__ import annotations

import pytest

from analysis.data.timeline import Window
from analysis.render.timeline_chart import x_label, x_of
from harness.session.core import TickContext

pytestmark = pytest.mark.unit

RUN_START = 1_700_000_000.0
TEST_START = RUN_START + 3.2  # Locust's first users, after the workers connected


def test_a_chaos_kill_is_at_the_same_second_on_the_console_and_the_chart() -> None:
    window = Window(RUN_START, RUN_START + 70, TEST_START, TEST_START + 5, TEST_START + 60)
    kill = TEST_START + 26.4
    console = TickContext(now=kill, run_start=RUN_START, test_start=TEST_START).test_elapsed_s
    (chart,) = x_of([kill], window)
    assert console is not None and f"{console:.0f}s" == f"{chart:.0f}s" == "26s"
    assert x_of([RUN_START], window)[0] == pytest.approx(-3.2)  # startup before zero
    assert x_label(window) == "seconds since the test started"


def test_without_load_the_run_start_is_zero() -> None:
    window = Window(RUN_START, RUN_START + 2000, None, None, None)
    assert x_of([RUN_START + 120], window)[0] == pytest.approx(2.0)  # minutes past 15 min
    assert x_label(window) == "minutes since the run started"
