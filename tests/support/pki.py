"""Test PKI built with certplane's own core: keys and certificates made at run time, never committed."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509

from providers.core import certificates as x509util
from providers.core import keys
from providers.core.deploy import Bundle

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.timezone.utc)


@dataclass
class Issued:
    key: keys.PrivateKey
    cert: x509.Certificate


def make_ca(name: str = "Test Root", *, issuer: Issued | None = None, spec: keys.KeySpec | None = None,
            days: int = 3650, now: dt.datetime = NOW, path_length: int | None = None) -> Issued:
    key = keys.generate_private_key(spec or keys.KeySpec("ecdsa", curve="P-256"))
    cert = x509util.sign_certificate(
        x509util.CertificateTemplate(common_name=name, is_ca=True, validity_days=days, path_length=path_length),
        subject_public_key=key.public_key(), signing_key=issuer.key if issuer else key,
        issuer=issuer.cert if issuer else None, now=now)
    return Issued(key, cert)


def reissue(ca: Issued, by: Issued, *, days: int = 3650, now: dt.datetime = NOW,
            path_length: int | None = None) -> Issued:
    """`ca`'s name and key certified again, by `by`: a cross-signed root (`by` another root), another copy of an
    intermediate (another validity), or one half of a loop (two CAs certifying each other)."""
    cns = ca.cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    cert = x509util.sign_certificate(
        x509util.CertificateTemplate(common_name=str(cns[0].value), is_ca=True, validity_days=days,
                                     path_length=path_length),
        subject_public_key=ca.key.public_key(), signing_key=by.key, issuer=by.cert, now=now)
    return Issued(ca.key, cert)


def make_chain(depth: int, *, name: str = "Deep CA") -> tuple[Issued, list[Issued]]:
    """A root and `depth` intermediates, each issued by the one before: [first below the root, ..., last]."""
    root = make_ca(f"{name} Root")
    cas, parent = [], root
    for i in range(depth):
        parent = make_ca(f"{name} {i + 1}", issuer=parent)
        cas.append(parent)
    return root, cas


def make_leaf(issuer: Issued, names: tuple[str, ...] = ("www.example.test",), *, spec: keys.KeySpec | None = None,
              days: int = 90, now: dt.datetime = NOW) -> Issued:
    key = keys.generate_private_key(spec or keys.KeySpec("ecdsa", curve="P-256"))
    cert = x509util.sign_certificate(
        x509util.CertificateTemplate(dns_names=names, validity_days=days),
        subject_public_key=key.public_key(), signing_key=issuer.key, issuer=issuer.cert, now=now)
    return Issued(key, cert)


class LocalCa:
    """A throwaway CA valid now, so bundles carry a real chain (leaf, then the CA) that servers accept."""

    def __init__(self) -> None:
        now = dt.datetime.now(dt.timezone.utc)
        self.root = make_ca("certplane test CA", days=30, now=now)
        self.key, self.cert = self.root.key, self.root.cert

    def bundle(self, names: list[str], name: str = "www", *, password: str | None = None) -> Bundle:
        leaf = make_leaf(self.root, tuple(names), days=10, now=dt.datetime.now(dt.timezone.utc))
        return Bundle.from_pems(name, x509util.to_pem(leaf.cert), x509util.to_pem(self.cert),
                                keys.private_key_to_pem(leaf.key), password)


def mismatched(bundle: Bundle, other: Bundle) -> Bundle:
    """`bundle`'s certificate with `other`'s key: what a broken renewal looks like."""
    return Bundle(bundle.name, bundle.cert_pem, bundle.chain_pem, other.key_pem, bundle.fingerprint_sha256)
