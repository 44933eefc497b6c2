"""The inventory entry's chain expiry (`chain_not_after`, `chain_earliest_subject`): the earliest `not_after`
over the leaf and its served chain, computed from the certificate's outputs (Pulumi mocks, no engine)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pulumi
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from components.config import parse_fleet

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def rfc3339(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def issue(cn: str, days: float, issuer: tuple[x509.Certificate, Any] | None = None) -> tuple[x509.Certificate, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer[0].subject if issuer else name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=days))
            .sign(issuer[1] if issuer else key, hashes.SHA256()))
    return cert, key


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


ROOT = issue("Chain Test Root", 3650)
SHORT_INTERMEDIATE = issue("Chain Test Intermediate", 20, ROOT)  # expires before the leaves
LEAF = issue("www.example.test", 60, SHORT_INTERMEDIATE)
LONG_INTERMEDIATE = issue("Long Intermediate", 1000, ROOT)
OTHER_LEAF = issue("api.example.test", 60, LONG_INTERMEDIATE)


class Mocks(pulumi.runtime.Mocks):
    """The certificate resources publish real PEMs: `www` chains to an intermediate that expires first, `api` to
    one that outlives it, `bare` has no chain and a certificate that does not parse."""

    SERVED = {
        "www": (LEAF[0], pem(LEAF[0]), pem(SHORT_INTERMEDIATE[0]) + pem(ROOT[0])),
        "api": (OTHER_LEAF[0], pem(OTHER_LEAF[0]), pem(LONG_INTERMEDIATE[0])),
        "bare": (OTHER_LEAF[0], "CERT", ""),
    }

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        outputs = dict(args.inputs)
        if args.typ.endswith("Certificate"):
            leaf, cert_pem, chain_pem = self.SERVED.get(args.name, (ROOT[0], pem(ROOT[0]), ""))
            outputs.update(cert_pem=cert_pem, chain_pem=chain_pem, fullchain_pem=cert_pem + chain_pem,
                           private_key_pem="KEY", serial=f"{leaf.serial_number:x}",
                           not_before=rfc3339(leaf.not_valid_before_utc), not_after=rfc3339(leaf.not_valid_after_utc),
                           renewal_time=rfc3339(leaf.not_valid_after_utc - dt.timedelta(days=20)),
                           fingerprint_sha256="AA", key_algorithm="ECDSA-P-256",
                           issuer=leaf.issuer.rfc4514_string(), dns_names=list(args.inputs.get("domains") or []),
                           keystore_password="pw")
        if args.typ.endswith("PrivateKey"):
            outputs.update(private_key_pem="CA-KEY")
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> Any:
        return {}


@pulumi.runtime.test
def test_the_inventory_entry_has_the_earliest_expiry_of_the_served_chain(tmp_path: Path) -> Any:
    pulumi.runtime.set_mocks(Mocks(), preview=False)
    from components.fleet import Fleet

    config = {"issuers": {"ca": {"type": "private_ca", "common_name": "Root"}},
              "certificates": {name: {"domains": [f"{name}.example.test"], "issuer": "ca"}
                               for name in ("www", "api", "bare")}}
    fleet = Fleet("certplane", parse_fleet(config, base_dir=tmp_path), base_dir=tmp_path)

    def check(inventory: dict[str, Any]) -> None:
        www, api, bare = inventory["www"], inventory["api"], inventory["bare"]
        # every field of before is still there
        for doc in (www, api, bare):
            assert {"domains", "issuer", "issuer_dn", "serial", "not_before", "not_after", "days_remaining",
                    "renewal_time", "fingerprint_sha256", "key_algorithm", "targets", "endpoints", "bindings",
                    "tags"} <= set(doc)
        # the intermediate expires 40 days before the leaf: the chain's expiry is the intermediate's
        assert www["not_after"] == rfc3339(LEAF[0].not_valid_after_utc)
        assert www["chain_not_after"] == rfc3339(SHORT_INTERMEDIATE[0].not_valid_after_utc)
        assert www["chain_earliest_subject"] == "CN=Chain Test Intermediate"
        assert 19.5 <= www["days_remaining"] <= 20.5  # computed from the chain's expiry
        # the leaf expires first: the chain's expiry is the leaf's
        assert api["chain_not_after"] == api["not_after"] == rfc3339(OTHER_LEAF[0].not_valid_after_utc)
        assert api["chain_earliest_subject"] == "CN=api.example.test"
        assert 59.5 <= api["days_remaining"] <= 60.5
        # nothing to parse: the leaf's expiry, no subject
        assert bare["chain_not_after"] == bare["not_after"] and bare["chain_earliest_subject"] is None

    return fleet.inventory.apply(check)


def issue_for(name: str, issuer: tuple[x509.Certificate, Any]) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    return (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(issuer[0].subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=60))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(issuer[1], hashes.SHA256()))


SIGNED = issue_for("signed.example.test", LONG_INTERMEDIATE)
UNDER_ROOT = issue_for("rootleaf.example.test", ROOT)  # a CA without an intermediate: served alone


class ServedMocks(Mocks):
    """`signed` links to the intermediate served after it; `unlinked` is served with an intermediate that did not
    sign it; `leafonly` (an intermediate's leaf) has no chain; `rootleaf` is the root's own leaf, served alone."""

    SERVED = {
        "signed": (SIGNED, pem(SIGNED), pem(LONG_INTERMEDIATE[0])),
        "unlinked": (SIGNED, pem(SIGNED), pem(SHORT_INTERMEDIATE[0])),
        "leafonly": (SIGNED, pem(SIGNED), ""),
        "othername": (SIGNED, pem(SIGNED), pem(LONG_INTERMEDIATE[0])),
        "rootleaf": (UNDER_ROOT, pem(UNDER_ROOT), ""),
    }


@pulumi.runtime.test
def test_the_inventory_records_what_an_endpoint_should_send_only_when_it_checks_out(tmp_path: Path) -> Any:
    """`served_sha256`: the leaf and chain as served, recorded only when each is signed by the next and the leaf's
    SANs hold the certificate's domains (`check --probe` then accepts those bytes without checking them again)."""
    from providers.core.digest import bundle_digest

    pulumi.runtime.set_mocks(ServedMocks(), preview=False)
    from components.fleet import Fleet

    domains = {"signed": "signed", "unlinked": "signed", "leafonly": "signed", "othername": "other",
               "rootleaf": "rootleaf"}
    config = {"issuers": {"ca": {"type": "private_ca", "common_name": "Root"}},
              "certificates": {name: {"domains": [f"{domain}.example.test"], "issuer": "ca"}
                               for name, domain in domains.items()}}
    fleet = Fleet("certplane", parse_fleet(config, base_dir=tmp_path), base_dir=tmp_path)
    served = [c.public_bytes(serialization.Encoding.DER) for c in (SIGNED, LONG_INTERMEDIATE[0])]

    def check(inventory: dict[str, Any]) -> None:
        assert inventory["signed"]["served_sha256"] == bundle_digest(served)
        # the CA's own root (the mocks' CA certificate) signed it: a leaf alone is what its endpoints serve
        alone = [UNDER_ROOT.public_bytes(serialization.Encoding.DER)]
        assert inventory["rootleaf"]["served_sha256"] == bundle_digest(alone)
        for name in ("unlinked", "leafonly", "othername"):
            assert "served_sha256" not in inventory[name], name

    return fleet.inventory.apply(check)
