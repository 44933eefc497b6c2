"""Hostile ACME servers: whatever a CA answers as an error, the user gets ONE certplane line, never a traceback.

A real HTTP server on 127.0.0.1 plays the ACME directory (plain http:// is allowed on loopback) and answers one
chosen step of the real code path — reading the directory, the nonce, new-account, new-order, an authorization —
with a hostile answer: RFC 7807 / RFC 8555 problem documents with missing or wrong-typed fields, huge or nested
junk, control characters, non-JSON bodies, odd HTTP statuses and Retry-After headers. Hypothesis generates them
(bounded examples); named cases pin the ones with a meaning (rate limits, badNonce forever, userActionRequired,
externalAccountRequired, ...). Every outcome is either success or a `CertplaneError` whose message is one line
(no newline or control character), at most `LINE_LIMIT` characters, names what failed, never contains a
secret, and retries stay bounded in count and time.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import functools
import http.server
import json
import re
import secrets
import threading
import time
import unicodedata
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from acme import errors as acme_errors
from acme import messages
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from providers.core import keys
from providers.core.acme import client as acme_client
from providers.core.acme import orders
from providers.core.acme.errors import (AcmeError, RetryPolicy, annotate, describe_problem, is_transient,
                                        one_line, parse_retry_after, problem_from_json, redact_url, translate)
from providers.core.acme.solver import Challenge
from providers.core.errors import CertplaneError, InvalidInputError, RetryableError

LINE_LIMIT = 500
PREFIX = "urn:ietf:params:acme:error:"
DOMAIN = "www.example.test"
ORDER_ACTION = f"order for {DOMAIN}"
QUICK = RetryPolicy(attempts=3, nonce_attempts=4, nonce_delay=0.0, base_delay=0.001, max_delay=0.004,
                    max_total=2.0)
MAX_TRIES = max(QUICK.attempts, QUICK.nonce_attempts)
ACCOUNT_KEY = keys.generate_private_key(keys.KeySpec("ecdsa", curve="P-256"))
CERT_KEY = keys.generate_private_key(keys.KeySpec("ecdsa", curve="P-256"))
SECRET_MARKERS = (keys.private_key_to_pem(ACCOUNT_KEY).splitlines()[1], "PRIVATE KEY")
PYTHON_ERROR = re.compile(r"\b(Key|Type|Value|Attribute|Index|Recursion|Overflow|JSONDecode|Unicode\w*|Deserialization|"
                          r"Assertion|Name|Lookup)Error\b|Traceback")
HYPOTHESIS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                      database=None)


# --- the hostile server ----------------------------------------------------------------------------------

@dataclass
class Reply:
    """One HTTP answer. `nonce=False` leaves out the Replay-Nonce header every answer carries otherwise."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    nonce: bool = True


Script = Callable[["Request"], Reply]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes


def problem(doc: Any, status: int = 400, **headers: str) -> Reply:
    """A problem document as the CA would send it (any JSON value: hostile ones are not objects)."""
    return Reply(status, json.dumps(doc).encode(), {"Content-Type": "application/problem+json", **headers})


class HostileAcme:
    """An ACME directory on 127.0.0.1 whose endpoints answer sanely unless `script` says otherwise for a path.
    It never checks a JWS: only the client side is under test. `hits` counts requests per path."""

    def __init__(self) -> None:
        self.script: dict[str, Script] = {}
        self.hits: Counter[str] = Counter()
        self.directory: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.directory_url = self.base + "/dir"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> HostileAcme:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self, script: Mapping[str, Script | Reply] | None = None) -> None:
        """Sane answers everywhere, except at the paths `script` gives (a Reply is the same answer every time)."""
        with self._lock:
            self.hits.clear()
            self.directory = {"newNonce": self.base + "/nonce", "newAccount": self.base + "/new-acct",
                              "newOrder": self.base + "/new-order", "revokeCert": self.base + "/revoke",
                              "keyChange": self.base + "/key-change"}
            self.script = {}
            for path, answer in (script or {}).items():
                self.script[path] = answer if callable(answer) else (lambda _req, _a=answer: _a)

    def answer(self, request: Request) -> Reply:
        with self._lock:
            self.hits[request.path] += 1
            scripted = self.script.get(request.path)
        if scripted is not None:
            return scripted(request)
        return self._sane(request)

    def _sane(self, request: Request) -> Reply:
        if request.path == "/dir":
            return Reply(200, json.dumps(self.directory).encode(), {"Content-Type": "application/json"})
        if request.path == "/nonce":
            return Reply(200)
        if request.path == "/new-acct":
            return Reply(201, json.dumps({"status": "valid", "contact": []}).encode(),
                         {"Content-Type": "application/json", "Location": self.base + "/acct/1"})
        if request.path == "/new-order":
            order = {"status": "pending", "identifiers": [{"type": "dns", "value": DOMAIN}],
                     "authorizations": [self.base + "/authz/1"], "finalize": self.base + "/finalize/1"}
            return Reply(201, json.dumps(order).encode(),
                         {"Content-Type": "application/json", "Location": self.base + "/order/1"})
        if request.path == "/authz/1":  # offers no dns-01 challenge: the order stops there, cleanly
            authz = {"status": "pending", "identifier": {"type": "dns", "value": DOMAIN}, "challenges": []}
            return Reply(200, json.dumps(authz).encode(), {"Content-Type": "application/json"})
        return problem({"type": PREFIX + "malformed", "detail": "no such resource"}, 404)

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        acme = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = urllib.parse.urlsplit(self.path).path
                reply = acme.answer(Request(self.command, path, dict(self.headers), body))
                self.send_response(reply.status)
                headers = dict(reply.headers)
                if reply.nonce:
                    headers.setdefault("Replay-Nonce", secrets.token_urlsafe(16))
                for name, value in headers.items():  # as UTF-8 on the wire, whatever the value
                    self.send_header(name, value.encode().decode("latin-1"))
                self.send_header("Content-Length", str(len(reply.body)))
                self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(reply.body)

            do_GET = do_POST = do_HEAD = _serve

        return Handler


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileAcme]:
    with HostileAcme() as server:
        yield server


