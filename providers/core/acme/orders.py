"""One ACME order, start to finish: CSR, authorizations, challenges, finalization, certificate.

Authorizations the CA already considers valid are skipped (authz reuse). Every presented challenge is cleaned
up in `finally`, whatever happened; waits are bounded by `timeout`. Failures become one certplane error line.
A failed order deactivates the authorizations it left pending (RFC 8555 §7.5.2), and the certificate the CA
returns is accepted only for the CSR's public key and exactly the names asked for. A CSR given with the
certificate (its key held elsewhere) is submitted as it is, so renewing re-submits the same CSR.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from acme import challenges, messages
from acme import errors as acme_errors
from acme.client import ClientV2
from cryptography import x509

from .. import certificates as x509util
from ..errors import CertplaneError, InvalidInputError, RetryableError
from ..certificates import (CertificateRequest, build_csr, check_csr_key, check_csr_request, csr_public_key,
                            request_pem)
from ..keys import PrivateKey, PublicKey, spec_of
from .client import CertplaneNetwork, check_key_spec, profiles
from .errors import ACTION_LIMIT, AcmeError, RetryPolicy, describe_problem, is_transient, one_line, translate
from .solver import Challenge, Solver

CHALLENGE_TYPES: dict[str, type[challenges.KeyAuthorizationChallenge]] = {
    "dns-01": challenges.DNS01,
    "http-01": challenges.HTTP01,
}
RELINQUISH_RETRY = RetryPolicy(attempts=2, max_total=5.0)  # tidying up after a failure: never a long wait
# Polling an authorization or order: first soon after the request (a CA may validate or sign in milliseconds),
# then twice as long each time, never longer than the CA's Retry-After (DEFAULT_POLL without one) nor the
# deadline. The `acme` library's own poll_and_finalize sleeps a fixed second before each poll instead.
FIRST_POLL = 0.05
MIN_POLL = 0.05
DEFAULT_POLL = 1.0


@dataclass(frozen=True)
class IssuedCertificate:
    leaf: x509.Certificate
    chain: list[x509.Certificate]
    key: PrivateKey | None  # None when ordered with a CSR alone
    order_url: str | None
    cleanup_errors: list[str] = field(default_factory=list)


def order_label(domains: Sequence[str]) -> str:
    return "order for " + ", ".join(domains)


def _failed(action: str, why: object) -> str:
    """`acme: <action> failed: <why>` as one bounded line: `why` may quote the CA (a challenge list, the
    problems of every authorization) and `action` names every domain of the certificate."""
    return one_line(f"acme: {one_line(action, ACTION_LIMIT)} failed: {why}")


def _pick(authzr: messages.AuthorizationResource, challenge_type: str) -> messages.ChallengeBody:
    wanted = CHALLENGE_TYPES[challenge_type]
    offers = authzr.body.challenges or ()  # a CA's `{}` has none: said so below, not a TypeError
    for challb in offers:
        if isinstance(challb.chall, wanted):
            return challb
    offered = ", ".join(sorted(str(getattr(c.chall, "typ", "?")) for c in offers)) or "none"
    raise AcmeError(one_line(f"the CA offers no {challenge_type} challenge for {_domain_of(authzr)} "
                             f"(offered: {offered})"))


def _domain_of(authzr: messages.AuthorizationResource) -> str:
    """The name an authorization is for; AcmeError (one line) when the CA's answer names none."""
    value = getattr(authzr.body.identifier, "value", None)
    if not isinstance(value, str) or not value:
        raise AcmeError(one_line(f"the CA's authorization {authzr.uri or ''} names no identifier"))
    return value


def check_issued(leaf: x509.Certificate, key: PrivateKey | PublicKey, domains: Sequence[str]) -> None:
    """The certificate is for the CSR's key and exactly its names (certificates.issued_mismatch); AcmeError
    (one line) otherwise."""
    wrong = x509util.issued_mismatch(leaf, key, domains)
    if wrong:
        raise AcmeError(wrong)


def relinquish(client: ClientV2, authorizations: Sequence[messages.AuthorizationResource]) -> int:
    """Deactivate those of `authorizations` still pending (RFC 8555 §7.5.2), so a failed order leaves no
    authorization behind for anyone to complete. Best effort and quickly bounded (the order's own failure is
    what is reported); stops at the first CA that does not answer. Returns how many were deactivated."""
    net = client.net
    saved = net.retry if isinstance(net, CertplaneNetwork) else None
    if isinstance(net, CertplaneNetwork):
        net.retry = RELINQUISH_RETRY
    done = 0
    try:
        for authzr in authorizations:
            try:
                current, _response = client.poll(authzr)
                if current.body.status == messages.STATUS_PENDING:
                    client.deactivate_authorization(current)
                    done += 1
            except Exception as err:  # noqa: BLE001 - tidying up must not mask the order's failure
                if is_transient(err) or not isinstance(err, messages.Error):
                    break  # the CA is not answering: do not spend the whole retry budget per authorization
    finally:
        if isinstance(net, CertplaneNetwork) and saved is not None:
            net.retry = saved
    return done


