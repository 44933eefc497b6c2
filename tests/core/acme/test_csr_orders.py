"""ACME orders with a CSR given with the certificate (made by the real `openssl req`), against Pebble with DNS-01
via challtestsrv: the CSR is submitted as it is, renewing re-submits it, and a CSR for other names is refused
before the CA is asked."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from providers.core import certificates as x509util
from providers.core import dns as dns_solvers
from providers.core import keys
from providers.core.acme import orders
from providers.core.acme.errors import AcmeError
from providers.core.certificates import load_csr
from providers.core.errors import InvalidInputError
from tests.support import csr as support_csr
from tests.support.acme import challtestsrv_dns, verify_chain


def openssl_csr(tmp_path: Path, subject: str, san: str) -> tuple[x509.CertificateSigningRequest, keys.PrivateKey]:
    csr, key = support_csr.openssl_csr(tmp_path, subject=subject, san=san)
    return load_csr(csr.read_text()), keys.load_private_key(key.read_text())


def spki(value: Any) -> bytes:
    return value.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)


def test_an_openssl_csr_is_ordered_as_is_and_renewed_with_the_same_key(pebble, account, tmp_path: Path) -> None:
    client, _, _ = account
    csr, _ = openssl_csr(tmp_path, "/CN=order.csr.example.test",
                         "DNS:order.csr.example.test,DNS:*.order.csr.example.test")
    names = ["*.order.csr.example.test", "order.csr.example.test"]
    first = orders.issue(client, names, dns_solvers.make_solver(challtestsrv_dns(pebble)), csr=csr)
    again = orders.issue(client, names, dns_solvers.make_solver(challtestsrv_dns(pebble)), csr=csr)
    assert first.key is None
    assert spki(first.leaf) == spki(again.leaf) == spki(csr)
    assert first.leaf.serial_number != again.leaf.serial_number
    assert sorted(x509util.dns_names_of(again.leaf)) == sorted(names)
    verify_chain(again.leaf, again.chain, pebble.root_pem, "x.order.csr.example.test")


def test_a_csr_with_its_key_orders_and_another_key_is_refused(pebble, account, tmp_path: Path) -> None:
    client, _, _ = account
    csr, key = openssl_csr(tmp_path, "/CN=keyed.csr.example.test", "DNS:keyed.csr.example.test")
    issued = orders.issue(client, ["keyed.csr.example.test"], dns_solvers.make_solver(challtestsrv_dns(pebble)),
                          key=key, csr=csr)
    assert keys.same_public_key(issued.leaf.public_key(), key)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"^key_pem: is not the CSR's private key"):
        orders.issue(client, ["keyed.csr.example.test"], dns_solvers.make_solver(challtestsrv_dns(pebble)),
                     key=keys.generate_private_key(keys.KeySpec("ecdsa")), csr=csr)


class NeverAsked:
    """A client that fails the test if the order reaches the CA."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the CA was asked ({name}) for a CSR that should have been refused")


def test_a_csr_for_other_names_is_refused_before_the_ca_is_asked(tmp_path: Path) -> None:
    csr, _ = openssl_csr(tmp_path, "/CN=a.csr.example.test", "DNS:a.csr.example.test,DNS:b.csr.example.test")
    solver = dns_solvers.make_solver({"provider": "challtestsrv", "url": "http://127.0.0.1:1"})
    with pytest.raises(InvalidInputError) as err:
        orders.issue(NeverAsked(), ["a.csr.example.test"], solver, csr=csr)  # type: ignore[arg-type]
    assert str(err.value) == ("csr_pem: the CSR names a.csr.example.test, b.csr.example.test; the certificate asks "
                              "for a.csr.example.test (only in the CSR: b.csr.example.test): make them the same")


def test_check_issued_holds_the_leaf_to_the_csrs_public_key(tmp_path: Path) -> None:
    csr, _ = openssl_csr(tmp_path, "/CN=c.csr.example.test", "DNS:c.csr.example.test")
    other = keys.generate_private_key(keys.KeySpec("ecdsa"))
    leaf = x509util.sign_certificate(x509util.CertificateTemplate(dns_names=("c.csr.example.test",)),
                                     subject_public_key=other.public_key(), signing_key=other, issuer=None,
                                     now=dt.datetime.now(dt.timezone.utc))
    with pytest.raises(AcmeError, match="another public key than the CSR's"):
        orders.check_issued(leaf, x509util.csr_public_key(csr), ["c.csr.example.test"])
