"""Terminal output: tables, colours (only on a TTY, never with NO_COLOR or --json) and progress on stderr."""

from __future__ import annotations

import datetime as dt
import os
import re
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from providers.core.clock import minute

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_CODES = {"red": "31", "yellow": "33", "green": "32", "blue": "34", "dim": "2", "bold": "1", "bold_red": "1;31"}
LEVEL_STYLE = {"critical": "bold_red", "warning": "yellow", "ok": "green", "unknown": "dim"}


def colour_enabled(stream: TextIO, *, machine: bool = False) -> bool:
    """Colours only for a person at a terminal: not with --json/--csv, NO_COLOR (any value) or TERM=dumb."""
    if machine or "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb":
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


class Style:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, style: str | None) -> str:
        if not self.enabled or not style or not text:
            return text
        return f"\x1b[{_CODES[style]}m{text}\x1b[0m"

    def level(self, text: str, level: str) -> str:
        return self(text, LEVEL_STYLE.get(level))


def visible_len(text: str) -> int:
    return len(_ANSI.sub("", text))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], style: Style,
          right: Sequence[int] = ()) -> str:
    """A plain aligned table; cells may already carry colour codes (alignment ignores them)."""
    widths = [visible_len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], visible_len(cell))

    def line(cells: Sequence[str]) -> str:
        out = []
        for i, cell in enumerate(cells):
            pad = " " * (widths[i] - visible_len(cell))
            out.append(pad + cell if i in right else cell + pad)
        return "  ".join(out).rstrip()

    head = line([style(h, "bold") for h in headers])
    return "\n".join([head, *(line(r) for r in rows)])


def shorten(items: Sequence[str], limit: int = 2) -> str:
    """`a, b +3` for long lists; `-` for none."""
    if not items:
        return "-"
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown} +{len(items) - limit}"


class Progress:
    """`probing 3/7 www` on one self-rewriting stderr line, only when stderr is a terminal."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.label, self.total, self.done = label, total, 0
        self.active = bool(getattr(self.stream, "isatty", lambda: False)()) and total > 0

    def step(self, what: str = "") -> None:
        self.done += 1
        if self.active:
            text = f"{self.label} {self.done}/{self.total} {what}"[:78]
            self.stream.write(f"\r\x1b[2K{text}")
            self.stream.flush()

    def close(self) -> None:
        if self.active:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()


def fmt_time(value: dt.datetime | None) -> str:
    return minute(value) if value else "-"


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def fmt_days(days: float) -> str:
    return f"{days:.1f}"


def count_certificates(certs: Sequence[Any]) -> str:
    """`2 certificates`, or `2 certificates and 1 CA certificate` when the entries include a private CA's levels
    (`kind` "ca"): a summary counts what the user asked for apart from the CAs that sign it."""
    cas = sum(1 for c in certs if getattr(c, "kind", "") == "ca")
    text = plural(len(certs) - cas, "certificate")
    return f"{text} and {plural(cas, 'CA certificate')}" if cas else text
