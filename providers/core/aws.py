"""AWS access for every plug-in that calls AWS (deploy targets, the route53 DNS provider): one settings mixin,
one session per call, one way to say what failed.

Credentials come from the standard AWS chain (environment, shared files, instance role) unless the settings
name a `profile` (and, for a stack that keeps its own, a `credentials_file`): a named profile wins over the
environment, so a stack's own credentials never borrow, or override, the operator's. Keys never come from
settings or state here (route53 alone may take keys, as secrets, for a zone in another account).

Every client retries throttled and transient failures itself, bounded, with jittered exponential backoff
(botocore's `standard` retry mode, MAX_ATTEMPTS attempts): a throttled request was not carried out, so retrying
it is safe for reads and writes alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from pydantic import field_validator

from .errors import DeployError, InvalidInputError
from .validation import LOCATION, Model, ProjectPath

if TYPE_CHECKING:
    import boto3

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
T = TypeVar("T")
MAX_ATTEMPTS = 6  # per call, the first included: backoff of at most 1+2+4+8+16 s (jittered) when throttled


class AwsAccess(Model):
    """region; optional endpoint_url (moto, VPC endpoints), profile (a named profile of the shared AWS files),
    credentials_file (a shared-credentials file of the stack's own, instead of ~/.aws/credentials)."""

    region: Annotated[str, LOCATION]
    endpoint_url: Annotated[str | None, LOCATION] = None
    profile: str | None = None
    credentials_file: ProjectPath | None = None

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not _REGION.match(value):
            raise InvalidInputError("", f"{value!r} is not an AWS region like us-east-1")
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise InvalidInputError("", "must be an http(s) URL")
        return value


def session(access: AwsAccess) -> boto3.Session:
    """A fresh session for one call (sessions and clients are never kept: providers are pickled into state)."""
    import boto3
    import botocore.session

    core = botocore.session.Session()
    if access.credentials_file:
        core.set_config_variable("credentials_file", access.credentials_file)
    return boto3.Session(botocore_session=core, profile_name=access.profile or None)


def client(access: AwsAccess, service: str, *, region: str | None = None, **credentials: Any) -> Any:
    """A client that retries throttling (`Throttling`, `ThrottlingException`, ...) and transient errors, bounded."""
    from botocore.config import Config

    made: Any = session(access)  # boto3's overloads name every service literally; ours is a parameter
    return made.client(service, region_name=region or access.region, endpoint_url=access.endpoint_url,
                       config=Config(retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS}), **credentials)


def call(what: str, operation: str, fn: Callable[[], T]) -> T:
    """`fn()`, with any AWS failure as one DeployError line: `what: operation: Code: message`."""
    try:
        return fn()
    except DeployError:
        raise
    except Exception as err:  # noqa: BLE001 - botocore errors have no common importable base worth typing
        raise DeployError(f"{what}: {operation}: {describe_error(err)}") from None


def describe_error(err: Exception) -> str:
    """One line from a botocore error: `Code: message`, or what to do about missing credentials."""
    name = type(err).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return ("no AWS credentials found (environment, shared files, instance role): configure them, or name a "
                "profile (and a credentials_file) in the settings")
    if name == "ProfileNotFound":
        return f"{err} (check profile and credentials_file in the settings)"
    response = getattr(err, "response", None)
    if isinstance(response, dict):
        error = response.get("Error") or {}
        return f"{error.get('Code', name)}: {error.get('Message', '')}".strip()
    return f"{name}: {str(err).splitlines()[0] if str(err) else ''}".strip()


__all__ = ["MAX_ATTEMPTS", "AwsAccess", "DeployFailed", "call", "client", "describe_error", "session"]
