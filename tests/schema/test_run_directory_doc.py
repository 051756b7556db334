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
