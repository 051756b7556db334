"""The local Locust master's own CPU and RSS, one row of ``samples/master.csv`` per tick.

The master's memory grows with its stats history (Locust #2045); the report shows it with its
slope for long runs. Read with psutil, never signalled; a master that exited gives no row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psutil


@dataclass
class MasterProcessSampler:
    pid: int
    _last_cpu: tuple[float, float] | None = None  # (tick time, CPU seconds) at the last row

    def rows(self, now: float) -> list[dict[str, Any]]:
        try:
            process = psutil.Process(self.pid)
            with process.oneshot():
                times = process.cpu_times()
                rss = float(process.memory_info().rss)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return []
        busy = times.user + times.system
        cpu_pct = None
        if self._last_cpu is not None and now > self._last_cpu[0]:
            cpu_pct = max(0.0, 100.0 * (busy - self._last_cpu[1]) / (now - self._last_cpu[0]))
        self._last_cpu = (now, busy)
        return [{"ts": now, "cpu_pct": cpu_pct, "memory_bytes": rss}]
