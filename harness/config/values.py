"""How the text of an option becomes a value: watch targets, names, durations, quantities.

Each parser takes the text a user wrote (a flag, an environment variable or a config-file entry)
and returns the value or raises ValueError with a message that says what a valid value looks like.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import yaml

from analysis.data.units import parse_duration, parse_quantity

WatchKind = Literal["hpa", "deployment", "statefulset", "pid", "cmd"]

_WATCH_KINDS: Final[dict[str, WatchKind]] = {
    "hpa": "hpa",
    "horizontalpodautoscaler": "hpa",
    "deployment": "deployment",
    "deploy": "deployment",
    "statefulset": "statefulset",
    "sts": "statefulset",
    "pid": "pid",
    "cmd": "cmd",
}
_DNS_LABEL: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN: Final = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


@dataclass(frozen=True)
class WatchTarget:
    """What the sampler records: ``hpa/web``, ``shop/deployment/web``, ``pid/1234``, ``cmd/x``."""

    kind: WatchKind
    name: str
    namespace: str | None = None

    def __str__(self) -> str:
        prefix = f"{self.namespace}/" if self.namespace else ""
        return f"{prefix}{self.kind}/{self.name}"


def parse_watch(text: str) -> WatchTarget:
    parts = text.split("/", 2) if not text.startswith(("pid/", "cmd/")) else text.split("/", 1)
    if len(parts) == 3:
        namespace, kind, name = parts
    elif len(parts) == 2:
        namespace, (kind, name) = None, parts
    else:
        raise ValueError(f"unknown watch target {text!r}; write KIND/NAME or NAMESPACE/KIND/NAME")
    resolved = _WATCH_KINDS.get(kind.lower())
    if resolved is None:
        raise ValueError(
            f"unknown watch target kind {kind!r} in {text!r}; use hpa, deployment, statefulset "
            "(cluster) or pid, cmd (local)"
        )
    if not name:
        raise ValueError(f"watch target {text!r} has no name")
    if resolved == "pid" and not name.isdigit():
        raise ValueError(f"watch target {text!r}: pid/ takes a process id")
    if resolved in ("hpa", "deployment", "statefulset") and not _DNS_SUBDOMAIN.match(name):
        raise ValueError(f"watch target {text!r}: {name!r} is not a valid Kubernetes name")
    if namespace is not None and not _DNS_LABEL.match(namespace):
        raise ValueError(f"watch target {text!r}: {namespace!r} is not a valid namespace")
    return WatchTarget(resolved, name, namespace)


def _whole_number(text: str) -> int:
    # int()'s own message ("invalid literal for int() with base 10") is Python's, not the user's.
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"must be a whole number, got {text!r}") from None


def positive_int(text: str) -> int:
    value = _whole_number(text)
    if value < 1:
        raise ValueError(f"must be 1 or more, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = _whole_number(text)
    if value < 0:
        raise ValueError(f"must be 0 or more, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"must be a number, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"must be a number more than 0, got {text!r}")
    return value


def positive_duration(text: str) -> float:
    value = parse_duration(text)
    if value <= 0:
        raise ValueError(f"must be longer than 0 s, got {text!r}")
    return value


# What the sources can give: Locust refreshes its stats once a second, so a faster tick repeats
# the same numbers as if they were new; the HPA controller decides every 15 s by default, so a
# slower tick can miss a whole decision. Pod usage is fresher still only every metrics resolution
# (15 s by default): it is stamped with its own time (pods.csv usage_ts), never passed off as new.
MIN_SAMPLE_INTERVAL_S = 1.0
MAX_SAMPLE_INTERVAL_S = 15.0


def sample_interval(text: str) -> float:
    value = parse_duration(text)
    if not MIN_SAMPLE_INTERVAL_S <= value <= MAX_SAMPLE_INTERVAL_S:
        raise ValueError(
            f"must be between {MIN_SAMPLE_INTERVAL_S:g}s (Locust's stats refresh once a second) "
            f"and {MAX_SAMPLE_INTERVAL_S:g}s (the HPA controller's sync period), got {text!r}"
        )
    return value


def run_name(text: str) -> str:
    if not _DNS_LABEL.match(text) or len(text) > 40:
        raise ValueError(
            f"{text!r} must be lowercase letters, digits and '-', at most 40 characters"
        )
    return text


def any_text(value: str) -> str:
    return value


def boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r}")


_LABEL_NAME: Final = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_TAINT_EFFECTS: Final = {e.lower(): e for e in ("NoSchedule", "PreferNoSchedule", "NoExecute")}
_AFFINITY_KEYS: Final = ("nodeAffinity", "podAffinity", "podAntiAffinity")


@dataclass(frozen=True)
class Toleration:
    """``key=value:Effect`` or ``key:Effect``: no value tolerates any value of the taint's key."""

    key: str
    value: str | None = None
    effect: str | None = None


