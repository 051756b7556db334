"""Which ticks of a workload's pods go to ``pods.csv``: those where something changed.

The metrics API measures usage every 15 s and pods change state rarely, so at a 2 s interval most
ticks would repeat the last rows: 24 h of 500 pods is 21.6 M rows, 5.4 M of them new. A snapshot
(every pod of the workload) is written when any row differs from the workload's last one, apart
from ``ts``, and at least every ``schema.PODS_HEARTBEAT_S`` so a reader knows it still holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from analysis.data import schema
from harness.kube import rows


def _content(pod_rows: Sequence[rows.Row]) -> list[tuple[tuple[str, object], ...]]:
    """The rows without ``ts``, in pod order (values may be None: never compared by order)."""
    ordered = sorted(pod_rows, key=lambda r: str(r.get("pod")))
    return [
        tuple(sorted(((k, v) for k, v in r.items() if k != "ts"), key=lambda kv: kv[0]))
        for r in ordered
    ]


@dataclass
class PodSnapshots:
    heartbeat_s: float = schema.PODS_HEARTBEAT_S
    _last: dict[tuple[str, str], tuple[float, list[tuple[tuple[str, object], ...]]]] = field(
        default_factory=dict
    )

    def due(self, key: tuple[str, str], now: float, pod_rows: Sequence[rows.Row]) -> bool:
        """True when these rows are to be written (and remembered as the last snapshot)."""
        content = _content(pod_rows)
        last = self._last.get(key)
        if last is not None and last[1] == content and now - last[0] < self.heartbeat_s:
            return False
        self._last[key] = (now, content)
        return True
