"""krr-style recommendations: each formula the report states, on hand-worked numbers."""

from __future__ import annotations

import pytest

from analysis.judge.resources import recommend

pytestmark = pytest.mark.unit

MI = 2**20


def test_limit_is_peak_with_15_percent_headroom() -> None:
    rec = recommend(
        peak=400 * MI, typical=300 * MI, limit=512 * MI, ooms=0, p95_cpu=None, memory_target=None
    )
    assert rec.memory_limit_bytes == 460 * MI  # 400Mi x 1.15
    assert rec.memory_request_bytes == 400 * MI  # no memory HPA: the peak, as krr does
    assert rec.cpu_request_m is None


def test_limit_after_an_oom_kill_starts_from_the_limit() -> None:
    # the recorded peak is cut off at the limit when the kernel kills: 1.25 x max(peak, limit)
    rec = recommend(
        peak=500 * MI, typical=450 * MI, limit=512 * MI, ooms=2, p95_cpu=None, memory_target=None
    )
    assert rec.memory_limit_bytes == 640 * MI


def test_request_under_the_hpa_memory_target_and_limit_never_below_it() -> None:
    rec = recommend(
        peak=250 * MI, typical=240 * MI, limit=None, ooms=0, p95_cpu=123.0, memory_target=60.0
    )
    assert rec.memory_request_bytes == 400 * MI  # 240Mi / 0.60
    assert rec.memory_limit_bytes == 400 * MI  # 250Mi x 1.15 = 288Mi is below the request
    assert rec.cpu_request_m == 125.0  # p95 rounded up to 5m
    assert "HPA memory target" in rec.memory_request_formula


def test_nothing_measured_recommends_nothing() -> None:
    rec = recommend(peak=None, typical=None, limit=None, ooms=0, p95_cpu=None, memory_target=80.0)
    assert (rec.memory_request_bytes, rec.memory_limit_bytes, rec.cpu_request_m) == (
        None,
        None,
        None,
    )
