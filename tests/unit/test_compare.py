"""``analysis.compare``: two run directories written from literal rows that differ in known ways
give exactly those regressions; identical runs give none; bad input is one clear ValueError."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from analysis.compare import (
    DEFAULT_TOLERANCES,
    compare,
    compare_summaries,
    format_comparison,
    parse_tolerance,
    write_comparison,
)
from analysis.report import write_report
from tests.fixtures import scenarios as sc

pytestmark = pytest.mark.unit

N = 20
USERS = [0] * 2 + [25] * 4 + [50] * 12 + [0] * 2


def _run(
    run_dir: Path,
    *,
    p95_ms: float = 100.0,
    fail_ratio: float = 0.0,
    replicas_at_full: int = 3,
    memory_mi: float = 120.0,
    oom: bool = False,
    mode: str = "cluster",
    locust: bool = True,
) -> Path:
    """``web`` (min 2, max 8, CPU target 60 %) under a two-step load; what a candidate changes
    is given by the keywords."""
    current = [2] * 6 + [replicas_at_full] * 14
    load = [u / 50 for u in USERS]

    def restarts(tick: int, pod: int) -> tuple[int, str]:
        return (1, "OOMKilled") if oom and pod == 0 and tick >= 10 else (0, "")

    samples = {
        "hpa": sc.hpa("web", current, high=8),
        "hpa_metrics": sc.metrics("web", "cpu", [20 + 35 * x for x in load], 60.0),
        "workloads": sc.workloads("web", current),
        "pods": sc.pods(
            "web",
            current,
            lambda t, p: (memory_mi * (0.6 + 0.4 * load[t]), 20 + 80 * load[t]),
            restarts=restarts,
        ),
        "marks": sc.marks(2, 18),
    }
    if locust:
        samples["locust"] = sc.locust(USERS, p95_ms=p95_ms, fail_ratio=fail_ratio)
    return sc.build(run_dir, N, samples, meta={"mode": mode})


def _keys(comparison_regressions: object) -> set[tuple[str, str]]:
    return {(r.metric, r.subject) for r in comparison_regressions}  # type: ignore[attr-defined]


def test_known_differences_are_exactly_the_regressions(tmp_path: Path) -> None:
    base = _run(tmp_path / "base")
    cand = _run(
        tmp_path / "cand",
        p95_ms=150.0,  # +50 % (and p50, a third of it, too), tolerance 10 %
        fail_ratio=0.02,  # +2 points, tolerance 0.5
        replicas_at_full=5,  # +2 replicas, tolerance 1
        memory_mi=200.0,  # peak 78 % of request instead of 47 % (39 % of limit, not 23 %)
        oom=True,  # one OOM kill (so one restart), tolerance 0; and a new high finding
    )
    c = compare(base, cand)
    assert _keys(c.regressions) == {
        ("p50_ms", "run"),
        ("p95_ms", "run"),
        ("error_rate", "run"),
        ("peak_replicas", "web"),
        ("peak_memory_pct_of_request", "web"),
        ("peak_memory_pct_of_limit", "web"),
        ("oom_kills", "web"),
        ("restarts", "web"),
        ("high_findings", "shop/web"),
    }
    assert c.verdict == "regression"
    p95 = next(d for d in c.load.deltas if d.metric == "p95_ms")
    assert (p95.baseline, p95.candidate, p95.worse_by) == (100.0, 150.0, 50.0)
    assert {f.code for f in c.new_findings} == {"oom_killed", "errors_under_load"}
    hpa = c.hpas[0]
    assert (hpa.subject, hpa.present) == ("web", "both")
    message = next(r.message for r in c.regressions if r.metric == "p95_ms")
    assert message == "p95_ms 100 ms -> 150 ms (worse by +50.0%; tolerance 10%)"

    text = format_comparison(c)
    assert "REGRESSION: 9 measure(s) worse beyond tolerance" in text
    assert "p95_ms" in text and "+50.0%" in text
    # Every change in its measure's unit: memory in Mi, shares of request in points, never raw
    # bytes (a change of "+83,886,080" once stood beside "120Mi -> 200Mi").
    memory = next(line for line in text.splitlines() if "peak_memory_bytes" in line)
    assert memory.split()[1:4] == ["120Mi", "200Mi", "+80Mi"], memory
    share = next(line for line in text.splitlines() if "peak_memory_pct_of_request" in line)
    assert share.split()[3] == "+31", share
    assert share.split()[4] == "pt", share

    paths = write_comparison(c, tmp_path / "out")
    data = json.loads(paths["json"].read_text())
    assert data["verdict"] == "regression" and len(data["regressions"]) == 9
    assert data["baseline"]["run_id"] == "base" and data["candidate"]["run_id"] == "cand"
    page = paths["html"].read_text()
    assert page.count('src="data:image/png;base64,') == 1
    assert "REGRESSION" in page and 'class="worse"' in page


def test_identical_runs_have_no_regression(tmp_path: Path) -> None:
    c = compare(_run(tmp_path / "a"), _run(tmp_path / "b"))
    assert c.regressions == ()
    assert c.verdict == "ok"
    judged = [d for sc_ in (c.load, *c.hpas, *c.workloads) for d in sc_.deltas if d.worse_by]
    assert judged == []
    assert c.new_findings == () and c.resolved_findings == ()
    assert "no regression beyond tolerance" in format_comparison(c)


def test_tolerances_decide(tmp_path: Path) -> None:
    base, cand = _run(tmp_path / "a"), _run(tmp_path / "b", p95_ms=150.0)
    assert _keys(compare(base, cand).regressions) == {("p50_ms", "run"), ("p95_ms", "run")}
    assert _keys(compare(base, cand, {"p95_ms": 60.0}).regressions) == {("p50_ms", "run")}
    assert compare(base, cand, {"p95_ms": 60.0, "p50_ms": 60.0}).regressions == ()
    with pytest.raises(ValueError, match="unknown tolerance 'p96_ms'"):
        compare(base, cand, {"p96_ms": 1.0})


def test_improvement_is_not_a_regression(tmp_path: Path) -> None:
    c = compare(_run(tmp_path / "a", p95_ms=150.0), _run(tmp_path / "b", p95_ms=100.0))
    assert c.regressions == ()
    p95 = next(d for d in c.load.deltas if d.metric == "p95_ms")
    assert p95.worse_by is not None and p95.worse_by < 0


def test_summary_is_reused_when_current_and_rebuilt_when_stale(tmp_path: Path) -> None:
    base, cand = _run(tmp_path / "a"), _run(tmp_path / "b")
    write_report(base)
    write_report(cand)
    c = compare(base, cand)
    assert (c.baseline.rebuilt, c.candidate.rebuilt) == (False, False)
    summary_path = base / "report" / "summary.json"
    stale = json.loads(summary_path.read_text())
    stale["kubeswarm_version"] = "0.0.1-old"
    summary_path.write_text(json.dumps(stale))
    sample = cand / "samples" / "locust.csv"
    later = (cand / "report" / "summary.json").stat().st_mtime + 10
    os.utime(sample, (later, later))
    c = compare(base, cand)
    assert (c.baseline.rebuilt, c.candidate.rebuilt) == (True, True)
    # Rebuilt in memory: a compared run directory (a stored baseline) is only read.
    assert json.loads(summary_path.read_text())["kubeswarm_version"] == "0.0.1-old"
    assert c.baseline.run_id == stale["run_id"]


def test_modes_differ_and_a_run_without_locust_compares_what_it_has(tmp_path: Path) -> None:
    base = _run(tmp_path / "a")
    cand = _run(tmp_path / "b", mode="demo", locust=False, replicas_at_full=6)
    c = compare(base, cand)
    assert any("different modes (baseline cluster, candidate demo)" in n for n in c.notes)
    assert any("candidate has no Locust data" in n for n in c.notes)
    assert ("peak_replicas", "web") in _keys(c.regressions)
    assert not {k for k in _keys(c.regressions) if k[1] == "run"}


@pytest.mark.parametrize(
    "make",
    [
        lambda p: p / "missing",
        lambda p: (p / "empty").mkdir() or p / "empty",
        lambda p: (p / "g").mkdir() or ((p / "g" / "run.json").write_text("{not json") and p / "g"),
        lambda p: (p / "l").mkdir() or ((p / "l" / "run.json").write_text("[1, 2]") and p / "l"),
    ],
    ids=["missing", "not-a-run", "garbage-json", "json-not-object"],
)
def test_bad_input_is_one_clear_line(tmp_path: Path, make: object) -> None:
    good = _run(tmp_path / "good")
    bad = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(ValueError) as info:
        compare(good, bad)
    assert str(bad) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("p95_ms=15%", ("p95_ms", 15.0)),
        ("p95_ms=15", ("p95_ms", 15.0)),
        ("error_rate=1%", ("error_rate", 1.0)),
        ("time_at_max_s=60s", ("time_at_max_s", 60.0)),
        (" peak_replicas = 2 ", ("peak_replicas", 2.0)),
        ("oom_kills=0", ("oom_kills", 0.0)),
    ],
)
def test_parse_tolerance(text: str, expected: tuple[str, float]) -> None:
    assert parse_tolerance(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("p95=10%", "unknown tolerance 'p95'; known: p50_ms, p95_ms"),
        ("p95_ms", "is not NAME=VALUE"),
        ("p95_ms=fast", "'fast' is not a number of %"),
        ("peak_replicas=10%", "'10%' is not a number of replicas"),
        ("p99_ms=-5%", "must be zero or more %"),
        ("time_at_max_s=nan", "must be zero or more s"),
    ],
)
def test_parse_tolerance_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse_tolerance(text)


def test_defaults_are_the_documented_ones() -> None:
    assert {k: DEFAULT_TOLERANCES[k] for k in ("p95_ms", "p99_ms", "error_rate", "peak_rps")} == {
        "p95_ms": 10.0,
        "p99_ms": 10.0,
        "error_rate": 0.5,
        "peak_rps": 10.0,
    }
    assert DEFAULT_TOLERANCES["peak_replicas"] == 1.0
    assert DEFAULT_TOLERANCES["time_at_max_s"] == 30.0
    assert DEFAULT_TOLERANCES["oom_kills"] == DEFAULT_TOLERANCES["high_findings"] == 0.0


def _summary(**extra: object) -> dict[str, object]:
    return {
        "run_id": "r",
        "verdict": "pass",
        "mode": "cluster",
        "load": {},
        "slos": [],
        "hpas": [],
        "workloads": [],
        "whatif": [],
        "findings": [],
        **extra,
    }


def test_disruptions_are_matched_by_action_target_and_order() -> None:
    def d(ts: float, recovery: float, recovered: bool = True) -> dict[str, object]:
        return {
            "ts": ts,
            "action": "pod-delete",
            "target": "shop/web",
            "pods": 1,
            "recovery_s": recovery,
            "recovered": recovered,
            "error_rate": 0.0,
        }

    base = _summary(disruptions=[d(100, 20), d(200, 20)])
    cand = _summary(disruptions=[d(105, 25), d(205, 50, recovered=False)])
    c = compare_summaries(base, cand)
    assert [x.subject for x in c.disruptions] == [
        "pod-delete shop/web #1",
        "pod-delete shop/web #2",
    ]
    assert _keys(c.regressions) == {
        ("recovery_s", "pod-delete shop/web #2"),
        ("recovered", "pod-delete shop/web #2"),
    }
    assert compare_summaries(_summary(), _summary()).disruptions == ()


def test_report_with_baseline_folds_regressions_into_the_verdict(tmp_path: Path) -> None:
    base = _run(tmp_path / "base")
    same = write_report(_run(tmp_path / "same"), baseline=base)
    assert same["verdict"] == "pass" and same["regressions"] == []
    assert same["comparison"]["verdict"] == "ok"

    cand = _run(tmp_path / "cand", p95_ms=150.0)
    summary = write_report(cand, slos=["p95_ms<500"], baseline=base)
    assert summary["verdict"] == "fail"
    assert [r["metric"] for r in summary["regressions"]] == ["p50_ms", "p95_ms"]
    assert summary["comparison"]["candidate"]["verdict"] == "fail"
    written = json.loads((cand / "report" / "summary.json").read_text())
    assert written["regressions"] == summary["regressions"]
    assert (cand / "report" / "compare.json").is_file()
    assert "Against baseline base" in (cand / "report" / "report.html").read_text()
    assert "2 regression(s) against baseline `base`" in (cand / "report" / "report.md").read_text()
    with pytest.raises(ValueError, match="not a kubeswarm run directory"):
        write_report(cand, baseline=tmp_path)
