"""JUnit XML of a run, the format CI systems (GitHub Actions reporters, GitLab, Jenkins) read:
one test case per SLO, per high-severity finding and per regression against a baseline, a failure
carrying the message. Built with ``xml.etree`` so any text from the run is escaped correctly."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

_PREFIX = "kubeswarm"


def _suite(name: str, cases: Sequence[tuple[str, str | None, str]]) -> ET.Element:
    """``cases``: (name, failure message or None, failure type)."""
    failures = sum(1 for _, message, _ in cases if message is not None)
    suite = ET.Element(
        "testsuite",
        name=f"{_PREFIX}.{name}",
        tests=str(len(cases)),
        failures=str(failures),
        errors="0",
        skipped="0",
        time="0",
    )
    for case_name, message, kind in cases:
        case = ET.SubElement(
            suite, "testcase", classname=f"{_PREFIX}.{name}", name=case_name, time="0"
        )
        if message is not None:
            failure = ET.SubElement(case, "failure", message=message, type=kind)
            failure.text = message
    return suite


def junit_tree(
    summary: Mapping[str, Any], comparison: Mapping[str, Any] | None = None
) -> ET.ElementTree[ET.Element]:
    """The XML document (see ``write_junit``)."""
    run = str(summary["run_id"])
    verdict = str(summary["verdict"])
    suites = [
        _suite(
            "run",
            [
                (
                    f"verdict of {run}",
                    # an incomplete run did not pass either: a CI reporter must show it red
                    f"verdict {verdict}" if verdict in ("fail", "incomplete") else None,
                    "verdict",
                )
            ],
        )
    ]
    slo_cases = [
        (
            str(s["expr"]),
            None
            if s["passed"]
            else f"SLO {s['expr']} failed: observed "
            + ("nothing (not measured)" if s["observed"] is None else "")
            + ("at least " if s["observed"] is not None and s.get("at_least") else "")
            + ("" if s["observed"] is None else f"{s['observed']:g}"),
            "slo_failed",
        )
        for s in summary["slos"]
    ]
    suites.append(_suite("slo", slo_cases))
    # A failed SLO is also a high finding (slo_failed); its own test case already says so.
    high = [f for f in summary["findings"] if f["severity"] == "high" and f["code"] != "slo_failed"]
    suites.append(
        _suite(
            "findings",
            [(f"{f['code']} {f['subject']}", str(f["message"]), str(f["code"])) for f in high],
        )
    )
    compared = comparison if comparison is not None else summary.get("comparison")
    if compared is not None:
        regressions = compared.get("regressions", [])
        base = compared["baseline"]["run_id"]
        cases: list[tuple[str, str | None, str]] = [
            (f"{r['metric']} {r['subject']}", str(r["message"]), "regression") for r in regressions
        ]
        if not cases:
            cases = [(f"no regression against {base}", None, "regression")]
        suites.append(_suite("regressions", cases))
    root = ET.Element(
        "testsuites",
        name=f"{_PREFIX} {run}",
        tests=str(sum(int(s.get("tests", "0")) for s in suites)),
        failures=str(sum(int(s.get("failures", "0")) for s in suites)),
        errors="0",
        time="0",
    )
    root.extend(suites)
    return ET.ElementTree(root)


def write_junit(
    path: Path, summary: Mapping[str, Any], comparison: Mapping[str, Any] | None = None
) -> Path:
    """Writes the JUnit XML file for ``summary`` (summary.json's dict) and, if given, a
    comparison (``compare.json``'s dict, ``Comparison.to_dict()``); without one, the summary's own
    ``comparison`` (present when the report was built with a baseline) is used."""
    tree = junit_tree(summary, comparison)
    ET.indent(tree)
    path.parent.mkdir(parents=True, exist_ok=True)
    tree.write(path, encoding="utf-8", xml_declaration=True)
    return path
