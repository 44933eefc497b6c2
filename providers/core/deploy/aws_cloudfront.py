"""aws_cloudfront: the viewer certificate of a CloudFront distribution, from ACM in us-east-1 (the only region
CloudFront reads).

The bundle is imported into ACM, then the distribution's config is read with its ETag and written back with
`ViewerCertificate` pointing at it (If-Match: a change made by someone else in between is read again, never
overwritten). A renewal re-imports into the same ARN, which CloudFront follows without a config change; one that
changes the key's type or size (which ACM refuses to re-import) is imported as a new certificate, and the old one
stays in ACM, `superseded_arn`, until the new one is verified (retire deletes it once CloudFront lets go of it),
so a rollback points the distribution back at it. The viewer certificate found before the first deploy is kept
in state and put back on removal; a distribution with aliases is never left on CloudFront's default
certificate, which would not cover them.

A deploy that fails says what it left (DeployFailed): nothing changed, or the live facts of what it did,
for the rollback; a rollback reads the distribution back and raises unless the previous certificate is confirmed.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import field_validator, model_validator

from .. import aws
from ..aws import AwsAccess
from ..certificates import check_dns_name, covers, load_certificates
from ..errors import DeployError, DeployFailed, InvalidInputError
from ..validation import LOCATION, number
from . import base
from ._acm import Acm
from .base import DEFAULT, Binding, Bundle, TargetPlugin, TargetSettings

if TYPE_CHECKING:
    from mypy_boto3_cloudfront import CloudFrontClient

KIND = "aws_cloudfront"
CLOUDFRONT_REGION = "us-east-1"
_DISTRIBUTION_ID = re.compile(r"^[A-Z0-9]{8,32}$")
_UPDATE_TRIES = 3
_KEPT = ("CloudFrontDefaultCertificate", "ACMCertificateArn", "IAMCertificateId", "SSLSupportMethod",
         "MinimumProtocolVersion")
T = TypeVar("T")


class AwsCloudFrontSettings(TargetSettings, AwsAccess):
    """The distribution: `distribution_id`, or `alias` (one of its alternate domain names, which CloudFront
    keeps unique: stable across environments and re-creations, resolved per call); region (us-east-1, the
    default: CloudFront takes ACM certificates from there only); minimum_protocol_version (default
    TLSv1.2_2021), ssl_support_method (default sni-only); AWS access: core/aws.py."""

    distribution_id: Annotated[str | None, LOCATION] = None
    alias: Annotated[str | None, LOCATION] = None
    region: Annotated[str, LOCATION] = CLOUDFRONT_REGION
    minimum_protocol_version: Literal["TLSv1.2_2021", "TLSv1.2_2019", "TLSv1.2_2018", "TLSv1.1_2016",
                                      "TLSv1_2016", "TLSv1"] = "TLSv1.2_2021"
    ssl_support_method: Literal["sni-only", "vip", "static-ip"] = "sni-only"
    deploy_timeout: Annotated[float, number(1, 7200)] = 1800.0  # a removal waits this long for `Deployed`
    poll_interval: Annotated[float, number(0, 600)] = 15.0

    @field_validator("distribution_id")
    @classmethod
    def _distribution(cls, value: str | None) -> str | None:
        if value is not None and not _DISTRIBUTION_ID.match(value):
            raise InvalidInputError("", f"{value!r} is not a CloudFront distribution id like E2QWRUHAPOMQZL")
        return value

    @field_validator("alias")
    @classmethod
    def _alias(cls, value: str | None) -> str | None:
        if value is not None:
            check_dns_name(value, "")
        return value

    @model_validator(mode="after")
    def _one_distribution(self) -> AwsCloudFrontSettings:
        if (self.distribution_id is None) == (self.alias is None):
            raise InvalidInputError("distribution_id", "give distribution_id or alias (one of them)")
        return self

    @field_validator("region")
    @classmethod
    def _us_east_1(cls, value: str) -> str:
        if value != CLOUDFRONT_REGION:
            raise InvalidInputError("", f"CloudFront takes ACM certificates from {CLOUDFRONT_REGION} only, not {value}")
        return value


class AwsCloudFrontTarget(base.RedeployRollback):
    kind = KIND

    def __init__(self, settings: AwsCloudFrontSettings) -> None:
        self.settings = settings
        self._id = settings.distribution_id
        self.acm = Acm(settings, KIND, region=CLOUDFRONT_REGION)

    @property
    def distribution_id(self) -> str:
        if self._id is None:
            self._id = self._find_by_alias(str(self.settings.alias))
        return self._id

    def _find_by_alias(self, alias: str) -> str:
        cf = self._cf()
        marker: str | None = None
        for _ in range(1000):  # bounded: 1000 pages of 100 is far beyond an account's distribution quota
            page = _call("list_distributions", lambda: (cf.list_distributions(Marker=marker) if marker
                                                        else cf.list_distributions()))["DistributionList"]
            for item in page.get("Items") or []:
                if alias in ((item.get("Aliases") or {}).get("Items") or []):
                    return str(item["Id"])
            marker = page.get("NextMarker")
            if not page.get("IsTruncated") or not marker:
                break
        raise DeployError(f"aws_cloudfront: no distribution has the alias {alias} in this account")

    def _cf(self) -> CloudFrontClient:
        return _call("session", lambda: aws.client(self.settings, "cloudfront"))  # type: ignore[no-any-return]

    def check_binding(self, binding: Binding) -> None:
        if binding.sni:
            raise InvalidInputError("sni", "a CloudFront distribution serves one viewer certificate: leave sni unset")

    # --- the verbs -------------------------------------------------------------------------------------------

    def deploy(self, binding: Binding, bundle: Bundle) -> dict[str, Any]:
        self.check_binding(binding)
        previous_arn = str(binding.live.get("certificate_arn") or "") or None
        try:  # nothing here changes what the distribution serves (a re-import into the same ARN is one call)
            config, _ = self._config()  # an unknown distribution fails before anything is imported
            aliases = _aliases(config)
            self._check_covers(bundle, aliases)
            into, superseded = self.acm.reimport_into(previous_arn, bundle)
            arn = self.acm.import_bundle(binding, bundle, into)
        except DeployError as err:
            raise DeployFailed(str(err), nothing_changed=True) from None
        before = binding.live.get("previous_viewer_certificate")
        if before is None:
            current = _viewer(config)
            before = None if current.get("ACMCertificateArn") in {a for a in (arn, previous_arn) if a} else current
        stale = [a for a in [*(binding.live.get("stale_arns") or []), binding.live.get("superseded_arn")]
                 if a and a != arn]
        live = {"certificate_arn": arn, "distribution_id": self.distribution_id, "aliases": aliases,
                "previous_viewer_certificate": before, "superseded_arn": superseded,
                "stale_arns": sorted(set(stale))}
        try:
            self._set_viewer(self._ours(arn))
        except DeployError as err:
            if arn == into:
                raise  # re-imported in place: the rollback re-imports the previous bundle
            raise self._failed_set(arn, live, err) from None
        return live

    def _failed_set(self, arn: str, live: dict[str, Any], err: DeployError) -> DeployFailed:
        """After a fresh import: read the distribution back. Not on it -> delete the import, nothing changed;
        else (or unreadable) -> the live facts, for the rollback."""
        try:
            if _viewer(self._config()[0]).get("ACMCertificateArn") == arn:
                return DeployFailed(str(err), live=live)
            self.acm.delete(arn)  # a fresh import the distribution never used: do not leave it in ACM
        except DeployError:
            return DeployFailed(str(err), live=live)
        return DeployFailed(str(err), nothing_changed=True)

    def verify(self, binding: Binding, bundle: Bundle) -> None:
        arn = str(binding.live.get("certificate_arn") or "")
        viewer = _viewer(self._config()[0])
        if viewer.get("ACMCertificateArn") != arn:
            raise DeployError(f"aws_cloudfront: distribution {self.distribution_id} serves "
                              f"{_describe(viewer)}, expected {arn or 'the imported certificate'}")
        got = self.acm.fingerprint(arn)
        if got != bundle.fingerprint_sha256:
            raise DeployError(f"aws_cloudfront: ACM {arn} holds {got or 'no certificate'}, "
                              f"expected {bundle.fingerprint_sha256}")

    def rollback(self, binding: Binding, previous: Bundle | None) -> None:
        """Put back what the distribution served before: remove a new binding; point it back at the
        certificate a re-keyed deploy superseded (still in ACM); or re-import the previous bundle into the same
        ARN. Then read it back: unless the previous certificate is confirmed, raise, saying what is live."""
        arn = str(binding.live.get("certificate_arn") or "")
        superseded = binding.live.get("superseded_arn")
        if previous is None:
            self.remove(binding)
            return
        if superseded:
            try:
                self._set_viewer(self._ours(str(superseded)))
            except DeployError as err:
                raise DeployError(f"{err}; {self._left(str(superseded), arn, err)}") from None
            self._confirm(str(superseded), previous, arn)
            with contextlib.suppress(DeployError):  # CloudFront may hold on to it for a while: clutter in ACM
                self.acm.delete(arn, tries=1)
            return
        try:
            restored = self.deploy(binding, previous)
        except DeployError as err:
            raise DeployError(f"{err}; {self._left(arn, arn, err)}") from None
        self._confirm(str(restored["certificate_arn"]), previous, arn)

    def retire(self, binding: Binding) -> dict[str, Any]:
        """Delete what the verified deploy superseded (and what was left from before) where ACM lets us: it
        refuses while CloudFront still deploys the change away from it, so those stay in `stale_arns`, for the
        next deploy or the removal."""
        live = dict(binding.live)
        candidates = [a for a in [*(live.get("stale_arns") or []), live.get("superseded_arn")]
                      if a and a != live.get("certificate_arn")]
        left = []
        try:
            viewer_arn = _viewer(self._config()[0]).get("ACMCertificateArn")
        except DeployError:
            viewer_arn, left = None, candidates  # cannot tell what the distribution uses: try again next time
        for old in candidates:
            if old in left:
                continue
            try:
                if old == viewer_arn:
                    raise DeployError(f"aws_cloudfront: distribution {self.distribution_id} still serves {old}")
                self.acm.delete(str(old), tries=1)
            except DeployError:
                left.append(old)
        return {**live, "superseded_arn": None, "stale_arns": sorted(set(left))}

    def _confirm(self, old: str, previous: Bundle, new: str) -> None:
        """Read back that the distribution serves `old` and ACM holds the previous certificate there."""
        try:
            viewer = _viewer(self._config()[0])
            got = self.acm.fingerprint(old) if viewer.get("ACMCertificateArn") == old else None
        except DeployError as err:
            raise DeployError(self._unconfirmed(None, old, new, err)) from None
        if viewer.get("ACMCertificateArn") != old:
            raise DeployError(self._unconfirmed(viewer, old, new))
        if got != previous.fingerprint_sha256:
            raise DeployError(f"aws_cloudfront: after the rollback, ACM {old} holds {got or 'no certificate'}, not "
                              f"the previous certificate {previous.fingerprint_sha256}; run `pulumi up` again")

    def _left(self, old: str, new: str, failure: DeployError) -> str:
        """What the distribution serves now, for a rollback that failed (`failure`) before it could confirm."""
        try:
            return self._unconfirmed(_viewer(self._config()[0]), old, new)
        except DeployError as err:
            return self._unconfirmed(None, old, new, None if str(err) == str(failure) else err)

    def _unconfirmed(self, viewer: dict[str, Any] | None, old: str, new: str, err: DeployError | None = None) -> str:
        """What the distribution serves and what to do, for a rollback that could not confirm `old` is back."""
        if viewer is None:
            why = f" ({err})" if err else ""
            return (f"aws_cloudfront: what distribution {self.distribution_id} serves after the rollback could not "
                    f"be read back{why}: check that it serves {old}, then run `pulumi up` again")
        held = _describe(viewer)
        if viewer.get("ACMCertificateArn") == new and new != old:
            held += " (certplane's new certificate)"
        return (f"aws_cloudfront: after the rollback, distribution {self.distribution_id} serves {held}, not the "
                f"previous certificate {old}: set its viewer certificate back by hand, or run `pulumi up` again")

    def observe(self, binding: Binding) -> dict[str, str | None]:
        viewer = _viewer(self._config()[0])
        return {DEFAULT: self.acm.fingerprint(viewer.get("ACMCertificateArn"))}

    def remove(self, binding: Binding) -> None:
        arn = str(binding.live.get("certificate_arn") or "")
        if not arn:
            return
        config, _ = self._config()
        if _viewer(config).get("ACMCertificateArn") == arn:
            before = binding.live.get("previous_viewer_certificate") or {"CloudFrontDefaultCertificate": True}
            aliases = _aliases(config)
            if before.get("CloudFrontDefaultCertificate") and aliases:
                raise DeployError(f"aws_cloudfront: distribution {self.distribution_id} had no certificate of its own "
                                  f"before certplane's, and CloudFront's default does not cover its aliases "
                                  f"({', '.join(aliases)}); give it another certificate (or remove the aliases), "
                                  "then remove again")
            self._set_viewer(dict(before))
            self._wait_deployed()  # ACM refuses to delete a certificate a distribution is still moving off
        self.acm.delete(arn)
        with contextlib.suppress(DeployError):
            self.retire(binding)  # whatever an unverified or interrupted deploy left in ACM

    # --- mechanics ------------------------------------------------------------------------------------------

    def _ours(self, arn: str) -> dict[str, Any]:
        return {"ACMCertificateArn": arn, "SSLSupportMethod": self.settings.ssl_support_method,
                "MinimumProtocolVersion": self.settings.minimum_protocol_version,
                "CloudFrontDefaultCertificate": False}

    def _config(self) -> tuple[dict[str, Any], str]:
        cf, distribution_id = self._cf(), self.distribution_id
        try:
            answer = cf.get_distribution_config(Id=distribution_id)
        except cf.exceptions.NoSuchDistribution:
            raise DeployError(f"aws_cloudfront: no distribution {self.distribution_id} in this account") from None
        except Exception as err:  # noqa: BLE001
            raise DeployError(f"aws_cloudfront: get_distribution_config: {aws.describe_error(err)}") from None
        return dict(answer["DistributionConfig"]), str(answer["ETag"])

    def _set_viewer(self, viewer: dict[str, Any]) -> None:
        """Read the config with its ETag, change ViewerCertificate only, write it back If-Match that ETag; a
        change by someone else in between (PreconditionFailed) is read again. Bounded."""
        cf = self._cf()
        for _ in range(_UPDATE_TRIES):
            config, etag = self._config()
            if all(_viewer(config).get(k) == v for k, v in viewer.items()):
                return
            config["ViewerCertificate"] = {k: v for k, v in viewer.items() if v not in (None, "")}
            try:
                cf.update_distribution(Id=self.distribution_id, IfMatch=etag, DistributionConfig=config)  # type: ignore[arg-type]
                return
            except cf.exceptions.PreconditionFailed:
                continue
            except Exception as err:  # noqa: BLE001
                raise DeployError(f"aws_cloudfront: update_distribution: {aws.describe_error(err)}") from None
        raise DeployError(f"aws_cloudfront: distribution {self.distribution_id} changed under every one of "
                          f"{_UPDATE_TRIES} updates (someone else is editing it); run again")

    def _wait_deployed(self) -> None:
        cf, s = self._cf(), self.settings
        deadline = time.monotonic() + s.deploy_timeout
        status = "InProgress"
        while True:
            status = str(_call("get_distribution", lambda: cf.get_distribution(Id=self.distribution_id))[
                "Distribution"].get("Status"))
            if status == "Deployed" or time.monotonic() > deadline:
                break
            time.sleep(s.poll_interval)
        if status != "Deployed":
            raise DeployError(f"aws_cloudfront: distribution {self.distribution_id} is still {status} after "
                              f"{s.deploy_timeout:g} s; its certificate from before is set, ours stays in ACM until "
                              "you run again")

    def _check_covers(self, bundle: Bundle, aliases: list[str]) -> None:
        """CloudFront refuses a viewer certificate that does not cover every alias: say which, before any call."""
        leaf = load_certificates(bundle.cert_pem)[0]
        missing = [a for a in aliases if not covers(leaf, a)]
        if missing:
            raise DeployError(f"aws_cloudfront: the certificate does not cover {', '.join(missing)}, an alias of "
                              f"distribution {self.distribution_id}")


def _viewer(config: dict[str, Any]) -> dict[str, Any]:
    """The viewer certificate, only the fields that say which certificate and how (empty ones dropped)."""
    viewer = config.get("ViewerCertificate") or {}
    return {k: viewer[k] for k in _KEPT if viewer.get(k) not in (None, "")}


def _aliases(config: dict[str, Any]) -> list[str]:
    return [str(a) for a in (config.get("Aliases") or {}).get("Items") or []]


def _describe(viewer: dict[str, Any]) -> str:
    if viewer.get("ACMCertificateArn"):
        return str(viewer["ACMCertificateArn"])
    if viewer.get("IAMCertificateId"):
        return f"IAM certificate {viewer['IAMCertificateId']}"
    return "CloudFront's default certificate"


def _call(operation: str, fn: Callable[[], T]) -> T:
    return aws.call(KIND, operation, fn)


PLUGIN = TargetPlugin(KIND, AwsCloudFrontSettings, AwsCloudFrontTarget)
