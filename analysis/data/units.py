"""Kubernetes quantities and durations as plain numbers.

The analysis must not import the Kubernetes client (it runs on run directories alone), yet what-if
changes are written the way users write them in manifests: ``768Mi``, ``250m``, ``1.5Gi``.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Final

_SUFFIXES: Final[dict[str, Decimal]] = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
_QUANTITY: Final = re.compile(r"^\s*([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z]*)\s*$")
# The API's own forms (``123456789n``, ``2048Ki``, ``250m``, ``3``): an integer and a suffix, read
# with exact integer arithmetic and rounded once to the nearest float. The metrics API returns
# thousands of them a list; the Decimal path below is for everything else users write.
_INTEGER_QUANTITY: Final = re.compile(r"([0-9]{1,18})([a-zA-Z]{0,2})")
_EXACT: Final[dict[str, tuple[int, int]]] = {
    suffix: ((int(factor), 1) if factor >= 1 else (1, int(1 / factor)))
    for suffix, factor in _SUFFIXES.items()
}
_DURATION_PART: Final = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS: Final = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_quantity(text: str | int | float) -> float:
    """``"768Mi"`` -> 805306368.0, ``"250m"`` -> 0.25; raises ValueError on anything else.

    The one quantity grammar of kubeswarm: what users write in options and what-ifs, and what the
    API server returns (``"12345n"``, ``"1.5Gi"``, ``"1e3"``; a number as it is).
    """
    if isinstance(text, bool):
        raise ValueError(f"not a Kubernetes quantity: {text!r}")
    if isinstance(text, int | float):
        if not math.isfinite(text):
            raise ValueError(f"not a Kubernetes quantity: {text!r}")
        return float(text)
    exact = _INTEGER_QUANTITY.fullmatch(text)
    if exact is not None and exact.group(2) in _EXACT:
        multiplier, divisor = _EXACT[exact.group(2)]
        return int(exact.group(1)) * multiplier / divisor
    match = _QUANTITY.match(text)
    if not match or match.group(2) not in _SUFFIXES:
        raise ValueError(f"not a Kubernetes quantity: {text!r} (examples: 768Mi, 1Gi, 250m, 2)")
    try:
        value = float(Decimal(match.group(1)) * _SUFFIXES[match.group(2)])
    except InvalidOperation as e:
        raise ValueError(f"not a Kubernetes quantity: {text!r}") from e
    except ArithmeticError:  # decimal.Overflow: 10E999999 is past any Decimal context
        value = math.inf
    if not math.isfinite(value):
        raise ValueError(f"not a Kubernetes quantity: {text!r} is too large")
    return value


def parse_cpu_millicores(text: str) -> float:
    """``"250m"`` -> 250.0, ``"1.5"`` -> 1500.0."""
    return parse_quantity(text) * 1000.0


def parse_duration(text: str) -> float:
    """Seconds from ``"90"``, ``"90s"``, ``"1m30s"``, ``"2h"`` or ``"500ms"``; else ValueError."""
    cleaned = text.strip().lower()
    if cleaned.startswith("-") and cleaned[1:2].isdigit():
        raise ValueError(f"not a duration: {text!r} (a duration cannot be negative)")
    try:
        seconds = float(cleaned)
    except ValueError:
        parts = _DURATION_PART.findall(cleaned)
        if not parts or "".join(n + u for n, u in parts) != cleaned:
            raise ValueError(f"not a duration: {text!r} (examples: 90s, 1m30s, 2h, 45)") from None
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    if not math.isfinite(seconds):
        raise ValueError(f"not a duration: {text!r} is too long")
    if seconds < 0:
        raise ValueError(f"not a duration: {text!r} (must be zero or more)")
    return seconds


def format_bytes(value: float) -> str:
    """Binary units as Kubernetes writes them: ``805306368`` -> ``"768Mi"``."""
    for suffix, factor in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if abs(value) >= factor:
            scaled = value / factor
            return f"{scaled:.0f}{suffix}" if scaled >= 100 else f"{scaled:.3g}{suffix}"
    return f"{value:.0f}"
