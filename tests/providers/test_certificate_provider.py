"""The certificate providers' CRUD as plain Python on dicts (no engine): renewal, re-issue, rendering."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from providers.certificate import CertificateProvider
from providers.core import certificates as x509util
from providers.core import clock
from providers.core import keys
from providers.private_key import PrivateKeyProvider
from providers.uploaded_certificate import UploadedCertificateProvider
from tests.support.pki import make_ca, make_leaf

def leaf_inputs(**over):
    """A leaf's inputs; its renewal un-jittered (`jitter: 0`) so the times below are the policy's own."""
    props = {"name": "www", "key": {"algorithm": "ecdsa", "curve": "P-256"}, "domains": ["www.example.test"],
             "validity_days": 90, "formats": ["pem"], "renew": {"jitter": 0}, "reuse_key": False,
             "issuer_type": "self_signed"}
    props.update(over)
    return props


def signed_by(ca, chain=None):
    """Inputs of a certificate signed by `ca` (a tests.support.pki.Issued) through the private_ca issuer."""
    return {"issuer_type": "private_ca", "issuer_credentials": {
        "ca_cert_pem": x509util.to_pem(ca.cert), "ca_private_key_pem": keys.private_key_to_pem(ca.key),
        "ca_chain_pem": x509util.to_pem(chain.cert) if chain else ""}}


def at(monkeypatch, when: str) -> None:
    """Both clocks at `when`: the decisions' ($CERTPLANE_NOW) and the wall clock that dates what is signed."""
    monkeypatch.setenv("CERTPLANE_NOW", when)
    monkeypatch.setattr(clock, "real_now", lambda: clock.parse_rfc3339(when))


@pytest.fixture
def provider():
    return CertificateProvider()


@pytest.fixture
def created(provider, monkeypatch):
    at(monkeypatch, "2026-11-27T12:00:00Z")
    result = provider.create(leaf_inputs())
    return result.id, result.outs


def test_create_returns_every_output(created):
    _id, outs = created
    cert = x509util.load_certificates(outs["cert_pem"])[0]
    assert outs["not_after"] == "2027-02-25T12:00:00Z"
    assert outs["renewal_time"] == "2027-01-26T11:58:20Z"  # two thirds of (90 days + 5 min backdate)
    assert outs["serial"] == x509util.serial_hex(cert)
    assert outs["key_algorithm"] == "ECDSA-P-256"
    assert keys.same_public_key(keys.load_private_key(outs["private_key_pem"]), cert.public_key())


def test_diff_is_clean_until_the_renewal_window_opens(provider, created, monkeypatch, capfd):
    rid, outs = created
    assert provider.diff(rid, outs, leaf_inputs()).changes is False
    at(monkeypatch, "2027-01-27T00:00:00Z")
    diff = provider.diff(rid, outs, leaf_inputs())
    assert diff.changes is True and not diff.replaces
    err = capfd.readouterr().err
    assert "certplane: www: renewal due since 2027-01-26 11:58 UTC (at two thirds of the lifetime); " \
           "expires 2027-02-25 12:00 UTC, 29.5 days left" in err


def test_renewal_reissues_in_place_with_a_new_key(provider, created, monkeypatch):
    rid, outs = created
    at(monkeypatch, "2027-01-27T00:00:00Z")
    new = provider.update(rid, outs, leaf_inputs()).outs
    assert new["serial"] != outs["serial"]
    assert new["public_key_fingerprint_sha256"] != outs["public_key_fingerprint_sha256"]
    assert new["not_after"] == "2027-04-27T00:00:00Z"
    assert provider.diff(rid, new, leaf_inputs()).changes is False


def test_time_travel_renews_early_but_signs_at_the_real_time(provider, created, monkeypatch):
    """An `up` with $CERTPLANE_NOW in the renewal window renews (what would be due by then), and the new
    certificate is valid now, not from that day on."""
    rid, outs = created
    monkeypatch.setenv("CERTPLANE_NOW", "2027-01-27T00:00:00Z")  # the wall clock stays at 2026-11-27 12:00
    new = provider.update(rid, outs, leaf_inputs()).outs
    assert new["serial"] != outs["serial"]
    assert new["not_before"] == "2026-11-27T11:55:00Z" and new["not_after"] == "2027-02-25T12:00:00Z"