def stalled_problems(client: ClientV2, authorizations: Sequence[messages.AuthorizationResource]) -> str:
    """Why the CA is still holding `authorizations` pending, from the errors on their challenges: step-ca (unlike
    Pebble and Boulder) keeps a challenge whose validation failed `pending` with the `error` attached, so an
    order otherwise just times out (docs/ACME-SERVERS.md). Best effort, quickly bounded; "" when none is known."""
    net = client.net
    saved = net.retry if isinstance(net, CertplaneNetwork) else None
    if isinstance(net, CertplaneNetwork):
        net.retry = RELINQUISH_RETRY
    parts: list[str] = []
    try:
        for authzr in authorizations:
            try:
                current, _response = client.poll(authzr)
            except Exception:  # noqa: BLE001 - a diagnosis only: the timeout is what is reported
                break
            if current.body.status != messages.STATUS_PENDING:
                continue
            problems = [describe_problem(c.error) for c in current.body.challenges or ()
                        if isinstance(c.error, messages.Error)]
            if problems:  # the CA's own words: any identifier, any number of problems (bounded by the caller)
                parts.append(f"{getattr(current.body.identifier, 'value', '?')}: {'; '.join(problems)}")
    finally:
        if isinstance(net, CertplaneNetwork) and saved is not None:
            net.retry = saved
    return "; ".join(parts)


def _poll_delay(attempt: int, response: object, deadline: dt.datetime) -> float:
    """Seconds to wait before poll `attempt` + 1: FIRST_POLL × 2^attempt, capped by the CA's Retry-After (or
    DEFAULT_POLL) and by what is left before `deadline` (naive local time, as the `acme` library's)."""
    cap = DEFAULT_POLL
    headers = getattr(response, "headers", None)
    value = headers.get("Retry-After") if headers is not None else None
    if value is not None:
        try:
            cap = max(MIN_POLL, float(int(value)))
        except (TypeError, ValueError):
            cap = DEFAULT_POLL  # an HTTP-date (or garbage): the default cadence, still bounded by the deadline
    left = (deadline - dt.datetime.now()).total_seconds()
    return float(max(0.0, min(FIRST_POLL * (2 ** min(attempt, 16)), cap, left)))


def _poll_authorizations(client: ClientV2, order: messages.OrderResource,
                         deadline: dt.datetime) -> messages.OrderResource:
    """Every authorization of `order` polled until none is pending (as `ClientV2.poll_authorizations`, without its
    fixed 1 s sleeps): ValidationError for those that failed with an error, TimeoutError at `deadline`."""
    current = list(order.authorizations)
    attempt = 0
    while True:
        last: object = None
        for i, authzr in enumerate(current):
            if authzr.body.status == messages.STATUS_PENDING or attempt == 0:
                current[i], last = client.poll(authzr)
        if all(a.body.status != messages.STATUS_PENDING for a in current):
            break
        if dt.datetime.now() >= deadline:
            raise acme_errors.TimeoutError()
        time.sleep(_poll_delay(attempt, last, deadline))
        attempt += 1
    failed = [a for a in current if a.body.status != messages.STATUS_VALID
              and any(c.error is not None for c in a.body.challenges or ())]
    if failed:
        raise acme_errors.ValidationError(failed)
    updated: messages.OrderResource = order.update(authorizations=current)
    return updated


def _finalize(client: ClientV2, order: messages.OrderResource, deadline: dt.datetime) -> messages.OrderResource:
    """Finalize `order` and download its certificate (as `ClientV2.finalize_order`, without its fixed 1 s sleep
    before each poll of the order): the finalization's own answer is used when the CA already issued."""
    try:
        body = client.begin_finalization(order).body
    except messages.Error as err:
        if err.code != "orderNotReady":
            raise
        body = order.body
    attempt = 0
    response: object = None
    while True:
        if body.status == messages.STATUS_INVALID:
            if body.error is not None:
                raise acme_errors.IssuanceError(body.error)
            raise acme_errors.Error("The certificate order failed. No further information was provided by the "
                                    "server.")
        if body.status == messages.STATUS_VALID and body.certificate is not None:
            certificate = client._post_as_get(body.certificate)  # noqa: SLF001 - the library's POST-as-GET
            done: messages.OrderResource = order.update(body=body, fullchain_pem=certificate.text)
            return done
        if dt.datetime.now() >= deadline:
            raise acme_errors.TimeoutError()
        if body.status == messages.STATUS_READY and attempt > 0:
            client.begin_finalization(order)  # it was not ready when first asked (orderNotReady)
        time.sleep(_poll_delay(attempt, response, deadline))
        attempt += 1
        response = client._post_as_get(order.uri)  # noqa: SLF001
        body = messages.Order.from_json(response.json())


def poll_and_finalize(client: ClientV2, order: messages.OrderResource,
                      deadline: dt.datetime) -> messages.OrderResource:
    """`client.poll_and_finalize`, polling soon and then backing off (FIRST_POLL, doubling, capped by Retry-After)
    instead of the library's fixed 1 s sleeps. A client that brings its own poll_and_finalize (a subclass or a
    wrapper of ClientV2) is used as it is."""
    if getattr(type(client), "poll_and_finalize", None) is not ClientV2.poll_and_finalize:
        own: messages.OrderResource = client.poll_and_finalize(order, deadline)
        return own
    return _finalize(client, _poll_authorizations(client, order, deadline), deadline)


