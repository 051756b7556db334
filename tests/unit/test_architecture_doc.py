"""docs/ARCHITECTURE.md names every module of the harness and the analysis: a module added
without a word on where it sits fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).parents[2]


def test_every_module_is_named_in_the_architecture() -> None:
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    missing = []
    for package in ("harness", "analysis"):
        for path in sorted((REPO / package).rglob("*.py")):
            if path.name in ("__init__.py", "__main__.py"):
                continue
            folder = f"{path.parent.relative_to(REPO).as_posix()}/"
            if folder not in text and f"{path.parent.name}/" not in text:
                missing.append(folder)
            if path.stem not in text:
                missing.append(path.relative_to(REPO).as_posix())
    assert missing == []
