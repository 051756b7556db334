"""report.html and compare.html render in a real headless Chromium: the timeline leads the page,
charts decode as PNGs drawn at twice the size they are shown, tables are there, no error is shown.
Chromium is required for this tier: the test fails (not skips) without it. Screenshots go to the
test's temporary directory."""

from __future__ import annotations

import base64
import re
import subprocess
from pathlib import Path

import pytest

from analysis.compare import compare, write_comparison
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


IMAGE = re.compile(
    r'<img class="chart" alt="([^"]+)" width="(\d+)" src="data:image/png;base64,([^"]+)"'
)


def _need_chromium() -> None:
    if not CHROMIUM.is_file():
        pytest.fail(
            "Chromium is missing: install it with "
            "`apt-get update && apt-get install -y chromium` (needed by the local tier)"
        )


def _png_width(data: bytes) -> int:
    assert data[:8] == PNG
    return int.from_bytes(data[16:20], "big")


def _screenshot(tmp_path: Path, url: str, name: str) -> Path:
    shot = tmp_path / name
    result = _chromium(
        tmp_path / f"profile-{name}", f"--screenshot={shot}", "--window-size=1280,4000", url
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.read_bytes()[:8] == PNG
    assert shot.stat().st_size > 50_000  # a blank page is a few kB
    return shot


def test_report_page_renders_in_chromium(tmp_path: Path) -> None:
    _need_chromium()
    run_dir = sc.pinned_by_memory(tmp_path / "run")
    write_report(run_dir, slos=["p95_ms<500", "oom_kills==0"], whatifs=["web:max=3"])
    page = (run_dir / "report" / "report.html").resolve()
    url = page.as_uri()

    dom = _chromium(tmp_path / "profile-dom", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    images = IMAGE.findall(html)
    assert [name for name, _, _ in images] == [
        "timeline chart",
        "latency chart",
        "replicas chart",
        "memory chart",
        "whatif chart",
    ]
    for _, width, data in images:
        assert _png_width(base64.b64decode(data)) == 2 * int(width)
    # The picture leads: the timeline comes right after the verdict, before the findings.
    assert html.index('class="verdict') < html.index("timeline chart") < html.index(">Findings<")
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
    _screenshot(tmp_path, url, "report.png")


def test_compare_page_renders_in_chromium(tmp_path: Path) -> None:
    _need_chromium()
    base = sc.pinned_by_memory(tmp_path / "base")
    cand = sc.pinned_by_memory(tmp_path / "cand")
    stats = cand / "samples" / "locust.csv"
    # The candidate is slower: every p95 of 120 ms becomes 180 ms.
    stats.write_text(stats.read_text().replace(",120.0\n", ",180.0\n"))
    comparison = compare(base, cand)
    assert [r.metric for r in comparison.regressions] == ["p95_ms"]
    url = write_comparison(comparison, tmp_path / "out")["html"].resolve().as_uri()

    dom = _chromium(tmp_path / "profile-compare", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    images = IMAGE.findall(html)
    assert [name for name, _, _ in images] == ["timeline chart"]
    assert _png_width(base64.b64decode(images[0][2])) == 2 * int(images[0][1])
    assert 'class="verdict regression"' in html and '<tr class="worse">' in html
    assert 'class="render-error"' not in html
    _screenshot(tmp_path, url, "compare.png")
