"""Every option of every command, defined once, and where its value comes from.

An option's value comes from, strongest first: the command-line flag, the ``KUBESWARM_<FLAG>``
environment variable (``--run-time`` -> ``KUBESWARM_RUN_TIME``), the YAML ``--config`` file (key
``run-time``), then the option's default. Each ``Option`` names its unit and why its default is what
it is; the CLI builds its flags from the same table, so a flag, an environment variable and a
config key can never disagree.

The table is split by concern, one module each (load, sampling, verdict, cluster, unattended,
chaos, env, demo); ``OPTIONS`` is their union, by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import yaml

from harness.config.options.base import (
    MIN_STARTUP_S,
    STARTUP_MARGIN_S,
    STOP_GRACE_S,
    WORKER_MEMORY_MI_PER_PROCESS,
    Option,
    workers_count,
)
from harness.config.options.chaos import CHAOS_OPTIONS
from harness.config.options.cluster import CLUSTER_OPTIONS
from harness.config.options.demo import DEMO_OPTIONS
from harness.config.options.env import ENV_OPTIONS
from harness.config.options.load import LOAD_OPTIONS
from harness.config.options.sampling import SAMPLING_OPTIONS
from harness.config.options.unattended import UNATTENDED_OPTIONS
from harness.config.options.verdict import VERDICT_OPTIONS
from harness.errors import UsageError

__all__ = [
    "MIN_STARTUP_S",
    "OPTIONS",
    "STARTUP_MARGIN_S",
    "STOP_GRACE_S",
    "WORKER_MEMORY_MI_PER_PROCESS",
    "Option",
    "config_key",
    "env_name",
    "merge_sources",
    "raw_texts",
    "workers_count",
]

OPTIONS: Final[dict[str, Option]] = {
    o.name: o
    for group in (
        LOAD_OPTIONS,
        SAMPLING_OPTIONS,
        VERDICT_OPTIONS,
        CLUSTER_OPTIONS,
        UNATTENDED_OPTIONS,
        CHAOS_OPTIONS,
        ENV_OPTIONS,
        DEMO_OPTIONS,
    )
    for o in group
}


def merge_sources(
    flags: Mapping[str, Any],
    environ: Mapping[str, str],
    config_file: Path | None,
    names: tuple[str, ...],
) -> dict[str, Any]:
    """Raw values by option name: flags over ``KUBESWARM_*`` over the YAML file over defaults."""
    from_file = _read_config_file(config_file, names) if config_file else {}
    values: dict[str, Any] = {}
    for name in names:
        option = OPTIONS[name]
        env_text = environ.get(env_name(name))
        if option.flag_only:
            _refuse_flag_only(option, env_text is not None, name in from_file)
        if flags.get(name) not in (None, [], ()):
            values[name] = _parse_flag(option, flags[name])
        elif env_text is not None:
            values[name] = _parse_env(option, env_text)
        elif name in from_file:
            values[name] = _parse_file_value(option, from_file[name])
        else:
            values[name] = option.default
    return values


def raw_texts(
    flags: Mapping[str, Any],
    environ: Mapping[str, str],
    config_file: Path | None,
    names: tuple[str, ...],
) -> dict[str, Any]:
    """Each option as its strongest source wrote it (text, a list of texts, or a switch's bool);
    None where the default holds. What a second kubeswarm is given to run the same settings on
    its own command line (the controller of ``run --detach``, a CronJob's runs)."""
    from_file = _read_config_file(config_file, names) if config_file else {}
    texts: dict[str, Any] = {}
    for name in names:
        option = OPTIONS[name]
        env_text = environ.get(env_name(name))
        if flags.get(name) not in (None, [], ()):
            texts[name] = flags[name]
        elif env_text is not None:
            texts[name] = (
                _parse_env(option, env_text)
                if option.switch
                else (
                    [part.strip() for part in env_text.split(",") if part.strip()]
                    if option.multiple
                    else env_text
                )
            )
        elif name in from_file:
            raw = from_file[name]
            if option.switch:
                texts[name] = _parse_file_value(option, raw)
            elif option.multiple:
                texts[name] = [str(item) for item in (raw if isinstance(raw, list) else [raw])]
            else:
                texts[name] = str(raw)
        else:
            texts[name] = None
    return texts


def _refuse_flag_only(option: Option, in_environ: bool, in_file: bool) -> None:
    where = env_name(option.name) if in_environ else "the config file" if in_file else ""
    if where:
        raise UsageError(
            f"{option.flags[-1]} is read from the command line only, not from {where}; put "
            "values in a file given with --env-file"
        )


def _parse_flag(option: Option, raw: Any) -> Any:
    if option.switch:
        return bool(raw)
    try:
        if option.multiple:
            return tuple(option.parse(str(item)) for item in raw)
        return option.parse(str(raw))
    except ValueError as e:
        raise UsageError(f"{option.flags[-1]}: {e}") from e


def _parse_env(option: Option, text: str) -> Any:
    try:
        if option.multiple:
            return tuple(option.parse(part) for part in text.split(",") if part.strip())
        return option.parse(text)
    except ValueError as e:
        raise UsageError(f"{env_name(option.name)}: {e}") from e


def _parse_file_value(option: Option, raw: Any) -> Any:
    try:
        if option.multiple:
            items = raw if isinstance(raw, list) else [raw]
            return tuple(option.parse(str(item)) for item in items)
        if option.switch and isinstance(raw, bool):
            return raw
        return option.parse(str(raw))
    except ValueError as e:
        raise UsageError(f"config file, {config_key(option.name)}: {e}") from e


def _read_config_file(path: Path, names: tuple[str, ...]) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise UsageError(f"cannot read config file {path}: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise UsageError(f"config file {path} is not UTF-8 text (byte {e.start})") from None
    except yaml.YAMLError as e:
        raise UsageError(f"config file {path} is not valid YAML: {_one_line(e)}") from e
    except ValueError as e:  # a YAML timestamp or number its constructor refuses: 2026-13-01
        raise UsageError(f"config file {path} is not valid YAML: {e}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise UsageError(f"config file {path} must be a mapping of option: value")
    by_key = {config_key(n): n for n in names} | {n: n for n in names}
    unknown = sorted(str(k) for k in loaded if str(k) not in by_key)
    if unknown:
        known = ", ".join(sorted(config_key(n) for n in names))
        raise UsageError(
            f"config file {path}: unknown option(s) {', '.join(unknown)}; known: {known}"
        )
    return {by_key[str(k)]: v for k, v in loaded.items()}


def _one_line(error: yaml.YAMLError) -> str:
    """PyYAML's message spans lines (a snippet under a caret); the problem and where is one."""
    if isinstance(error, yaml.MarkedYAMLError) and error.problem:
        mark = error.problem_mark
        where = "" if mark is None else f" at line {mark.line + 1}, column {mark.column + 1}"
        return f"{error.problem}{where}"
    return " ".join(line.strip() for line in str(error).splitlines() if line.strip())


def env_name(name: str) -> str:
    """The environment variable of an option, from its long flag: ``--spawn-rate`` ->
    ``KUBESWARM_SPAWN_RATE``, ``--run-time`` -> ``KUBESWARM_RUN_TIME``."""
    return "KUBESWARM_" + config_key(name).upper().replace("-", "_")


def config_key(name: str) -> str:
    """The config-file key of an option is its long flag without dashes: ``spawn-rate``."""
    return OPTIONS[name].flags[-1].lstrip("-")
