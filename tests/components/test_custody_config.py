"""Key custody and CSR mode in the stack config: every mistake is one line naming its field, at preview."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.config import ConfigProblems, parse_fleet
from tests.support.csr import dns_san, openssl_csr

CA = {"type": "private_ca", "common_name": "Root"}
NAMES = ["www.example.test", "example.test"]


def problems(raw: dict, base_dir: Path | None = None) -> list[str]:
    with pytest.raises(ConfigProblems) as err:
        parse_fleet(raw, base_dir=base_dir)
    return err.value.lines


@pytest.fixture(scope="module")
def csr_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CSR made by openssl for NAMES (its key stays with its owner)."""
    directory = tmp_path_factory.mktemp("csr")
    csr, _key = openssl_csr(directory, subject=f"/CN={NAMES[0]}", san=dns_san(NAMES), name="www")
    return csr


def file_store(tmp_path: Path) -> dict:
    return {"type": "file", "directory": str(tmp_path)}


def test_keystores_hold_the_key_so_they_are_refused_with_a_key_kept_out_of_state(tmp_path: Path) -> None:
    raw = {"issuers": {"ca": CA}, "certificates": {"www": {"domains": NAMES, "issuer": "ca",
                                                           "key_storage": file_store(tmp_path),
                                                           "formats": ["pem", "pkcs12"]}}}
    assert problems(raw) == ["certplane:certificates.www.formats: pkcs12 would carry the private key in state, and "
                             "key_storage file keeps it out: drop it (deploy targets build their own keystores from "
                             "the stored key)"]


def test_an_issuers_key_storage_is_its_certificates_default_and_a_certificates_own_wins(tmp_path: Path) -> None:
    fleet = parse_fleet({"issuers": {"ca": {**CA, "key_storage": file_store(tmp_path / "issuer")}},
                         "certificates": {"a": {"domains": ["a.example.test"], "issuer": "ca"},
                                          "b": {"domains": ["b.example.test"], "issuer": "ca",
                                                "key_storage": {"type": "state"}}}})
    assert fleet.certificates["a"].key_storage.directory == str(tmp_path / "issuer")  # type: ignore[union-attr]
    assert type(fleet.certificates["b"].key_storage).__name__ == "StateSettings"


@pytest.mark.parametrize(("storage", "line"), [
    ({"type": "vault"}, "certplane:certificates.www.key_storage.type: unrecognized key storage type: vault (known: "
                        "aws_secretsmanager, file, state)"),
    ({"type": "aws_secretsmanager", "region": "us-east-1", "recovery_window_days": 3},
     "certplane:certificates.www.key_storage.recovery_window_days: must be 0 (delete at once, without recovery) or "
     "7 to 30 days, as Secrets Manager allows"),
    ({"type": "file"}, "certplane:certificates.www.key_storage.directory: "),
])
def test_bad_key_storage_is_one_line(storage: dict, line: str) -> None:
    lines = problems({"issuers": {"ca": CA}, "certificates": {"www": {"domains": NAMES, "issuer": "ca",
                                                                      "key_storage": storage}}})
    assert len(lines) == 1 and lines[0].startswith(line), lines


def test_an_intermediates_key_storage_needs_an_intermediate(tmp_path: Path) -> None:
    assert problems({"issuers": {"ca": {**CA, "intermediate_key_storage": file_store(tmp_path)}}}) == [
        "certplane:issuers.ca.intermediate_key_storage: this CA has no intermediate (intermediate: true adds one)"]


def test_a_csr_gives_the_names(csr_file: Path) -> None:
    fleet = parse_fleet({"issuers": {"ca": CA}, "certificates": {"www": {"issuer": "ca",
                                                                         "csr": {"file": str(csr_file)}}}})
    assert fleet.certificates["www"].domains == tuple(NAMES)


@pytest.mark.parametrize(("over", "line"), [
    ({"domains": ["other.example.test"]},
     "certplane:certificates.www.csr: the CSR names www.example.test, example.test; the certificate asks for "
     "other.example.test"),
    ({"key": {"algorithm": "rsa"}}, "certplane:certificates.www.key: the key is the CSR's: certplane never makes, "
                                    "re-keys or keeps it (re-key by giving a new CSR)"),
    ({"formats": ["pem", "jks"]}, "certplane:certificates.www.formats: jks holds the private key, and this "
                                  "certificate's key is not given: give it with the CSR (csr.private_key), or drop jks"),
    ({"bindings": [{"target": "disk"}]}, "certplane:certificates.www.bindings: a certificate from a CSR without its "
                                         "key cannot be deployed by certplane: give csr.private_key, or deploy it "
                                         "where the key is"),
])
def test_csr_mistakes_are_one_line(csr_file: Path, over: dict, line: str) -> None:
    raw = {"issuers": {"ca": CA}, "targets": {"disk": {"type": "files", "directory": "/tmp/x"}},
           "certificates": {"www": {"issuer": "ca", "csr": {"file": str(csr_file)}, **over}}}
    lines = problems(raw)
    assert len(lines) == 1 and lines[0].startswith(line), lines


def test_a_csr_that_is_not_one_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "not.csr"
    bad.write_text("hello\n")
    lines = problems({"issuers": {"ca": CA}, "certificates": {"www": {"issuer": "ca", "csr": {"file": str(bad)}}}})
    assert len(lines) == 1 and lines[0].startswith("certplane:certificates.www.csr.file: "), lines
    missing = problems({"issuers": {"ca": CA}, "certificates": {"www": {"issuer": "ca",
                                                                        "csr": {"file": str(tmp_path / "gone")}}}})
    assert missing == [f"certplane:certificates.www.csr.file: cannot read {tmp_path / 'gone'}: No such file or "
                       "directory"]


def test_a_self_signed_csr_needs_its_key(csr_file: Path) -> None:
    assert problems({"certificates": {"www": {"issuer": "self_signed", "csr": {"file": str(csr_file)}}}}) == [
        "certplane:certificates.www.csr.private_key: a self_signed certificate is signed with its own key: give it, "
        "or use a CA"]


def test_every_issuer_type_takes_key_storage_for_its_certificates(tmp_path: Path) -> None:
    arn = "arn:aws:acm-pca:us-east-1:111122223333:certificate-authority/11111111-2222-3333-4444-555555555555"
    storage = file_store(tmp_path)
    fleet = parse_fleet({
        "issuers": {"pca": {"type": "aws_pca", "certificate_authority_arn": arn, "key_storage": storage},
                    "le": {"type": "acme", "directory_url": "https://127.0.0.1:14000/dir", "key_storage": storage,
                           "dns": {"provider": "challtestsrv", "url": "http://127.0.0.1:8055"}}},
        "certificates": {"a": {"domains": ["a.example.test"], "issuer": "pca"},
                         "b": {"domains": ["b.example.test"], "issuer": "le"}}})
    assert {n: type(c.key_storage).__name__ for n, c in fleet.certificates.items()} == {"a": "FileSettings",
                                                                                         "b": "FileSettings"}
