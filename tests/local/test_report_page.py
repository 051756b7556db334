"""report.html renders in a real headless Chromium: charts decode as PNGs, tables are there, no
error is shown. Chromium is required for this tier: the test fails (not skips) without it."""

from __future__ import annotations

import base64
import re
import subprocess
from pathlib import Path

import pytest

from analysis.report import write_report
from tests.fixtures import scenarios as sc

pytestmark = pytest.mark.local

CHROMIUM = Path("/usr/bin/chromium")
PNG = b"\x89PNG\r\n\x1a\n"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def _chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_report_page_renders_in_chromium(tmp_path: Path) -> None:
    if not CHROMIUM.is_file():
        pytest.fail(
            "Chromium is missing: install it with "
            "`apt-get update && apt-get install -y chromium` (needed by the local tier)"
        )
    run_dir = sc.pinned_by_memory(tmp_path / "run")
    write_report(run_dir, slos=["p95_ms<500", "oom_kills==0"], whatifs=["web:max=3"])
    page = (run_dir / "report" / "report.html").resolve()
    url = page.as_uri()

    dom = _chromium(tmp_path / "profile-dom", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    images = re.findall(
        r'<img class="chart" alt="([^"]+)" src="data:image/png;base64,([^"]+)"', html
    )
    assert {name for name, _ in images} >= {
        "timeline chart",
        "replicas chart",
        "memory chart",
        "latency chart",
        "whatif chart",
    }
    for _, data in images:
        assert base64.b64decode(data)[:8] == PNG
    for table in (
        "slos",
        "load",
        "hpas",
        "events",
        "workloads",
        "recommendations",
        "formulas",
        "whatif",
    ):
        assert f'<table class="{table}">' in html, table
    assert 'class="render-error"' not in html
    assert "hpa_at_max" in html and "Why it matters" in html

    shot = tmp_path / "page.png"
    result = _chromium(
        tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1280,4000", url
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.read_bytes()[:8] == PNG
    assert shot.stat().st_size > 50_000  # a blank page is a few kB
