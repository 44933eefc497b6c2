"""Where a benchmark's results go: `<out>/<name>.json` (everything it measured, to render or compare again) and
`<out>/<name>.md` (the table the README quotes), the table printed too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write(out: Path, name: str, report: dict[str, Any], table: str) -> Path:
    """Both files, and the path they share without its suffix (a name may hold dots: `--suffix=.v2`)."""
    out.mkdir(parents=True, exist_ok=True)
    stem = out / name
    Path(f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    Path(f"{stem}.md").write_text(table)
    print(table)
    return stem