# --- driving the real code path --------------------------------------------------------------------------

class NoSolver:
    """Never reached by a failing order; `present` would only run once an authorization offers dns-01."""

    challenge_type = "dns-01"

    def present(self, challenge: Challenge) -> None:
        raise AssertionError("no challenge should be presented")

    def wait_ready(self, challenges: Any) -> None:
        pass

    def cleanup(self, challenge: Challenge) -> None:
        pass

    def close(self) -> None:
        pass


def connection(hostile: HostileAcme, url: str | None = None) -> acme_client.Connection:
    return acme_client.Connection(url or hostile.directory_url, retry=QUICK, timeout=5)


def read_directory(hostile: HostileAcme) -> None:
    acme_client.connect(connection(hostile), ACCOUNT_KEY)


def register(hostile: HostileAcme) -> None:
    client = acme_client.connect(connection(hostile), ACCOUNT_KEY)
    acme_client.register_account(client, email="ops@example.test", directory_url=hostile.directory_url)


def place_order(hostile: HostileAcme) -> None:
    client = acme_client.connect(connection(hostile), ACCOUNT_KEY, hostile.base + "/acct/1")
    orders.issue(client, [DOMAIN], NoSolver(), key=CERT_KEY, timeout=2)


# stage -> (the path answered with the hostile reply, how to drive it, what the message must name)
STAGES: dict[str, tuple[str, Callable[[HostileAcme], None], str]] = {
    "directory": ("/dir", read_directory, "reading the directory"),
    "nonce": ("/nonce", register, "account registration"),
    "new-account": ("/new-acct", register, "account registration"),
    "new-order": ("/new-order", place_order, ORDER_ACTION),
    "authorization": ("/authz/1", place_order, ORDER_ACTION),
}


def outcome(run: Callable[[], None]) -> CertplaneError | None:
    """None on success, the CertplaneError otherwise; anything else escapes and fails the test."""
    try:
        run()
    except CertplaneError as err:
        return err
    return None


def assert_one_line(err: BaseException, names: str = "") -> str:
    """The message is one printable line, bounded, naming `names`, and carries no key material."""
    text = str(err)
    bad = [c for c in text if unicodedata.category(c)[0] == "C" or unicodedata.category(c) in ("Zl", "Zp")]
    assert not bad, f"control characters {bad[:5]!r} in {text[:200]!r}"
    assert 0 < len(text) <= LINE_LIMIT, f"{len(text)} characters: {text[:200]!r}..."
    assert names in text, f"{names!r} not named in {text!r}"
    assert not PYTHON_ERROR.search(text), f"a Python exception, not a sentence: {text!r}"
    for marker in SECRET_MARKERS:
        assert marker not in text
    return text


def run_stage(hostile: HostileAcme, stage: str, reply: Reply) -> CertplaneError | None:
    path, drive, names = STAGES[stage]
    hostile.reset({path: reply})
    started = time.monotonic()
    err = outcome(lambda: drive(hostile))
    elapsed = time.monotonic() - started
    assert elapsed < QUICK.max_total + 3, f"took {elapsed:.1f} s"
    assert hostile.hits[path] <= MAX_TRIES
    if err is not None:
        assert_one_line(err, names)
        assert isinstance(err, (AcmeError, RetryableError, InvalidInputError)), type(err)
    return err


# --- strategies ------------------------------------------------------------------------------------------

