"""docs/run-directory.md is the contract users build on: its tables of ``samples/`` are the
columns the harness writes and the analysis reads, generated from the one schema module."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.data.contract import samples_section

pytestmark = pytest.mark.schema

DOC = Path(__file__).parents[2] / "docs" / "run-directory.md"


def test_the_documented_columns_are_the_schemas() -> None:
    assert samples_section() in DOC.read_text(encoding="utf-8"), (
        "regenerate the samples section: python -m analysis.data.contract"
    )


def test_every_run_json_field_is_documented() -> None:
    from dataclasses import fields

    from analysis.data.runjson import RunRecord

    text = DOC.read_text(encoding="utf-8")
    missing = [f.name for f in fields(RunRecord) if f.name != "extra" and f"`{f.name}`" not in text]
    assert missing == []


SCHEMAS = Path(__file__).parents[2] / "docs" / "schemas"


def test_the_committed_json_schemas_are_generated_from_the_typed_models() -> None:
    from analysis.data.contract import DIALECT, json_schemas, schema_text

    for name, schema in json_schemas().items():
        assert schema["$schema"] == DIALECT
        assert (SCHEMAS / name).read_text(encoding="utf-8") == schema_text(schema), (
            f"regenerate: python -m analysis.data.contract --schemas docs/schemas ({name})"
        )


def test_synthetic_runs_of_every_kind_validate(tmp_path: Path) -> None:
    """Summaries with HPAs, capacity and sizing, disruptions and a baseline comparison."""
    from analysis.report import write_report
    from tests.fixtures import scenarios as sc
    from tests.fixtures.contract import assert_valid_run_directory, assert_valid_summary
    from tests.unit.test_capacity import at_max_run

    memory = sc.pinned_by_memory(tmp_path / "memory")
    summaries = [
        write_report(memory, slos=["p95_ms<100", "ready_lag_s<60"], whatifs=["web:max=3"]),
        write_report(at_max_run(tmp_path / "capacity"), slos=["p95_ms<150"], target_rps=1000),
        write_report(sc.pinned_by_memory(tmp_path / "again"), baseline=memory),
    ]
    for summary in summaries:
        assert_valid_summary(summary)
    assert_valid_run_directory(memory)
