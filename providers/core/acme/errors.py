"""ACME failures as certplane errors: one line, retryable kept apart from permanent.

The `acme` library raises `acme.messages.Error` (an RFC 7807 problem document), `acme.errors.*` and `requests`
exceptions. Users see one line naming the operation, the problem type, its detail and every subproblem with
its identifier — never a traceback. Transient problems (badNonce, 5xx, network) are retried by
`providers.core.acme.client.CertplaneNetwork` first; what is left is raised as `RetryableError`. Rate limits
are never slept through: they become `RetryableError(..., retry_after=seconds)` naming when to come back.

Whatever a CA sends is untrusted: a problem document may have any field of any type, a megabyte of detail,
newlines and terminal escapes. `problem_from_json` keeps only well-typed fields, and `one_line` makes every
message one printable, bounded line (`MAX_MESSAGE` characters).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import re
import unicodedata
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import josepy
import requests
from acme import errors as acme_errors
from acme import messages

from ..clock import real_now, rfc3339
from ..errors import CertplaneError, RetryableError

PREFIX = "urn:ietf:params:acme:error:"
RETRYABLE_CODES = frozenset({"badNonce", "serverInternal"})
MAX_MESSAGE = 500
"""The longest message one ACME failure gives the user, whatever the CA sent."""
ACTION_LIMIT = 150  # "order for a, b, c, ..." of a certificate with many names
PROBLEM_LIMIT = 330  # what describe_problem returns: the rest of MAX_MESSAGE is the operation
TYPE_LIMIT, IDENTIFIER_LIMIT, DETAIL_LIMIT, URL_LIMIT = 80, 80, 200, 150
SUBPROBLEMS_SHOWN = 5
RETRY_AFTER_DIGITS = 12  # delta-seconds beyond ~31,000 years are not a Retry-After but junk


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


# --- one bounded line ------------------------------------------------------------------------------------

def one_line(text: object, limit: int = MAX_MESSAGE) -> str:
    """`text` as one printable line of at most `limit` characters. Control and format characters (newlines,
    terminal escapes, bidi overrides, lone surrogates that cannot even be printed) become spaces, runs of
    whitespace one space; what is too long ends in "..."."""
    raw = str(text)[: limit * 4]  # a megabyte of detail is cut before it is looked at
    line = " ".join("".join(c if _printable(c) else " " for c in raw).split())
    return line if len(line) <= limit else line[: max(0, limit - 3)].rstrip() + "..."


def _printable(char: str) -> bool:
    return unicodedata.category(char)[0] != "C"


def _text(value: object) -> str | None:
    """A problem field that is the string RFC 7807 says it is, else None (a CA may send a number or a list)."""
    return value if isinstance(value, str) and value.strip() else None


def redact_url(url: object, *, keep_query: bool = False) -> str:
    """A URL fit for a message: without user:password@ (requests sends it as Basic auth) and, unless
    `keep_query`, without the query string (where a token would be); one bounded line."""
    text = str(url)
    try:
        parts = urllib.parse.urlsplit(text)
        netloc = parts.netloc.rpartition("@")[2]
        text = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query if keep_query else "", ""))
    except ValueError:  # a malformed [IPv6] literal: keep only what precedes any credentials
        text = text.rpartition("@")[2]
    return one_line(text, URL_LIMIT) or "?"


def url_secrets(url: object) -> list[str]:
    """What in a URL is a credential: the password (the user name when it stands alone, as a token does) and
    every query value, as written and decoded. A CA answering the request could quote any of them back."""
    if not isinstance(url, str):
        return []
    try:
        parts = urllib.parse.urlsplit(url)
        found = [parts.password if parts.password else parts.username]
        found += [value for _name, value in urllib.parse.parse_qsl(parts.query)]
    except ValueError:
        return []
    found += [urllib.parse.unquote(f) for f in found if f]
    return sorted({f for f in found if f and len(f) >= 4}, key=len, reverse=True)


def _without(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return text


def safe_url(value: object) -> str | None:
    """An http(s) URL a CA gave (a problem's `instance`) shown only if it is one clean token: never cut, never
    with spaces or control characters (it would not be the URL any more), never with credentials; its query
    stays (the page a person must visit may need it)."""
    if not isinstance(value, str) or len(value) > URL_LIMIT or not re.fullmatch(r"https?://[!-~]+", value):
        return None
    return redact_url(value, keep_query=True)


# --- problem documents -----------------------------------------------------------------------------------

def problem_from_json(doc: Mapping[str, Any]) -> messages.Error:
    """The problem document a CA sent, as the `messages.Error` RFC 7807 / RFC 8555 describe, keeping only the
    fields of the right type: a numeric `detail`, a string for `subproblems` or an identifier without a value
    are dropped, so describing, classifying or retrying it can never fail. The `instance` URL (where a person
    must act, for userActionRequired) is kept as `certplane_instance`."""
    err = _problem_fields(doc)
    subs = doc.get("subproblems")
    if isinstance(subs, list):
        err.subproblems = tuple(_problem_fields(s) for s in subs if isinstance(s, Mapping))
    object.__setattr__(err, "certplane_instance", safe_url(doc.get("instance")))
    return err


def _problem_fields(doc: Mapping[str, Any]) -> messages.Error:
    clean: dict[str, Any] = {name: doc[name] for name in ("type", "title", "detail") if _text(doc.get(name))}
    identifier = doc.get("identifier")
    if isinstance(identifier, Mapping) and _text(identifier.get("value")) and _known_identifier(identifier.get("type")):
        clean["identifier"] = {"type": identifier["type"], "value": identifier["value"]}
    err: messages.Error = messages.Error.from_json(clean)
    return err


def _known_identifier(kind: object) -> bool:
    """An identifier type the `acme` library decodes (dns, ip); another one would fail the whole document."""
    return isinstance(kind, str) and kind in messages.IdentifierType.POSSIBLE_NAMES


def describe_problem(err: messages.Error) -> str:
    """`<identifier>: <type URN>: <detail> (<identifier>: <detail>; ...)` on one bounded line, whatever types
    the fields have; a userActionRequired names the page where a person must act, and only the first few
    subproblems are listed (with how many more there are)."""
    typ = one_line(_text(err.typ) or "about:blank", TYPE_LIMIT)
    detail = _text(err.detail) or _text(err.title) or _description(err.typ) or "no detail given"
    text = f"{typ}{_where_to_act(err)}: {one_line(detail, DETAIL_LIMIT)}"
    name = _identifier_value(err)
    if name:
        text = f"{name}: {text}"
    subs = err.subproblems if isinstance(err.subproblems, (tuple, list)) else ()
    shown = [_subproblem(s) for s in subs[:SUBPROBLEMS_SHOWN]]
    if len(subs) > SUBPROBLEMS_SHOWN:
        shown.append(f"and {len(subs) - SUBPROBLEMS_SHOWN} more")
    return one_line(f"{text} ({'; '.join(shown)})" if shown else text, PROBLEM_LIMIT)


def _subproblem(sub: object) -> str:
    if not isinstance(sub, messages.Error):
        return "?"
    detail = _text(sub.detail) or _text(sub.typ) or "no detail given"
    return one_line(f"{_identifier_value(sub) or '?'}: {one_line(detail, 100)}", 120)


def _identifier_value(err: messages.Error) -> str | None:
    value = _text(getattr(err.identifier, "value", None))
    return one_line(value, IDENTIFIER_LIMIT) if value else None


def _description(typ: object) -> str | None:
    return messages.ERROR_TYPE_DESCRIPTIONS.get(typ) if isinstance(typ, str) else None


def _where_to_act(err: messages.Error) -> str:
    instance = getattr(err, "certplane_instance", None)
    acting = err.typ == PREFIX + "userActionRequired"  # RFC 8555 §7.3.3; not among the `acme` library's codes
    return f" (a person must act at {instance})" if acting and instance else ""


# --- classification --------------------------------------------------------------------------------------

def is_transient(err: BaseException) -> bool:
    """True for failures worth retrying at once: badNonce, 5xx, connection resets and timeouts."""
    if isinstance(err, messages.Error):
        status = getattr(err, "certplane_status", None)
        return err.code in RETRYABLE_CODES or (isinstance(status, int) and status >= 500)
    if isinstance(err, (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)):
        return not isinstance(err, requests.exceptions.SSLError)
    if isinstance(err, acme_errors.ClientError):
        response = _response_of(err)
        return response is not None and response.status_code >= 500
    return False


def _response_of(err: BaseException) -> requests.Response | None:
    """The HTTP response an `acme` ClientError carries: as its argument, first of a (response, error) tuple, or
    as `.response` (MissingNonce)."""
    candidates = [getattr(err, "response", None), *err.args]
    for arg in candidates:
        if isinstance(arg, tuple) and arg:
            arg = arg[0]
        if isinstance(arg, requests.Response):
            return arg
    return None


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> dt.datetime | None:
    """A Retry-After header (delta-seconds or HTTP-date) as an aware UTC instant; None if absent, invalid, or
    beyond what a date can hold (a CA's junk must not turn a rate limit into a crash)."""
    if not isinstance(value, str) or not value.strip():
        return None
    now = now or real_now()
    value = value.strip()
    try:
        if value.isascii() and value.isdigit():
            return now + dt.timedelta(seconds=int(value)) if len(value) <= RETRY_AFTER_DIGITS else None
        when = email.utils.parsedate_to_datetime(value)
        return when.astimezone(dt.timezone.utc) if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None


def annotate(err: messages.Error, response: Any) -> None:
    """Remember the HTTP status and Retry-After of the response that carried a problem document."""
    object.__setattr__(err, "certplane_status", getattr(response, "status_code", None))
    headers = getattr(response, "headers", None) or {}
    object.__setattr__(err, "certplane_retry_after", parse_retry_after(headers.get("Retry-After")))


# --- translation -----------------------------------------------------------------------------------------

def _validation_failures(err: acme_errors.ValidationError) -> str:
    parts = []
    for authzr in err.failed_authzrs:
        name = _text(getattr(authzr.body.identifier, "value", None)) or "?"
        problems = [describe_problem(c.error) for c in authzr.body.challenges or ()
                    if isinstance(c.error, messages.Error)]
        parts.append(f"{name}: {'; '.join(problems) or 'authorization ' + str(authzr.body.status)}")
    return "; ".join(parts)


def translate(err: BaseException, action: str, *, directory_url: str | None = None) -> CertplaneError:
    """The certplane error for a failure while doing `action` (e.g. "order for www.example.test"): one line of
    at most MAX_MESSAGE characters, whatever the CA sent."""
    if isinstance(err, CertplaneError):
        return err
    head = f"acme: {one_line(action, ACTION_LIMIT)} failed"
    where = redact_url(directory_url) if directory_url else None
    out = _translate(err, head, where)
    line = one_line(_without(str(out), url_secrets(directory_url)), MAX_MESSAGE)
    if isinstance(out, RetryableError):
        return RetryableError(line, retry_after=out.retry_after)
    return AcmeError(line, problem_type=out.problem_type if isinstance(out, AcmeError) else None)


def _translate(err: BaseException, head: str, where: str | None) -> CertplaneError:
    if isinstance(err, messages.Error):
        return _translate_problem(err, head)
    if isinstance(err, acme_errors.ValidationError):
        return AcmeError(f"{head}: challenge validation failed: {_validation_failures(err)}")
    if isinstance(err, acme_errors.TimeoutError):
        return RetryableError(f"{head}: timed out waiting for the CA to validate or issue; retry later")
    if isinstance(err, acme_errors.ConflictError):
        return AcmeError(f"{head}: conflict with an existing resource at {redact_url(getattr(err, 'location', '?'))}")
    if isinstance(err, (json.JSONDecodeError, requests.exceptions.InvalidJSONError)):
        return AcmeError(f"{head}: the CA's answer is not valid ACME: its body is not JSON")
    if isinstance(err, requests.exceptions.SSLError):
        return AcmeError(f"{head}: TLS verification of the ACME server{' ' + where if where else ''} failed "
                         f"(set ca_bundle to the CA certificate that signs it): {_short(err)}")
    if isinstance(err, (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)):
        return RetryableError(f"{head}: cannot reach the ACME server{' at ' + where if where else ''}: {_short(err)}")
    if isinstance(err, requests.RequestException):  # an unusable URL in the directory, a redirect loop, bad gzip
        return AcmeError(f"{head}: the ACME server's answer could not be used: {_short(err)}")
    if isinstance(err, acme_errors.ClientError):
        return _translate_client_error(err, head)
    if isinstance(err, acme_errors.Error):
        return AcmeError(f"{head}: {_short(err)}")
    malformed = _malformed(err)
    if malformed:
        return AcmeError(f"{head}: the CA's answer is not valid ACME: {malformed}")
    return AcmeError(f"{head}: {type(err).__name__}: {_short(err)}")


def _translate_problem(err: messages.Error, head: str) -> CertplaneError:
    if err.code == "rateLimited" or getattr(err, "certplane_status", None) == 429:
        return _rate_limited(head, getattr(err, "certplane_retry_after", None), describe_problem(err))
    if is_transient(err):
        return RetryableError(f"{head}: the CA kept failing, retries exhausted: {describe_problem(err)}")
    hint = "; set eab.kid and eab.hmac_key from your CA account" if err.code == "externalAccountRequired" else ""
    return AcmeError(f"{head}: {describe_problem(err)}{hint}", problem_type=_text(err.typ))


def _rate_limited(head: str, when: object, what: str) -> RetryableError:
    """Never slept through: the next `pulumi up` after `when` (if the CA said a time still to come) retries."""
    now = real_now()
    later = isinstance(when, dt.datetime) and when.tzinfo is not None and when > now
    seconds = (when - now).total_seconds() if later and isinstance(when, dt.datetime) else None
    after = f"retry after {rfc3339(when)}" if later and isinstance(when, dt.datetime) else "retry later"
    return RetryableError(f"{head}: rate limited by the CA; {after} ({what})", retry_after=seconds)


def _translate_client_error(err: acme_errors.ClientError, head: str) -> CertplaneError:
    response = _response_of(err)
    if response is not None and response.status_code == 429:
        when = parse_retry_after(response.headers.get("Retry-After"))
        return _rate_limited(head, when, f"HTTP 429{_content_type(response)}")
    text = f"{head}: unexpected response from the CA: {_describe_client_error(err, response)}"
    return RetryableError(text) if is_transient(err) else AcmeError(text)


def _describe_client_error(err: acme_errors.ClientError, response: requests.Response | None) -> str:
    if isinstance(err, acme_errors.MissingNonce):
        return "no Replay-Nonce header in the answer" + (f" (HTTP {response.status_code})" if response else "")
    if isinstance(err, acme_errors.BadNonce):
        return "an invalid Replay-Nonce header in the answer"
    if response is not None:
        return f"HTTP {response.status_code}{_content_type(response)} without an RFC 7807 problem document"
    return _short(err)


def _content_type(response: requests.Response) -> str:
    kind = response.headers.get("Content-Type")
    return f" ({one_line(kind, 60)})" if kind else ""


DECODERS = frozenset({"acme", "josepy", "json", "requests"})
"""Where an exception raised while reading the CA's answer comes from (not from certplane's own code)."""


def _malformed(err: BaseException) -> str | None:
    """What is wrong with an answer the `acme` library could not decode, in words rather than the TypeError it
    raised; None when the exception was not raised while decoding (a bug of ours is not blamed on the CA)."""
    if not _raised_in(err, DECODERS):
        return None
    if isinstance(err, RecursionError):
        return "its JSON is nested too deeply"
    if isinstance(err, josepy.errors.DeserializationError):
        field = re.search(r"Could not decode '(\w+)'", str(err))
        return f"its {field.group(1)} field is malformed" if field else "a field is missing or malformed"
    if isinstance(err, KeyError):
        missing = re.search(r'field "(\w+)" not found', str(err))
        return f"the directory has no {missing.group(1)}" if missing else "a field is missing"
    if isinstance(err, (TypeError, AttributeError, IndexError)):
        return "a field is missing or of the wrong type"
    if isinstance(err, (ValueError, OverflowError)):
        return "a value is malformed or out of range"
    return None


def _raised_in(err: BaseException, packages: frozenset[str]) -> bool:
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    module = str(tb.tb_frame.f_globals.get("__name__", "")) if tb is not None else ""
    return module.split(".")[0] in packages


def _short(err: BaseException) -> str:
    return one_line(str(err), 300) or type(err).__name__


__all__ = ["AcmeError", "MAX_MESSAGE", "RetryPolicy", "annotate", "describe_problem", "is_transient", "one_line",
           "parse_retry_after", "problem_from_json", "redact_url", "safe_url", "translate", "url_secrets"]