def _label_key(key: str) -> str:
    prefix, _, name = key.rpartition("/")
    if (
        prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix))
    ) or not _LABEL_NAME.match(name):
        raise ValueError(f"{key!r} is not a valid label key (example: topology.kubernetes.io/zone)")
    return key


def _label_value(value: str) -> str:
    if value and not _LABEL_NAME.match(value):
        raise ValueError(
            f"{value!r} is not a valid label value (63 letters, digits, '-_.' at most)"
        )
    return value


def node_selector(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep:
        raise ValueError(f"{text!r} is not key=value (example: kubernetes.io/arch=amd64)")
    return _label_key(key), _label_value(value)


def toleration(text: str) -> Toleration:
    rest, colon, effect_text = text.rpartition(":")
    if not colon:
        raise ValueError(
            f"{text!r} is not key=value:Effect or key:Effect (example: load=true:NoSchedule)"
        )
    effect = _TAINT_EFFECTS.get(effect_text.lower())
    if effect is None:
        raise ValueError(f"{text!r}: effect must be NoSchedule, PreferNoSchedule or NoExecute")
    key, equals, value = rest.partition("=")
    return Toleration(_label_key(key), _label_value(value) if equals else None, effect)


def quantity(text: str) -> str:
    if text != text.strip() or parse_quantity(text) <= 0:
        raise ValueError(
            f"must be a Kubernetes quantity above 0 such as 500m, 2, 512Mi, got {text!r}"
        )
    return text


def non_negative_duration(text: str) -> float:
    return parse_duration(text)


def affinity_file(text: str) -> Mapping[str, Any]:
    """A pod ``affinity`` from a YAML file: the mapping itself or one under ``affinity:``."""
    try:
        loaded = yaml.safe_load(Path(text).read_text(encoding="utf-8"))
    except OSError as e:
        raise ValueError(f"cannot read {text}: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise ValueError(f"{text} is not valid YAML: {str(e).splitlines()[0]}") from e
    if isinstance(loaded, dict) and list(loaded) == ["affinity"]:
        loaded = loaded["affinity"]
    if not isinstance(loaded, dict) or not loaded:
        raise ValueError(f"{text} must hold a mapping of {', '.join(_AFFINITY_KEYS)}")
    unknown = sorted(str(k) for k in loaded if k not in _AFFINITY_KEYS)
    if unknown:
        raise ValueError(
            f"{text}: unknown affinity key(s) {', '.join(unknown)}; use {', '.join(_AFFINITY_KEYS)}"
        )
    return loaded


def slo_expression(text: str) -> str:
    """An ``--slo`` gate, checked now so a typo is refused before the load, not after it.

    The analysis parser names the flag itself; the option layer prefixes the source the text came
    from (flag, environment variable or config key), so only the quoted expression is kept."""
    from analysis.judge.slo import parse_slo

    try:
        parse_slo(text)
    except ValueError as e:
        raise ValueError(str(e).removeprefix("--slo ")) from None
    return text


def whatif_spec(text: str) -> str:
    """A ``--whatif`` replay, checked as the flags are read (pandas loads only if one is given)."""
    from analysis.judge.whatif import parse_whatif

    try:
        parse_whatif(text)
    except ValueError as e:
        raise ValueError(str(e).removeprefix("--whatif ")) from None
    return text


def parse_cidr(text: str) -> str:
    """An IPv4 or IPv6 CIDR (``10.0.0.5/32``, ``fd00::/64``); a bare address means just it."""
    import ipaddress

    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError as e:
        raise ValueError(f"{text!r} is not an IP address or CIDR (10.0.0.5/32, fd00::/64)") from e
    return str(network)
