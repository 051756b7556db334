from __future__ import annotations

import pytest

from analysis.data.units import format_bytes, parse_cpu_millicores, parse_duration, parse_quantity

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("768Mi", 768 * 2**20),
        ("1Gi", 2**30),
        ("250m", 0.25),
        ("2", 2.0),
        ("1.5G", 1.5e9),
        ("52428800500m", 52428800.5),
    ],
)
def test_quantities(text: str, value: float) -> None:
    assert parse_quantity(text) == pytest.approx(value)


def test_cpu_millicores() -> None:
    assert parse_cpu_millicores("1.5") == 1500.0
    assert parse_cpu_millicores("250m") == pytest.approx(250.0)


@pytest.mark.parametrize("text", ["12XB", "", "Mi", "1..2"])
def test_bad_quantities(text: str) -> None:
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        parse_quantity(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("90s", 90.0),
        ("1m30s", 90.0),
        ("2h", 7200.0),
        ("500ms", 0.5),
        ("1h30m", 5400.0),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["ten", "1x", "-5", "1m 30s", "s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_format_bytes() -> None:
    assert format_bytes(768 * 2**20) == "768Mi"
    assert format_bytes(1.5 * 2**30) == "1.5Gi"
