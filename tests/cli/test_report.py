"""`certplane report --html`: a self-contained page that really renders (headless Chromium screenshot)."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
from pathlib import Path

import pytest

from .helpers import BASE, decode_png, entry, run_cli, write_inventory

CHROMIUM = Path("/usr/bin/chromium")
DAY = dt.timedelta(days=1)
NOW = BASE - 100 * DAY
# the chart's solid urgency fills (cli/report.py COLOURS)
URGENCY_RGB = {"critical": (0xC8, 0x37, 0x4A), "warning": (0xD9, 0x9A, 0x00), "ok": (0x2E, 0x8B, 0x6A)}


def fleet(tmp_path: Path) -> Path:
    return write_inventory(tmp_path / "inv.json", {
        "www": entry(not_after=NOW + 250 * DAY, lifetime_days=365, renewal_before_days=30, targets=("edge", "alb")),
        "api": entry(not_after=NOW + 20 * DAY, lifetime_days=365, renewal_before_days=10,
                     domains=("api.example.test",), targets=("edge",), owner="api-team"),
        "legacy": entry(not_after=NOW + 40 * DAY, lifetime_days=365, renewal_before_days=60,
                        domains=("legacy.example.test",), owner="<b>ops</b>"),  # renewal overdue
        "old": entry(not_after=NOW - 3 * DAY, domains=("old.example.test",), key_algorithm="RSA-2048"),
    })


def test_html_is_self_contained_and_has_every_section(tmp_path):
    out = tmp_path / "report.html"
    result = run_cli("report", "--inventory-file", str(fleet(tmp_path)), "--html", str(out), now=NOW)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == f"wrote {out} (4 certificates, stack file:inv.json)"
    page = out.read_text()
    for heading in ("Expiry timeline", "Needs attention", "Certificates", "By target", "Key algorithms", "Issuers"):
        assert f">{heading}<" in page
    assert "<script" not in page.lower()
    # nothing is fetched at view time: the only URL is the SVG namespace
    assert re.findall(r"(?:https?:)?//[\w.-]+", page) == ["http://www.w3.org"]
    assert not re.search(r"""(?:src|href)\s*=|@import|url\(""", page)
    assert "&lt;b&gt;ops&lt;/b&gt;" in page and "<b>ops</b>" not in page  # escaped
    # the timeline: one bar per valid certificate, coloured by urgency, renewal diamonds, an expired marker
    svg = page[page.index("<svg"):page.index("</svg>")]
    assert svg.count('fill="#2e8b6a"') == 1 and svg.count('fill="#d99a00"') == 1
    assert svg.count('fill="#c8374a"') >= 2  # legacy's bar (renewal overdue) and old's marker
    assert "expired 3 d ago" in svg and "250 d · " in svg
    # the urgent list, most urgent first
    attention = page[page.index(">Needs attention<"):page.index(">Certificates<")]
    assert attention.index("old") < attention.index("legacy") < attention.index("api")
    # per target: edge holds www and api, alb holds www, legacy and old are unbound
    targets = page[page.index(">By target<"):page.index(">Key algorithms<")]
    assert targets.index("edge") < targets.index("Not bound to a target")


def _runs(width: int, height: int, bpp: int, pixels: bytearray, rgb: tuple[int, int, int], tol: int = 6) -> int:
    """The longest horizontal run of pixels within `tol` of `rgb`."""
    best = 0
    for y in range(height):
        run = 0
        row = y * width * bpp
        for x in range(width):
            i = row + x * bpp
            if abs(pixels[i] - rgb[0]) <= tol and abs(pixels[i + 1] - rgb[1]) <= tol \
                    and abs(pixels[i + 2] - rgb[2]) <= tol:
                run += 1
                best = max(best, run)
            else:
                run = 0
    return best


def test_report_renders_in_headless_chromium_with_the_chart(tmp_path):
    if not CHROMIUM.exists():
        pytest.fail("Chromium is not installed (/usr/bin/chromium): the report's rendering test needs it; "
                    "install the Debian package `chromium` (tools/bootstrap.sh should)")
    out = tmp_path / "report.html"
    assert run_cli("report", "--inventory-file", str(fleet(tmp_path)), "--html", str(out), now=NOW).returncode == 0
    png = tmp_path / "report.png"
    profile = tmp_path / "chromium-profile"
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--hide-scrollbars", f"--user-data-dir={profile}", f"--screenshot={png}",
               "--window-size=1280,1600", out.as_uri()]
    env = {**os.environ, "HOME": str(tmp_path)}
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0 and png.exists(), result.stderr[-2000:]
    data = png.read_bytes()
    assert len(data) > 30_000, "the screenshot is (nearly) blank"
    width, height, bpp, pixels = decode_png(data)
    assert (width, height) == (1280, 1600)
    # each urgency colour appears as a solid horizontal bar (the legend swatches are 18 px): only the timeline
    for level, rgb in URGENCY_RGB.items():
        assert _runs(width, height, bpp, pixels, rgb) >= 22, f"no {level} bar in the screenshot"
    colours = {bytes(pixels[i:i + 3]) for i in range(0, len(pixels), bpp * 97)}
    assert len(colours) > 50, "the screenshot has too few colours to be the rendered page"