CODES = sorted(messages.ERROR_CODES)
NASTY = ["\n", "\r\n", "\x00", "\x1b[31m", "\u2028", "\u202e", "\t", "\x7f", "\ufeff", " :: ", "%s", "{0}"]
nasty_text = st.lists(st.text(max_size=20) | st.sampled_from(NASTY), max_size=8).map("".join)
huge_text = st.integers(0, 40_000).map(lambda n: ("long detail " * (n // 12 + 1))[:n])
junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12)
urns = (st.sampled_from([PREFIX + c for c in CODES]) | st.sampled_from(
    ["about:blank", "", PREFIX, PREFIX + "noSuchError", "urn:ietf:params:acme:error:rateLimited:extra",
     "https://example.test/problem", "urn:x:y"]) | nasty_text)
texts = nasty_text | huge_text | junk
identifiers = st.fixed_dictionaries({}, optional={"type": st.sampled_from(["dns", "ip", "email"]) | junk,
                                                  "value": st.sampled_from([DOMAIN, "*.example.test"]) | texts})
subproblem = st.fixed_dictionaries({}, optional={"type": urns | junk, "detail": texts, "identifier": identifiers | junk,
                                                 "subproblems": junk})
many_subproblems = st.integers(0, 3000).map(lambda n: [
    {"type": PREFIX + "caa", "detail": f"CAA forbids n{i}", "identifier": {"type": "dns", "value": f"n{i}.example"}}
    for i in range(n)])
problems = st.fixed_dictionaries({}, optional={
    "type": urns | junk, "detail": texts, "title": texts, "status": st.integers() | junk,
    "instance": st.sampled_from(["https://ca.example.test/tos", "javascript:alert(1)", "https://x\n.test"]) | texts,
    "identifier": identifiers | junk,
    "subproblems": st.lists(subproblem | junk, max_size=6) | many_subproblems | junk})
retry_afters = (st.sampled_from(["0", "-5", "3600", "9" * 30, "9" * 5000, "²", "١٢", " 12 ", "1e3", "soon",
                                 "Fri, 31 Dec 9999 23:59:59 -2359", "Mon, 01 Jan 1990 00:00:00 GMT",
                                 "Fri, 27 Nov 2099 12:00:00 GMT", "Thu, 01 Jan 1970 00:00:00 +2400"])
                | st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=40))
content_types = st.sampled_from(["application/problem+json", "application/json", "text/html", "",
                                 "application/problem+json; charset=utf-8", "text/plain; charset=latin-1"])
statuses = st.sampled_from([200, 201, 202, 204, 400, 401, 403, 404, 405, 410, 429, 500, 502, 503, 599]) \
    | st.integers(200, 599)


def _deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


bodies = (problems.map(lambda d: json.dumps(d).encode()) | junk.map(lambda d: json.dumps(d).encode())
          | st.binary(max_size=200) | problems.map(lambda d: json.dumps(d).encode()[:-3])
          | st.sampled_from([_deep(100_000), b'{"type": ' + b"9" * 5000 + b"}", b"<html>Bad Gateway</html>",
                             b'{"detail": "\xff\xfe not utf-8"}', "{\"detail\": \"\u00e9\"}".encode("latin-1")]))


@st.composite
def hostile_replies(draw: st.DrawFn) -> Reply:
    headers = {}
    ct = draw(content_types)
    if ct:
        headers["Content-Type"] = ct
    if draw(st.booleans()):
        headers["Retry-After"] = draw(retry_afters)
    return Reply(draw(statuses), draw(bodies), headers, nonce=draw(st.booleans() | st.just(True)))


# --- hypothesis over the real code path ------------------------------------------------------------------

@pytest.mark.parametrize("stage", list(STAGES))
@HYPOTHESIS
@given(reply=hostile_replies())
def test_any_hostile_answer_is_one_certplane_line(hostile, stage, reply):
    run_stage(hostile, stage, reply)


@pytest.mark.parametrize("stage", ["new-account", "new-order"])
@HYPOTHESIS
@given(doc=problems, status=st.sampled_from([400, 403, 429, 500, 503]), retry_after=st.none() | retry_afters)
def test_any_problem_document_is_one_line_naming_its_type(hostile, stage, doc, status, retry_after):
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    err = run_stage(hostile, stage, problem(doc, status, **headers))
    assert err is not None
    typ = doc.get("type")
    if isinstance(typ, str) and typ.startswith(PREFIX) and typ[len(PREFIX):] in messages.ERROR_CODES:
        assert typ in str(err) or typ[len(PREFIX):] in str(err)


# --- direct: describe_problem, parse_retry_after, translate, is_transient -------------------------------

@HYPOTHESIS
@given(doc=problems | junk)
def test_describe_problem_of_any_decoded_document_is_one_line(doc):
    try:
        err = messages.Error.from_json(doc)
    except Exception:  # noqa: BLE001 - the acme library's own decoding: covered end to end above
        return
    assert_one_line(AcmeError(describe_problem(err)))
    for action in ("order for a.example.test", "x" * 2000, "line\nbreak"):
        out = translate(err, action)
        assert isinstance(out, CertplaneError)
        assert_one_line(out)
    assert is_transient(err) in (True, False)


@HYPOTHESIS
@given(value=st.none() | retry_afters | st.text())
def test_parse_retry_after_never_raises(value):
    now = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    when = parse_retry_after(value, now)
    assert when is None or (when.tzinfo is not None and when.utcoffset() == dt.timedelta(0))


@HYPOTHESIS
@given(doc=problems | junk, action=nasty_text | huge_text, status=st.none() | statuses,
       retry_after=st.none() | retry_afters)
def test_any_document_decoded_field_by_field_is_one_line(doc, action, status, retry_after):
    if not isinstance(doc, dict):
        return
    err = problem_from_json(doc)
    response = requests.Response()
    response.status_code = status or 400
    response.headers.update({} if retry_after is None else {"Retry-After": retry_after})
    annotate(err, response)
    assert_one_line(AcmeError(describe_problem(err)))
    out = translate(err, action)
    assert isinstance(out, (AcmeError, RetryableError))
    assert_one_line(out, "acme: ")
    assert out.retry_after is None or out.retry_after > 0 if isinstance(out, RetryableError) else True


@HYPOTHESIS
@given(args=st.lists(junk | st.tuples(junk), max_size=3))
def test_is_transient_and_translate_take_any_library_error(args):
    for kind in (acme_errors.ClientError, acme_errors.Error):
        err = kind(*args)
        assert is_transient(err) in (True, False)
        assert_one_line(translate(err, "account registration"), "account registration")


@HYPOTHESIS
@given(when=st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(9998, 12, 31),
                         timezones=st.just(dt.timezone.utc)), seconds=st.integers(0, 10**10))
