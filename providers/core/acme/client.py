"""Connecting to an ACME directory with certbot's `acme` library, and the account that signs every request.

We do not speak RFC 8555 ourselves: `acme.client.ClientV2` does. This module adds what certplane needs
around it: trust for private directories (`ca_bundle`), bounded retries of transient failures (the library
retries a `badNonce` only once), account registration with optional External Account Binding, and finding an
existing account by its key so accounts are created once and reused by every order.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from josepy.jwa import ES256, ES384, ES512, RS256, JWASignature
from josepy.jwk import JWK, JWKEC, JWKRSA
import requests
from acme import client as acme_client
from acme import errors as acme_errors
from acme import messages
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ..errors import InvalidInputError
from ..keys import KeySpec, PrivateKey, load_private_key, spec_of
from .errors import AcmeError, RetryPolicy, annotate, is_transient, one_line, problem_from_json, redact_url, translate

USER_AGENT = "certplane"


class CertplaneNetwork(acme_client.ClientNetwork):
    """`ClientNetwork` that retries badNonce, 5xx and connection failures with bounded backoff, keeps the
    HTTP status and Retry-After of problem responses (for rate-limit messages), and reads whatever a CA answers
    without tripping over it (`_check_response`)."""

    def __init__(self, key: JWK, *, alg: JWASignature, verify_ssl: str | bool,
                 retry: RetryPolicy, timeout: int = 30) -> None:
        super().__init__(key, alg=alg, verify_ssl=verify_ssl,  # type: ignore[arg-type]  # a path works
                         user_agent=USER_AGENT, timeout=timeout)
        self.retry = retry

    def _check_response(self, response: requests.Response,  # type: ignore[override]
                        content_type: str | None = None) -> requests.Response:
        """The library's check, hardened against hostile answers. A problem document is decoded field by field
        (`problem_from_json`: the library's decoding raises TypeError on a `subproblems` that is not a list),
        also when it comes with a 2xx status and the problem content type; a body that is no JSON object, is
        nested too deeply or holds a number too long to read is "no problem document", never a TypeError or a
        RecursionError. The HTTP status and Retry-After go with the problem."""
        if response.status_code == 409:
            raise acme_errors.ConflictError(response.headers.get("Location", "UNKNOWN-LOCATION"))
        body = json_body(response)
        media_type = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if isinstance(body, dict) and (not response.ok or media_type == self.JSON_ERROR_CONTENT_TYPE):
            err = problem_from_json(body)
            annotate(err, response)
            raise err
        if not response.ok:
            raise acme_errors.ClientError(response)
        if content_type == self.JSON_CONTENT_TYPE and body is None:
            raise acme_errors.ClientError(f"the answer (HTTP {response.status_code}) is not JSON")
        return response

    def _retrying(self, send: Any, *args: Any, **kwargs: Any) -> requests.Response:
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                response: requests.Response = send(*args, **kwargs)
                return response
            except Exception as err:  # noqa: BLE001 - classified by is_transient
                bad_nonce = isinstance(err, messages.Error) and err.code == "badNonce"
                delay = self.retry.nonce_delay if bad_nonce else self.retry.delay(attempt)
                limit = self.retry.nonce_attempts if bad_nonce else self.retry.attempts
                if (not is_transient(err) or attempt >= limit
                        or time.monotonic() - started + delay > self.retry.max_total):
                    raise
                time.sleep(delay)

    def post(self, *args: Any, **kwargs: Any) -> requests.Response:
        return self._retrying(self._post_once, *args, **kwargs)

    def _get_nonce(self, url: str, new_nonce_url: str) -> str:
        """A nonce no other request gets, also when threads share this network (`shared_client`): the library
        checks for a spare nonce and pops it in two steps, so two threads could both see the last one and one
        would pop an empty set. `set.pop` alone is atomic; a fresh nonce is fetched when none is spare."""
        for _ in range(NONCE_FETCHES):
            try:
                return self._nonces.pop()
            except KeyError:
                response = (self.head(url) if new_nonce_url is None else
                            self._check_response(self.head(new_nonce_url), content_type=None))
                self._add_nonce(response)
        raise acme_errors.Error(f"no nonce after {NONCE_FETCHES} requests to newNonce")

    def get(self, url: str, content_type: str = acme_client.ClientNetwork.JSON_CONTENT_TYPE,
            **kwargs: Any) -> requests.Response:
        return self._retrying(super().get, url, content_type=content_type, **kwargs)


def json_body(response: requests.Response) -> Any:
    """The JSON an answer carries, or None when there is none that can be read: not JSON, nested too deeply for
    the parser (RecursionError), or a number with more digits than Python converts (ValueError)."""
    if not response.content:
        return None
    try:
        return response.json()
    except (ValueError, RecursionError):
        return None


def check_key_spec(spec: KeySpec) -> KeySpec:
    """ACME CAs (Let's Encrypt, ZeroSSL, Google, step-ca) accept RSA and ECDSA keys, for accounts and
    certificates alike; browsers do not accept Ed25519 certificates either."""
    if spec.algorithm == "ed25519":
        raise InvalidInputError("algorithm", "ACME CAs do not accept Ed25519 keys: use rsa or ecdsa")
    return spec


DIRECTORY_NEEDS = ("newNonce", "newAccount", "newOrder")
NONCE_FETCHES = 5  # fresh nonces one request may fetch while other threads take them first
SHARED_CLIENTS = 16  # (connection, account) pairs a process keeps a client for
DIRECTORY_RESOURCES = (*DIRECTORY_NEEDS, "newAuthz", "revokeCert", "keyChange", "renewalInfo")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
"""The only hosts a plain http:// directory may name: a CA on this machine (Pebble, a test step-ca)."""


def check_directory_url(url: str) -> str:
    """The directory is fetched with its TLS verified; plain http:// only reaches a CA on this machine
    (127.0.0.1, ::1 or localhost). The one rule for a directory URL: settings check it (so a preview says it),
    and `connect` checks it again, so a URL an earlier release stored never reaches the network either."""
    try:
        parsed = urllib.parse.urlsplit(url) if isinstance(url, str) else None
        host = parsed.hostname if parsed is not None else None
    except ValueError:  # a malformed [IPv6] literal
        parsed, host = None, None
    loopback = parsed is not None and parsed.scheme == "http" and _is_loopback(host or "")
    if parsed is None or not host or not (parsed.scheme == "https" or loopback):
        raise InvalidInputError("", "must be the https:// URL of an ACME directory, e.g. "
                                    "https://acme-v02.api.letsencrypt.org/directory (http:// only on loopback)")
    return url


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host) == ipaddress.ip_address("::1")  # ::1 however it is written
    except ValueError:
        return False


def check_email(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or value.count("@") != 1 or " " in value or value.startswith("@") or value.endswith("@"):
        raise InvalidInputError("", f"{value!r} is not an e-mail address")
    return value


def check_eab(kid: str | None, hmac_key: str | None) -> None:
    """External Account Binding needs the key id and the HMAC key together."""
    if bool(kid) != bool(hmac_key):
        raise InvalidInputError("eab", "give both kid and hmac_key for External Account Binding")


def jwk_for(key: PrivateKey) -> tuple[JWK, JWASignature]:
    """The JWK and JWS algorithm for an account key (RSA → RS256, P-256 → ES256, P-384 → ES384)."""
    check_key_spec(spec_of(key))
    if isinstance(key, rsa.RSAPrivateKey):
        return JWKRSA(key=key), RS256
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    alg = {"secp256r1": ES256, "secp384r1": ES384, "secp521r1": ES512}[key.curve.name]
    return JWKEC(key=key), alg


@dataclass(frozen=True)
class Connection:
    """Where and how to talk to one ACME directory."""

    directory_url: str
    ca_bundle: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: int = 30


def connect(conn: Connection, account_key: PrivateKey, account_url: str | None = None) -> acme_client.ClientV2:
    """A `ClientV2` for the directory, signing with `account_key` (as `account_url`'s account, when given)."""
    try:
        check_directory_url(conn.directory_url)
    except InvalidInputError as err:
        raise err.within("directory_url") from None
    jwk, alg = jwk_for(account_key)
    net = CertplaneNetwork(jwk, alg=alg, verify_ssl=conn.ca_bundle or True, retry=conn.retry,
                           timeout=conn.timeout)
    try:
        directory = read_directory(conn.directory_url, net)
    except Exception as err:  # noqa: BLE001 - translated to one line
        raise translate(err, f"reading the directory {redact_url(conn.directory_url)}",
                        directory_url=conn.directory_url) from None
    client = acme_client.ClientV2(directory, net)
    if account_url:
        net.account = messages.RegistrationResource(uri=account_url, body=messages.Registration())
    return client


@functools.lru_cache(maxsize=SHARED_CLIENTS)
def shared_client(conn: Connection, account_key_pem: str, account_url: str) -> acme_client.ClientV2:
    """One client per CA connection and account for the whole process: the certificate provider's concurrent
    orders share its directory, its nonces and its HTTP connections (as one `acme` library client is shared
    by threads), instead of each order reading the directory, fetching a nonce and opening a TLS connection of
    its own. What fails is not kept: the next order connects again."""
    return connect(conn, load_private_key(account_key_pem), account_url)


def read_directory(url: str, net: CertplaneNetwork) -> messages.Directory:
    """The CA's directory (RFC 8555 §7.1.1), checked before anything relies on it: the resources every order
    needs are there, and every resource URL obeys the directory URL's own rule (https://, http:// only on
    loopback), so a directory cannot send the account's requests in the clear to another host. A `meta` that
    is not an object is ignored, as a CA without one."""
    doc = json_body(net.get(url))
    if not isinstance(doc, dict):
        raise acme_errors.Error("the answer is not an ACME directory (no JSON object)")
    missing = [name for name in DIRECTORY_NEEDS if not isinstance(doc.get(name), str)]
    if missing:
        raise acme_errors.Error(f"the answer is not an ACME directory: it has no {', '.join(missing)} URL")
    for name in DIRECTORY_RESOURCES:
        if name in doc:
            _check_resource_url(name, doc[name])
    if not isinstance(doc.get("meta", {}), dict):
        del doc["meta"]
    return messages.Directory.from_json(doc)


def _check_resource_url(name: str, value: object) -> None:
    try:
        check_directory_url(value)  # type: ignore[arg-type]  # any JSON value: refused unless a URL
    except InvalidInputError:
        raise acme_errors.Error(f"the directory's {name} is not an https:// URL (http:// only on loopback): "
                                f"{redact_url(value)}") from None


def profiles(client: acme_client.ClientV2) -> dict[str, str]:
    """The profiles the CA advertises ({name: description}); empty when it has none, or advertises them as
    anything but an object (a list, a string: `dict()` of those raises or invents names)."""
    meta = getattr(client.directory, "meta", None)
    raw = getattr(meta, "profiles", None) if meta is not None else None
    if not isinstance(raw, Mapping):
        return {}
    return {name: one_line(about, 200) if isinstance(about, str) else ""
            for name, about in raw.items() if isinstance(name, str)}


def external_account_required(client: acme_client.ClientV2) -> bool:
    """The directory's meta.externalAccountRequired, only when it is the JSON `true` RFC 8555 §7.1.1 says: the
    library takes any truthy value, so a CA's "false" (a string) would demand EAB."""
    meta = getattr(client.directory, "meta", None)
    return getattr(meta, "external_account_required", None) is True


@dataclass(frozen=True)
class Account:
    url: str
    status: str | None
    contact: tuple[str, ...]


def _account(regr: messages.RegistrationResource, action: str) -> Account:
    """The account the CA answered with, only if it says where the account is: a missing or junk Location
    would otherwise be stored as the account every order signs as. Fields of the wrong type are dropped."""
    url = account_url(regr.uri)
    if url is None:
        raise AcmeError(f"acme: {action} failed: the CA's answer has no account URL (Location header)")
    body = regr.body
    contact = body.contact if isinstance(body.contact, (tuple, list)) else ()
    return Account(url=url, status=body.status if isinstance(body.status, str) else None,
                   contact=tuple(c for c in contact if isinstance(c, str)))


def account_url(value: object) -> str | None:
    """`value` if it is an http(s) URL in one clean token (no space, no control character), else None."""
    return value if isinstance(value, str) and re.fullmatch(r"https?://[!-~]+", value) else None


def register_account(client: acme_client.ClientV2, *, email: str | None, eab_kid: str | None = None,
                     eab_hmac_key: str | None = None, directory_url: str = "") -> Account:
    """Create the account (terms agreed) or, if this key already has one, return it (idempotent)."""
    eab = None
    check_eab(eab_kid, eab_hmac_key)
    if eab_kid and eab_hmac_key:
        assert client.net.key is not None
        try:
            eab = messages.ExternalAccountBinding.from_data(
                account_public_key=client.net.key.public_key(), kid=eab_kid, hmac_key=eab_hmac_key,
                directory=client.directory)
        except Exception:  # noqa: BLE001 - never echo the HMAC key
            raise InvalidInputError("eab.hmac_key", "is not a base64url-encoded HMAC key") from None
    elif external_account_required(client):
        raise InvalidInputError(
            "eab", f"the ACME server{' at ' + redact_url(directory_url) if directory_url else ''} requires "
                   "External Account Binding: set eab.kid and eab.hmac_key from your CA account")
    reg = messages.NewRegistration.from_data(email=email or None, terms_of_service_agreed=True,
                                             external_account_binding=eab)
    try:
        regr = client.new_account(reg)
    except acme_errors.ConflictError as conflict:  # the key already has an account: reuse it
        url = account_url(conflict.location)
        if url is None:  # a 409 without Location: "UNKNOWN-LOCATION" must not become the account
            raise AcmeError("acme: account registration failed: the CA says this key has an account but its "
                            "answer has no account URL (Location header)") from None
        client.net.account = messages.RegistrationResource(uri=url, body=messages.Registration())
        return Account(url=url, status=None, contact=())
    except Exception as err:  # noqa: BLE001
        raise translate(err, "account registration", directory_url=directory_url) from None
    return _account(regr, "account registration")


def find_account(client: acme_client.ClientV2, *, directory_url: str = "") -> Account:
    """The existing account of the client's key (newAccount with onlyReturnExisting); errors if none."""
    try:
        regr = client.query_registration(messages.RegistrationResource(body=messages.Registration()))
    except Exception as err:  # noqa: BLE001
        raise translate(err, "looking up the ACME account", directory_url=directory_url) from None
    return _account(regr, "looking up the ACME account")


def account_status(client: acme_client.ClientV2, account_url: str) -> str:
    """"valid", "deactivated", "revoked", or "unknown" when the CA has no such account (e.g. its data was
    reset). Only a definitive answer says so: the CA's accountDoesNotExist, or an unauthorized problem saying
    the account is deactivated (or revoked). Anything else (malformed, 5xx, a CA that cannot be reached) raises
    one line: the account may well be fine."""
    regr = messages.RegistrationResource(uri=account_url, body=messages.Registration())
    try:
        return str(client.query_registration(regr).body.status or "valid")
    except messages.Error as err:
        if err.code == "accountDoesNotExist":
            return "unknown"
        if err.code == "unauthorized":
            said = f"{err.detail or ''} {err.title or ''}".lower()
            for status in ("deactivated", "revoked"):
                if status in said:
                    return status
        raise translate(err, "looking up the ACME account") from None
    except Exception as err:  # noqa: BLE001
        raise translate(err, "looking up the ACME account") from None


def deactivate_account(client: acme_client.ClientV2, account_url: str) -> None:
    regr = messages.RegistrationResource(uri=account_url, body=messages.Registration())
    try:
        client.deactivate_registration(regr)
    except Exception as err:  # noqa: BLE001
        raise translate(err, "account deactivation") from None


__all__ = ["Account", "CertplaneNetwork", "Connection", "LOOPBACK_HOSTS", "USER_AGENT", "account_status",
           "account_url", "check_directory_url", "check_eab", "check_email", "check_key_spec", "connect",
           "deactivate_account", "external_account_required", "find_account", "json_body", "jwk_for", "profiles",
           "read_directory", "register_account", "shared_client"]
