"""``--slo`` expressions: parsing and evaluation."""

from __future__ import annotations

import pytest

from analysis.judge.slo import SloResult, evaluate, parse_slo, parse_slos

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "metric", "op", "threshold"),
    [
        ("p95_ms<500", "p95_ms", "<", 500.0),
        (" error_rate <= 0.01 ", "error_rate", "<=", 0.01),
        ("error_rate<1%", "error_rate", "<", 0.01),
        ("oom_kills==0", "oom_kills", "==", 0.0),
        ("scale_up_lag_s<90", "scale_up_lag_s", "<", 90.0),
        ("max_memory_pct_of_limit<90", "max_memory_pct_of_limit", "<", 90.0),
        ("peak_rps>=1e3", "peak_rps", ">=", 1000.0),
    ],
)
def test_parse(text: str, metric: str, op: str, threshold: float) -> None:
    slo = parse_slo(text)
    assert (slo.metric, slo.op, slo.threshold) == (metric, op, threshold)
    assert slo.expr == text.strip()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("p95<500", "unknown name 'p95'"),
        ("p95_ms=500", "expected NAME OP NUMBER"),
        ("p95_ms<fast", "expected NAME OP NUMBER"),
        ("", "expected NAME OP NUMBER"),
    ],
)
def test_malformed(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_slo(text)


def test_evaluate_and_unmeasured_fails() -> None:
    slos = parse_slos(["p95_ms<500", "oom_kills==0", "scale_up_lag_s<90", "error_rate>0.5"])
    results = evaluate(
        slos, {"p95_ms": 480.0, "oom_kills": 0.0, "scale_up_lag_s": None, "error_rate": 0.01}
    )
    assert results == [
        SloResult("p95_ms<500", 480.0, True),
        SloResult("oom_kills==0", 0.0, True),
        SloResult("scale_up_lag_s<90", None, False),
        SloResult("error_rate>0.5", 0.01, False),
    ]