def test_parse_retry_after_reads_both_rfc_forms(when, seconds):
    now = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    assert parse_retry_after(email.utils.format_datetime(when, usegmt=True), now) == when.replace(microsecond=0)
    assert parse_retry_after(str(seconds), now) == now + dt.timedelta(seconds=seconds)


@HYPOTHESIS
@given(user=st.text(max_size=12), password=st.text(min_size=1, max_size=12), query=st.text(max_size=12))
def test_redact_url_drops_credentials_and_query(user, password, query):
    password = "pw-" + password.replace("@", "")
    quote = functools.partial(urllib.parse.quote, safe="")
    url = f"https://{quote(user)}:{quote(password)}@ca.example.test/dir?token={quote(query)}"
    shown = redact_url(url)
    assert shown == "https://ca.example.test/dir"
    assert_one_line(AcmeError(redact_url(user + "://" + password + "\n@[::1")))


@HYPOTHESIS
@given(text=st.text() | nasty_text | huge_text, limit=st.integers(3, LINE_LIMIT))
def test_one_line_is_printable_bounded_and_keeps_short_clean_text(text, limit):
    line = one_line(text, limit)
    assert len(line) <= limit
    line.encode("utf-8")  # no lone surrogate: printable to any terminal or log
    assert_one_line(AcmeError(line or "x"))
    if len(text) <= limit and text.isprintable() and text == " ".join(text.split()):
        assert line == text


def test_a_bug_of_certplane_is_not_blamed_on_the_ca():
    try:
        {}["certplane's own mistake"]
    except KeyError as err:
        out = translate(err, "order for a.example.test")
    assert str(out) == "acme: order for a.example.test failed: KeyError: \"certplane's own mistake\""


# --- named cases: what the user reads --------------------------------------------------------------------

def rate_limited(detail: str = "too many new orders recently", **headers: str) -> Reply:
    return problem({"type": PREFIX + "rateLimited", "detail": detail}, 429, **headers)


@pytest.mark.parametrize(("retry_after", "expect"), [
    ("3600", 3600), ("Fri, 27 Nov 2099 12:00:00 GMT", "2099-11-27T12:00:00Z"), (None, None),
    ("Mon, 01 Jan 1990 00:00:00 GMT", None), ("-5", None), ("9" * 30, None), ("9" * 5000, None), ("²", None),
    ("Fri, 31 Dec 9999 23:59:59 -2359", None), ("soon", None), ("1e3", None)])
@pytest.mark.parametrize("stage", ["new-account", "new-order"])
def test_rate_limit_is_retryable_named_and_never_slept_through(hostile, stage, retry_after, expect):
    reply = rate_limited(**({} if retry_after is None else {"Retry-After": retry_after}))
    started = time.monotonic()
    err = run_stage(hostile, stage, reply)
    assert time.monotonic() - started < 1 and hostile.hits[STAGES[stage][0]] == 1  # not retried, not slept
    assert isinstance(err, RetryableError)
    assert "rate limited by the CA; " in str(err) and "rateLimited: too many new orders recently" in str(err)
    if isinstance(expect, int):
        assert err.retry_after is not None and expect - 10 < err.retry_after <= expect
    elif isinstance(expect, str):
        assert f"retry after {expect}" in str(err) and (err.retry_after or 0) > 0
    else:
        assert "retry later" in str(err) and err.retry_after is None


