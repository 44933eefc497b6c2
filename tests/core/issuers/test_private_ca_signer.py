"""The private CA as a signer (`private_ca.signer_credentials`): what every certificate of the stack's own CA
carries instead of the CA's whole certificate. A certificate signed from it must be the one the certificate form
signs (issuer name byte for byte, authority key identifier, capped validity, served chain), with the same
identity, so a stack written before re-issues nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from providers.core import certificates as x509util
from providers.core import keys
from providers.core.certificates import CertificateRequest
from providers.core.errors import InvalidInputError
from providers.core.issuers import IssueRequest, private_ca
from tests.support.acme import verify_chain
from tests.support.pki import Issued, make_ca

NAMES = ("www.example.test",)


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def certificate_form(ca: Issued, above: Issued | None = None) -> dict[str, str]:
    return {"ca_cert_pem": x509util.to_pem(ca.cert), "ca_private_key_pem": keys.private_key_to_pem(ca.key),
            "ca_chain_pem": x509util.to_pem(above.cert) if above else ""}


def signer_form(ca: Issued, above: Issued | None = None) -> dict[str, str]:
    signer = private_ca.signer_credentials(x509util.to_pem(ca.cert), x509util.to_pem(above.cert) if above else "")
    assert "ca_cert_pem" not in signer, signer
    return {**signer, "ca_private_key_pem": keys.private_key_to_pem(ca.key)}


def issue(credentials: dict[str, str], days: int = 30) -> private_ca.Issued:
    creds = private_ca.PrivateCaCredentials.model_validate(credentials)
    private_ca.PLUGIN.check_credentials(creds)
    key = keys.generate_private_key(keys.KeySpec("ecdsa", curve="P-256"))
    return private_ca.PLUGIN.build(private_ca.PrivateCaOrder(), creds).issue(
        IssueRequest("www", CertificateRequest(domains=NAMES, validity_days=days), key, now()))


def aki(cert: x509.Certificate) -> bytes | None:
    return cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier


@pytest.mark.parametrize("depth", ["root", "intermediate"])
def test_a_signer_signs_what_the_certificate_form_signs(depth: str) -> None:
    root = make_ca("Signer Root", now=now())
    ca, above = (root, None) if depth == "root" else (make_ca("Signer Intermediate", issuer=root, path_length=0,
                                                              now=now()), root)
    by_cert, by_signer = issue(certificate_form(ca, above)), issue(signer_form(ca, above))
    assert by_signer.leaf.issuer.public_bytes() == by_cert.leaf.issuer.public_bytes() == ca.cert.subject.public_bytes()
    assert aki(by_signer.leaf) == aki(by_cert.leaf) is not None
    assert by_signer.chain == by_cert.chain == (() if depth == "root" else (ca.cert,))
    verify_chain(by_signer.leaf, list(by_signer.chain), x509util.to_pem(root.cert), NAMES[0])
    # same identity: a stack whose leaves carried the CA's certificate sees no change of issuer
    identities = {private_ca.PLUGIN.identity(private_ca.PrivateCaOrder(),
                                             private_ca.PrivateCaCredentials.model_validate(form(ca, above)))
                  for form in (certificate_form, signer_form)}
    assert len(identities) == 1


def test_a_signed_certificate_never_outlives_its_signer() -> None:
    ca = make_ca("Short Root", days=10, now=now())
    leaf = issue(signer_form(ca), days=90).leaf
    assert leaf.not_valid_after_utc == ca.cert.not_valid_after_utc


def test_the_signer_is_smaller_than_the_certificate_it_stands_for() -> None:
    ca = make_ca("Size Root", spec=keys.KeySpec("ecdsa", curve="P-384"), now=now())
    signer = private_ca.signer_credentials(x509util.to_pem(ca.cert), "")
    assert len(str(signer)) < len(x509util.to_pem(ca.cert)) / 2, signer


def test_another_key_than_the_signers_is_refused_naming_the_field() -> None:
    ca, other = make_ca("Signer Root", now=now()), make_ca("Other Root", now=now())
    credentials = {**signer_form(ca), "ca_private_key_pem": keys.private_key_to_pem(other.key)}
    with pytest.raises(InvalidInputError) as err:
        issue(credentials)
    assert str(err.value).startswith("ca_private_key_pem: is not the CA's key"), err.value


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("ca_name", "not a name", "is not an RFC 4514 name"),
    ("ca_key_id", "xyz", "is not hex"),
    ("ca_not_after", "tomorrow", "is not an RFC 3339 instant"),
    ("ca_identity", "md5:00", "is not sha256:<64 hex digits>"),
])
def test_a_damaged_signer_field_is_named(field: str, value: str, reason: str) -> None:
    credentials = {**signer_form(make_ca("Signer Root", now=now())), field: value}
    with pytest.raises(InvalidInputError) as err:
        issue(credentials)
    assert str(err.value) == f"{field}: {reason}"


def test_the_ca_is_given_once_and_whole() -> None:
    ca = make_ca("Signer Root", now=now())
    with pytest.raises(ValidationError, match="ca_cert_pem: give the CA once: by its certificate, or as a signer"):
        private_ca.PrivateCaCredentials.model_validate({**signer_form(ca), "ca_cert_pem": x509util.to_pem(ca.cert)})
    partial = {k: v for k, v in signer_form(ca).items() if k != "ca_key_id"}
    with pytest.raises(ValidationError, match="ca_key_id: is required: give the CA as a signer"):
        private_ca.PrivateCaCredentials.model_validate(partial)


def test_a_name_text_cannot_give_back_keeps_the_certificate_form() -> None:
    """A subject with a string type other than its attribute's default (PrintableString for a CN): RFC 4514
    text would come back as UTF8String, a different issuer name to a client building the chain."""
    key = keys.generate_private_key(keys.KeySpec("ecdsa", curve="P-256"))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Printable Root", x509.name._ASN1Type.PrintableString)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now() - dt.timedelta(days=1))
            .not_valid_after(now() + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    pem = x509util.to_pem(cert)
    assert private_ca.signer_credentials(pem, "") == {"ca_cert_pem": pem, "ca_chain_pem": ""}
    leaf = issue({**private_ca.signer_credentials(pem, ""), "ca_private_key_pem": keys.private_key_to_pem(key)}).leaf
    assert leaf.issuer.public_bytes() == name.public_bytes()


def test_a_certificate_that_is_no_ca_keeps_the_certificate_form_for_the_provider_to_refuse() -> None:
    leaf = issue(certificate_form(make_ca("Signer Root", now=now()))).leaf
    pem = x509util.to_pem(leaf)
    assert private_ca.signer_credentials(pem, "") == {"ca_cert_pem": pem, "ca_chain_pem": ""}
