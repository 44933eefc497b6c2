"""aws_elbv2: import the bundle into ACM and attach it to an ALB's HTTPS or an NLB's TLS listener, as its
default certificate or as an SNI certificate.

Renewal re-imports into the same CertificateArn, so every listener using it follows without a listener call.
Credentials come from the standard AWS chain only (env, profile, role), never from settings or state; clients
are created per call. Removal detaches before it deletes from ACM, and never leaves a listener without a
certificate: a default certificate is swapped back to the one it replaced.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from pydantic import model_validator

from .. import aws
from ..aws import AwsAccess
from ..errors import DeployError, InvalidInputError
from ..validation import LOCATION, whole_number
from . import base
from ._acm import Acm
from .base import DEFAULT, Binding, Bundle, TargetPlugin, TargetSettings

if TYPE_CHECKING:
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client

KIND = "aws_elbv2"
_LISTENER_ARN = re.compile(r"^arn:aws[a-z-]*:elasticloadbalancing:(?P<region>[a-z0-9-]+):\d{12}:listener/.+")
T = TypeVar("T")
_TERMINATES_TLS = ("HTTPS", "TLS")


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
        self.acm = Acm(settings, KIND)

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
        listeners = _call("describe_listeners", lambda: elb.describe_listeners(
            LoadBalancerArn=lbs[0]["LoadBalancerArn"]))["Listeners"]
        for listener in listeners:
            if listener.get("Port") == self.listener_port:
                _terminates_tls(listener, f"the listener on port {self.listener_port} of {self.load_balancer_name}")
                return str(listener["ListenerArn"])
        raise DeployError(f"aws_elbv2: load balancer {self.load_balancer_name} has no listener on port "
                          f"{self.listener_port}")

    def _resolve_listener(self) -> None:
        """Before a deploy imports anything: find the listener, and check that it terminates TLS (one named by
        its ARN is looked up for that)."""
        if self.load_balancer_name is not None:
            _ = self.listener_arn
        else:
            elb = self._elb()
            found = _call("describe_listeners", lambda: elb.describe_listeners(ListenerArns=[self.listener_arn]))
            for listener in found.get("Listeners", []):
                _terminates_tls(listener, f"listener {self.listener_arn}")

    # --- clients, created per call ----------------------------------------------------------------------------

    def _elb(self) -> ElasticLoadBalancingv2Client:
        return _call("session", lambda: aws.client(self.access, "elbv2"))  # type: ignore[no-any-return]

    def check_binding(self, binding: Binding) -> None:
        return None

    # --- the verbs -------------------------------------------------------------------------------------------

    def deploy(self, binding: Binding, bundle: Bundle) -> dict[str, Any]:
        previous = str(binding.live.get("certificate_arn") or "") or None
        self._resolve_listener()
        arn = self.acm.import_bundle(binding, bundle, previous)
        try:
            return self._attach(binding, arn)
        except DeployError:
            if arn != previous:  # a fresh import that never got attached: do not leave it behind in ACM
                with contextlib.suppress(DeployError):
                    self.acm.delete(arn)
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
        got = self.acm.fingerprint(arn)
        if got != bundle.fingerprint_sha256:
            raise DeployError(f"aws_elbv2: ACM {arn} holds {got or 'no certificate'}, expected {bundle.fingerprint_sha256}")

    def observe(self, binding: Binding) -> dict[str, str | None]:
        arn = str(binding.live.get("certificate_arn") or "")
        attached = self._listener_certificates()
        if binding.sni:
            return {DEFAULT: self.acm.fingerprint(arn) if arn in attached else None}
        default = next((a for a, is_default in attached.items() if is_default), None)
        return {DEFAULT: self.acm.fingerprint(default) if default else None}

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
            _call("remove_listener_certificates", lambda: self._elb().remove_listener_certificates(
                ListenerArn=self.listener_arn, Certificates=[{"CertificateArn": arn}]))
        if arn in self._listener_certificates():
            raise DeployError(f"aws_elbv2: {arn} is still attached to {self.listener_arn}; not deleting it from ACM")
        self.acm.delete(arn)

    # --- mechanics ------------------------------------------------------------------------------------------

    def _listener_certificates(self) -> dict[str, bool]:
        """ARN -> IsDefault, across all pages."""
        elb = self._elb()
        out: dict[str, bool] = {}
        marker: str | None = None
        for _ in range(100):  # bounded: 100 pages is far beyond the 25-certificate listener quota
            page = _call("describe_listener_certificates", lambda: (
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
        _call("modify_listener", lambda: self._elb().modify_listener(
            ListenerArn=self.listener_arn, Certificates=[{"CertificateArn": arn}]))
        self._ensure_sni(before - {arn})

    def _ensure_sni(self, arns: set[str]) -> None:
        missing = sorted(a for a in arns if a not in self._listener_certificates())
        if missing:
            _call("add_listener_certificates", lambda: self._elb().add_listener_certificates(
                ListenerArn=self.listener_arn, Certificates=[{"CertificateArn": a} for a in missing]))

def _terminates_tls(listener: Any, label: str) -> None:
    if listener.get("Protocol") not in _TERMINATES_TLS:
        raise DeployError(f"aws_elbv2: {label} is {listener.get('Protocol')}: certificates go on an ALB's HTTPS or "
                          "an NLB's TLS listener")


def _call(operation: str, fn: Callable[[], T]) -> T:
    return aws.call(KIND, operation, fn)


PLUGIN = TargetPlugin(KIND, AwsElbv2Settings, AwsElbv2Target)