def test_http_429_without_a_problem_document_is_a_rate_limit_too(hostile):
    err = run_stage(hostile, "new-order", Reply(429, b"<h1>Slow down</h1>", {"Content-Type": "text/html",
                                                                            "Retry-After": "120"}))
    assert isinstance(err, RetryableError) and err.retry_after is not None and 110 < err.retry_after <= 120
    assert str(err).startswith(f"acme: {ORDER_ACTION} failed: rate limited by the CA; retry after ")
    assert str(err).endswith("(HTTP 429 (text/html))")


def test_http_429_with_another_problem_type_is_a_rate_limit(hostile):
    err = run_stage(hostile, "new-account", problem({"type": "about:blank", "detail": "busy"}, 429))
    assert isinstance(err, RetryableError)
    assert str(err) == "acme: account registration failed: rate limited by the CA; retry later (about:blank: busy)"


@pytest.mark.parametrize("policy", [QUICK, RetryPolicy()], ids=["quick", "default"])
def test_bad_nonce_forever_gives_up_bounded_and_says_so(hostile, policy):
    hostile.reset({"/new-acct": problem({"type": PREFIX + "badNonce", "detail": "JWS has an invalid anti-replay "
                                                                              "nonce"})})
    client = acme_client.connect(acme_client.Connection(hostile.directory_url, retry=policy), ACCOUNT_KEY)
    started = time.monotonic()
    with pytest.raises(RetryableError) as err:
        acme_client.register_account(client, email=None)
    assert time.monotonic() - started < policy.nonce_attempts * policy.nonce_delay + 2
    assert hostile.hits["/new-acct"] == policy.nonce_attempts
    assert str(err.value) == ("acme: account registration failed: the CA kept failing, retries exhausted: "
                              "urn:ietf:params:acme:error:badNonce: JWS has an invalid anti-replay nonce")


@pytest.mark.parametrize(("stage", "reply", "says"), [
    ("new-order", problem({"type": PREFIX + "serverInternal", "detail": "boom"}, 500),
     "the CA kept failing, retries exhausted: urn:ietf:params:acme:error:serverInternal: boom"),
    ("directory", Reply(503, b"<html>Service Unavailable</html>", {"Content-Type": "text/html"}),
     "unexpected response from the CA: HTTP 503 (text/html) without an RFC 7807 problem document"),
    ("new-account", problem({"type": PREFIX + "unauthorized", "detail": "x"}, 502),
     "the CA kept failing, retries exhausted: urn:ietf:params:acme:error:unauthorized: x"),
    ("new-order", problem({"type": PREFIX + "serverInternal"}, 200),  # a 2xx carrying a problem
     "the CA kept failing, retries exhausted: urn:ietf:params:acme:error:serverInternal: The server experienced "
     "an internal error"),
])
def test_server_failures_are_retried_a_bounded_number_of_times(hostile, stage, reply, says):
    err = run_stage(hostile, stage, reply)
    assert isinstance(err, RetryableError) and str(err).endswith(says)
    assert hostile.hits[STAGES[stage][0]] == QUICK.attempts


def test_retrying_stops_at_max_total_whatever_the_attempts(hostile):
    hostile.reset({"/new-order": problem({"type": PREFIX + "serverInternal"}, 500)})
    policy = RetryPolicy(attempts=1000, base_delay=0.05, max_delay=0.05, max_total=0.3)
    client = acme_client.connect(acme_client.Connection(hostile.directory_url, retry=policy), ACCOUNT_KEY,
                                 hostile.base + "/acct/1")
    started = time.monotonic()
    with pytest.raises(RetryableError):
        orders.issue(client, [DOMAIN], NoSolver(), key=CERT_KEY)
    assert time.monotonic() - started < 1.5 and hostile.hits["/new-order"] <= 8


@pytest.mark.parametrize(("instance", "shown"), [
    ("https://ca.example.test/agree?ref=1", "https://ca.example.test/agree?ref=1"),
    ("https://ops:hunter2@ca.example.test/agree", "https://ca.example.test/agree"),
    ("javascript:alert(1)", None), ("https://ca.example.test/\nInjected: line", None),
    ("https://ca.example.test/" + "a" * 5000, None), (["https://ca.example.test/"], None), (None, None)])
def test_user_action_required_names_where_a_person_must_act(hostile, instance, shown):
    doc = {"type": PREFIX + "userActionRequired", "detail": "Terms of service have changed", "instance": instance}
    err = run_stage(hostile, "new-order", problem(doc, 403))
    assert isinstance(err, AcmeError) and err.problem_type == PREFIX + "userActionRequired"
    where = f" (a person must act at {shown})" if shown else ""
    assert str(err) == (f"acme: {ORDER_ACTION} failed: urn:ietf:params:acme:error:userActionRequired{where}: "
                        "Terms of service have changed")
    assert "hunter2" not in str(err)


