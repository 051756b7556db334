"""Progress lines of a tier's build and start, printed while pytest captures output."""

from __future__ import annotations

import pytest


def terminal_line(config: pytest.Config, line: str) -> None:
    """Print `line` on pytest's terminal now, even from inside a test or fixture."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    if capture is None:
        reporter.write_line(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(line)
