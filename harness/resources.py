"""Where the shipped ``locustfiles/`` and ``k8s-jobs/`` are, in a wheel or in a checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def shipped_dir(name: str) -> Path:
    """``locustfiles`` or ``k8s-jobs``: in the wheel (``harness/_data``) or beside the package."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"kubeswarm's {name}/ directory is missing from this installation")


def locustfile(file_name: str) -> Path:
    return shipped_dir("locustfiles") / file_name