@pytest.mark.parametrize(("doc", "says"), [
    ({"type": PREFIX + "externalAccountRequired", "detail": "an external account binding is required"},
     "account registration failed: urn:ietf:params:acme:error:externalAccountRequired: an external account "
     "binding is required; set eab.kid and eab.hmac_key from your CA account"),
    ({"type": PREFIX + "unauthorized", "detail": "account is deactivated"},
     "account registration failed: urn:ietf:params:acme:error:unauthorized: account is deactivated"),
    ({"type": PREFIX + "notAnErrorWeKnow", "detail": "new in RFC 9999"},
     "account registration failed: urn:ietf:params:acme:error:notAnErrorWeKnow: new in RFC 9999"),
    ({"type": 42, "detail": {"nested": ["junk"]}, "title": "Forbidden"},
     "account registration failed: about:blank: Forbidden"),
    ({"detail": "line one\nline two\r\n\x1b[31mred\x1b[0m \u202eevil\u2028end \ud800"},
     "account registration failed: about:blank: line one line two [31mred [0m evil end"),
])
def test_problem_documents_read_as_one_sentence(hostile, doc, says):
    err = run_stage(hostile, "new-account", problem(doc, 403))
    assert isinstance(err, AcmeError) and str(err) == "acme: " + says
    str(err).encode("utf-8")  # printable: no lone surrogate reaches the terminal


def test_caa_and_rejected_identifier_subproblems_name_each_domain(hostile):
    doc = {"type": PREFIX + "compound", "detail": "Error creating new order :: 2 problems", "subproblems": [
        {"type": PREFIX + "caa", "detail": "CAA record forbids issuance",
         "identifier": {"type": "dns", "value": DOMAIN}},
        {"type": PREFIX + "rejectedIdentifier", "detail": "blocked\nby policy",
         "identifier": {"type": "dns", "value": "blocked.example"}},
        {"type": PREFIX + "caa", "identifier": {"type": "email", "value": "odd@example.test"}},
        "not an object", {"identifier": {"type": "dns"}}]}
    err = run_stage(hostile, "new-order", problem(doc, 403))
    assert isinstance(err, AcmeError) and err.problem_type == PREFIX + "compound"
    assert str(err) == (f"acme: {ORDER_ACTION} failed: urn:ietf:params:acme:error:compound: Error creating new "
                        f"order :: 2 problems ({DOMAIN}: CAA record forbids issuance; blocked.example: blocked by "
                        "policy; ?: urn:ietf:params:acme:error:caa; ?: about:blank)")


def test_thousands_of_subproblems_and_a_megabyte_of_detail_stay_one_short_line(hostile):
    subs = [{"type": PREFIX + "caa", "detail": "CAA forbids", "identifier": {"type": "dns", "value": f"n{i}.test"}}
            for i in range(3000)]
    err = run_stage(hostile, "new-order", problem({"type": PREFIX + "caa", "detail": "x" * 1_000_000,
                                                   "subproblems": subs}, 403))
    text = assert_one_line(err, ORDER_ACTION)
    assert text.startswith(f"acme: {ORDER_ACTION} failed: urn:ietf:params:acme:error:caa: xxx")
    err = run_stage(hostile, "new-order", problem({"type": PREFIX + "caa", "subproblems": subs}, 403))
    assert str(err).endswith("n4.test: CAA forbids; and 2995 more)")


