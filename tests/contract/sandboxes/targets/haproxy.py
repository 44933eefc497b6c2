from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from providers.core.deploy import Binding
from providers.core.tls import served_fingerprint
from tests.contract.sandboxes.targets.common import TargetBox


@contextmanager
def open(request: Any) -> Iterator[TargetBox]:  # noqa: A001
    haproxy = request.getfixturevalue("haproxy")
    yield TargetBox(settings=haproxy.target_settings(), binding=Binding("www--lb", ("contract.example.test",)),
                    served=lambda b: served_fingerprint(haproxy.host, haproxy.port, b.server_names[0]),
                    before=haproxy.default_fingerprint)
