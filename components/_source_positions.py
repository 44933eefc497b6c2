"""Stack traces in state: only the program's own frames.

With every resource it registers, the Python SDK sends the stack at the time (`_get_stack_trace()` in
`pulumi/runtime/resource.py`) and the engine stores it in state: ~17 frames per resource, most of them the SDK's,
asyncio's, the language host's, or empty (`{}`), about 1.3 KB per certificate and 1.1 KB per component, written
again on every checkpoint. `install()` (called by `__main__.py` before any resource) wraps that function so the
trace keeps the frames inside this project's own code (`__main__.py`, `components/`, `providers/`), never a file
under a `site-packages` or a hidden directory (`.venv`, `.tools`), the interpreter's, or one with no position. The
first frame is always kept as it was, so `sourcePosition` (which the SDK takes from it) does not change.

Stack traces are metadata: the engine never diffs them, so a stack created before this sees no change; its state
gets the shorter traces as resources are next written. Robust to SDK changes: if the private function is absent,
is not a function, or returns something without `frames` of `pc.uri`, the SDK's own trace is sent unchanged.
"""

from __future__ import annotations

import functools
import os
import sys
import sysconfig
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

ROOT = Path(__file__).resolve().parents[1]  # the project: this file is components/_source_positions.py
_MARK = "__certplane_program_frames__"


@functools.lru_cache(maxsize=1)
def _outside_roots() -> tuple[str, ...]:
    """Where the interpreter and installed packages live, when inside the project (a `venv/` there is not
    program code); a prefix the project itself is under (`/usr` for `/usr/src/app`) says nothing."""
    root = str(ROOT) + os.sep
    dirs = {os.path.realpath(d) + os.sep
            for d in (sys.prefix, sys.base_prefix, sys.exec_prefix, *sysconfig.get_paths().values()) if d}
    return tuple(d for d in dirs if d.startswith(root) and d != root)


@functools.lru_cache(maxsize=1024)
def is_program_file(uri: str) -> bool:
    """Whether a frame's `file://` URI is a file of this project's own code."""
    parsed = urlparse(uri)
    if parsed.scheme != "file" or not parsed.path:
        return False
    path = os.path.realpath(unquote(parsed.path))
    root = str(ROOT) + os.sep
    if not path.startswith(root) or path.startswith(_outside_roots()):
        return False
    parts = Path(path[len(root):]).parts
    return not any(p.startswith(".") or p in ("site-packages", "dist-packages", "__pycache__") for p in parts)


def program_frames(trace: Any) -> Any:
    """`trace` (a `StackTrace` message) with only the program's frames after the first (kept as it is)."""
    frames = list(trace.frames)
    kept = frames[:1] + [f for f in frames[1:] if f.HasField("pc") and is_program_file(f.pc.uri)]
    if len(kept) == len(frames):
        return trace
    return type(trace)(frames=kept)


def install() -> bool:
    """Make the SDK send only the program's frames with each registration. True when installed (or already)."""
    try:
        from pulumi.runtime import resource as sdk
    except ImportError:
        return False
    original = getattr(sdk, "_get_stack_trace", None)
    if not callable(original):
        return False
    if getattr(original, _MARK, False):
        return True

    def _get_stack_trace() -> Any:
        trace = original()
        try:
            return program_frames(trace)
        except Exception:  # noqa: BLE001 - a shape this module does not know: the SDK's trace, as it was
            return trace

    functools.update_wrapper(_get_stack_trace, original)
    setattr(_get_stack_trace, _MARK, True)
    sdk._get_stack_trace = _get_stack_trace
    return True


__all__ = ["install", "is_program_file", "program_frames"]
