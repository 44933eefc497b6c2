from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from providers.core.certificates import fingerprint_of_pem
from providers.core.deploy import Binding
from tests.contract.sandboxes.targets.common import TargetBox


@contextmanager
def open(request: Any) -> Iterator[TargetBox]:  # noqa: A001
    directory = request.getfixturevalue("tmp_path") / "certs"

    def served(_binding: Binding) -> str | None:
        path = directory / "www.fullchain.pem"
        return fingerprint_of_pem(path.read_text()) if path.exists() else None

    yield TargetBox(settings={"directory": str(directory)}, binding=Binding("www--disk"), served=served)
