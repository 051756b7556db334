from __future__ import annotations

from decimal import Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


# What the API server and metrics-server return, as Kubernetes' own client reads it: the one
# grammar kubeswarm uses for options, what-ifs and the samples must agree with it.
API_QUANTITIES = [
    "12345n",
    "250u",
    "250m",
    "1",
    "1.5",
    "0",
    "2k",
    "128974848",
    "129e6",
    "1E3",
    "1e-3",
    "768Mi",
    "1.5Gi",
    "3Ti",
    "1Ki",
    "2M",
    "2G",
    "1P",
    "1E",
    "0.5Ei",
    "+3",
    "12345678901n",
]


@pytest.mark.parametrize("text", API_QUANTITIES)
def test_quantities_agree_with_the_kubernetes_client(text: str) -> None:
    from kubernetes.utils.quantity import parse_quantity as kubernetes_quantity

    assert parse_quantity(text) == pytest.approx(float(kubernetes_quantity(text)), rel=1e-12)  # type: ignore[no-untyped-call]


@settings(max_examples=400, deadline=None)
@given(
    digits=st.integers(min_value=0, max_value=10**18 - 1),
    suffix=st.sampled_from(
        ["", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ei"]
    ),
)
def test_integer_quantities_are_the_nearest_float_to_their_exact_value(
    digits: int, suffix: str
) -> None:
    # The metrics API's forms take a fast path: it must give what exact arithmetic, rounded
    # once to a float, gives; computed here with Decimal at a precision no product exceeds.
    factor = {"n": "1e-9", "u": "1e-6", "m": "1e-3", "k": "1e3", "M": "1e6", "G": "1e9"}
    factor |= {"T": "1e12", "P": "1e15", "E": "1e18", "": "1"}
    factor |= {"Ki": str(2**10), "Mi": str(2**20), "Gi": str(2**30), "Ei": str(2**60)}
    with localcontext(prec=80):
        exact = float(Decimal(digits) * Decimal(factor[suffix]))
    assert parse_quantity(f"{digits}{suffix}") == exact


def test_numbers_from_json_are_quantities_as_they_are() -> None:
    assert parse_quantity(3) == 3.0
    assert parse_quantity(0.25) == 0.25
    with pytest.raises(ValueError):
        parse_quantity(True)
    with pytest.raises(ValueError):
        parse_quantity(float("nan"))


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
