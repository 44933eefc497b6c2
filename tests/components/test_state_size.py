"""Less state per resource: the stack trace each registration sends (and the engine stores) keeps only the
program's own frames (components/_source_positions.py), its first frame (the `sourcePosition`) as it was."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from pulumi.runtime import resource as sdk
from pulumi.runtime.proto import source_pb2

from components import _source_positions as sp

ROOT = Path(__file__).resolve().parents[2]
PULUMI = Path(sdk.__file__).resolve()


def frame(path: Path | str | None, line: int = 1) -> Any:
    if path is None:
        return source_pb2.StackFrame()  # what the SDK sends for a frame with no position (`<frozen runpy>`)
    uri = path if isinstance(path, str) else path.as_uri()
    return source_pb2.StackFrame(pc=source_pb2.SourcePosition(uri=uri, line=line))


def uris(trace: Any) -> list[str]:
    return [f.pc.uri if f.HasField("pc") else "" for f in trace.frames]


@pytest.fixture
def restore_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    """install() patches the SDK module: put it back after each test."""
    monkeypatch.setattr(sdk, "_get_stack_trace", sdk._get_stack_trace)


def test_which_files_are_the_programs() -> None:
    ours = [ROOT / "__main__.py", ROOT / "components" / "fleet.py", ROOT / "providers" / "_dynamic.py"]
    theirs = [PULUMI, Path(sys.executable).resolve(), ROOT / ".venv" / "lib" / "python3.11" / "site-packages" / "x.py",
              ROOT / ".tools" / "bin" / "pulumi-language-python-exec", ROOT / "venv" / "site-packages" / "y.py",
              Path("/usr/lib/python3.11/asyncio/events.py")]
    assert [sp.is_program_file(p.as_uri()) for p in ours] == [True] * len(ours)
    assert [sp.is_program_file(p.as_uri()) for p in theirs] == [False] * len(theirs)
    assert not sp.is_program_file("") and not sp.is_program_file("project:///__main__.py")


def test_the_first_frame_is_kept_whatever_it_is_and_the_rest_filtered() -> None:
    main, fleet, sdk_file = ROOT / "__main__.py", ROOT / "components" / "fleet.py", PULUMI
    trace = source_pb2.StackTrace(frames=[frame(sdk_file, 7), frame(fleet, 39), frame(None), frame(sdk_file, 237),
                                          frame(main, 35), frame(Path("/usr/lib/python3.11/asyncio/events.py"))])
    kept = sp.program_frames(trace)
    assert uris(kept) == [sdk_file.as_uri(), fleet.as_uri(), main.as_uri()]
    assert kept.frames[0] == trace.frames[0] and [f.pc.line for f in kept.frames] == [7, 39, 35]
    only_ours = source_pb2.StackTrace(frames=[frame(main, 1), frame(fleet, 2)])
    assert sp.program_frames(only_ours) is only_ours
    assert sp.program_frames(source_pb2.StackTrace()).frames == []


class _Resource:  # the SDK counts three __init__ frames (Resource, CustomResource, the concrete class) up
    def __init__(self) -> None:
        self.trace = sdk._get_stack_trace()


class _Custom(_Resource):
    def __init__(self) -> None:
        super().__init__()


class _Concrete(_Custom):
    def __init__(self) -> None:
        super().__init__()


def _register() -> Any:
    return _Concrete().trace


@pytest.mark.usefixtures("restore_sdk")
def test_installed_the_sdk_sends_only_program_frames_with_the_same_source_position() -> None:
    before = _register()
    assert sp.install() is True and sp.install() is True  # once: a second install wraps nothing again
    after = _register()
    assert after.frames[0] == before.frames[0]  # so `sourcePosition` does not change
    assert sdk._get_source_position(after) == sdk._get_source_position(before)
    assert len(after.frames) < len(before.frames)  # pytest's and pluggy's frames are gone
    assert all(sp.is_program_file(uri) for uri in uris(after)[1:])
    assert [u for u in uris(before) if sp.is_program_file(u)] == [u for u in uris(after) if sp.is_program_file(u)]
    assert Path(__file__).as_uri() in uris(after)  # this test's own frames are the project's


@pytest.mark.usefixtures("restore_sdk")
def test_an_sdk_without_the_function_or_of_another_shape_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(sdk, "_get_stack_trace")
    assert sp.install() is False and not hasattr(sdk, "_get_stack_trace")
    monkeypatch.setattr(sdk, "_get_stack_trace", "not a function", raising=False)
    assert sp.install() is False and sdk._get_stack_trace == "not a function"
    other = object()  # no `frames`: sent as the SDK made it
    monkeypatch.setattr(sdk, "_get_stack_trace", lambda: other)
    assert sp.install() is True and sdk._get_stack_trace() is other
