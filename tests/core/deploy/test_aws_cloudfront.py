"""The aws_cloudfront target against moto: the distribution's viewer certificate (ACM, us-east-1), checked
against what the distribution config holds after every step (moto accepts any ARN and ignores If-Match, so
the assertions read the config back rather than trusting a call that did not fail)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from providers.core.certificates import fingerprint_of_pem
from providers.core.deploy import DEFAULT, Binding, get_target
from providers.core.deploy.aws_cloudfront import AwsCloudFrontSettings
from providers.core.errors import DeployError, InvalidInputError
from tests.support.pki import LocalCa
from tools.servers.moto import MotoServer, create_distribution

REGION = "us-east-1"


def cf(moto: MotoServer) -> Any:
    return boto3.client("cloudfront", region_name=REGION, endpoint_url=moto.endpoint_url)


def acm(moto: MotoServer) -> Any:
    return boto3.client("acm", region_name=REGION, endpoint_url=moto.endpoint_url)


def viewer(moto: MotoServer, distribution: str) -> dict[str, Any]:
    held = cf(moto).get_distribution_config(Id=distribution)["DistributionConfig"]["ViewerCertificate"]
    return {k: v for k, v in held.items() if v not in (None, "")}


def our_certificates(moto: MotoServer) -> set[str]:
    return {c["CertificateArn"] for c in acm(moto).list_certificates()["CertificateSummaryList"]}


@pytest.fixture
def distribution(moto: MotoServer, ca: LocalCa) -> dict[str, Any]:
    """A distribution for cdn.example.test that already serves a certificate imported outside certplane."""
    original = ca.bundle(["cdn.example.test"], name="original")
    arn = acm(moto).import_certificate(Certificate=original.cert_pem.encode(), PrivateKey=original.key_pem.encode(),
                                       CertificateChain=original.chain_pem.encode())["CertificateArn"]
    return {"id": create_distribution(moto.endpoint_url, aliases=("cdn.example.test",), certificate_arn=arn),
            "original_arn": arn}


def target(moto: MotoServer, distribution_id: str | None, **extra: Any) -> Any:
    where = {"distribution_id": distribution_id} if distribution_id else {}
    return get_target("aws_cloudfront", {**where, "endpoint_url": moto.endpoint_url, **extra})


def test_deploy_renew_and_remove_the_viewer_certificate(moto: MotoServer, distribution: dict[str, Any],
                                                        ca: LocalCa) -> None:
    t = target(moto, distribution["id"])
    before = viewer(moto, distribution["id"])
    first = ca.bundle(["cdn.example.test"], name="cdn")
    binding = Binding("cdn--cdn").with_live(t.deploy(Binding("cdn--cdn"), first))
    arn = binding.live["certificate_arn"]
    held = viewer(moto, distribution["id"])
    assert (held["ACMCertificateArn"], held["SSLSupportMethod"], held["MinimumProtocolVersion"],
            held["CloudFrontDefaultCertificate"]) == (arn, "sni-only", "TLSv1.2_2021", False)
    assert binding.live["previous_viewer_certificate"]["ACMCertificateArn"] == distribution["original_arn"]
    assert binding.live["aliases"] == ["cdn.example.test"]
    t.verify(binding, first)
    assert t.observe(binding) == {DEFAULT: first.fingerprint_sha256}

    renewed = ca.bundle(["cdn.example.test"], name="cdn")
    again = binding.with_live(t.deploy(binding, renewed))
    assert again.live["certificate_arn"] == arn  # re-imported into the same ARN: CloudFront follows it
    assert again.live["previous_viewer_certificate"] == binding.live["previous_viewer_certificate"]
    assert viewer(moto, distribution["id"])["ACMCertificateArn"] == arn
    assert fingerprint_of_pem(acm(moto).get_certificate(CertificateArn=arn)["Certificate"]) == \
        renewed.fingerprint_sha256
    t.verify(again, renewed)

    t.remove(again)
    after = viewer(moto, distribution["id"])
    assert after["ACMCertificateArn"] == distribution["original_arn"] == before["ACMCertificateArn"]
    assert arn not in our_certificates(moto)
    t.remove(again)  # idempotent


def test_a_certificate_that_does_not_cover_an_alias_is_refused_before_anything_is_imported(
        moto: MotoServer, distribution: dict[str, Any], ca: LocalCa) -> None:
    before = our_certificates(moto)
    with pytest.raises(DeployError) as err:
        target(moto, distribution["id"]).deploy(Binding("www--cdn"), ca.bundle(["www.example.test"]))
    assert str(err.value) == (f"aws_cloudfront: the certificate does not cover cdn.example.test, an alias of "
                              f"distribution {distribution['id']}")
    assert our_certificates(moto) == before
    assert viewer(moto, distribution["id"])["ACMCertificateArn"] == distribution["original_arn"]


def test_drift_someone_else_pointed_the_distribution_elsewhere(moto: MotoServer, distribution: dict[str, Any],
                                                               ca: LocalCa) -> None:
    t = target(moto, distribution["id"])
    ours = ca.bundle(["cdn.example.test"], name="cdn")
    binding = Binding("cdn--cdn").with_live(t.deploy(Binding("cdn--cdn"), ours))
    answer = cf(moto).get_distribution_config(Id=distribution["id"])
    config = answer["DistributionConfig"]
    config["ViewerCertificate"] = {"ACMCertificateArn": distribution["original_arn"], "SSLSupportMethod": "sni-only",
                                   "MinimumProtocolVersion": "TLSv1.2_2021", "CloudFrontDefaultCertificate": False}
    cf(moto).update_distribution(Id=distribution["id"], IfMatch=answer["ETag"], DistributionConfig=config)
    assert t.observe(binding) != {DEFAULT: ours.fingerprint_sha256}
    with pytest.raises(DeployError) as err:
        t.verify(binding, ours)
    assert str(err.value) == (f"aws_cloudfront: distribution {distribution['id']} serves "
                              f"{distribution['original_arn']}, expected {binding.live['certificate_arn']}")
    t.deploy(binding, ours)  # what the next `pulumi up` does
    t.verify(binding, ours)


def test_a_distribution_that_had_only_cloudfronts_certificate(moto: MotoServer, ca: LocalCa) -> None:
    bare = create_distribution(moto.endpoint_url, reference="bare")
    t = target(moto, bare)
    binding = Binding("x--cdn").with_live(t.deploy(Binding("x--cdn"), ca.bundle(["x.example.test"])))
    assert binding.live["previous_viewer_certificate"]["CloudFrontDefaultCertificate"] is True
    assert "ACMCertificateArn" not in binding.live["previous_viewer_certificate"]
    t.remove(binding)
    assert viewer(moto, bare)["CloudFrontDefaultCertificate"] is True
    # With an alias, CloudFront's own certificate would not cover it: removal says so and changes nothing.
    aliased = create_distribution(moto.endpoint_url, aliases=("cdn.example.test",), reference="aliased")
    t = target(moto, aliased)
    bundle = ca.bundle(["cdn.example.test"])
    binding = Binding("cdn--cdn").with_live(t.deploy(Binding("cdn--cdn"), bundle))
    with pytest.raises(DeployError) as err:
        t.remove(binding)
    assert "had no certificate of its own before certplane's" in str(err.value)
    assert viewer(moto, aliased)["ACMCertificateArn"] == binding.live["certificate_arn"]
    assert binding.live["certificate_arn"] in our_certificates(moto)


def test_the_distribution_can_be_named_by_its_alias(moto: MotoServer, distribution: dict[str, Any],
                                                    ca: LocalCa) -> None:
    create_distribution(moto.endpoint_url, aliases=("other.example.test",), reference="other")
    t = target(moto, None, alias="cdn.example.test")
    binding = Binding("cdn--cdn").with_live(t.deploy(Binding("cdn--cdn"), ca.bundle(["cdn.example.test"])))
    assert binding.live["distribution_id"] == distribution["id"]
    assert viewer(moto, distribution["id"])["ACMCertificateArn"] == binding.live["certificate_arn"]
    with pytest.raises(DeployError) as err:
        target(moto, None, alias="nowhere.example.test").deploy(Binding("x--cdn"), ca.bundle(["x.example.test"]))
    assert str(err.value) == "aws_cloudfront: no distribution has the alias nowhere.example.test in this account"


def test_an_unknown_distribution_is_one_line(moto: MotoServer, ca: LocalCa) -> None:
    with pytest.raises(DeployError) as err:
        target(moto, "E0000000000000").deploy(Binding("x--cdn"), ca.bundle(["x.example.test"]))
    assert str(err.value) == "aws_cloudfront: no distribution E0000000000000 in this account"


@pytest.mark.parametrize(("raw", "message"), [
    ({}, "distribution_id: give distribution_id or alias (one of them)"),
    ({"distribution_id": "E2QWRUHAPOMQZL", "alias": "cdn.example.test"},
     "distribution_id: give distribution_id or alias (one of them)"),
    ({"alias": "cdn..example.test"}, "alias: 'cdn..example.test' is not a valid DNS name"),
    ({"distribution_id": "d-123"}, "distribution_id: 'd-123' is not a CloudFront distribution id like E2QWRUHAPOMQZL"),
    ({"distribution_id": "E2QWRUHAPOMQZL", "region": "eu-west-1"},
     "region: CloudFront takes ACM certificates from us-east-1 only, not eu-west-1"),
    ({"distribution_id": "E2QWRUHAPOMQZL", "minimum_protocol_version": "TLSv1.3"},
     "minimum_protocol_version: must be one of 'TLSv1.2_2021', 'TLSv1.2_2019', 'TLSv1.2_2018', 'TLSv1.1_2016', "
     "'TLSv1_2016' or 'TLSv1'"),
    ({"distribution_id": "E2QWRUHAPOMQZL", "colour": "blue"},
     f"colour: unknown setting (known: {', '.join(AwsCloudFrontSettings.model_fields)})"),
])
def test_bad_settings_name_the_field(raw: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        get_target("aws_cloudfront", raw)
    assert str(err.value) == message


def test_sni_means_nothing_to_a_distribution() -> None:
    t = get_target("aws_cloudfront", {"distribution_id": "E2QWRUHAPOMQZL"})
    with pytest.raises(InvalidInputError) as err:
        t.check_binding(Binding("x--cdn", sni=True))
    assert str(err.value) == "sni: a CloudFront distribution serves one viewer certificate: leave sni unset"


# --- re-keyed renewals (ACM refuses a re-import that changes the key type or size; moto does not: the hook in
# test_aws_elbv2 puts AWS's rule back) -------------------------------------------------------------------------

from providers.binding import _deploy_verified  # noqa: E402
from providers.core.deploy import Bundle  # noqa: E402
from tests.core.deploy.test_aws_elbv2 import EC_P256, RSA_2048, acm_as_aws, hooks, keyed  # noqa: E402, F401


def test_a_renewal_that_changes_the_key_type_is_a_new_certificate(moto: MotoServer, distribution: dict[str, Any],
                                                                    ca: LocalCa, acm_as_aws: list[str]) -> None:
    t = target(moto, distribution["id"])
    cdn = Binding("cdn--cdn")
    v1 = keyed(ca, ["cdn.example.test"], RSA_2048, "cdn")
    live = _deploy_verified(t, cdn, v1, None)
    v2 = keyed(ca, ["cdn.example.test"], RSA_2048, "cdn")
    live2 = _deploy_verified(t, cdn.with_live(live), v2, v1)
    assert live2["certificate_arn"] == live["certificate_arn"]  # same key type and size: in place

    v3 = keyed(ca, ["cdn.example.test"], EC_P256, "cdn")
    live3 = _deploy_verified(t, cdn.with_live(live2), v3, v2)
    assert live3["certificate_arn"] != live2["certificate_arn"]
    assert viewer(moto, distribution["id"])["ACMCertificateArn"] == live3["certificate_arn"]
    assert live2["certificate_arn"] not in our_certificates(moto)  # retired once the new one was verified
    assert live3["previous_viewer_certificate"] == live["previous_viewer_certificate"]  # the original, for removal
    assert not live3["superseded_arn"] and live3["stale_arns"] == [] and acm_as_aws == []

    # A re-keyed renewal whose verification fails points the distribution back at the ARN it superseded.
    v4 = keyed(ca, ["cdn.example.test"], RSA_2048, "cdn")
    verify = t.verify

    def fails_for_v4(binding: Binding, bundle: Bundle) -> None:
        if bundle == v4:
            raise DeployError("aws_cloudfront: the new certificate is not served (simulated)")
        verify(binding, bundle)

    t.verify = fails_for_v4
    before = our_certificates(moto)
    with pytest.raises(DeployError) as err:
        _deploy_verified(t, cdn.with_live(live3), v4, v3)
    assert str(err.value) == ("aws_cloudfront: the new certificate is not served (simulated) "
                              "(previous certificate restored)")
    assert viewer(moto, distribution["id"])["ACMCertificateArn"] == live3["certificate_arn"]
    assert our_certificates(moto) == before
    t.verify = verify
    t.verify(cdn.with_live(live3), v3)

    t.remove(cdn.with_live(live3))
    assert viewer(moto, distribution["id"])["ACMCertificateArn"] == distribution["original_arn"]
    assert our_certificates(moto) == {distribution["original_arn"]}


def test_a_failure_before_anything_changed_says_so(moto: MotoServer, ca: LocalCa) -> None:
    with pytest.raises(DeployError) as err:
        _deploy_verified(target(moto, "E0000000000000"), Binding("x--cdn"), ca.bundle(["x.example.test"]), None)
    assert str(err.value) == "aws_cloudfront: no distribution E0000000000000 in this account (nothing was changed)"
