"""Every parser of user input, fuzzed: whatever a user types, writes in a config file or leaves
in a run directory, kubeswarm answers with a value or one line (``UsageError``, exit 2), never
a traceback. Examples are few and have no deadline, so a busy machine does not fail them."""

from __future__ import annotations

import json
import math
import string
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from analysis.compare.tolerances import TOLERANCES, parse_tolerance
from analysis.data.runjson import RunRecord, RunRecordError, read_run_record
from analysis.data.units import parse_duration, parse_quantity
from analysis.judge.slo import METRICS, parse_slo
from analysis.judge.whatif import KEYS as WHATIF_KEYS
from analysis.judge.whatif import parse_whatif
from harness.cli import COMMANDS
from harness.config.chaos import parse_chaos
from harness.config.options import OPTIONS, config_key, env_name, merge_sources
from harness.errors import UsageError

pytestmark = pytest.mark.unit

FAST = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
# Each example of these runs a whole report (about a second): a dozen is what fits.
SLOW = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)

# Text near the valid forms finds more than random text: the characters the grammars use.
_GRAMMAR = string.ascii_lowercase + string.digits + "_-.:,=<>!%@/ +eEmMiKGsh"
near = st.text(alphabet=_GRAMMAR, max_size=30)
anything = st.text(max_size=40)
# Numbers as users write them, huge and tiny included: 1e999999Gi overflowed Decimal once.
numbers = st.builds(
    "{}{}{}{}".format,
    st.sampled_from(["", "-", "+"]),
    st.one_of(st.integers(0, 10**30).map(str), st.floats(allow_nan=False).map(repr)),
    st.sampled_from(["", "e999999", "e-999999", "e400", "E5"]),
    st.sampled_from(["", "%", "s", "m", "ms", "h", "Mi", "Gi", "Ei", "k", "1m"]),
)
texts = st.one_of(near, anything, numbers)


def _value_or_value_error(parse: Callable[[str], Any], text: str) -> Any:
    """The parser's value, or None after a one-line ValueError."""
    try:
        return parse(text)
    except ValueError as e:
        assert str(e) and "\n" not in str(e), repr(str(e))
        return None


@FAST
@given(
    st.one_of(
        texts,
        st.builds(
            "{}{}{}".format,
            st.sampled_from(list(METRICS)),
            st.sampled_from(["<", "<=", "==", ">", "!=", ">="]),
            numbers,
        ),
    )
)
def test_slo(text: str) -> None:
    slo = _value_or_value_error(parse_slo, text)
    if slo is not None:
        assert math.isfinite(slo.threshold)
        assert slo.metric in METRICS


@FAST
@given(
    st.one_of(
        texts,
        st.builds(
            "web:{}={}".format,
            st.sampled_from(WHATIF_KEYS),
            numbers,
        ),
    )
)
@example("web:memory_request=1e999999Gi")
def test_whatif(text: str) -> None:
    _value_or_value_error(parse_whatif, text)


@FAST
@given(st.one_of(texts, st.builds("pod-kill:{}@{}".format, numbers, numbers)))
def test_chaos(text: str) -> None:
    _value_or_value_error(parse_chaos, text)


@FAST
@given(texts)
def test_duration(text: str) -> None:
    seconds = _value_or_value_error(parse_duration, text)
    if seconds is not None:
        assert math.isfinite(seconds) and seconds >= 0


@FAST
@given(texts)
@example("10E999999")  # overflowed Decimal: a traceback once
def test_quantity(text: str) -> None:
    value = _value_or_value_error(parse_quantity, text)
    if value is not None:
        assert isinstance(value, float)


@FAST
@given(st.one_of(texts, st.builds("{}={}".format, st.sampled_from(list(TOLERANCES)), numbers)))
def test_tolerance(text: str) -> None:
    parsed = _value_or_value_error(parse_tolerance, text)
    if parsed is not None:
        assert parsed[0] in TOLERANCES and math.isfinite(parsed[1]) and parsed[1] >= 0


# Every option, from a flag and from the environment. --affinity reads the file it names, so
# random text could name a device that never ends: it is fuzzed through config files below.
_FUZZED_OPTIONS = sorted(n for n, o in OPTIONS.items() if not o.switch and n != "affinity")


def _one_line_usage_error(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except UsageError as e:
        assert str(e) and "\n" not in str(e), repr(str(e))
        return None


@FAST
@given(st.sampled_from(_FUZZED_OPTIONS), texts)
def test_every_option_from_a_flag_or_the_environment(name: str, text: str) -> None:
    flag = [text] if OPTIONS[name].multiple else text
    _one_line_usage_error(lambda: merge_sources({name: flag}, {}, None, (name,)))
    if "\x00" not in text:
        _one_line_usage_error(lambda: merge_sources({}, {env_name(name): text}, None, (name,)))


# Config files: any YAML value under known and unknown keys, and bytes that are not YAML.

_RUN_OPTIONS = next(c for c in COMMANDS if c.name == "run").options
_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), texts)
_yaml_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(near, inner, max_size=3)),
    max_leaves=6,
)
_keys = st.one_of(st.sampled_from([config_key(n) for n in _RUN_OPTIONS if n != "affinity"]), near)


def _read_config(content: bytes) -> Any:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "kubeswarm.yaml"
        path.write_bytes(content)
        return _one_line_usage_error(lambda: merge_sources({}, {}, path, _RUN_OPTIONS))


