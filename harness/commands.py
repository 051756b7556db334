"""One function per CLI command: validated values in, one library call, a few printed lines out.

Heavy modules are imported inside each function so ``kubeswarm --help`` stays fast and a local run
never loads the Kubernetes client.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from harness.config import build_run_config
from harness.errors import (
    EXIT_CLUSTER,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SLO_FAILED,
    NotBuiltYet,
    UsageError,
)


def _verdict_exit(verdict: str, status: str = "completed") -> int:
    if status == "interrupted":
        return EXIT_INTERRUPTED
    if status == "failed":
        return EXIT_CLUSTER
    return EXIT_SLO_FAILED if verdict == "fail" else EXIT_OK


def demo(values: Mapping[str, Any], args: argparse.Namespace, out: TextIO) -> int:
    from harness.demo import DemoConfig, run_demo

    result = run_demo(DemoConfig.from_values(values), out)
    return _verdict_exit(result.verdict, result.status)


def run(values: Mapping[str, Any], args: argparse.Namespace, out: TextIO) -> int:
    config = build_run_config(values)
    if config.local:
        from harness.local import run_local

        result = run_local(config, out)
        return _verdict_exit(result.verdict, result.status)
    raise NotBuiltYet("in-cluster runs are not in this version yet; use --local")


def report(values: Mapping[str, Any], args: argparse.Namespace, out: TextIO) -> int:
    from analysis.report import format_summary, write_report

    run_dir = Path(args.run_dir)
    if not (run_dir / "run.json").is_file() and not (run_dir / "samples").is_dir():
        raise UsageError(f"{run_dir} is not a kubeswarm run directory (no run.json, no samples/)")
    try:
        summary = write_report(run_dir, slos=values["slos"], whatifs=values["whatif"])
    except ValueError as e:
        raise UsageError(str(e)) from e
    out.write(format_summary(summary, run_dir))
    return _verdict_exit(str(summary["verdict"]))


def render(values: Mapping[str, Any], args: argparse.Namespace, out: TextIO) -> int:
    raise NotBuiltYet("render is not in this version yet")


def ui(values: Mapping[str, Any], args: argparse.Namespace, out: TextIO) -> int:
    raise NotBuiltYet("ui is not in this version yet")


def list_runs(values: Mapping[str, Any], args: argparse.Namespace, out: TextIO) -> int:
    raise NotBuiltYet("list is not in this version yet")


def clean(values: Mapping[str, Any], args: argparse.Namespace, out: TextIO) -> int:
    raise NotBuiltYet("clean is not in this version yet")


def sample(values: Mapping[str, Any], args: argparse.Namespace, out: TextIO) -> int:
    raise NotBuiltYet("sample is not in this version yet")
