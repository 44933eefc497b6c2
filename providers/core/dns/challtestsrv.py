"""pebble-challtestsrv's management API: the test DNS server Pebble's VA queries."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pydantic import field_validator

from ..errors import InvalidInputError
from .base import DnsError, DnsPlugin, DnsSettings, Timeout

NAME = "challtestsrv"


class ChalltestsrvSettings(DnsSettings):
    """`url`: the management API (e.g. http://127.0.0.1:8055)."""

    url: str
    timeout: Timeout = 10

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise InvalidInputError("", "must be an http(s) URL, e.g. http://127.0.0.1:8055")
        return value.rstrip("/")


@dataclass(frozen=True)
class ChalltestsrvProvider:
    """`/clear-txt` removes every value of a name, so cleanup of a wildcard + apex pair clears both (they are
    cleaned up together)."""

    url: str
    timeout: float = 10.0
    name: str = NAME

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


def _build(settings: ChalltestsrvSettings) -> ChalltestsrvProvider:
    return ChalltestsrvProvider(url=settings.url, timeout=float(settings.timeout))


PLUGIN = DnsPlugin(NAME, ChalltestsrvSettings, _build)
