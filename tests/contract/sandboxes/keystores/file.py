from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from providers.core.keystore import owner_segment
from tests.contract.sandboxes.keystores.common import KeyStoreBox


@contextmanager
def open(request: Any) -> Iterator[KeyStoreBox]:  # noqa: A001
    directory = request.getfixturevalue("tmp_path") / "keys"
    directory.mkdir()  # the store never creates its root (an unmounted drive): the operator does

    def seen(owner: str) -> bool:
        home = directory / owner_segment(owner)
        return home.is_dir() and any(home.glob("*.pem"))

    yield KeyStoreBox(settings={"directory": str(directory)}, seen=seen)
