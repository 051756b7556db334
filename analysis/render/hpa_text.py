"""The words for an HPA beyond its numbers, shared by the console, report.md and the page:
who made it, each metric in its own terms, and how closely the model reproduced it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def owner_text(hpa: Mapping[str, Any]) -> str:
    """``made by KEDA (ScaledObject/orders)``, ``owned by X/y`` or empty."""
    owner = hpa.get("owner")
    if not owner:
        return ""
    maker = hpa.get("managed_by")
    return f"made by {maker} ({owner})" if maker else f"owned by {owner}"


def detail_lines(hpa: Mapping[str, Any], *, resources: bool = True) -> list[str]:
    """The owner, each metric's sentence (Resource metrics only when ``resources``) and the
    model check's sentence, one line each."""
    lines = [owner_text(hpa)] if hpa.get("owner") else []
    for metric in hpa.get("metrics") or ():
        if resources or metric.get("type") not in ("Resource", None):
            lines.append(str(metric["sentence"]))
    check = hpa.get("model_check")
    if check:
        lines.append(str(check["sentence"]))
    return lines