@pytest.mark.parametrize(("stage", "reply", "says"), [
    ("directory", Reply(200, b"<html>not a directory</html>", {"Content-Type": "text/html"}),
     "unexpected response from the CA: the answer (HTTP 200) is not JSON"),
    ("directory", Reply(200, b"[1, 2]", {"Content-Type": "application/json"}),
     "the answer is not an ACME directory (no JSON object)"),
    ("directory", Reply(200, b'{"newNonce": 5, "newOrder": "x"}', {"Content-Type": "application/json"}),
     "the answer is not an ACME directory: it has no newNonce, newAccount URL"),
    ("directory", problem({"type": PREFIX + "unauthorized", "detail": "no"}, 200),
     "urn:ietf:params:acme:error:unauthorized: no"),
    ("new-order", Reply(201, _deep(100_000), {"Content-Type": "application/json"}),
     "the CA's answer is not valid ACME: its JSON is nested too deeply"),
    ("new-order", Reply(201, b"{}", {"Content-Type": "application/json"}),
     "the CA's answer is not valid ACME: a field is missing or of the wrong type"),
    ("new-order", Reply(201, b"", {}), "the CA's answer is not valid ACME: its body is not JSON"),
    ("new-order", Reply(400, _deep(100_000), {"Content-Type": "application/problem+json"}),
     "unexpected response from the CA: HTTP 400 (application/problem+json) without an RFC 7807 problem document"),
    ("new-order", Reply(400, b'"just a string"', {"Content-Type": "application/problem+json"}),
     "unexpected response from the CA: HTTP 400 (application/problem+json) without an RFC 7807 problem document"),
    ("new-order", Reply(400, b'{"type": ' + b"9" * 5000 + b"}", {"Content-Type": "application/problem+json"}),
     "unexpected response from the CA: HTTP 400 (application/problem+json) without an RFC 7807 problem document"),
    ("nonce", Reply(200, nonce=False), "unexpected response from the CA: no Replay-Nonce header in the answer "
     "(HTTP 200)"),
    ("nonce", Reply(200, headers={"Replay-Nonce": "a"}, nonce=False),
     "unexpected response from the CA: an invalid Replay-Nonce header in the answer"),
    ("new-account", Reply(409, b"", {}), "the CA says this key has an account but its answer has no account URL "
     "(Location header)"),
    ("new-account", Reply(200, b"{}", {"Content-Type": "application/json", "Location": "javascript:x"}),
     "the CA says this key has an account but its answer has no account URL (Location header)"),
    ("new-account", Reply(201, b'{"status": "valid"}', {"Content-Type": "application/json"}),
     "the CA's answer has no account URL (Location header)"),
])
def test_answers_that_are_not_acme_say_what_is_wrong(hostile, stage, reply, says):
    err = run_stage(hostile, stage, reply)
    assert isinstance(err, (AcmeError, RetryableError)), err
    assert str(err).endswith(says), str(err)


def test_an_account_body_of_the_wrong_types_still_registers(hostile):
    body = json.dumps({"status": 7, "contact": 5}).encode()
    hostile.reset({"/new-acct": Reply(201, body, {"Content-Type": "application/json",
                                                  "Location": hostile.base + "/acct/9"})})
    client = acme_client.connect(connection(hostile), ACCOUNT_KEY)
    account = acme_client.register_account(client, email=None)
    assert account == acme_client.Account(url=hostile.base + "/acct/9", status=None, contact=())


@pytest.mark.parametrize("entry", ["newAccount", "newOrder", "revokeCert"])
def test_a_directory_cannot_send_requests_in_the_clear_to_another_host(hostile, entry):
    hostile.reset()
    hostile.directory[entry] = "http://ca.example.test/" + entry
    err = outcome(lambda: read_directory(hostile))
    assert isinstance(err, AcmeError)
    assert str(err) == (f"acme: reading the directory {hostile.directory_url} failed: the directory's {entry} is "
                        f"not an https:// URL (http:// only on loopback): http://ca.example.test/{entry}")


@pytest.mark.parametrize("junk_profiles", [["short"], "short", 5, {"short": 5}, [["a", "b"]]])
def test_junk_profiles_in_the_directory_mean_no_profiles(hostile, junk_profiles):
    hostile.reset()
    hostile.directory["meta"] = {"profiles": junk_profiles}
    client = acme_client.connect(connection(hostile), ACCOUNT_KEY, hostile.base + "/acct/1")
    assert acme_client.profiles(client) in ({}, {"short": ""})
    err = outcome(lambda: orders.issue(client, [DOMAIN], NoSolver(), key=CERT_KEY, profile="short"))
    assert isinstance(err, (InvalidInputError, AcmeError))
    assert_one_line(err)


def test_a_directory_meta_that_is_not_an_object_is_ignored(hostile):
    hostile.reset()
    hostile.directory["meta"] = "junk"
    client = acme_client.connect(connection(hostile), ACCOUNT_KEY)
    assert acme_client.profiles(client) == {} and not client.external_account_required()


# --- problems inside an authorization: a challenge's error ------------------------------------------------

TOKEN = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"


class QuietSolver(NoSolver):
    """Presents nothing, so the order reaches the CA's verdict on the challenge."""

    def present(self, challenge: Challenge) -> None:
        pass


def _authz(hostile: HostileAcme, status: str, error: Any = None) -> bytes:
    challenge: dict[str, Any] = {"type": "dns-01", "url": hostile.base + "/chall/1", "token": TOKEN,
                                 "status": status}
    if error is not None:
        challenge["error"] = error
    return json.dumps({"status": status, "identifier": {"type": "dns", "value": DOMAIN},
                       "challenges": [challenge]}).encode()


def validated(hostile: HostileAcme, error: Any, *, verdict: str = "invalid") -> dict[str, Script]:
    """/authz/1 pending at first, then `verdict` with `error` on its challenge; /chall/1 accepts the answer."""
    def authz(_request: Request) -> Reply:
        first = hostile.hits["/authz/1"] == 1
        body = _authz(hostile, "pending") if first else _authz(hostile, verdict, error)
        return Reply(200, body, {"Content-Type": "application/json"})

    def chall(_request: Request) -> Reply:
        body = json.dumps({"type": "dns-01", "url": hostile.base + "/chall/1", "token": TOKEN,
                           "status": "processing"}).encode()
        return Reply(200, body, {"Content-Type": "application/json",
                                 "Link": f'<{hostile.base}/authz/1>;rel="up"'})

    return {"/authz/1": authz, "/chall/1": chall}


