"""aws_elbv2: import the bundle into ACM and attach it to an HTTPS listener of an ALB/NLB, as its default
certificate or as an SNI certificate.

Renewal re-imports into the same CertificateArn, so every listener using it follows without a listener call.
Credentials come from the standard AWS chain only (env, profile, role), never from settings or state; clients
are created per call. Removal detaches before it deletes from ACM, and never leaves a listener without a
certificate: a default certificate is swapped back to the one it replaced.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from pydantic import model_validator

from .. import aws
from ..aws import AwsAccess
from ..certificates import fingerprint_of_pem
from ..errors import DeployError, InvalidInputError
from ..validation import LOCATION, whole_number
from . import base
from .base import DEFAULT, Binding, Bundle, TargetPlugin, TargetSettings

if TYPE_CHECKING:
    from mypy_boto3_acm import ACMClient
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client

KIND = "aws_elbv2"
_LISTENER_ARN = re.compile(r"^arn:aws[a-z-]*:elasticloadbalancing:(?P<region>[a-z0-9-]+):\d{12}:listener/.+")
T = TypeVar("T")


class AwsElbv2Settings(TargetSettings, AwsAccess):
    """The listener: `listener_arn`, or `load_balancer_name` + `listener_port` (stable across environments and
    re-creations; resolved per call); an ALB's HTTPS or an NLB's TLS listener. AWS access: core/aws.py."""

    listener_arn: Annotated[str | None, LOCATION] = None
    load_balancer_name: Annotated[str | None, LOCATION] = None
    listener_port: Annotated[int | None, LOCATION, whole_number(1, 65535)] = None

    @model_validator(mode="after")
    def _listener(self) -> AwsElbv2Settings:
        if self.listener_arn:
            if self.load_balancer_name:
                raise InvalidInputError("listener_arn", "give listener_arn or load_balancer_name + listener_port, "
                                        "not both")
            match = _LISTENER_ARN.match(self.listener_arn)
            if not match:
                raise InvalidInputError("listener_arn", "must be an ELBv2 listener ARN "
                                        "(arn:aws:elasticloadbalancing:REGION:ACCOUNT:listener/...)")
            if match["region"] != self.region:
                raise InvalidInputError("listener_arn", f"is in {match['region']}, but region is {self.region}")
        elif not self.load_balancer_name:
            raise InvalidInputError("listener_arn", "is required (or load_balancer_name + listener_port)")
        elif self.listener_port is None:
            raise InvalidInputError("listener_port", "must be the HTTPS listener's port, e.g. 443")
        return self


class AwsElbv2Target(base.RedeployRollback):
    kind = KIND

    def __init__(self, settings: AwsElbv2Settings) -> None:
        self.access = settings
        self.region = settings.region
        self.load_balancer_name = settings.load_balancer_name
        self.listener_port = settings.listener_port
        self._arn = settings.listener_arn

    @property
    def listener_arn(self) -> str:
        if self._arn is None:
            self._arn = self._find_listener()
        return self._arn

    def _find_listener(self) -> str:
        elb = self._elb()
        try:
            lbs = elb.describe_load_balancers(Names=[str(self.load_balancer_name)])["LoadBalancers"]
        except elb.exceptions.LoadBalancerNotFoundException:
            lbs = []
        except Exception as err:  # noqa: BLE001
            raise DeployError(f"aws_elbv2: describe_load_balancers: {aws.describe_error(err)}") from None
        if not lbs:
            raise DeployError(f"aws_elbv2: no load balancer named {self.load_balancer_name} in {self.region}")
        listeners = self._call("describe_listeners", lambda: elb.describe_listeners(
            LoadBalancerArn=lbs[0]["LoadBalancerArn"]))["Listeners"]
        for listener in listeners:
            if listener.get("Port") == self.listener_port:
                return str(listener["ListenerArn"])
        raise DeployError(f"aws_elbv2: load balancer {self.load_balancer_name} has no listener on port "
                          f"{self.listener_port}")

    # --- clients, created per call ----------------------------------------------------------------------------

    def _acm(self) -> ACMClient:
        return self._call("session", lambda: aws.client(self.access, "acm"))  # type: ignore[no-any-return]

    def _elb(self) -> ElasticLoadBalancingv2Client:
        return self._call("session", lambda: aws.client(self.access, "elbv2"))  # type: ignore[no-any-return]

    def check_binding(self, binding: Binding) -> None:
        return None

    # --- the verbs -------------------------------------------------------------------------------------------

    def deploy(self, binding: Binding, bundle: Bundle) -> dict[str, Any]:
        previous = str(binding.live.get("certificate_arn") or "") or None
        _ = self.listener_arn  # resolve (and fail) before anything is imported into ACM
        arn = self._import(binding, bundle, previous)
        try:
            return self._attach(binding, arn)
        except DeployError:
            if arn != previous:  # a fresh import that never got attached: do not leave it behind in ACM
                try:
                    self._delete(arn)
                except DeployError:
                    pass
            raise

    def _attach(self, binding: Binding, arn: str) -> dict[str, Any]:
        replaced = binding.live.get("replaced_default_arn")
        if binding.sni:
            if self._listener_certificates().get(arn) is True:  # was the default: hand the default back first
                if not replaced:
                    raise DeployError(f"aws_elbv2: {arn} is the default certificate of {self.listener_arn} and there "
                                      "is no earlier default to restore; bind another default certificate first")
                self._set_default(str(replaced))
                replaced = None
            self._ensure_sni({arn})
        else:
            default = self._default_arn()
            if default != arn:
                if replaced is None and default is not None:
                    replaced = default
                self._set_default(arn)
        return {"certificate_arn": arn, "listener_arn": self.listener_arn, "region": self.region,
                "is_default": not binding.sni, "replaced_default_arn": replaced}

    def verify(self, binding: Binding, bundle: Bundle) -> None:
        arn = str(binding.live.get("certificate_arn") or "")
        attached = self._listener_certificates()
        want_default = not binding.sni
        if attached.get(arn) is not want_default:
            where = "default certificate" if want_default else "SNI certificate"
            raise DeployError(f"aws_elbv2: {arn or 'the certificate'} is not the {where} of listener {self.listener_arn}")
        got = self._fingerprint(arn)
        if got != bundle.fingerprint_sha256:
            raise DeployError(f"aws_elbv2: ACM {arn} holds {got or 'no certificate'}, expected {bundle.fingerprint_sha256}")

    def observe(self, binding: Binding) -> dict[str, str | None]:
        arn = str(binding.live.get("certificate_arn") or "")
        attached = self._listener_certificates()
        if binding.sni:
            return {DEFAULT: self._fingerprint(arn) if arn in attached else None}
        default = next((a for a, is_default in attached.items() if is_default), None)
        return {DEFAULT: self._fingerprint(default) if default else None}

    def remove(self, binding: Binding) -> None:
        arn = str(binding.live.get("certificate_arn") or "")
        if not arn:
            return
        attached = self._listener_certificates()
        if attached.get(arn) is True:
            fallback = binding.live.get("replaced_default_arn")
            if not fallback:
                raise DeployError(f"aws_elbv2: {arn} is the default certificate of listener {self.listener_arn} and "
                                  "there is no earlier default to restore; bind another default certificate first")
            self._set_default(str(fallback))
        elif attached.get(arn) is False:
            self._call("remove_listener_certificates", lambda: self._elb().remove_listener_certificates(
                ListenerArn=self.listener_arn, Certificates=[{"CertificateArn": arn}]))
        if arn in self._listener_certificates():
            raise DeployError(f"aws_elbv2: {arn} is still attached to {self.listener_arn}; not deleting it from ACM")
        self._delete(arn)

    # --- mechanics ------------------------------------------------------------------------------------------

    def _import(self, binding: Binding, bundle: Bundle, arn: str | None) -> str:
        acm = self._acm()
        args: dict[str, Any] = {"Certificate": bundle.cert_pem.encode(), "PrivateKey": bundle.key_pem.encode()}
        if bundle.chain_pem.strip():
            args["CertificateChain"] = bundle.chain_pem.encode()
        if arn:
            try:
                return acm.import_certificate(CertificateArn=arn, **args)["CertificateArn"]
            except acm.exceptions.ResourceNotFoundException:
                pass  # deleted out of band: import afresh (the listener is re-pointed below)
            except Exception as err:  # noqa: BLE001
                raise DeployError(f"aws_elbv2: import_certificate: {aws.describe_error(err)}") from None
        tags = [{"Key": "certplane:certificate", "Value": bundle.name},
                {"Key": "certplane:binding", "Value": binding.binding_id}]
        return self._call("import_certificate", lambda: acm.import_certificate(Tags=tags, **args))["CertificateArn"]  # type: ignore[arg-type]

    def _listener_certificates(self) -> dict[str, bool]:
        """ARN -> IsDefault, across all pages."""
        elb = self._elb()
        out: dict[str, bool] = {}
        marker: str | None = None
        for _ in range(100):  # bounded: 100 pages is far beyond the 25-certificate listener quota
            page = self._call("describe_listener_certificates", lambda: (
                elb.describe_listener_certificates(ListenerArn=self.listener_arn, Marker=marker) if marker
                else elb.describe_listener_certificates(ListenerArn=self.listener_arn)))
            for cert in page.get("Certificates", []):
                if cert.get("CertificateArn"):
                    out[cert["CertificateArn"]] = out.get(cert["CertificateArn"], False) or bool(cert.get("IsDefault"))
            marker = page.get("NextMarker")
            if not marker:
                break
        return out

    def _default_arn(self) -> str | None:
        return next((a for a, d in self._listener_certificates().items() if d), None)

    def _set_default(self, arn: str) -> None:
        """Swap the default certificate, then re-add SNI certificates the swap dropped: AWS keeps them, moto
        replaces the whole list, and certplane must not depend on either."""
        before = {a for a, d in self._listener_certificates().items() if not d}
        self._call("modify_listener", lambda: self._elb().modify_listener(
            ListenerArn=self.listener_arn, Certificates=[{"CertificateArn": arn}]))
        self._ensure_sni(before - {arn})

    def _ensure_sni(self, arns: set[str]) -> None:
        missing = sorted(a for a in arns if a not in self._listener_certificates())
        if missing:
            self._call("add_listener_certificates", lambda: self._elb().add_listener_certificates(
                ListenerArn=self.listener_arn, Certificates=[{"CertificateArn": a} for a in missing]))

    def _fingerprint(self, arn: str) -> str | None:
        acm = self._acm()
        try:
            return fingerprint_of_pem(acm.get_certificate(CertificateArn=arn).get("Certificate"))
        except (acm.exceptions.ResourceNotFoundException, acm.exceptions.InvalidArnException):
            return None  # gone, or not an ACM certificate (an IAM one): not ours, so not what we expect
        except Exception as err:  # noqa: BLE001
            raise DeployError(f"aws_elbv2: get_certificate: {aws.describe_error(err)}") from None

    def _delete(self, arn: str) -> None:
        """AWS refuses to delete a certificate for a short while after it is detached: retry, bounded."""
        acm = self._acm()
        for attempt in range(6):
            try:
                acm.delete_certificate(CertificateArn=arn)
                return
            except acm.exceptions.ResourceNotFoundException:
                return
            except acm.exceptions.ResourceInUseException:
                if attempt == 5:
                    raise DeployError(f"aws_elbv2: ACM still reports {arn} in use after detaching it; "
                                      "detach it from other listeners, then run again") from None
                time.sleep(2.0)
            except Exception as err:  # noqa: BLE001
                raise DeployError(f"aws_elbv2: delete_certificate: {aws.describe_error(err)}") from None

    @staticmethod
    def _call(operation: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except DeployError:
            raise
        except Exception as err:  # noqa: BLE001 - botocore errors have no common importable base worth typing
            raise DeployError(f"aws_elbv2: {operation}: {aws.describe_error(err)}") from None


PLUGIN = TargetPlugin(KIND, AwsElbv2Settings, AwsElbv2Target)
