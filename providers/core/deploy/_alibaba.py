"""Alibaba Cloud through its official Tea SDKs, for every target that calls it (alibaba_slb, alibaba_cas): one
client config, one way to call, one way to say what failed.

Credentials come from the SDK's default chain (ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET, profile, RAM role), never
from settings or state. No Alibaba Cloud emulator exists: these adapters are tested against a local stub of the
documented RPC API (tests/support/alibaba_stub.py), not against Alibaba Cloud itself.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import field_validator, model_validator

from ..errors import DeployError, InvalidInputError
from ..validation import LOCATION, Model, whole_number

_REGION = re.compile(r"^[a-z]{2}(-[a-z0-9]+)+$")


class AlibabaAccess(Model):
    """region; protocol (https; http only for a local stub on a loopback endpoint), timeout_ms.

    RPC parameters travel in the URL's query string, the private key among them (UploadUserCertificate): over
    http that is the key in clear text on the network, so http is refused unless every endpoint the target
    calls is on loopback (127.0.0.0/8, ::1, localhost)."""

    region: Annotated[str, LOCATION]
    protocol: Literal["https", "http"] = "https"
    timeout_ms: Annotated[int, whole_number(100, 600000)] = 10000

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not _REGION.match(value):
            raise InvalidInputError("", f"{value!r} is not a region id like cn-hangzhou")
        return value

    def endpoints(self) -> dict[str, str | None]:
        """The endpoint settings the target calls (setting name -> value, None for the SDK's own default): the
        `endpoint` setting where the target has one. Targets with more override this."""
        return {"endpoint": getattr(self, "endpoint", None)}

    @model_validator(mode="after")
    def _http_only_on_loopback(self) -> AlibabaAccess:
        if self.protocol == "http":
            off_host = [f"{name} {value} is not on this machine" if value else
                        f"{name} is not set, so Alibaba Cloud's own is called"
                        for name, value in self.endpoints().items() if not _loopback(value)]
            if off_host:
                raise InvalidInputError("protocol", f"http sends every parameter, the private key among them, in "
                                        f"clear text in the URL, and {off_host[0]}: use https (http is only for a "
                                        "local stub on 127.0.0.1)")
        return self


def _loopback(endpoint: str | None) -> bool:
    """`127.0.0.1:8080`, `[::1]:8080`, `localhost`: an endpoint on this machine's loopback interface."""
    if not endpoint:
        return False
    host = re.sub(r"^[a-z]+://", "", endpoint.strip().lower()).split("/")[0]
    if host.startswith("["):
        host = host[1:].split("]")[0]
    elif host.count(":") == 1:
        host = host.split(":")[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def config(access: AlibabaAccess, endpoint: str | None) -> Any:
    from alibabacloud_credentials.client import Client as Credentials  # type: ignore[import-untyped]
    from alibabacloud_tea_openapi import models as open_api  # type: ignore[import-untyped]

    return open_api.Config(credential=Credentials(), region_id=access.region, endpoint=endpoint,
                           protocol=access.protocol, read_timeout=access.timeout_ms, connect_timeout=access.timeout_ms)


class ApiError(DeployError):
    """A failed call, one line (`what: Action: Code: message`); `code` is the API's error code ('' when the
    call never got an answer)."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


def invoke(what: str, action: str, fn: Callable[[], Any]) -> dict[str, Any]:
    """One SDK call -> its response body as a plain dict, or ApiError."""
    try:
        response = fn()
    except Exception as err:  # noqa: BLE001 - Tea SDK errors share no small importable base
        code = getattr(err, "code", None) if getattr(err, "status_code", None) is not None else None
        raise ApiError(f"{what}: {action}: {describe(err)}", str(code or "")) from None
    body = getattr(response, "body", None)
    mapped = body.to_map() if body is not None else {}
    return dict(mapped or {})


def describe(err: Exception) -> str:
    """`Code: message` for an API error. Transport errors only name their kind: their text quotes the request
    URL, and RPC parameters (the private key among them) travel in its query string."""
    code, message = getattr(err, "code", None), getattr(err, "message", None)
    if code and isinstance(message, str) and getattr(err, "status_code", None) is not None:
        text = re.sub(r"^code: \d+, ", "", message.splitlines()[0] if message else "")
        text = re.sub(r"\s*request id: \S+$", "", text).strip()
        if not re.search(r"PRIVATE(\+|%20|\s)*KEY", text, re.I):
            return f"{code}: {text}" if text else str(code)
    reason = "cannot connect to the endpoint" if "connect" in str(err).lower() else "request failed"
    return f"{reason} ({type(err).__name__})"
