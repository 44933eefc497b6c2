from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from providers.core.deploy import Binding
from providers.core.tls import served_fingerprint
from tests.contract.sandboxes.targets.common import TargetBox


@contextmanager
def open(request: Any) -> Iterator[TargetBox]:  # noqa: A001
    nginx = request.getfixturevalue("nginx")
    name = "contract.example.test"
    default = served_fingerprint(nginx.host, nginx.port, name)  # the default server's own certificate
    yield TargetBox(settings=nginx.target_settings(), binding=Binding("www--edge", (name,)),
                    served=lambda b: served_fingerprint(nginx.host, nginx.port, b.server_names[0]), before=default)