def test_reuse_key_keeps_the_key(provider, created, monkeypatch):
    rid, outs = created
    at(monkeypatch, "2027-01-27T00:00:00Z")
    new = provider.update(rid, outs, leaf_inputs(reuse_key=True)).outs
    assert new["serial"] != outs["serial"]
    assert new["public_key_fingerprint_sha256"] == outs["public_key_fingerprint_sha256"]


def test_domain_change_reissues_and_says_so(provider, created, capfd):
    rid, outs = created
    news = leaf_inputs(domains=["www.example.test", "example.test"])
    diff = provider.diff(rid, outs, news)
    assert diff.changes is True and diff.replaces == []
    # The preview names what changes: the input, and the certificate's own properties (a new key with it; the
    # same CA, so the same chain).
    assert diff.details == {name: "update" for name in ("domains", "cert_pem", "serial",
                                                        "not_before", "not_after", "renewal_time",
                                                        "fingerprint_sha256", "private_key_pem")}
    assert "certplane: www: domains adds example.test; re-issuing" in capfd.readouterr().err
    removed = provider.diff(rid, outs, leaf_inputs(domains=["other.example.test"]))
    assert removed.details["domains"] == "update"
    assert "certplane: www: domains adds other.example.test; removes www.example.test; re-issuing" in \
        capfd.readouterr().err
    new = provider.update(rid, outs, news).outs
    assert x509util.dns_names_of(x509util.load_certificates(new["cert_pem"])[0]) == ["www.example.test",
                                                                                    "example.test"]


def test_format_change_keeps_the_certificate(provider, created):
    rid, outs = created
    news = leaf_inputs(formats=["pem", "pkcs12"])
    assert provider.diff(rid, outs, news).changes is True
    new = provider.update(rid, outs, news).outs
    assert new["serial"] == outs["serial"] and new["private_key_pem"] == outs["private_key_pem"]
    assert base64.b64decode(new["pkcs12_base64"])
    assert new["keystore_password"] == outs["keystore_password"]


def test_signed_by_a_ca_carries_the_chain(provider, monkeypatch):
    at(monkeypatch, "2026-11-27T12:00:00Z")
    root = make_ca("Root")
    inter = make_ca("Intermediate", issuer=root, path_length=0)
    outs = provider.create(leaf_inputs(**signed_by(inter, chain=root))).outs
    assert x509util.load_certificates(outs["chain_pem"]) == [inter.cert]  # the root is not served
    assert "issuer_credentials" not in outs  # the CA key is never copied into a leaf's outputs
    assert keys.private_key_to_pem(inter.key) not in str(outs)


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"key": {"algorithm": "rsa", "size": 1024}}, "key.size: RSA keys must be 2048, 3072 or 4096 bits"),
        ({"domains": ["bad name"]}, "domains: 'bad name' is not a valid DNS name"),
        ({"formats": ["pem", "p7b"]}, "formats: unknown format 'p7b': use pem, pkcs12, jks, der"),
        ({"renew": {"at_fraction": 2}}, "renew.at_fraction: must be between 0 and 1 (exclusive), e.g. 0.667"),
    ],
)
def test_check_reports_one_line_per_problem_on_no_property(provider, over, message):
    result = provider.check({}, leaf_inputs(**over))
    assert [(f.property, f.reason) for f in result.failures] == [("", message)]


def test_check_tolerates_unknowns_during_preview(provider):
    from pulumi.output import Unknown

    result = provider.check({}, leaf_inputs(issuer_type="private_ca",
                                            issuer_credentials={"ca_cert_pem": Unknown(), "ca_private_key_pem": Unknown()}))
    assert result.failures == []
    diff = provider.diff("id", provider.create(leaf_inputs()).outs,
                         {**leaf_inputs(issuer_type="private_ca"), "issuer_credentials": Unknown()})
    assert diff.changes is True


def test_ca_key_must_match_ca_certificate(provider):
    root, other = make_ca("Root"), make_ca("Other")
    inputs = leaf_inputs(**signed_by(root))
    inputs["issuer_credentials"]["ca_private_key_pem"] = keys.private_key_to_pem(other.key)
    result = provider.check({}, inputs)
    assert [f.reason for f in result.failures] == ["issuer_credentials.ca_private_key_pem: the private key does not "
                                                   "match the certificate 'CN=Root'"]


