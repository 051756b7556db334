"""The run directory on disk: ``run.json``, append-only ``samples/*.csv``, ``locust/``, ``report/``.

Every sample file is opened once in append mode, gets its header once, and is flushed after every
tick, so a harness killed with SIGKILL leaves every sample taken up to its last tick readable (the
kernel keeps what was flushed). ``run.json`` is replaced atomically, never half-written.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from analysis.data import schema
from analysis.data.runjson import record_from_dict
from harness.errors import RunDirectoryError
from harness.session.core import RunMode, RunStatus

Row = Mapping[str, Any]


def new_run_id(name: str, now_s: float) -> str:
    """``yyyymmdd-HHMMSS-<name>`` in UTC, as docs/run-directory.md says."""
    stamp = datetime.fromtimestamp(now_s, tz=UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{name}"


def _cell(value: Any) -> str:
    """Empty means not measured; booleans as true/false; floats without noise."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        return f"{value:.6f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))
    return str(value)


@dataclass
class SampleWriter:
    """One append-only CSV of ``samples/``; header written once, even across reopens."""

    path: Path
    table: schema.CsvSchema
    _file: IO[str] | None = field(default=None, init=False, repr=False)
    _writer: Any = field(default=None, init=False, repr=False)

    def write(self, rows: Iterable[Row]) -> None:
        writer = self._open()
        # Thousands of pod rows a tick pass here: the names are read once, and a float (the
        # tick's time, the same requests and usage on many pods) is formatted once per call.
        names = self.table.names
        known = frozenset(names)
        floats: dict[float, str] = {}
        for row in rows:
            if not known.issuperset(row):
                unknown = set(row) - known
                raise ValueError(f"{self.table.file_name}: unknown columns {sorted(unknown)}")
            cells: list[str] = []
            for name in names:
                value: Any = row.get(name)
                kind = type(value)
                if kind is str:
                    cells.append(value)
                elif kind is float:
                    text = floats.get(value)
                    if text is None:
                        text = floats[value] = _cell(value)
                    cells.append(text)
                else:
                    cells.append(_cell(value))
            writer.writerow(cells)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _open(self) -> Any:
        if self._writer is None:
            fresh = not self.path.exists() or self.path.stat().st_size == 0
            self._file = self.path.open("a", encoding="utf-8", newline="")
            self._writer = csv.writer(self._file, lineterminator="\n")
            if fresh:
                self._writer.writerow(self.table.names)
        return self._writer


class RunStore:
    """Creates and fills one run directory. Pass it to whatever samples; close it at the end."""

    def __init__(self, directory: Path, metadata: dict[str, Any]) -> None:
        self.directory = directory
        self.metadata = metadata
        self._writers = {
            table.file_name: SampleWriter(directory / schema.SAMPLES_DIR / table.file_name, table)
            for table in schema.ALL_SAMPLES
        }

    @classmethod
    def create(
        cls,
        out_dir: Path,
        *,
        name: str,
        mode: RunMode,
        config: Mapping[str, Any],
        sample_interval_s: float,
        now_s: float | None = None,
        run_id: str | None = None,
    ) -> RunStore:
        started = time.time() if now_s is None else now_s
        run_id = run_id or new_run_id(name, started)
        directory = out_dir / run_id
        suffix = 1
        while directory.exists():
            suffix += 1
            directory = out_dir / f"{run_id}-{suffix}"
        try:
            for sub in (schema.SAMPLES_DIR, schema.LOCUST_DIR, schema.REPORT_DIR):
                (directory / sub).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunDirectoryError(f"cannot create run directory {directory}: {e.strerror}") from e
        from harness import __version__

        metadata: dict[str, Any] = {
            "id": directory.name,
            "version": __version__,
            "mode": mode,
            "config": dict(config),
            "start": started,
            "end": None,
            "status": "running",
            "sample_interval_s": sample_interval_s,
        }
        store = cls(directory, metadata)
        store.save_metadata()
        for table in schema.ALL_SAMPLES:  # every file exists from the start, header only
            store.append(table, [])
        store.flush()
        return store

    @property
    def run_id(self) -> str:
        return str(self.metadata["id"])

    def append(self, table: schema.CsvSchema, rows: Iterable[Row]) -> None:
        self._writers[table.file_name].write(rows)

    def mark(self, kind: schema.MarkKind, detail: str = "", ts: float | None = None) -> None:
        self.append(
            schema.MARKS,
            [{"ts": time.time() if ts is None else ts, "kind": kind, "detail": detail}],
        )
        self.flush()

    def flush(self) -> None:
        """End of a tick: everything appended so far survives a SIGKILL from here on."""
        for writer in self._writers.values():
            writer.flush()

    def update(self, **fields: Any) -> None:
        self.metadata.update(fields)
        self.save_metadata()

    def finish(self, status: RunStatus, end_s: float | None = None) -> None:
        self.flush()
        self.update(status=status, end=time.time() if end_s is None else end_s)
        self.close()

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()

    def save_metadata(self) -> None:
        """run.json through its typed schema (``analysis.data.runjson``), replaced atomically."""
        path = self.directory / schema.RUN_JSON
        plain = json.loads(json.dumps(self.metadata, default=str))
        record = record_from_dict(plain, str(path))
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(record.to_json(), encoding="utf-8")
        tmp.replace(path)

    def locust_path(self, file_name: str) -> Path:
        return self.directory / schema.LOCUST_DIR / file_name

    def report_dir(self) -> Path:
        return self.directory / schema.REPORT_DIR
