"""Every bad input gets one exact line that names the field (what `pulumi preview` prints)."""

from __future__ import annotations

import pytest

from components.config import ConfigProblems, parse_fleet
from providers.core import deploy, dns, issuers
from tests.support.pem_markers import PKCS8_HEADER

CA = {"type": "private_ca", "common_name": "Root"}
ACME = {"type": "acme", "directory_url": "https://127.0.0.1:14000/dir",
        "dns": {"provider": "challtestsrv", "url": "http://127.0.0.1:8055"}}
ACME_HTTP = {"type": "acme", "directory_url": "https://127.0.0.1:14000/dir",
             "http01": {"mode": "standalone", "listen": "127.0.0.1:5002"}}


def problems(raw, base_dir=None):
    with pytest.raises(ConfigProblems) as err:
        parse_fleet(raw, base_dir=base_dir)
    return err.value.lines


def cert(**over):
    return {"domains": ["www.example.test"], "issuer": "ca", **over}


@pytest.mark.parametrize(
    ("raw", "lines"),
    [
        ({"issuers": {"ca": CA}, "certificates": {"www": cert(key={"algorithm": "rsa", "size": 1024})}},
         ["certplane:certificates.www.key.size: RSA keys must be 2048, 3072 or 4096 bits"]),
        ({"issuers": {"ca": CA}, "certificates": {"www": cert(key={"algorithm": "ecdsa", "curve": "P-521"})}},
         ["certplane:certificates.www.key.curve: ECDSA curve must be P-256 or P-384"]),
        ({"issuers": {"ca": CA}, "certificates": {"www": cert(issuer="nope")}},
         ["certplane:certificates.www.issuer: unknown issuer 'nope' (known: ca)"]),
        ({"issuers": {"ca": CA}, "certificates": {"www": cert(domains=["bad_name.example.test"])}},
         ["certplane:certificates.www.domains: 'bad_name.example.test' is not a valid DNS name"]),
        ({"issuers": {"ca": CA}, "certificates": {"www": cert(domains=["a.example.test", "A.example.test"])}},
         ["certplane:certificates.www.domains: 'A.example.test' is listed twice"]),
        ({"issuers": {"ca": CA}, "certificates": {"www": cert(colour="blue")}},
         ["certplane:certificates.www.colour: unknown setting (known: domains, ip_addresses, issuer, challenge, key, "
          "reuse_key, validity_days, client_auth, renew, reissue_before, tags, formats, keystore_password, key_storage, "
          "upload, csr, bindings)"]),
        ({"issuers": {"ca": CA}, "certificates": {"www": cert(formats=["pem", "p7b"])}},
         ["certplane:certificates.www.formats: unknown format 'p7b': use pem, pkcs12, jks, der"]),
        ({"issuers": {"ca": CA}, "certificates": {"www": cert(renew={"before_days": 30, "at_fraction": 0.5})}},
         ["certplane:certificates.www.renew: give either before_days or at_fraction, not both"]),
        ({"issuers": {"acme": ACME}, "certificates": {"www": cert(issuer="acme", key={"algorithm": "ed25519"})}},
         ["certplane:certificates.www.key.algorithm: ACME CAs do not accept Ed25519 keys: use rsa or ecdsa"]),
        ({"issuers": {"acme": {**ACME, "dns": {"provider": "godaddy"}}}},
         [f"certplane:issuers.acme.dns.provider: unrecognized DNS provider: godaddy (known: {dns.REGISTRY.known()})"]),
        ({"issuers": {"acme": {**ACME, "dns": {"provider": "challtestsrv", "url": "ftp://x"}}}},
         ["certplane:issuers.acme.dns.url: must be an http(s) URL, e.g. http://127.0.0.1:8055"]),
        ({"issuers": {"acme": {**ACME, "directory_url": "127.0.0.1:14000/dir"}}},
         ["certplane:issuers.acme.directory_url: must be the https:// URL of an ACME directory, e.g. "
          "https://acme-v02.api.letsencrypt.org/directory (http:// only on loopback)"]),
        ({"issuers": {"acme": ACME_HTTP}, "certificates": {"w": cert(issuer="acme", domains=["*.a.example.test"])}},
         ["certplane:certificates.w.challenge: wildcard *.a.example.test can only be validated with dns-01"]),
        ({"issuers": {"acme": ACME_HTTP}, "certificates": {"w": cert(issuer="acme", challenge="dns-01")}},
         ["certplane:certificates.w.challenge: dns-01 needs a DNS provider: set dns in the issuer's settings"]),
        ({"issuers": {"ca": CA}, "certificates": {"www": {"domains": ["www.example.test"]}}},
         ["certplane:certificates.www.issuer: name an issuer from certplane:issuers, or 'self_signed'"]),
        ({"issuers": {"ca": CA}, "certificates": {"www": {"issuer": "ca"}}},
         ["certplane:certificates.www.domains: a certificate needs at least one domain or IP address"]),
        ({"issuers": {"ca": {"type": "private_ca"}}}, ["certplane:issuers.ca.common_name: is required"]),
        ({"issuers": {"ca": {"type": "vault"}}},
         [f"certplane:issuers.ca.type: unrecognized issuer type: vault (known: {issuers.REGISTRY.known()})"]),
        ({"issuers": {"ca": {**CA, "name_constraints": {"permitted_dns_domains": ["bad_domain"]}}}},
         ["certplane:issuers.ca.name_constraints.permitted_dns_domains: 'bad_domain' is not a valid DNS name"]),
        ({"certificates": {"old": {"upload": {"certificate_file": "a.pem"}}}},
         ["certplane:certificates.old.upload: give the private key as private_key (a secret) or private_key_file, "
          "exactly one"]),
        ({"issuers": {"ca": CA}, "certificates": {"old": {"issuer": "ca", "upload": {
            "certificate_file": "a.pem", "private_key_file": "a.key"}}}},
         ["certplane:certificates.old: an uploaded certificate takes no issuer or domains: they come from the file"]),
    ],
)
def test_bad_config_lines(raw, lines):
    assert problems(raw) == lines