def test_private_key_algorithm_change_replaces():
    p = PrivateKeyProvider()
    outs = p.create({"algorithm": "ecdsa", "curve": "P-256", "size": None}).outs
    assert p.diff("k", outs, {"algorithm": "ecdsa", "curve": "P-256", "size": None}).changes is False
    diff = p.diff("k", outs, {"algorithm": "ecdsa", "curve": "P-384", "size": None})
    assert diff.changes is True and diff.replaces == ["curve"]


def test_uploaded_bundle_problems_fail_check_but_an_unchanged_expired_upload_does_not(monkeypatch):
    root = make_ca("Vendor Root")
    inter = make_ca("Vendor CA", issuer=root)
    leaf = make_leaf(inter, ("legacy.example.test",))
    news = {"name": "legacy", "certificate_pem": x509util.to_pem(leaf.cert), "chain_pem": x509util.to_pem(inter.cert),
            "private_key_pem": keys.private_key_to_pem(leaf.key), "passphrase": None, "formats": ["pem"]}
    p = UploadedCertificateProvider()
    at(monkeypatch, "2026-11-27T12:00:00Z")
    assert p.check({}, news).failures == []
    bad = {**news, "chain_pem": ""}
    assert [f.reason for f in p.check({}, bad).failures] == [
        "upload: missing intermediate: no certificate for 'CN=Vendor CA', the issuer of 'CN=legacy.example.test'; "
        "add the CA's intermediate certificate to the chain"]
    at(monkeypatch, "2027-06-01T00:00:00Z")  # the leaf has expired since
    assert p.check(news, news).failures == []
    assert "expired on" in p.check({}, news).failures[0].reason


def test_numbers_from_the_wire_are_whole_numbers(provider):
    """The engine's protobuf Struct carries every number as a double: 3072.0 is a valid RSA size."""
    result = provider.check({}, leaf_inputs(key={"algorithm": "rsa", "size": 3072.0}, validity_days=90.0))
    assert result.failures == []
    assert result.inputs["key"] == {"algorithm": "rsa", "size": 3072} and result.inputs["validity_days"] == 90


def test_reuse_key_still_changes_the_key_when_its_algorithm_changes(provider, created, capfd):
    rid, outs = created
    news = leaf_inputs(reuse_key=True, key={"algorithm": "rsa", "size": 2048})
    assert provider.diff(rid, outs, news).changes is True
    assert "certplane: www: key changed; re-issuing" in capfd.readouterr().err
    new = provider.update(rid, outs, news).outs
    assert new["key_algorithm"] == "RSA-2048"
    assert provider.diff(rid, new, news).changes is False


# --- jitter ---------------------------------------------------------------------------------------------------

def test_the_default_jitter_moves_renewal_earlier_and_the_preview_says_when(provider, monkeypatch, capfd):
    at(monkeypatch, "2026-11-27T12:00:00Z")
    outs = provider.create(leaf_inputs(renew=None)).outs
    # Two thirds of (90 days + 5 min backdate) is 2027-01-26T11:58:20Z; www's hash places it 20 hours earlier.
    assert outs["renewal_time"] == "2027-01-25T15:58:13Z" and outs["renewal_source"] == "policy"
    at(monkeypatch, "2027-01-25T15:50:00Z")
    assert provider.diff("id", outs, leaf_inputs(renew=None)).changes is False
    at(monkeypatch, "2027-01-25T16:00:00Z")
    assert provider.diff("id", outs, leaf_inputs(renew=None)).changes is True
    assert "certplane: www: renewal due since 2027-01-25 15:58 UTC (at two thirds of the lifetime, 20.0 hours " \
           "earlier by jitter); expires 2027-02-25 12:00 UTC, 30.8 days left" in capfd.readouterr().err


def test_state_from_before_jitter_shows_no_diff_and_keeps_its_renewal_time(provider, created, monkeypatch):
    """A certificate issued before jitter existed: state has no `jitter` in `renew` and no `issued_at`. The first
    preview after the upgrade finds nothing to do; its renewal_time output stays the un-jittered one until it
    is next issued (the decision itself uses the jittered time)."""
    rid, outs = created
    old = {**outs, "renew": None, "issued_at": None}
    old.pop("reissue_before", None)
    assert provider.diff(rid, old, leaf_inputs(renew=None)).changes is False
    assert provider.diff(rid, {**old, "renew": {"before_days": 30}},
                         leaf_inputs(renew={"before_days": 30})).changes is False
    assert provider.diff(rid, old, leaf_inputs(renew=None, reissue_before=None)).changes is False


