"""Which ticks of a workload's pods go to ``pods.csv``: those where something changed.

The metrics API measures usage every 15 s and pods change state rarely, so at a 2 s interval most
ticks would repeat the last rows: 24 h of 500 pods is 21.6 M rows, 5.4 M of them new. A snapshot
(every pod of the workload) is written when any row differs from the workload's last one, apart
from ``ts``, and at least every ``schema.PODS_HEARTBEAT_S`` so a reader knows it still holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from analysis.data import schema
from harness.kube import rows

# What a snapshot compares: every column of pods.csv but the tick's time.
_COMPARED: Final = tuple(name for name in schema.PODS.names if name != "ts")

# A workload's pods as compared: each pod's cells but ``ts``, by pod name. Built with C-level
# calls (``map`` over ``dict.get``) since thousands of pods pass here every tick.
_Content = dict[object, tuple[object, ...]]


def _content(pod_rows: Sequence[rows.Row]) -> _Content:
    return {row.get("pod"): tuple(map(row.get, _COMPARED)) for row in pod_rows}


@dataclass
class PodSnapshots:
    heartbeat_s: float = schema.PODS_HEARTBEAT_S
    _last: dict[tuple[str, str], tuple[float, _Content]] = field(default_factory=dict)

    def due(
        self,
        key: tuple[str, str],
        now: float,
        pod_rows: Sequence[rows.Row],
        *,
        unchanged: bool = False,
    ) -> bool:
        """True when these rows are to be written (and remembered as the last snapshot).
        ``unchanged``: the caller knows the rows are the last ones again (``ts`` aside), so only
        the heartbeat is looked at."""
        last = self._last.get(key)
        if unchanged and last is not None:
            if now - last[0] < self.heartbeat_s:
                return False
            self._last[key] = (now, last[1])
            return True
        content = _content(pod_rows)
        if last is not None and last[1] == content and now - last[0] < self.heartbeat_s:
            return False
        self._last[key] = (now, content)
        return True