def test_several_problems_are_all_reported():
    raw = {"issuers": {"ca": CA}, "certificates": {
        "a": cert(key={"algorithm": "rsa", "size": 1000}), "b": cert(domains=["x y"])}}
    assert problems(raw) == ["certplane:certificates.a.key.size: RSA keys must be 2048, 3072 or 4096 bits",
                             "certplane:certificates.b.domains: 'x y' is not a valid DNS name"]


def test_missing_upload_files_are_named(tmp_path):
    raw = {"certificates": {"old": {"upload": {"certificate_file": "certs/old.pem", "private_key_file": "k.pem"}}}}
    assert problems(raw, tmp_path) == [
        "certplane:certificates.old.upload.certificate_file: file not found: certs/old.pem",
        "certplane:certificates.old.upload.private_key_file: file not found: k.pem"]


def test_the_demo_stack_config_is_valid(tmp_path):
    import yaml
    from pathlib import Path

    from tools.demo_upload import main as make_demo_upload

    root = Path(__file__).resolve().parents[2]
    make_demo_upload(str(tmp_path / ".certplane" / "demo-upload"))  # what `make demo` generates first
    cfg = yaml.safe_load((root / "Pulumi.local.yaml").read_text())["config"]
    raw = {k.split(":", 1)[1]: v for k, v in cfg.items() if k.startswith("certplane:")}
    fleet = parse_fleet({k: v for k, v in raw.items() if k in ("issuers", "certificates", "targets")},
                        base_dir=tmp_path)
    assert {"www", "legacy", "lab", "shop", "blog"} <= set(fleet.certificates)


def test_binary_upload_files_and_odd_yaml_types_get_one_line(tmp_path):
    (tmp_path / "cert.der").write_bytes(bytes(range(256)))
    (tmp_path / "k.pem").write_text(PKCS8_HEADER + "\n")
    raw = {"certificates": {"old": {"upload": {"certificate_file": "cert.der", "private_key_file": "k.pem"}}},
           "targets": {"edge": {"type": ["nginx"]}}}
    assert problems(raw, tmp_path) == [
        f"certplane:targets.edge.type: unrecognized deploy target: ['nginx'] (known: {deploy.REGISTRY.known()})",
        "certplane:certificates.old.upload.certificate_file: cert.der is not a PEM text file (DER, PKCS#7 and PFX "
        "are not accepted; convert with openssl)"]
    acme = {**ACME, "dns": {"provider": {"name": "route53"}}}
    assert problems({"issuers": {"acme": acme}}) == [
        f"certplane:issuers.acme.dns.provider: unrecognized DNS provider: {{'name': 'route53'}} (known: "
        f"{dns.REGISTRY.known()})"]


def test_reissue_before_the_most_specific_wins_and_a_future_time_is_one_line(tmp_path):
    (tmp_path / "x.pem").write_text("")  # an upload is never re-issued: the stack's setting passes it by
    raw = {"reissue_before": "2026-01-01T00:00:00Z",
           "issuers": {"ca": {**CA, "reissue_before": "2026-02-01T00:00:00Z"}, "other": CA},
           "certificates": {"own": cert(reissue_before="2026-03-01T00:00:00Z"), "by_issuer": cert(),
                            "by_stack": cert(issuer="other"), "self": cert(issuer="self_signed")}}
    fleet = parse_fleet(raw)
    assert {n: c.reissue_before for n, c in fleet.certificates.items()} == {
        "own": "2026-03-01T00:00:00Z", "by_issuer": "2026-02-01T00:00:00Z", "by_stack": "2026-01-01T00:00:00Z",
        "self": "2026-01-01T00:00:00Z"}
    assert problems({**raw, "reissue_before": "2999-01-01T00:00:00Z"}) == [
        "certplane:reissue_before: 2999-01-01T00:00:00Z is in the future: every `pulumi up` until then would "
        "re-issue again; give a time that has passed"]
    bad = {"issuers": {"ca": CA}, "certificates": {
        "own": cert(reissue_before="yesterday"),
        "legacy": {"upload": {"certificate_file": "x.pem", "private_key_file": "x.pem"},
                   "reissue_before": "2026-01-01T00:00:00Z"}}}
    assert problems(bad, base_dir=tmp_path) == [
        "certplane:certificates.own.reissue_before: 'yesterday' is not an RFC 3339 time, e.g. 2026-12-01T00:00:00Z",
        "certplane:certificates.legacy.reissue_before: an uploaded certificate is not issued by certplane: upload a "
        "new bundle instead"]
