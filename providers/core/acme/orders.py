"""One ACME order, start to finish: CSR, authorizations, challenges, finalization, certificate.

Authorizations the CA already considers valid are skipped (authz reuse). Every presented challenge is cleaned
up in `finally`, whatever happened; waits are bounded by `timeout`. Failures become one certplane error line.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from acme import challenges, messages
from acme.client import ClientV2
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from .. import certificates as x509util
from ..errors import CertplaneError, InvalidInputError, RetryableError
from ..keys import PrivateKey, signature_hash, spec_of
from .client import check_key_spec
from .errors import AcmeError, translate
from .solver import Challenge, Solver

CHALLENGE_TYPES: dict[str, type[challenges.KeyAuthorizationChallenge]] = {
    "dns-01": challenges.DNS01,
    "http-01": challenges.HTTP01,
}


@dataclass(frozen=True)
class IssuedCertificate:
    leaf: x509.Certificate
    chain: list[x509.Certificate]
    key: PrivateKey
    order_url: str | None
    cleanup_errors: list[str] = field(default_factory=list)


def build_csr(key: PrivateKey, domains: Sequence[str]) -> bytes:
    """A PEM CSR with every domain as a SAN; the first is also the CN when it fits (64 characters)."""
    builder = x509.CertificateSigningRequestBuilder()
    if len(domains[0]) <= 64:
        builder = builder.subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domains[0])]))
    builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in domains]),
                                    critical=False)
    csr = builder.sign(key, signature_hash(key))  # type: ignore[arg-type]
    return csr.public_bytes(serialization.Encoding.PEM)


def order_label(domains: Sequence[str]) -> str:
    return "order for " + ", ".join(domains)


def _pick(authzr: messages.AuthorizationResource, challenge_type: str) -> messages.ChallengeBody:
    wanted = CHALLENGE_TYPES[challenge_type]
    for challb in authzr.body.challenges:
        if isinstance(challb.chall, wanted):
            return challb
    offered = ", ".join(sorted(str(getattr(c.chall, "typ", "?")) for c in authzr.body.challenges)) or "none"
    raise AcmeError(f"the CA offers no {challenge_type} challenge for {authzr.body.identifier.value} "
                    f"(offered: {offered})")


def issue(client: ClientV2, domains: Sequence[str], solver: Solver, *, key: PrivateKey,
          profile: str | None = None, timeout: float = 120.0) -> IssuedCertificate:
    """Order a certificate for `domains` (wildcards allowed), prove control with `solver`, return it."""
    if not domains:
        raise InvalidInputError("domains", "an ACME certificate needs at least one domain")
    if solver.challenge_type not in CHALLENGE_TYPES:
        raise InvalidInputError("challenge", f"unknown challenge {solver.challenge_type!r}: use dns-01 or http-01")
    try:
        check_key_spec(spec_of(key))
    except InvalidInputError as err:
        raise err.within("key") from None
    action = order_label(domains)
    csr_pem = build_csr(key, domains)
    presented: list[Challenge] = []
    cleanup_errors: list[str] = []
    try:
        order = client.new_order(csr_pem, profile=profile or None)
        answers: list[tuple[messages.ChallengeBody, challenges.ChallengeResponse]] = []
        for authzr in order.authorizations:
            if authzr.body.status == messages.STATUS_VALID:
                continue  # authorization reuse: the CA already trusts our control of this name
            challb = _pick(authzr, solver.challenge_type)
            response, validation = challb.response_and_validation(client.net.key)
            challenge = Challenge(domain=authzr.body.identifier.value, token=challb.chall.encode("token"),
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
        order = client.poll_and_finalize(order, deadline)
    except InvalidInputError:
        raise
    except RetryableError as err:
        raise RetryableError(f"acme: {action} failed: {err}", retry_after=err.retry_after) from None
    except CertplaneError as err:  # a solver's own error (DNS update refused, port in use, ...)
        raise AcmeError(f"acme: {action} failed: {err}") from None
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
    certs = x509util.load_certificates(order.fullchain_pem or "")
    if not certs:
        raise AcmeError(f"acme: {action} failed: the CA returned no certificate")
    return IssuedCertificate(leaf=certs[0], chain=certs[1:], key=key, order_url=order.uri,
                             cleanup_errors=cleanup_errors)


__all__ = ["CHALLENGE_TYPES", "IssuedCertificate", "build_csr", "issue", "order_label"]