@FAST
@given(st.dictionaries(_keys, _yaml_values, max_size=4))
def test_config_file_of_any_values(document: dict[str, Any]) -> None:
    _read_config(yaml.safe_dump(document, allow_unicode=True).encode())


@FAST
@given(
    st.one_of(
        st.binary(max_size=60),
        st.builds(str.encode, st.text(alphabet=_GRAMMAR + "[]{}#&*!|>'\"\n\t ?", max_size=60)),
    )
)
def test_config_file_of_any_bytes(content: bytes) -> None:
    _read_config(content)


# run.json and summary.json, as `report` and `compare` read them.

_json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), texts),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(near, inner, max_size=3)),
    max_leaves=8,
)
_record_keys = st.sampled_from(
    [
        "id",
        "mode",
        "start",
        "end",
        "status",
        "config",
        "slos",
        "watch",
        "sample_interval_s",
        "schema_version",
        "processes",
        "hpa_spec",
        "objects",
        "server",
        "extra",
    ]
)
_run_jsons = st.one_of(
    _json_values,
    st.fixed_dictionaries(
        {
            "id": _json_values,
            "mode": st.sampled_from(["local", "cluster", "demo", "sample"]),
            "start": _json_values,
        },
        optional={k: _json_values for k in ("end", "status", "config", "slos", "watch")},
    ),
    st.dictionaries(_record_keys, _json_values, max_size=6),
)


@FAST
@given(st.one_of(_run_jsons.map(lambda v: json.dumps(v).encode()), st.binary(max_size=40)))
def test_run_json_reader(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "run.json").write_bytes(content)
        try:
            record = read_run_record(Path(folder))
        except RunRecordError as e:
            assert "\n" not in str(e)
            return
    assert isinstance(record, RunRecord)
    json.loads(record.to_json())  # what was read can be written back


@pytest.fixture(scope="module")
def healthy_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from tests.fixtures import scenarios as sc
    from tests.unit.test_analysis_findings import steady

    root = tmp_path_factory.mktemp("runs")
    return (
        sc.build(root / "base", 6, steady("api", 6, 2)),
        sc.build(root / "cand", 6, steady("api", 6, 3)),
    )


def _cli(argv: list[str]) -> int:
    import io

    from harness.cli import main

    return main(argv, {}, io.StringIO())


@SLOW
@given(run_json=_run_jsons)
def test_report_and_compare_of_any_run_json(
    healthy_runs: tuple[Path, Path], run_json: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    base, cand = healthy_runs
    with tempfile.TemporaryDirectory() as folder:
        run_dir = Path(folder) / "run"
        run_dir.mkdir()
        (run_dir / "samples").symlink_to(cand / "samples")
        (run_dir / "run.json").write_text(json.dumps(run_json), encoding="utf-8")
        assert _cli(["report", str(run_dir)]) in (0, 1, 2)
        assert _cli(["compare", str(base), str(run_dir)]) in (0, 1, 2)
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.splitlines()) <= 2


@SLOW
@given(
    summary=st.one_of(
        _json_values,
        st.dictionaries(
            st.sampled_from(
                [
                    "verdict",
                    "load",
                    "hpas",
                    "slos",
                    "workloads",
                    "findings",
                    "whatif",
                    "run_id",
                    "mode",
                    "disruptions",
                ]
            ),
            _json_values,
            max_size=6,
        ),
    )
)
# Each of these crashed compare once (TypeError, AttributeError, KeyError).
@example(summary={"hpas": 0})
@example(summary={"load": None})
@example(summary={"findings": [{"seen": "x"}]})
@example(summary={"whatif": [{}]})
def test_compare_of_any_current_summary_json(
    healthy_runs: tuple[Path, Path], summary: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from analysis.render.summary import kubeswarm_version

    base, cand = healthy_runs
    with tempfile.TemporaryDirectory() as folder:
        run_dir = Path(folder) / "run"
        run_dir.mkdir()
        for name in ("samples", "run.json"):
            (run_dir / name).symlink_to(cand / name)
        (run_dir / "report").mkdir()
        document = (
            {**summary, "kubeswarm_version": kubeswarm_version()}
            if isinstance(summary, dict)
            else summary
        )
        (run_dir / "report" / "summary.json").write_text(json.dumps(document), encoding="utf-8")
        assert _cli(["compare", str(base), str(run_dir)]) in (0, 1, 2)
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.splitlines()) <= 1


@pytest.fixture(scope="module")
def pinned_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.fixtures import scenarios as sc

    return sc.pinned_by_memory(tmp_path_factory.mktemp("whatif") / "run")


_WHATIF_KEYS = ("memory_request", "memory_limit", "cpu_request", "memory_target", "cpu_target")


@SLOW
@given(
    spec=st.builds(
        "web:{}={}{}".format,
        st.sampled_from(_WHATIF_KEYS),
        st.floats(1e-6, 1e9).map("{:g}".format),
        st.sampled_from(["", "%", "m", "Mi", "Gi"]),
    )
)
@example(spec="web:memory_target=1e-9")  # accepted once, then divided by zero in the replay
def test_whatif_replay_of_any_spec(pinned_run: Path, spec: str) -> None:
    from analysis.pipeline import analyse

    if _value_or_value_error(parse_whatif, spec) is None:
        return
    (result,) = analyse(pinned_run, whatifs=[spec]).whatifs
    assert result.hpa == "web"