def order_validated(hostile: HostileAcme, error: Any, *, verdict: str = "invalid", timeout: float = 2) -> Any:
    hostile.reset(validated(hostile, error, verdict=verdict))
    client = acme_client.connect(connection(hostile), ACCOUNT_KEY, hostile.base + "/acct/1")
    return outcome(lambda: orders.issue(client, [DOMAIN], QuietSolver(), key=CERT_KEY, timeout=timeout))


@HYPOTHESIS
@given(error=problems | junk)
def test_any_challenge_error_of_a_failed_validation_is_one_line(hostile, error):
    err = order_validated(hostile, error)
    assert isinstance(err, AcmeError)
    assert_one_line(err, ORDER_ACTION)


def test_a_failed_validation_names_the_domain_and_the_cas_words(hostile):
    err = order_validated(hostile, {"type": PREFIX + "dns", "detail": "DNS problem: NXDOMAIN\nlooking up TXT \x1b[0m"})
    assert str(err) == (f"acme: {ORDER_ACTION} failed: challenge validation failed: {DOMAIN}: "
                        "urn:ietf:params:acme:error:dns: DNS problem: NXDOMAIN looking up TXT [0m")


def test_a_challenge_held_pending_after_a_failed_validation_is_named_on_timeout(hostile):
    """step-ca's way (docs/ACME-SERVERS.md): the challenge stays pending with the error attached."""
    started = time.monotonic()
    err = order_validated(hostile, {"type": PREFIX + "dns", "detail": "no TXT record\n" + "x" * 100_000},
                          verdict="pending", timeout=1)
    assert time.monotonic() - started < 5
    assert isinstance(err, RetryableError)
    text = assert_one_line(err, ORDER_ACTION)
    assert text.startswith(f"acme: {ORDER_ACTION} failed: timed out waiting for the CA to validate; it holds the "
                           f"challenge pending after a failed validation: {DOMAIN}: urn:ietf:params:acme:error:dns: "
                           "no TXT record xxx")


@pytest.mark.parametrize(("flag", "required"), [(True, True), ("false", False), ("yes", False), (1, False),
                                              (None, False)])
def test_only_a_json_true_external_account_required_demands_eab(hostile, flag, required):
    hostile.reset()
    hostile.directory["meta"] = {"externalAccountRequired": flag}
    err = outcome(lambda: register(hostile))
    assert (isinstance(err, InvalidInputError) and str(err).startswith("eab: ")) if required else err is None


# --- secrets never reach a message -----------------------------------------------------------------------

def _echo(request: Request) -> Reply:
    """A CA that quotes back everything it was sent: the Basic credentials decoded, the request body."""
    auth = request.headers.get("Authorization", "")
    decoded = base64.b64decode(auth.split()[-1]).decode() if auth.startswith("Basic ") else ""
    detail = f"you sent {decoded} {request.path} {request.body.decode(errors='replace')}"
    return problem({"type": PREFIX + "unauthorized", "detail": detail}, 403)


def test_directory_credentials_are_never_echoed(hostile):
    hostile.reset({"/dir": _echo})
    url = hostile.directory_url.replace("http://", "http://certplane:s3cret-pass@") + "?token=t0ken-value"
    err = outcome(lambda: acme_client.connect(connection(hostile, url), ACCOUNT_KEY))
    text = assert_one_line(err, f"reading the directory {hostile.directory_url} failed: ")
    assert "s3cret-pass" not in text and "t0ken-value" not in text
    hostile.reset()
    err = outcome(lambda: acme_client.register_account(
        acme_client.connect(connection(hostile, url), ACCOUNT_KEY), email=None, eab_kid="kid-1",
        eab_hmac_key="not base64!", directory_url=url))
    assert isinstance(err, InvalidInputError) and "not base64" not in str(err) and "s3cret" not in str(err)


def test_eab_hmac_key_and_account_key_are_never_echoed(hostile):
    hmac_key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    hostile.reset({"/new-acct": _echo})
    client = acme_client.connect(connection(hostile), ACCOUNT_KEY)
    err = outcome(lambda: acme_client.register_account(client, email=None, eab_kid="kid-1", eab_hmac_key=hmac_key,
                                                       directory_url=hostile.directory_url))
    text = assert_one_line(err, "account registration failed: urn:ietf:params:acme:error:unauthorized: you sent")
    assert hmac_key not in text
    assert format(ACCOUNT_KEY.private_numbers().private_value, "x") not in text
