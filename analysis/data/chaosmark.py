"""The ``detail`` of a ``chaos`` mark in ``samples/marks.csv``: written by the harness when it
disrupts the target, read back by the analysis to measure each disruption.

One line of ``key=value`` words, readable in the CSV and parsed without guessing; the reason of a
skipped disruption comes last because it is free text::

    action=pod-kill target=shop/deployment/web namespace=shop workload=web pods=web-1,web-2 \
ready_before=3 grace_s=0
    action=pod-delete target=local/cmd/gunicorn namespace=local workload=gunicorn pods= \
ready_before=0 skipped=no running worker process of the target
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

_SKIPPED: Final = " skipped="


@dataclass(frozen=True)
class ChaosMark:
    """One disruption as the harness recorded it; ``pods`` empty when it was skipped."""

    action: str  # pod-delete or pod-kill
    target: str  # as the user wrote it, namespace filled in
    namespace: str  # the namespace and workload name under which samples/*.csv record it
    workload: str
    pods: tuple[str, ...]  # the pods hit, as named in pods.csv
    ready_before: int | None  # ready pods the action saw just before acting
    grace_s: int | None  # None: each pod's own terminationGracePeriodSeconds
    skipped: str | None = None  # why nothing was hit

    def detail(self) -> str:
        words = [
            f"action={self.action}",
            f"target={self.target}",
            f"namespace={self.namespace}",
            f"workload={self.workload}",
            f"pods={','.join(self.pods)}",
            f"ready_before={'' if self.ready_before is None else self.ready_before}",
            f"grace_s={'' if self.grace_s is None else self.grace_s}",
        ]
        line = " ".join(words)
        if self.skipped is not None:
            line += _SKIPPED + " ".join(self.skipped.split())
        return line


def parse_chaos_detail(detail: str) -> ChaosMark | None:
    """The mark of ``detail``, or None when it is not one (an older or hand-written mark)."""
    head, sep, skipped = detail.partition(_SKIPPED)
    fields: dict[str, str] = {}
    for word in head.split():
        key, equals, value = word.partition("=")
        if equals:
            fields[key] = value
    if not fields.get("action") or "workload" not in fields:
        return None
    return ChaosMark(
        action=fields["action"],
        target=fields.get("target", ""),
        namespace=fields.get("namespace", ""),
        workload=fields["workload"],
        pods=tuple(p for p in fields.get("pods", "").split(",") if p),
        ready_before=_int(fields.get("ready_before")),
        grace_s=_int(fields.get("grace_s")),
        skipped=skipped.strip() if sep else None,
    )


def _int(text: str | None) -> int | None:
    try:
        return None if not text else int(text)
    except ValueError:
        return None
