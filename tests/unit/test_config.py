"""The validation table: each bad input is one clear line and exit code 2; good input is frozen."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest

from harness.cli import main
from harness.config.options import OPTIONS, merge_sources
from harness.config.run import build_run_config
from harness.config.values import parse_watch
from harness.errors import UsageError

pytestmark = pytest.mark.unit

RUN = tuple(name for name in OPTIONS if name not in ("duration_s", "demo_users"))


def _run(
    argv: list[str], capsys: pytest.CaptureFixture[str], environ: dict[str, str] | None = None
) -> tuple[int, str]:
    code = main(argv, environ=environ or {}, out=io.StringIO())
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["-u", "-5"], "--users: must be 1 or more, got -5"),
        (["-u", "zero"], "--users: must be a whole number, got 'zero'"),
        (["-r", "0"], "--spawn-rate: must be a number more than 0"),
        (["-t", "ten minutes"], "--run-time: not a duration: 'ten minutes'"),
        (["-t", "0s"], "--run-time: must be longer than 0 s"),
        (["--watch", "pod/web"], "unknown watch target kind 'pod'"),
        (["--watch", "hpa"], "unknown watch target 'hpa'"),
        (["--watch", "hpa/Web_App"], "is not a valid Kubernetes name"),
        (["--workers", "0"], "--workers: must be 1 or more"),
        (["-H", "web:8080"], "must start with http:// or https://"),
        (["--name", "Bad Name"], "--name:"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    extra: list[str], expected: str, locustfile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", "--local", "-f", str(locustfile), "-H", "http://127.0.0.1:1", *extra]
    code, err = _run(argv, capsys)
    assert code == 2
    assert expected in err
    assert len(err.strip().splitlines()) == 1, err


def test_missing_locustfile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(["run", "--local", "-f", str(tmp_path / "nope.py"), "-H", "http://x"], capsys)
    assert code == 2
    assert "nope.py does not exist" in err


def test_locustfile_that_does_not_compile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("def task(:\n    pass\n", encoding="utf-8")
    code, err = _run(["run", "--local", "-f", str(broken), "-H", "http://x"], capsys)
    assert code == 2
    assert "broken.py does not compile: line 1" in err


def test_unknown_flag_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(["run", "--userz", "3"], capsys)
    assert code == 2
    assert "unrecognized arguments: --userz" in err
    assert len(err.strip().splitlines()) == 1


def test_flags_beat_environment_beat_file_beat_defaults(locustfile: Path, tmp_path: Path) -> None:
    config_file = tmp_path / "kubeswarm.yaml"
    config_file.write_text(
        f"locustfile: {locustfile}\nhost: http://file\nusers: 7\nspawn-rate: 3\n"
        "watch: [hpa/web, shop/deployment/api]\nrun-time: 2m\n",
        encoding="utf-8",
    )
    values = merge_sources(
        {"users": "9"},
        {"KUBESWARM_SPAWN_RATE": "4", "KUBESWARM_HOST": "http://env"},
        config_file,
        RUN,
    )
    config = build_run_config(values)
    assert config.load.users == 9  # flag
    assert config.load.spawn_rate == 4.0  # environment over file
    assert config.load.host == "http://env"
    assert config.load.run_time_s == 120.0  # file over default
    assert [str(w) for w in config.watch] == ["hpa/web", "shop/deployment/api"]
    assert config.load.workers == 2  # default
    assert config.name == "shop"  # the locustfile's stem
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.load.users = 1  # type: ignore[misc]


def test_config_file_with_unknown_key(locustfile: Path, tmp_path: Path) -> None:
    config_file = tmp_path / "bad.yaml"
    config_file.write_text("userz: 3\n", encoding="utf-8")
    with pytest.raises(UsageError, match="unknown option\\(s\\) userz"):
        merge_sources({}, {}, config_file, RUN)


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(UsageError, match="KUBESWARM_USERS: must be 1 or more"):
        merge_sources({}, {"KUBESWARM_USERS": "-1"}, None, RUN)


@pytest.mark.parametrize(
    ("text", "kind", "name", "namespace"),
    [
        ("hpa/web", "hpa", "web", None),
        ("shop/hpa/web", "hpa", "web", "shop"),
        ("deploy/api", "deployment", "api", None),
        ("pid/4242", "pid", "4242", None),
        ("cmd/gunicorn: master [app]", "cmd", "gunicorn: master [app]", None),
    ],
)
def test_watch_syntax(text: str, kind: str, name: str, namespace: str | None) -> None:
    target = parse_watch(text)
    assert (target.kind, target.name, target.namespace) == (kind, name, namespace)


def test_environment_names_follow_the_long_flags(locustfile: Path) -> None:
    values = merge_sources(
        {},
        {
            "KUBESWARM_LOCUSTFILE": str(locustfile),
            "KUBESWARM_HOST": "http://env",
            "KUBESWARM_RUN_TIME": "90s",
            "KUBESWARM_WATCH": "hpa/web,shop/hpa/api",
            "KUBESWARM_INTERVAL": "5s",
        },
        None,
        RUN,
    )
    config = build_run_config(values)
    assert config.load.run_time_s == 90.0
    assert config.sample_interval_s == 5.0
    assert [str(w) for w in config.watch] == ["hpa/web", "shop/hpa/api"]


def test_committed_config_schema_is_current() -> None:
    from harness.config.schema import schema_text

    committed = Path(__file__).parents[2] / "docs" / "config.schema.json"
    assert committed.read_text(encoding="utf-8") == schema_text(), (
        "regenerate: python -m harness.config.schema > docs/config.schema.json"
    )


def test_config_schema_accepts_what_the_reader_accepts_and_refuses_unknown_keys() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from harness.config.schema import config_json_schema

    validator = jsonschema.Draft202012Validator(config_json_schema())
    good = {"users": 20, "run-time": "5m", "watch": ["hpa/web"], "slo": "p95_ms<500"}
    assert list(validator.iter_errors({**good, "worker-cpu": "500m", "local": True})) == []
    errors = sorted(e.message for e in validator.iter_errors({"userz": 1, "users": 0}))
    assert errors == [
        "0 is less than the minimum of 1",
        "Additional properties are not allowed ('userz' was unexpected)",
    ]


@pytest.mark.parametrize("interval", ["500ms", "0.5", "20s", "1m"])
def test_interval_outside_what_the_sources_give_is_refused(interval: str) -> None:
    with pytest.raises(UsageError, match=r"KUBESWARM_INTERVAL: must be between 1s .* and 15s"):
        merge_sources({}, {"KUBESWARM_INTERVAL": interval}, None, RUN)


@pytest.mark.parametrize(("interval", "seconds"), [("1s", 1.0), ("15s", 15.0), ("2", 2.0)])
def test_interval_within_the_bounds_is_taken(
    locustfile: Path, interval: str, seconds: float
) -> None:
    values = merge_sources(
        {},
        {
            "KUBESWARM_LOCUSTFILE": str(locustfile),
            "KUBESWARM_HOST": "http://env",
            "KUBESWARM_INTERVAL": interval,
        },
        None,
        RUN,
    )
    assert build_run_config(values).sample_interval_s == seconds
