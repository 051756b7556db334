"""Read a run directory into typed DataFrames, whatever state the harness left it in.

A run may be cut short (SIGKILL mid-line), a sampler may never have measured something, a file may
be missing or empty. Loading never raises for any of that: each table comes back with its schema's
columns (empty if need be) and every irregularity becomes a ``DataProblem`` that the findings turn
into ``metrics_missing`` or ``sampler_gaps``. Integer columns load as float64 so that an empty cell
stays NaN ("not measured") instead of turning into zero.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import pandas as pd

from analysis.data import schema

ProblemKind = Literal["missing", "empty", "columns", "truncated", "unparsable"]

_TRUE = frozenset({"true", "1", "yes", "t"})
_FALSE = frozenset({"false", "0", "no", "f"})
# Default when run.json is unreadable: the harness's own default sample interval.
DEFAULT_SAMPLE_INTERVAL_S = 2.0


@dataclass(frozen=True)
class DataProblem:
    """Something in the run directory that was not as the contract says."""

    file: str  # relative to the run directory, e.g. "samples/pods.csv"
    kind: ProblemKind
    detail: str


@dataclass(frozen=True)
class RunData:
    """Everything in one run directory, typed, with what was wrong while reading it."""

    run_dir: Path
    meta: dict[str, Any]
    locust: pd.DataFrame
    hpa: pd.DataFrame
    hpa_metrics: pd.DataFrame
    workloads: pd.DataFrame
    pods: pd.DataFrame
    events: pd.DataFrame
    marks: pd.DataFrame
    stats_history: pd.DataFrame  # Locust's own, every row kept, ``N/A`` as NaN
    stats: pd.DataFrame  # Locust's own ``stats.csv``
    failures: pd.DataFrame  # Locust's own ``failures.csv``
    problems: tuple[DataProblem, ...]
    # Added later than the rest (older run directories lack them: empty, never a problem).
    workers: pd.DataFrame = field(default_factory=lambda: empty_table(schema.WORKERS))
    master: pd.DataFrame = field(default_factory=lambda: empty_table(schema.MASTER))
    exceptions: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(
            {
                c: pd.Series([], dtype=float if c == "Count" else str)
                for c in schema.LOCUST_EXCEPTIONS_COLUMNS
            }
        )
    )

    @property
    def run_id(self) -> str:
        return str(self.meta.get("id") or self.run_dir.name)

    @property
    def mode(self) -> str:
        return str(self.meta.get("mode") or "unknown")

    @property
    def sample_interval_s(self) -> float:
        value = as_float(self.meta.get("sample_interval_s"))
        return value if value is not None and value > 0 else DEFAULT_SAMPLE_INTERVAL_S


def as_float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def empty_table(table: schema.CsvSchema) -> pd.DataFrame:
    """A frame with the schema's columns and dtypes and no rows."""
    return _typed(pd.DataFrame({name: pd.Series([], dtype=str) for name in table.names}), table)


def _typed(frame: pd.DataFrame, table: schema.CsvSchema) -> pd.DataFrame:
    columns: dict[str, pd.Series[Any]] = {}
    for name, kind in table.columns:
        raw = frame[name]
        if kind in ("float", "int"):
            columns[name] = pd.to_numeric(raw, errors="coerce").astype("float64")
        elif kind == "bool":
            text = raw.astype(str).str.strip().str.lower()
            values = [True if t in _TRUE else False if t in _FALSE else None for t in text]
            columns[name] = pd.Series(values, index=frame.index, dtype="boolean")
        else:
            columns[name] = raw.fillna("").astype(str)
    return pd.DataFrame(columns, index=frame.index)


def _read_text(path: Path, rel: str) -> tuple[str | None, list[DataProblem]]:
    """The file's complete lines; a last line without its newline was cut by a kill: dropped."""
    if not path.is_file():
        return None, [DataProblem(rel, "missing", "file not written")]
    raw = path.read_bytes()
    if not raw.strip():
        return None, [DataProblem(rel, "empty", "file is empty")]
    problems = []
    if not raw.endswith(b"\n"):
        cut = raw.rfind(b"\n")
        problems.append(DataProblem(rel, "truncated", "last line cut mid-write; dropped"))
        raw = raw[: cut + 1] if cut >= 0 else b""
    text = raw.decode("utf-8", errors="replace")
    if not text.strip():
        return None, [*problems, DataProblem(rel, "empty", "no complete line")]
    return text, problems


def _read_csv_text(text: str) -> pd.DataFrame:
    return pd.read_csv(
        io.StringIO(text), dtype=str, keep_default_na=False, on_bad_lines="skip", engine="c"
    )


