"""`certplane report --html PATH`: one self-contained page (inline CSS and SVG, nothing fetched at view time).

Sections: summary cards, an expiry timeline (now -> the furthest expiry, one bar per certificate coloured by
urgency, its renewal time marked; an expiry is the served chain's earliest, `(chain)` when an intermediate expires
before the leaf), what needs attention, every certificate, certificates per binding target,
key algorithms and issuers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections import Counter
from collections.abc import Iterable
from html import escape
from pathlib import Path

from . import CliError
from .expiry import expiry_findings, parse_warn_days, urgency_key, worst
from .model import Certificate, Finding
from .render import fmt_days, fmt_time, plural
from .stack import load

# A sober palette; the chart's urgency colours are solid fills (the screenshot test looks for them).
COLOURS = {"critical": "#c8374a", "warning": "#d99a00", "ok": "#2e8b6a"}
TINTS = {"critical": "#fbe9eb", "warning": "#fdf3d9", "ok": "#e3f3ec"}
LABELS = {"critical": "Critical", "warning": "Warning", "ok": "Healthy"}
INK, MUTED, GRID, ACCENT = "#1c2430", "#5f6b7a", "#e6e9ee", "#3552a8"

CSS = """
:root { --ink: #1c2430; --muted: #5f6b7a; --line: #e3e6eb; --bg: #f4f5f7; --card: #ffffff;
  --crit: #c8374a; --warn: #d99a00; --ok: #2e8b6a; --accent: #3552a8; }
* { box-sizing: border-box; }
html { background: var(--bg); }
body { margin: 0; color: var(--ink); font: 14px/1.5 "Inter", "Segoe UI", "Helvetica Neue", "Liberation Sans",
  "DejaVu Sans", Arial, sans-serif; -webkit-font-smoothing: antialiased; }
.wrap { max-width: 1200px; margin: 0 auto; padding: 28px 32px 48px; }
header { display: flex; align-items: flex-end; justify-content: space-between; gap: 24px;
  padding-bottom: 20px; border-bottom: 1px solid var(--line); margin-bottom: 24px; }
.brand { font-size: 12px; font-weight: 600; letter-spacing: .12em; text-transform: uppercase; color: var(--accent); }
h1 { font-size: 26px; line-height: 1.2; margin: 4px 0 0; font-weight: 650; letter-spacing: -.01em; }
.meta { color: var(--muted); font-size: 13px; text-align: right; }
.meta b { color: var(--ink); font-weight: 600; }
h2 { font-size: 15px; font-weight: 650; margin: 0 0 12px; letter-spacing: .01em; }
h2 small { font-weight: 400; color: var(--muted); font-size: 13px; margin-left: 8px; }
section { margin-top: 28px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 18px 20px; }
.kpis { display: grid; grid-template-columns: repeat(4, 1fr); gap: 16px; }
.kpi { position: relative; padding: 16px 18px 14px 22px; }
.kpi::before { content: ""; position: absolute; left: 0; top: 14px; bottom: 14px; width: 4px;
  border-radius: 0 3px 3px 0; background: var(--line); }
.kpi.critical::before { background: var(--crit); } .kpi.warning::before { background: var(--warn); }
.kpi.ok::before { background: var(--ok); } .kpi.next::before { background: var(--accent); }
.kpi .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .08em; }
.kpi .value { font-size: 30px; font-weight: 650; line-height: 1.2; margin-top: 2px; font-variant-numeric: tabular-nums; }
.kpi .value.small { font-size: 20px; padding-top: 6px; }
.kpi .sub { color: var(--muted); font-size: 12.5px; }
.chart svg { display: block; width: 100%; height: auto; }
.legend { display: flex; gap: 20px; flex-wrap: wrap; color: var(--muted); font-size: 12.5px; margin-top: 10px; }
.legend span { display: inline-flex; align-items: center; gap: 7px; }
.sw { width: 18px; height: 8px; border-radius: 4px; display: inline-block; }
.dia { width: 8px; height: 8px; transform: rotate(45deg); border: 1.5px solid var(--ink); background: #fff; display: inline-block; }
.today { width: 0; height: 12px; border-left: 1.5px dashed var(--ink); display: inline-block; }
table { width: 100%; border-collapse: collapse; font-size: 13px; }
th { text-align: left; font-weight: 600; color: var(--muted); font-size: 11.5px; text-transform: uppercase;
  letter-spacing: .06em; padding: 0 10px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
td { padding: 9px 10px; border-bottom: 1px solid #eef0f3; vertical-align: top; }
tr:last-child td { border-bottom: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.nw { white-space: nowrap; }
td .dn { color: var(--muted); font-size: 12px; max-width: 250px; }
.name { font-weight: 600; }
.muted { color: var(--muted); }
.mono { font-family: "DejaVu Sans Mono", "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12px; }
.pill { display: inline-block; padding: 1px 9px; border-radius: 999px; font-size: 12px; font-weight: 600;
  white-space: nowrap; }
.pill.critical { background: #fbe9eb; color: #a32638; } .pill.warning { background: #fdf3d9; color: #8a6100; }
.pill.ok { background: #e3f3ec; color: #1f6b50; }
.dot { display: inline-block; width: 8px; height: 8px; border-radius: 50%; margin-right: 8px; vertical-align: 1px; }
.dot.critical { background: var(--crit); } .dot.warning { background: var(--warn); } .dot.ok { background: var(--ok); }
.tag { display: inline-block; padding: 0 7px; margin: 1px 4px 1px 0; border: 1px solid var(--line);
  border-radius: 5px; font-size: 12px; color: var(--ink); background: #fafbfc; }
.attention li { list-style: none; display: grid; grid-template-columns: 96px 150px 1fr auto; gap: 14px;
  align-items: baseline; padding: 10px 0; border-bottom: 1px solid #eef0f3; }
.attention ul { margin: 0; padding: 0; } .attention .pill { justify-self: start; } .attention li:last-child { border-bottom: 0; }
.calm { display: flex; align-items: center; gap: 12px; color: #1f6b50; }
.calm .big { width: 28px; height: 28px; border-radius: 50%; background: #e3f3ec; display: inline-flex;
  align-items: center; justify-content: center; font-weight: 700; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.targets { display: grid; grid-template-columns: repeat(3, 1fr); gap: 16px; }
.target h3 { font-size: 14px; margin: 0 0 2px; display: flex; justify-content: space-between; align-items: baseline; }
.target h3 small { color: var(--muted); font-weight: 400; font-size: 12px; }
.target ul { margin: 8px 0 0; padding: 0; } .target li { list-style: none; padding: 5px 0;
  display: flex; justify-content: space-between; gap: 10px; border-top: 1px solid #f0f2f5; }
.target .ep { color: var(--muted); font-size: 12px; margin-left: 16px; }
.bars .row { display: grid; grid-template-columns: 170px 1fr 36px; gap: 12px; align-items: center; padding: 5px 0; }
.bars .track { height: 10px; background: #eef1f5; border-radius: 5px; overflow: hidden; }
.bars .fill { height: 100%; background: var(--accent); border-radius: 5px; opacity: .85; }
.bars .n { text-align: right; font-variant-numeric: tabular-nums; color: var(--muted); }
footer { margin-top: 36px; color: var(--muted); font-size: 12px; display: flex; justify-content: space-between; }
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _days_phrase(days: float) -> str:
    if days <= 0:
        return f"expired {abs(days):.0f} d ago" if days <= -1 else "expired"
    return f"{days:.0f} d" if days >= 1 else f"{days * 24:.0f} h"


_UTC_MAX = dt.datetime.max.replace(tzinfo=dt.timezone.utc)
_YEAR_STEPS = (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000)
_MAX_TICKS = 10
LABEL_PX = 11.5  # the bar labels' font size


def _later(t: dt.datetime, delta: dt.timedelta) -> dt.datetime:
    """t + delta, stopping at the last representable instant (an expiry in year 9999 is valid input)."""
    try:
        return t + delta
    except OverflowError:
        return _UTC_MAX


def _ticks(start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, str]]:
    """Axis ticks between start and end: days, months, quarters, then years in steps that keep about ten."""
    span = (end - start).days
    out: list[tuple[dt.datetime, str]] = []
    if span <= 45:
        day = _later(start, dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        step = 7 if span > 14 else 2
        while day <= end and day < _UTC_MAX:
            out.append((day, day.strftime("%b %-d")))
            day = _later(day, dt.timedelta(days=step))
        return out
    if span <= 1200:
        months = 1 if span <= 400 else 3
        year, month = start.year, start.month
        while True:
            month += 1
            if month > 12:
                year, month = year + 1, month - 12
            if (month - 1) % months:
                continue
            if year > dt.MAXYEAR:
                return out
            tick = dt.datetime(year, month, 1, tzinfo=dt.timezone.utc)
            if tick > end:
                return out
            label = tick.strftime("%b %Y") if month == 1 or not out else tick.strftime("%b")
            out.append((tick, label))
    years = end.year - start.year
    step = next((s for s in _YEAR_STEPS if years / s <= _MAX_TICKS), _YEAR_STEPS[-1])
    year = (start.year // step + 1) * step
    while year <= min(end.year, dt.MAXYEAR):
        tick = dt.datetime(year, 1, 1, tzinfo=dt.timezone.utc)
        if tick > end:
            break
        out.append((tick, str(year)))
        year += step
    return out


# Advance widths (in em) a little over those of the page's fonts (Inter, Segoe UI, Helvetica, Liberation Sans,
# DejaVu Sans): enough to keep a label inside the chart without measuring it.
_NARROW, _WIDE = set(" .,:;·'!|il()[]-"), set("MWmw@%")


def _text_width(text: str, size: float = LABEL_PX) -> float:
    em = 0.0
    for ch in text:
        if ch in _NARROW:
            em += 0.36
        elif ch in _WIDE:
            em += 0.92
        elif ch.isdigit():
            em += 0.66
        elif ch.isupper():
            em += 0.76
        else:
            em += 0.64
    return em * size


def _bar_label(cert: Certificate, days: float) -> str:
    chain = " (chain)" if cert.chain_expires_first else ""
    return f"{_days_phrase(days)} · {cert.expires:%b %-d, %Y}{chain}"


def timeline_svg(certs: list[Certificate], levels: dict[str, str], now: dt.datetime) -> str:
    """Inline SVG: one row per certificate, a bar from now to its expiry (the served chain's), a diamond at its
    renewal time. The right margin fits the longest bar label, so the furthest expiry's is not cut off."""
    width, label_w = 1134, 210
    row_h, top, bottom = 38, 34, 12
    labels = {c.name: _bar_label(c, c.days_left(now)) for c in certs}
    right_pad = max(118, max((_text_width(labels[c.name]) + 10 + 8 for c in certs if c.days_left(now) > 0),
                             default=0))
    right_pad = min(right_pad, (width - label_w) / 2)
    x0, x1 = label_w, width - right_pad
    end = max([c.expires for c in certs if c.expires > now] or [_later(now, dt.timedelta(days=30))])
    end = max(end, _later(now, dt.timedelta(days=14)))
    span = max((end - now).total_seconds(), 1.0)

    def x(t: dt.datetime) -> float:
        return x0 + (x1 - x0) * min(max((t - now).total_seconds() / span, 0.0), 1.0)

    height = top + row_h * len(certs) + bottom
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" aria-label="Certificate expiry timeline" '
             f'font-family="Inter, Segoe UI, Helvetica Neue, Liberation Sans, DejaVu Sans, Arial, sans-serif">']
    # grid and axis labels, never closer than a label's width
    last_x = float(x0)
    for tick, label in _ticks(now, end):
        tx = x(tick)
        if tx - last_x < max(48.0, _text_width(label, 11) + 12):
            continue
        last_x = tx
        parts.append(f'<line x1="{tx:.1f}" y1="{top - 6}" x2="{tx:.1f}" y2="{height - bottom}" stroke="{GRID}"/>')
        parts.append(f'<text x="{tx:.1f}" y="{top - 14}" font-size="11" fill="{MUTED}" '
                     f'text-anchor="middle">{_e(label)}</text>')
    parts.append(f'<text x="{x0}" y="{top - 14}" font-size="11" font-weight="600" fill="{INK}" '
                 f'text-anchor="middle">today</text>')
    for i, cert in enumerate(certs):
        level = levels[cert.name]
        colour = COLOURS[level]
        cy = top + row_h * i + row_h / 2
        days = cert.days_left(now)
        if i % 2 == 0:
            parts.append(f'<rect x="0" y="{cy - row_h / 2:.1f}" width="{width}" height="{row_h}" fill="#fafbfc"/>')
        domain = cert.domains[0] if cert.domains else ""
        parts.append(f'<text x="12" y="{cy - 2:.1f}" font-size="13" font-weight="600" fill="{INK}">'
                     f'{_e(cert.name)}</text>')
        parts.append(f'<text x="12" y="{cy + 12:.1f}" font-size="11" fill="{MUTED}">{_e(domain[:30])}</text>')
        parts.append(f'<rect x="{x0}" y="{cy - 4:.1f}" width="{x1 - x0:.1f}" height="8" rx="4" fill="#eef1f5"/>')
        tip = f"{cert.name}: expires {fmt_time(cert.expires)} ({fmt_days(days)} days)"
        if cert.chain_expires_first:
            tip += (f", when {cert.chain_earliest_subject or 'a certificate'} in the served chain does "
                    f"(the leaf: {fmt_time(cert.not_after)})")
        tip += f"; renewal {fmt_time(cert.renewal_time)}"
        parts.append(f'<g><title>{_e(tip)}</title>')
        label = labels[cert.name]
        anchor = ""
        if days > 0:
            bx = x(cert.expires)
            parts.append(f'<rect x="{x0}" y="{cy - 7:.1f}" width="{max(bx - x0, 6):.1f}" height="14" rx="7" '
                         f'fill="{colour}"/>')
            label_x = max(bx, x0 + 6) + 10
            if label_x + _text_width(label) > width - 4:  # would be cut off: end it at the edge instead
                label_x, anchor = width - 4, ' text-anchor="end"'
        else:
            parts.append(f'<circle cx="{x0}" cy="{cy:.1f}" r="7" fill="{colour}"/>')
            parts.append(f'<path d="M{x0 - 3} {cy - 3:.1f} l6 6 M{x0 + 3} {cy - 3:.1f} l-6 6" stroke="#fff" '
                         f'stroke-width="1.8" stroke-linecap="round"/>')
            label_x = x0 + 16
        parts.append(f'<text x="{label_x:.1f}" y="{cy + 4:.1f}" font-size="{LABEL_PX:g}" fill="{INK}"{anchor}>'
                     f'{_e(label)}</text>')
        if cert.renewal_time and days > 0:
            rx = x(cert.renewal_time)
            overdue = cert.renewal_time < now
            fill = "#ffffff" if not overdue else COLOURS["critical"] if level == "critical" else "#ffffff"
            parts.append(f'<path d="M{rx:.1f} {cy - 6:.1f} l6 6 l-6 6 l-6 -6 z" fill="{fill}" stroke="{INK}" '
                         f'stroke-width="1.5"/>')
        parts.append("</g>")
    parts.append(f'<line x1="{x0}" y1="{top - 6}" x2="{x0}" y2="{height - bottom}" stroke="{INK}" '
                 f'stroke-width="1.5" stroke-dasharray="4 3"/>')
    parts.append("</svg>")
    return "".join(parts)


def _kpi(kind: str, label: str, value: str, sub: str, small: bool = False) -> str:
    return (f'<div class="card kpi {kind}"><div class="label">{_e(label)}</div>'
            f'<div class="value{" small" if small else ""}">{value}</div><div class="sub">{sub}</div></div>')


def _pill(level: str, text: str) -> str:
    return f'<span class="pill {level}">{_e(text)}</span>'


def _bars(counter: Counter[str], title: str, note: str) -> str:
    total = max(counter.values(), default=1)
    rows = "".join(
        f'<div class="row"><div>{_e(name or "-")}</div><div class="track"><div class="fill" '
        f'style="width:{100 * n / total:.1f}%"></div></div><div class="n">{n}</div></div>'
        for name, n in counter.most_common())
    return f'<div class="card bars"><h2>{_e(title)}<small>{_e(note)}</small></h2>{rows}</div>'


def _tags(items: Iterable[str]) -> str:
    return "".join(f'<span class="tag">{_e(i)}</span>' for i in items) or '<span class="muted">-</span>'


def render_html(stack: str, certs: list[Certificate], findings: dict[str, list[Finding]],
                now: dt.datetime) -> str:
    certs = sorted(certs, key=lambda c: urgency_key(c, now))
    levels = {c.name: worst([f.level for f in findings[c.name]]) for c in certs}
    counts = Counter(levels.values())
    upcoming = [c for c in certs if c.days_left(now) > 0]
    kpis = [
        _kpi("critical", "Critical", str(counts["critical"]), "expired or renewal overdue"),
        _kpi("warning", "Warning", str(counts["warning"]), "under a warn-days threshold or due"),
        _kpi("ok", "Healthy", str(counts["ok"]), f"of {len(certs)} certificates"),
    ]
    if upcoming:
        nxt = upcoming[0]
        kpis.append(_kpi("next", "Next expiry", _e(nxt.name),
                         f"in {fmt_days(nxt.days_left(now))} days · {nxt.expires:%b %-d, %Y}", small=True))
    else:
        kpis.append(_kpi("next", "Next expiry", "-", "nothing valid left", small=True))

    # needs attention
    items = []
    for cert in certs:
        for f in findings[cert.name]:
            if f.level == "ok":
                continue
            owner = f'<span class="muted">{_e(cert.owner)}</span>' if cert.owner else ""
            items.append((-["ok", "warning", "critical"].index(f.level), cert.days_left(now),
                          f'<li>{_pill(f.level, LABELS[f.level])}<span class="name">{_e(cert.name)}</span>'
                          f'<span>{_e(f.message)}</span>{owner}</li>'))
    if items:
        attention = "<ul>" + "".join(i[2] for i in sorted(items, key=lambda t: (t[0], t[1]))) + "</ul>"
    else:
        nxt_renew = min((c for c in certs if c.renewal_time), key=lambda c: c.renewal_time, default=None)  # type: ignore[arg-type, return-value]
        when = (f"The next renewal is <b>{_e(nxt_renew.name)}</b> on {_e(fmt_time(nxt_renew.renewal_time))}."
                if nxt_renew else "")
        attention = (f'<div class="calm"><span class="big">✓</span><div>Nothing needs attention. {when}</div>'
                     f'</div>')

    # every certificate
    rows = []
    for cert in certs:
        level = levels[cert.name]
        days = cert.days_left(now)
        chain_note = (f'<div class="dn">chain: {_e(cert.chain_earliest_subject or "a certificate")}; '
                      f'the leaf {cert.not_after:%Y-%m-%d}</div>' if cert.chain_expires_first else "")
        rows.append(
            f'<tr><td><span class="dot {level}"></span><span class="name">{_e(cert.name)}</span></td>'
            f'<td>{"<br>".join(_e(d) for d in cert.domains) or "-"}</td>'
            f'<td>{_e(cert.issuer or "-")}<div class="dn">{_e(cert.issuer_dn)}</div></td>'
            f'<td class="nw">{_e(cert.key_algorithm or "-")}</td>'
            f'<td class="nw">{cert.expires:%Y-%m-%d}{chain_note}</td>'
            f'<td class="num">{_pill(level, _days_phrase(days) if days <= 0 else f"{days:.0f} d")}</td>'
            f'<td class="nw">{cert.renewal_time.strftime("%Y-%m-%d") if cert.renewal_time else "-"}</td>'
            f'<td>{_tags(cert.targets)}</td><td class="nw">{_e(cert.owner or "-")}</td></tr>')
    table = ('<table><thead><tr><th>Certificate</th><th>Domains</th><th>Issuer</th><th>Key</th><th>Expires</th>'
             '<th class="num">Left</th><th>Renews</th><th>Targets</th><th>Owner</th></tr></thead><tbody>'
             + "".join(rows) + "</tbody></table>")

    # per target
    groups: dict[str, list[Certificate]] = {}
    for cert in certs:
        for target in cert.targets or ("",):
            groups.setdefault(target, []).append(cert)
    cards = []
    for target in sorted(groups, key=lambda t: (t == "", t)):
        members = groups[target]
        worst_level = worst([levels[c.name] for c in members])
        lis = []
        for cert in members:
            eps = "".join(f'<div class="ep">{_e(ep.label)}</div>' for ep in cert.endpoints
                          if not ep.target or ep.target == target or not target)
            lis.append(f'<li><div><span class="dot {levels[cert.name]}"></span>{_e(cert.name)}{eps}</div>'
                       f'<span class="muted">{_days_phrase(cert.days_left(now))}</span></li>')
        title = _e(target) if target else '<span class="muted">Not bound to a target</span>'
        n = len(members)
        cards.append(f'<div class="card target"><h3><span><span class="dot {worst_level}"></span>{title}</span>'
                     f'<small>{n} certificate{"s" if n != 1 else ""}</small></h3><ul>{"".join(lis)}</ul></div>')

    algorithms = Counter(c.key_algorithm for c in certs)
    issuers = Counter(c.issuer for c in certs)
    legend = "".join(f'<span><i class="sw" style="background:{COLOURS[k]}"></i>{LABELS[k]}</span>'
                     for k in ("critical", "warning", "ok"))
    legend += '<span><i class="dia"></i>Renewal time</span><span><i class="today"></i>Today</span>'
    chart = timeline_svg(certs, levels, now) if certs else '<p class="muted">No certificates.</p>'
    generated = fmt_time(now)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>certplane report · {_e(stack)}</title>
<style>{CSS}</style></head>
<body><div class="wrap">
<header><div><div class="brand">certplane</div><h1>Certificate report</h1></div>
<div class="meta">stack <b>{_e(stack)}</b> · {len(certs)} certificates<br>generated {_e(generated)}</div></header>
<div class="kpis">{"".join(kpis)}</div>
<section><div class="card chart"><h2>Expiry timeline<small>from today to the furthest expiry</small></h2>
{chart}<div class="legend">{legend}</div></div></section>
<section><div class="card attention"><h2>Needs attention<small>most urgent first</small></h2>{attention}</div></section>
<section><div class="card"><h2>Certificates<small>fewest days left first</small></h2>{table}</div></section>
<section><h2>By target<small>where each certificate is bound</small></h2><div class="targets">{"".join(cards)}</div></section>
<section><div class="grid2">{_bars(algorithms, "Key algorithms", plural(len(algorithms), "kind"))}
{_bars(issuers, "Issuers", plural(len(issuers), "issuer"))}</div></section>
<footer><span>Generated by <b>certplane report</b> · all times UTC</span><span>Self-contained page: no scripts, no external resources</span></footer>
</div></body></html>
"""


def run(args: argparse.Namespace, source: object) -> int:
    warn_days = parse_warn_days(args.warn_days)
    loaded = load(source)  # type: ignore[arg-type]
    now = loaded.now
    findings = {c.name: expiry_findings(c, now, warn_days, args.grace_days) for c in loaded.certificates}
    page = render_html(loaded.stack, loaded.certificates, findings, now)
    if args.html == "-":
        sys.stdout.write(page)
        return 0
    path = Path(args.html)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page, encoding="utf-8")
    except OSError as err:
        raise CliError(f"--html {path}: {err.strerror}") from None
    print(f"wrote {path} ({len(loaded.certificates)} certificates, stack {loaded.stack})", file=sys.stderr)
    return 0