def test_turning_jitter_off_rerenders_the_renewal_time_without_reissuing(provider, monkeypatch):
    at(monkeypatch, "2026-11-27T12:00:00Z")
    outs = provider.create(leaf_inputs(renew=None)).outs
    off = leaf_inputs(renew={"jitter": 0})
    assert provider.diff("id", outs, off).changes is True
    new = provider.update("id", outs, off).outs
    assert new["serial"] == outs["serial"] and new["renewal_time"] == "2027-01-26T11:58:20Z"


# --- reissue_before -------------------------------------------------------------------------------------------

def test_reissue_before_reissues_what_was_issued_before_it_with_a_new_key(provider, created, monkeypatch, capfd):
    rid, outs = created  # issued 2026-11-27 12:00 (not_before 11:55)
    assert outs["issued_at"] == "2026-11-27T12:00:00Z"
    at(monkeypatch, "2026-12-02T00:00:00Z")
    drill = leaf_inputs(reuse_key=True, reissue_before="2026-12-01T00:00:00Z")
    assert provider.check(outs, drill).failures == []
    diff = provider.diff(rid, outs, drill)
    assert diff.changes is True and diff.details["private_key_pem"] == "update"
    assert diff.details["reissue_before"] == "update"
    assert "certplane: www: reissue_before 2026-12-01T00:00:00Z: issued 2026-11-27 12:00 UTC before it; " \
           "re-issuing with a new key" in capfd.readouterr().err
    new = provider.update(rid, outs, drill).outs
    assert new["serial"] != outs["serial"]
    assert new["public_key_fingerprint_sha256"] != outs["public_key_fingerprint_sha256"]  # even with reuse_key
    assert new["issued_at"] == "2026-12-02T00:00:00Z"
    # Issued after the instant: nothing to do, with the setting kept or removed.
    assert provider.diff(rid, new, drill).changes is False
    assert provider.diff(rid, new, leaf_inputs(reuse_key=True)).changes is False
    # A certificate issued after the instant is left alone.
    fresh = provider.create(drill).outs
    assert provider.diff("other", fresh, drill).changes is False


def test_reissue_before_counts_from_the_issue_time_not_the_backdated_not_before(provider, monkeypatch):
    at(monkeypatch, "2026-12-01T00:02:00Z")  # issued two minutes after the instant: not_before is 23:57 the day before
    drill = leaf_inputs(reissue_before="2026-12-01T00:00:00Z")
    outs = provider.create(drill).outs
    assert outs["not_before"] < drill["reissue_before"] < outs["issued_at"]
    assert provider.diff("id", outs, drill).changes is False
    older = {**outs, "issued_at": None}  # state from before issued_at was kept: not_before stands in
    assert provider.diff("id", older, drill).changes is True


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"reissue_before": "2026-12-01T00:00:00Z"},
         "reissue_before: 2026-12-01T00:00:00Z is in the future: every `pulumi up` until then would re-issue again; "
         "give a time that has passed"),
        ({"reissue_before": "soon"}, "reissue_before: 'soon' is not an RFC 3339 time, e.g. 2026-12-01T00:00:00Z"),
    ],
)
def test_a_reissue_before_that_has_not_passed_is_refused(provider, monkeypatch, over, message):
    at(monkeypatch, "2026-11-27T12:00:00Z")
    assert [f.reason for f in provider.check({}, leaf_inputs(**over)).failures] == [message]


def test_reissue_before_needs_a_key_certplane_makes(provider, monkeypatch):
    at(monkeypatch, "2026-11-27T12:00:00Z")
    key = keys.private_key_to_pem(keys.generate_private_key(keys.KeySpec("ecdsa", curve="P-256")))
    result = provider.check({}, leaf_inputs(key=None, key_pem=key, reissue_before="2026-11-01T00:00:00Z"))
    assert [f.reason for f in result.failures] == [
        "reissue_before: re-issues with a new key, and this certificate's key is given (key_pem): replace the key "
        "instead"]
