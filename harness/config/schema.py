"""The JSON Schema of the ``--config`` YAML file, generated from the option table.

Editors validate and complete a config file against ``docs/config.schema.json`` (a
``# yaml-language-server: $schema=...`` line); the file is this module's output, committed, and a
unit test fails when the table changes without it. Each command accepts only its own keys; the
schema lists every key of every command, each saying which it belongs to.

    python -m harness.config.schema > docs/config.schema.json
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from harness.config import values
from harness.config.options import OPTIONS, Option, config_key

_DURATION: Final = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": r"^\s*([0-9.]+(ms|s|m|h)?)+\s*$"},
    ],
}
# How each parser's input looks in YAML; a parser not listed takes any string.
_TYPES: Final[dict[Callable[[str], Any], dict[str, Any]]] = {
    values.positive_int: {"type": "integer", "minimum": 1},
    values.non_negative_int: {"type": "integer", "minimum": 0},
    values.positive_float: {"type": "number", "exclusiveMinimum": 0},
    values.positive_duration: _DURATION,
    values.non_negative_duration: _DURATION,
    # A number is seconds; a string's bounds are checked when it is parsed.
    values.sample_interval: {
        "anyOf": [
            {
                "type": "number",
                "minimum": values.MIN_SAMPLE_INTERVAL_S,
                "maximum": values.MAX_SAMPLE_INTERVAL_S,
            },
            _DURATION["anyOf"][1],
        ]
    },
    values.boolean: {"type": "boolean"},
    values.run_name: {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
    values.quantity: {"type": "string", "pattern": r"^[0-9.]+([numkMGTPE]|[KMGTPE]i)?$"},
    values.node_selector: {"type": "string", "pattern": "^[^=]+=.*$"},
    values.toleration: {"type": "string", "pattern": ":(NoSchedule|PreferNoSchedule|NoExecute)$"},
}


def _property(option: Option) -> dict[str, Any]:
    one = dict(_TYPES.get(option.parse, {"type": "string"}))
    if option.multiple:
        # A list, or one value for a single entry, as the file reader accepts both.
        return {"anyOf": [{"type": "array", "items": one}, one]}
    return one


def _default(option: Option) -> Any:
    if option.default in (None, ()):
        return None
    return str(option.default) if isinstance(option.default, Path) else option.default


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a ``--config`` file: key = long flag without dashes."""
    properties: dict[str, dict[str, Any]] = {}
    for name, option in OPTIONS.items():
        if option.flag_only:
            continue  # refused in a config file (--env: values go in an --env-file)
        key = config_key(name)
        # argparse's help escapes % as %%; the schema shows the text as a user reads it
        entry = {"description": option.help.replace("%%", "%"), **_property(option)}
        default = _default(option)
        if default is not None:
            entry["default"] = default
        if key in properties:  # e.g. users: -u of run and of demo; one key, two meanings
            entry = _merged(properties[key], entry)
        properties[key] = entry
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "kubeswarm --config file",
        "description": "Options of a kubeswarm command as YAML; flags and KUBESWARM_* variables "
        "override them. Each command accepts only its own keys (kubeswarm COMMAND --help).",
        "type": "object",
        "properties": dict(sorted(properties.items())),
        "additionalProperties": False,
    }


def _merged(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    merged = {k: v for k, v in first.items() if k not in ("description", "default")}
    merged["description"] = f"{first['description']}; {second['description']}"
    if first.get("default") == second.get("default") and "default" in first:
        merged["default"] = first["default"]
    return merged


def schema_text() -> str:
    """The committed file's exact text."""
    return json.dumps(config_json_schema(), indent=2) + "\n"


if __name__ == "__main__":
    print(schema_text(), end="")
