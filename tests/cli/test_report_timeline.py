"""`certplane report`: the expiry timeline with far-future expiries (year 9999, a century out): no crash, axis
labels that do not pile up, and no bar label cut off at the chart's right edge (measured by headless Chromium)."""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .helpers import BASE, entry, run_cli, write_inventory

CHROMIUM = Path("/usr/bin/chromium")
DAY = dt.timedelta(days=1)
NOW = BASE - 100 * DAY
FAR = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc)


def far_fleet(tmp_path: Path, furthest: dt.datetime) -> Path:
    return write_inventory(tmp_path / "inv.json", {
        "www": entry(not_after=NOW + 250 * DAY, lifetime_days=365, renewal_before_days=30),
        "api": entry(not_after=NOW + 20 * DAY, lifetime_days=365, renewal_before_days=10, domains=("api.example.test",)),
        "forever": entry(not_after=furthest, lifetime_days=400, renewal_before_days=30,
                         domains=("forever.example.test",)),
    })


def report(tmp_path: Path, furthest: dt.datetime) -> str:
    out = tmp_path / "report.html"
    result = run_cli("report", "--inventory-file", str(far_fleet(tmp_path, furthest)), "--html", str(out), now=NOW)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == f"wrote {out} (3 certificates, stack file:inv.json)"
    return out.read_text()


def svg_of(page: str) -> str:
    return page[page.index("<svg"):page.index("</svg>") + 6]


def axis_ticks(svg: str) -> list[tuple[float, str]]:
    """(x, label) of the axis labels (the texts above the first row, except `today`)."""
    return [(float(x), html.unescape(label)) for x, label in
            re.findall(r'<text x="([\d.]+)" y="20" font-size="11" fill="#5f6b7a" text-anchor="middle">([^<]*)</text>',
                       svg)]


@pytest.mark.parametrize("furthest", [FAR, NOW + 36525 * DAY], ids=["year-9999", "a-century-out"])
def test_a_far_future_expiry_renders(tmp_path, furthest):
    page = report(tmp_path, furthest)
    svg = svg_of(page)
    assert f"{furthest:%b %-d, %Y}" in svg  # its bar's label
    assert f"<td class=\"nw\">{furthest:%Y-%m-%d}</td>" in page  # the table
    ticks = axis_ticks(svg)
    assert 3 <= len(ticks) <= 14, ticks  # a readable axis, not one label per year
    xs = [x for x, _ in ticks]
    assert all(b - a >= 60 for a, b in zip(xs, xs[1:])), ticks  # labels do not overlap
    years = [int(label[-4:]) for _, label in ticks]
    assert years == sorted(years) and years[-1] <= furthest.year


def _measure(tmp_path: Path, page: str) -> dict[str, Any]:
    """The rendered box of every <text> of the timeline, in SVG user units, and the SVG's width."""
    probe = page.replace("</body>", """<pre id="measured"></pre><script>
const svg = document.querySelector("svg");
const texts = [...svg.querySelectorAll("text")].map(t => { const b = t.getBBox();
  return {text: t.textContent, left: b.x, right: b.x + b.width}; });
document.getElementById("measured").textContent = JSON.stringify({width: svg.viewBox.baseVal.width, texts});
</script></body>""")
    path = tmp_path / "measure.html"
    path.write_text(probe, encoding="utf-8")
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1280,1600", "--dump-dom",
               path.as_uri()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "HOME": str(tmp_path)}, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-2000:]
    found = re.search(r'<pre id="measured">(.*?)</pre>', result.stdout, re.S)
    assert found and found.group(1), result.stdout[-2000:]
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.parametrize("furthest", [NOW + 250 * DAY, NOW + 36525 * DAY, FAR],
                         ids=["furthest-is-www", "a-century-out", "year-9999"])
def test_no_timeline_label_is_cut_off_at_the_right_edge(tmp_path, furthest):
    if not CHROMIUM.exists():
        pytest.fail("Chromium is not installed (/usr/bin/chromium): this rendering test needs it")
    if furthest == NOW + 250 * DAY:  # the plain fleet: www's label is the furthest
        inv = write_inventory(tmp_path / "inv.json", {
            "www": entry(not_after=furthest, lifetime_days=365, renewal_before_days=30),
            "api": entry(not_after=NOW + 20 * DAY, lifetime_days=365, renewal_before_days=10)})
        out = tmp_path / "report.html"
        assert run_cli("report", "--inventory-file", str(inv), "--html", str(out), now=NOW).returncode == 0
        page = out.read_text()
    else:
        page = report(tmp_path, furthest)
    measured = _measure(tmp_path, page)
    width = measured["width"]
    labels = [t for t in measured["texts"] if " · " in t["text"]]
    assert labels, measured
    for t in measured["texts"]:
        assert t["left"] >= 0 and t["right"] <= width, f"{t['text']!r} ends at {t['right']:.1f} > {width}"
    furthest_label = next(t for t in labels if f"{furthest:%b %-d, %Y}" in t["text"])
    assert furthest_label["right"] <= width - 2