def issue(client: ClientV2, domains: Sequence[str], solver: Solver, *, key: PrivateKey | None = None,
          csr: x509.CertificateSigningRequest | None = None, profile: str | None = None,
          timeout: float = 120.0) -> IssuedCertificate:
    """Order a certificate for `domains` (wildcards allowed), prove control with `solver`, return it. `csr`: a
    CSR given with the certificate, submitted as it is (it must name exactly `domains`; `key`, when given too,
    must be its key); else a CSR of `key` is built."""
    if not domains:
        raise InvalidInputError("domains", "an ACME certificate needs at least one domain")
    if solver.challenge_type not in CHALLENGE_TYPES:
        raise InvalidInputError("challenge", f"unknown challenge {solver.challenge_type!r}: use dns-01 or http-01")
    public: PrivateKey | PublicKey
    if csr is not None:
        check_csr_request(csr, CertificateRequest(domains=tuple(domains)))  # the order's identifiers are the CSR's
        if key is not None:
            check_csr_key(csr, key)
        public = csr_public_key(csr)
    elif key is not None:
        public = key
    else:
        raise InvalidInputError("key", "an ACME order needs the certificate's key or a CSR")
    try:
        check_key_spec(spec_of(public))
    except InvalidInputError as err:
        raise (InvalidInputError("csr_pem", err.reason) if csr is not None else err.within("key")) from None
    if profile and not profiles(client):  # a CA without profiles ignores the field: say so, not a silent lifetime
        raise InvalidInputError("profile", f"the CA advertises no ACME profiles, so {profile!r} cannot be chosen: "
                                           "remove profile from the issuer")
    action = order_label(domains)
    csr_pem = request_pem(domains, key=key, csr=csr)
    presented: list[Challenge] = []
    cleanup_errors: list[str] = []
    pending: list[messages.AuthorizationResource] = []  # what the order asked us to prove: unfinished on failure
    finished = False
    try:
        order = client.new_order(csr_pem, profile=profile or None)
        pending = [a for a in order.authorizations if a.body.status != messages.STATUS_VALID]
        answers: list[tuple[messages.ChallengeBody, challenges.ChallengeResponse]] = []
        for authzr in order.authorizations:
            if authzr.body.status == messages.STATUS_VALID:
                continue  # authorization reuse: the CA already trusts our control of this name
            challb = _pick(authzr, solver.challenge_type)
            response, validation = challb.response_and_validation(client.net.key)
            challenge = Challenge(domain=_domain_of(authzr), token=challb.chall.encode("token"),
                                  validation=str(validation))
            presented.append(challenge)
            solver.present(challenge)
            answers.append((challb, response))
        if presented:
            solver.wait_ready(presented)
        for challb, response in answers:
            client.answer_challenge(challb, response)
        # `acme` compares against naive local time (datetime.now()).
        deadline = dt.datetime.now() + dt.timedelta(seconds=timeout)
        order = poll_and_finalize(client, order, deadline)
        finished = True
    except InvalidInputError:
        raise
    except RetryableError as err:
        raise RetryableError(_failed(action, err), retry_after=err.retry_after) from None
    except CertplaneError as err:  # a solver's own error (DNS update refused, port in use, ...)
        raise AcmeError(_failed(action, err)) from None
    except acme_errors.TimeoutError as err:
        stalled = stalled_problems(client, pending)
        if not stalled:
            raise translate(err, action) from None
        raise RetryableError(_failed(action, "timed out waiting for the CA to validate; it holds the challenge "
                                             f"pending after a failed validation: {stalled}")) from None
    except Exception as err:  # noqa: BLE001 - one line for the user
        raise translate(err, action) from None
    finally:
        for challenge in presented:
            try:
                solver.cleanup(challenge)
            except Exception as err:  # noqa: BLE001 - never mask the order's own outcome
                cleanup_errors.append(f"cleanup for {challenge.domain} failed: {err}")
        try:
            solver.close()
        except Exception as err:  # noqa: BLE001
            cleanup_errors.append(f"closing the {solver.challenge_type} solver failed: {err}")
        if not finished and pending:
            relinquish(client, pending)
    certs = x509util.load_certificates(order.fullchain_pem or "")
    if not certs:
        raise AcmeError(_failed(action, "the CA returned no certificate"))
    try:
        check_issued(certs[0], public, domains)
    except AcmeError as err:
        raise AcmeError(_failed(action, err)) from None
    return IssuedCertificate(leaf=certs[0], chain=certs[1:], key=key, order_url=order.uri,
                             cleanup_errors=cleanup_errors)


__all__ = ["CHALLENGE_TYPES", "IssuedCertificate", "build_csr", "check_issued", "issue", "order_label",
           "poll_and_finalize", "relinquish", "stalled_problems"]
