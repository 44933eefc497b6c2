"""ACME failures as certplane errors: one line, retryable kept apart from permanent.

The `acme` library raises `acme.messages.Error` (an RFC 7807 problem document), `acme.errors.*` and `requests`
exceptions. Users see one line naming the operation, the problem type, its detail and every subproblem with
its identifier — never a traceback. Transient problems (badNonce, 5xx, network) are retried by
`providers.core.acme.client.CertplaneNetwork` first; what is left is raised as `RetryableError`. Rate limits
are never slept through: they become `RetryableError(..., retry_after=seconds)` naming when to come back.
"""

from __future__ import annotations

import datetime as dt
import email.utils
from dataclasses import dataclass
from typing import Any

import requests
from acme import errors as acme_errors
from acme import messages

from ..clock import real_now, rfc3339
from ..errors import CertplaneError, RetryableError

PREFIX = "urn:ietf:params:acme:error:"
RETRYABLE_CODES = frozenset({"badNonce", "serverInternal"})


class AcmeError(CertplaneError):
    """A permanent ACME failure (the CA said no); `problem_type` is the RFC 8555 error URN when known."""

    def __init__(self, message: str, problem_type: str | None = None) -> None:
        super().__init__(message)
        self.problem_type = problem_type


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff for transient failures: at most `attempts` tries within `max_total` s.
    A badNonce costs nothing to retry (the server rejected the request before acting), so it gets
    `nonce_attempts` quick tries: Pebble rejects 5% of nonces by default, and up to 50% in our tests."""

    attempts: int = 6
    nonce_attempts: int = 20
    nonce_delay: float = 0.02
    base_delay: float = 0.1
    max_delay: float = 2.0
    max_total: float = 30.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (1-based)."""
        return float(min(self.max_delay, self.base_delay * (2 ** (attempt - 1))))


def is_transient(err: BaseException) -> bool:
    """True for failures worth retrying at once: badNonce, 5xx, connection resets and timeouts."""
    if isinstance(err, messages.Error):
        status = getattr(err, "certplane_status", None)
        return err.code in RETRYABLE_CODES or (isinstance(status, int) and status >= 500)
    if isinstance(err, (requests.ConnectionError, requests.Timeout)):
        return not isinstance(err, requests.exceptions.SSLError)
    if isinstance(err, acme_errors.ClientError) and err.args:
        response = err.args[0][0] if isinstance(err.args[0], tuple) else err.args[0]
        return isinstance(response, requests.Response) and response.status_code >= 500
    return False


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> dt.datetime | None:
    """A Retry-After header (delta-seconds or HTTP-date) as an aware UTC instant; None if absent/invalid."""
    if not value:
        return None
    now = now or real_now()
    value = value.strip()
    if value.isdigit():
        return now + dt.timedelta(seconds=int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.astimezone(dt.timezone.utc) if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def describe_problem(err: messages.Error) -> str:
    """`<type URN>: <detail> (<identifier>: <detail>; ...)` on one line."""
    typ = err.typ or "about:blank"
    text = f"{typ}: {_one_line(err.detail or err.title or err.description or 'no detail given')}"
    if err.identifier is not None:
        text = f"{err.identifier.value}: {text}"
    subs = [f"{s.identifier.value if s.identifier else '?'}: {_one_line(s.detail or s.typ or '')}"
            for s in (err.subproblems or ())]
    return f"{text} ({'; '.join(subs)})" if subs else text


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _validation_failures(err: acme_errors.ValidationError) -> str:
    parts = []
    for authzr in err.failed_authzrs:
        name = authzr.body.identifier.value
        problems = [describe_problem(c.error) for c in authzr.body.challenges if c.error is not None]
        parts.append(f"{name}: {'; '.join(problems) or 'authorization ' + str(authzr.body.status)}")
    return "; ".join(parts)


def translate(err: BaseException, action: str, *, directory_url: str | None = None) -> CertplaneError:
    """The certplane error for a failure while doing `action` (e.g. "order for www.example.test")."""
    if isinstance(err, CertplaneError):
        return err
    head = f"acme: {action} failed"
    if isinstance(err, messages.Error):
        if err.code == "rateLimited":
            when: dt.datetime | None = getattr(err, "certplane_retry_after", None)
            seconds = max(0.0, (when - real_now()).total_seconds()) if when else None
            later = f"retry after {rfc3339(when)}" if when else "retry later"
            return RetryableError(f"{head}: rate limited by the CA; {later} ({describe_problem(err)})",
                                  retry_after=seconds)
        if is_transient(err):
            return RetryableError(f"{head}: the CA kept failing, retries exhausted: {describe_problem(err)}")
        return AcmeError(f"{head}: {describe_problem(err)}", problem_type=err.typ)
    if isinstance(err, acme_errors.ValidationError):
        return AcmeError(f"{head}: challenge validation failed: {_validation_failures(err)}")
    if isinstance(err, acme_errors.TimeoutError):
        return RetryableError(f"{head}: timed out waiting for the CA to validate or issue; retry later")
    if isinstance(err, acme_errors.ConflictError):
        return AcmeError(f"{head}: conflict with an existing resource at {getattr(err, 'location', '?')}")
    if isinstance(err, requests.exceptions.SSLError):
        where = f" {directory_url}" if directory_url else ""
        return AcmeError(f"{head}: TLS verification of the ACME server{where} failed "
                         f"(set ca_bundle to the CA certificate that signs it): {_short(err)}")
    if isinstance(err, (requests.ConnectionError, requests.Timeout)):
        where = f" at {directory_url}" if directory_url else ""
        return RetryableError(f"{head}: cannot reach the ACME server{where}: {_short(err)}")
    if isinstance(err, acme_errors.ClientError):
        return RetryableError(f"{head}: unexpected response from the CA: {_short(err)}") if is_transient(err) \
            else AcmeError(f"{head}: unexpected response from the CA: {_short(err)}")
    if isinstance(err, acme_errors.Error):
        return AcmeError(f"{head}: {_short(err)}")
    return AcmeError(f"{head}: {type(err).__name__}: {_short(err)}")


def _short(err: BaseException) -> str:
    text = _one_line(str(err)) or type(err).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def annotate(err: messages.Error, response: Any) -> None:
    """Remember the HTTP status and Retry-After of the response that carried a problem document."""
    object.__setattr__(err, "certplane_status", getattr(response, "status_code", None))
    headers = getattr(response, "headers", None) or {}
    object.__setattr__(err, "certplane_retry_after", parse_retry_after(headers.get("Retry-After")))


__all__ = ["AcmeError", "RetryPolicy", "annotate", "describe_problem", "is_transient", "parse_retry_after",
           "translate"]
