"""pebble-challtestsrv's management API: the test DNS server Pebble's VA queries."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInputError
from .base import int_setting, DnsError, setting

NAME = "challtestsrv"


@dataclass(frozen=True)
class ChalltestsrvProvider:
    """`url`: the management API (e.g. http://127.0.0.1:8055). `/clear-txt` removes every value of a name,
    so cleanup of a wildcard + apex pair clears both (they are cleaned up together)."""

    url: str
    timeout: float = 10.0
    name: str = NAME

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> ChalltestsrvProvider:
        url = str(setting(settings, "url", NAME, required=True))
        if not url.startswith(("http://", "https://")):
            raise InvalidInputError("dns.url", f"{NAME}: url must be an http(s) URL, e.g. http://127.0.0.1:8055")
        return cls(url=url.rstrip("/"), timeout=float(int_setting(settings, "timeout", NAME, 10, high=300)))

    def _post(self, path: str, body: dict[str, str]) -> None:
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                resp.read()
        except (urllib.error.URLError, OSError) as err:
            raise DnsError(f"{NAME}: {path} at {self.url} failed: {getattr(err, 'reason', err)}") from None

    def present(self, fqdn: str, value: str) -> None:
        self._post("/set-txt", {"host": fqdn.rstrip(".") + ".", "value": value})

    def cleanup(self, fqdn: str, value: str) -> None:
        self._post("/clear-txt", {"host": fqdn.rstrip(".") + "."})