def read_table(
    path: Path, table: schema.CsvSchema, rel: str
) -> tuple[pd.DataFrame, list[DataProblem]]:
    """One ``samples/*.csv`` with the schema's columns; missing columns are added empty."""
    text, problems = _read_text(path, rel)
    if text is None:
        quiet = table.added_later_file and not path.exists()
        return empty_table(table), [] if quiet else problems
    try:
        frame = _read_csv_text(text)
    except (ValueError, pd.errors.ParserError) as e:
        return empty_table(table), [*problems, DataProblem(rel, "unparsable", str(e)[:200])]
    frame.columns = [str(c).strip() for c in frame.columns]
    absent = [name for name in table.names if name not in frame.columns]
    if absent:
        broken = [name for name in absent if name not in table.added_later]
        if broken:
            problems.append(DataProblem(rel, "columns", "columns missing: " + ", ".join(broken)))
        frame = frame.assign(**dict.fromkeys(absent, ""))
    typed = _typed(frame, table)
    bad_ts = int(typed["ts"].isna().sum())
    if bad_ts:
        problems.append(
            DataProblem(rel, "unparsable", f"{bad_ts} rows without a timestamp dropped")
        )
        typed = typed[typed["ts"].notna()]
    return typed.sort_values("ts", kind="stable").reset_index(drop=True), problems


def read_locust_csv(
    path: Path, columns: tuple[str, ...], text_columns: tuple[str, ...], rel: str, required: bool
) -> tuple[pd.DataFrame, list[DataProblem]]:
    """One of Locust's own CSVs: ``N/A`` and empty cells become NaN in numeric columns."""
    text, problems = _read_text(path, rel)
    if text is None:
        empty = pd.DataFrame(
            {c: pd.Series([], dtype=str if c in text_columns else float) for c in columns}
        )
        return empty, problems if required else []
    frame = _read_csv_text(text)
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        problems.append(DataProblem(rel, "columns", "columns missing: " + ", ".join(absent)))
        frame = frame.assign(**dict.fromkeys(absent, ""))
    converted = {
        c: frame[c].fillna("").astype(str)
        if c in text_columns
        else pd.to_numeric(frame[c], errors="coerce").astype("float64")
        for c in frame.columns
    }
    return pd.DataFrame(converted, index=frame.index), problems


def _read_meta(path: Path) -> tuple[dict[str, Any], list[DataProblem]]:
    if not path.is_file():
        return {}, [DataProblem(schema.RUN_JSON, "missing", "run.json not written")]
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return {}, [DataProblem(schema.RUN_JSON, "unparsable", str(e)[:200])]
    if not isinstance(meta, dict):
        return {}, [DataProblem(schema.RUN_JSON, "unparsable", "not a JSON object")]
    return meta, []


# Locust's own files read into RunData: (columns, columns kept as text, must a run have it).
_LOCUST_FILES: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...], bool]]] = {
    "stats_history.csv": (schema.LOCUST_STATS_HISTORY_COLUMNS, ("Type", "Name"), True),
    "stats.csv": (schema.LOCUST_STATS_COLUMNS, ("Type", "Name"), True),
    "failures.csv": (schema.LOCUST_FAILURES_COLUMNS, ("Method", "Name", "Error"), False),
    "exceptions.csv": (schema.LOCUST_EXCEPTIONS_COLUMNS, ("Message", "Traceback", "Nodes"), False),
}


def load_run(run_dir: Path) -> RunData:
    """Reads every file of the run directory contract (docs/run-directory.md)."""
    meta, problems = _read_meta(run_dir / schema.RUN_JSON)
    tables: dict[str, pd.DataFrame] = {}
    for table in schema.ALL_SAMPLES:
        rel = f"{schema.SAMPLES_DIR}/{table.file_name}"
        tables[table.file_name], found = read_table(run_dir / rel, table, rel)
        problems.extend(found)
    locust: dict[str, pd.DataFrame] = {}
    for name, (columns, text_columns, required) in _LOCUST_FILES.items():
        locust[name], found = read_locust_csv(
            run_dir / schema.LOCUST_DIR / name,
            columns,
            text_columns,
            f"{schema.LOCUST_DIR}/{name}",
            required=required,
        )
        problems.extend(found)
    history, stats = locust["stats_history.csv"], locust["stats.csv"]
    failures, exceptions = locust["failures.csv"], locust["exceptions.csv"]
    return RunData(
        run_dir=run_dir,
        meta=meta,
        locust=tables[schema.LOCUST.file_name],
        hpa=tables[schema.HPA.file_name],
        hpa_metrics=tables[schema.HPA_METRICS.file_name],
        workloads=tables[schema.WORKLOADS.file_name],
        pods=tables[schema.PODS.file_name],
        events=tables[schema.EVENTS.file_name],
        marks=tables[schema.MARKS.file_name],
        stats_history=history,
        stats=stats,
        failures=failures,
        problems=tuple(problems),
        workers=tables[schema.WORKERS.file_name],
        master=tables[schema.MASTER.file_name],
        exceptions=exceptions,
    )
