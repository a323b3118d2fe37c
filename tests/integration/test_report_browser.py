"""``report.html`` in a real browser: headless Chromium (Debian's ``chromium`` package).

Chromium opens the page from ``file://`` with background networking off, takes a
screenshot and dumps the DOM: the screenshot must be a full, non-blank page and the DOM
text must have every section title. Without ``chromium`` the test skips, or fails under
``KG_ENHANCE_REQUIRE_SERVICES=1`` (``.ci/setup.sh`` installs it).

``KG_ENHANCE_REPORT_SCREENSHOT=docs/report.png`` also saves the screenshot, scaled
down, there (how the README's picture is made).
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from kg_enhance.report import SECTIONS
from tests.support.helpers import REPO, service_missing
from tests.support.report_run import report_run

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 1400, 4000


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        service_missing("chromium is not installed (apt-get install chromium; .ci/setup.sh does it)")
    assert found is not None
    return found


def _browser(
    binary: str, profile: Path, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    binary = chromium()
    run = report_run(tmp_path / "run")
    url = run.html.resolve().as_uri()
    shot = tmp_path / "report.png"
    got = _browser(
        binary, tmp_path / "profile", f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}", url
    )
    assert got.returncode == 0 and shot.is_file(), got.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.size == (WIDTH, HEIGHT)
        rgb = image.convert("RGB")
        # a rendered page, not a blank or error screen: many colours (figures), mostly light background
        colours = rgb.getcolors(maxcolors=1 << 20) or []
        assert len(colours) > 200, len(colours)
        saved = os.environ.get("KG_ENHANCE_REPORT_SCREENSHOT")
        if saved:
            target = Path(saved) if Path(saved).is_absolute() else REPO / saved
            small = rgb.resize((WIDTH // 2, HEIGHT // 2), Image.Resampling.LANCZOS)
            small = small.quantize(colors=128, method=Image.Quantize.MEDIANCUT)
            small.save(target, optimize=True)
    assert shot.stat().st_size > 50_000

    dom = _browser(binary, tmp_path / "profile", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = html.unescape(re.sub(r"<[^>]+>", " ", dom.stdout))
    for title in SECTIONS.values():
        assert title in text, title
    assert "<img" in dom.stdout and 'src="data:image/png;base64,' in dom.stdout
