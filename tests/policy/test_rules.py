"""The policy pack's rules on their own (policy/rules.py): what each refuses and what it lets through. The pack
on the real engine (mandatory stops preview and up, advisory warns) is tests/integration/test_policy_engine.py."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.pki import LocalCa

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "policy"))
import rules  # noqa: E402

FACTS = {"issuer": "internal", "tags": {"owner": "team", "env": "prod"}, "plain_secrets": []}


def issued(**props: Any) -> rules.Subject:
    base = {"name": "www", "domains": ["www.example.com"], "key": {"algorithm": "ecdsa", "curve": "P-256"},
            "validity_days": 90, "issuer_type": "private_ca", "policy_facts": FACTS}
    subject = rules.subject(rules.CERTIFICATE, "www", {**base, **props})
    assert subject is not None
    return subject


@pytest.mark.parametrize(("key", "config", "problems"), [
    ({"algorithm": "rsa", "size": 2048}, {}, []),
    ({"algorithm": "rsa", "size": 2048}, {"min_rsa_bits": 3072},
     ["www: an RSA key of 2048 bits is under the minimum of 3072"]),
    ({"algorithm": "ecdsa", "curve": "P-384"}, {"allowed_curves": ["P-256"]},
     ["www: ECDSA curve P-384 is not allowed (allowed: P-256)"]),
    ({"algorithm": "ed25519"}, {"allow_ed25519": False}, ["www: Ed25519 keys are not allowed here"]),
])
def test_key_strength(key: dict[str, Any], config: dict[str, Any], problems: list[str]) -> None:
    assert rules.key_strength(issued(key=key), config) == problems


def test_key_strength_of_an_upload_is_read_from_its_certificate(ca: LocalCa) -> None:
    bundle = ca.bundle(["legacy.example.com"])  # the test CA's leaves are ECDSA P-256
    upload = rules.subject(rules.UPLOADED, "legacy", {"name": "legacy", "certificate_pem": bundle.cert_pem,
                                                      "policy_facts": FACTS})
    assert upload is not None and upload.domains == ("legacy.example.com",)
    assert rules.key_strength(upload, {"allowed_curves": ["P-384"]}) == [
        "legacy: ECDSA curve P-256 is not allowed (allowed: P-384)"]


def test_a_cas_own_key_is_checked_too() -> None:
    key = rules.subject(rules.PRIVATE_KEY, "internal-root-key", {"algorithm": "rsa", "size": 2048})
    assert key is not None and rules.key_strength(key, {"min_rsa_bits": 4096}) == [
        "internal-root-key: an RSA key of 2048 bits is under the minimum of 4096"]
    assert rules.required_tags(key, {}) == [] and rules.allowed_issuers(key, {"by_env": {"": []}}) == []


def test_allowed_issuers_by_env() -> None:
    config = {"by_env": {"prod": ["letsencrypt"], "dev": ["internal"]}}
    assert rules.allowed_issuers(issued(), config) == [
        "www: issuer internal is not allowed for env prod (allowed: letsencrypt)"]
    dev = issued(policy_facts={**FACTS, "tags": {"owner": "t", "env": "dev"}})
    assert rules.allowed_issuers(dev, config) == []
    other = issued(policy_facts={**FACTS, "tags": {"owner": "t", "env": "staging"}})
    assert rules.allowed_issuers(other, config) == []  # an env the config does not list is not restricted


@pytest.mark.parametrize(("on", "limit"), [
    ("2026-03-14", 398), ("2026-03-15", 200), ("2027-03-14", 200), ("2027-03-15", 100), ("2029-03-15", 47)])
def test_the_sc081_schedule(on: str, limit: int) -> None:
    assert rules.max_public_days(dt.datetime.fromisoformat(on).replace(tzinfo=dt.timezone.utc)) == limit


def test_public_max_validity_for_public_issuers_only() -> None:
    config = {"public_issuers": ["buy"], "public_issuer_types": ["acme"]}
    public = issued(validity_days=300, policy_facts={**FACTS, "issuer": "buy"})
    now = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
    assert rules.public_max_validity(public, config, now) == [
        "www: a lifetime of 300 days is over the 200 days a public certificate issued on 2026-12-01 may have "
        "(CA/Browser Forum SC-081)"]
    assert rules.public_max_validity(issued(validity_days=300), config, now) == []  # a private CA


def test_wildcards_only_in_allowed_zones() -> None:
    cert = issued(domains=["*.shop.example.com", "*.evil.example.net", "plain.example.net"])
    assert rules.wildcard_zones(cert, {"zones": ["example.com"]}) == [
        "www: wildcard *.evil.example.net is outside the zones that allow wildcards (example.com)"]


def test_required_tags() -> None:
    untagged = issued(policy_facts={**FACTS, "tags": {"env": "prod", "owner": " "}})
    assert rules.required_tags(untagged, {}) == ["www: missing tag(s) owner"]
    assert rules.required_tags(issued(), {"tags": ["owner", "env"]}) == []


def test_renewal_window_shorter_than_the_lifetime() -> None:
    assert rules.renewal_window(issued(renew={"before_days": 90}), {}) == [
        "www: renewal 90 days before expiry is not shorter than the lifetime of 90 days: it would renew on every run"]
    assert rules.renewal_window(issued(renew={"before_days": 30}), {}) == []


def test_plain_secrets_name_the_path_and_the_command() -> None:
    leaky = issued(policy_facts={**FACTS, "plain_secrets": ["certplane:certificates.www.upload.private_key"]})
    assert rules.plain_secrets(leaky, {}) == [
        "www: certplane:certificates.www.upload.private_key is in the stack file in plain text: set it with "
        "`pulumi config set --path --secret certificates.www.upload.private_key`"]


def test_other_resources_are_not_checked() -> None:
    assert rules.subject("pulumi-python:dynamic/certplane:CertificateBinding", "x", {}) is None
