"""aws_elbv2: import the bundle into ACM and attach it to an ALB's HTTPS or an NLB's TLS listener, as its
default certificate or as an SNI certificate.

Renewal re-imports into the same CertificateArn, so every listener using it follows without a listener call.
A renewal that changes the key's type or size (which ACM refuses to re-import) is imported as a new certificate
and attached in the old one's place; the old one stays in ACM, `superseded`, until the new one is verified
(retire detaches and deletes it), so a rollback points the listener back at it.
Credentials come from the standard AWS chain only (env, profile, role), never from settings or state; clients
are created per call and retry throttling, bounded (core/aws.py). Removal detaches before it deletes from ACM,
and never leaves a listener without a certificate: a default certificate is swapped back to the one it replaced.

A deploy that fails says what it left (DeployFailed): nothing changed (it failed before touching the
listener, or the listener reads back as it was and the fresh import is deleted again), or the live facts of
what it did, so the rollback undoes that too. A rollback reads the listener back and raises, saying what is
live, unless the previous certificate is confirmed where it was.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from pydantic import model_validator

from .. import aws
from ..aws import AwsAccess
from ..errors import DeployError, DeployFailed, InvalidInputError
from ..validation import LOCATION, whole_number
from . import base
from ._acm import REPLACES_TAG, Acm
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
        try:  # nothing here changes what the listener serves (a re-import into the same ARN is one atomic call)
            self._resolve_listener()
            into, superseded = self.acm.reimport_into(previous, bundle)
            before = self._listener_certificates()
            ours = {a for a in (previous, into, superseded) if a}
            if previous is None:  # a first deploy: what a killed one attached goes once this one is verified
                orphans = self._orphans(binding, before, ours)
                if orphans:
                    binding = binding.with_live({**binding.live, "stale_arns": orphans})
            replaces = None if binding.sni else self._replaced_default(binding, before, ours)
            arn = self.acm.import_bundle(binding, bundle, into, replaces=replaces)
        except DeployError as err:
            raise DeployFailed(str(err), nothing_changed=True) from None
        if arn == into:  # renewed in place: the listener already follows, unless it drifted
            return self._attach(binding, arn, None, before)
        kept = {"arn": superseded, "is_default": before.get(superseded) is True} if superseded else None
        try:
            return self._attach(binding, arn, kept, before)
        except DeployError as err:
            raise self._failed_attach(binding, arn, kept, before, err) from None

    def _attach(self, binding: Binding, arn: str, superseded: dict[str, Any] | None,
                before: dict[str, bool]) -> dict[str, Any]:
        ours = {arn, *([superseded["arn"]] if superseded else [])}
        if binding.sni:
            replaced = binding.live.get("replaced_default_arn")
            default = next((a for a in ours if before.get(a) is True), None)
            if default:  # was the default: hand the default back first
                if not replaced:
                    raise DeployError(f"aws_elbv2: {default} is the default certificate of {self.listener_arn} and "
                                      "there is no earlier default to restore; bind another default certificate first")
                self._set_default(str(replaced))
                replaced = None
            self._ensure_sni({arn})
        else:
            replaced = self._replaced_default(binding, before, ours)
            if before.get(arn) is not True:
                self._set_default(arn)
        return self._live(binding, arn, replaced, superseded)

    def _failed_attach(self, binding: Binding, arn: str, superseded: dict[str, Any] | None,
                       before: dict[str, bool], err: DeployError) -> DeployFailed:
        """After a fresh import: read the listener back. Unchanged -> delete the import, nothing changed; else
        (or unreadable) -> the live facts of what is attached now, for the rollback."""
        ours = {arn, *([superseded["arn"]] if superseded else [])}
        replaced = binding.live.get("replaced_default_arn") if binding.sni else \
            self._replaced_default(binding, before, ours)
        partial = {**self._live(binding, arn, replaced, superseded), "listener_before": before}
        try:
            now = self._listener_certificates()
            if now != before:
                return DeployFailed(str(err), live=partial)
            self.acm.delete(arn)  # a fresh import that never got attached: do not leave it behind in ACM
        except DeployError:
            return DeployFailed(str(err), live=partial)
        return DeployFailed(str(err), nothing_changed=True)

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

    def rollback(self, binding: Binding, previous: Bundle | None) -> None:
        """Put back what the binding served before: remove a new binding; point the listener back at the
        certificate a re-keyed deploy superseded (still in ACM), then delete the new one; or re-import the
        previous bundle into the same ARN. Then read the listener back: unless the previous certificate is
        confirmed where it was, raise, saying what is live and what to do."""
        arn = str(binding.live.get("certificate_arn") or "")
        superseded = binding.live.get("superseded")
        # A deploy that failed part-way says what the listener held before it: SNI certificates a swap dropped
        # (moto drops them; AWS keeps them) go back too.
        others = {a for a, d in (binding.live.get("listener_before") or {}).items() if not d} - \
            {arn, *([superseded["arn"]] if superseded else [])}
        if previous is None:
            replaced = str(binding.live.get("replaced_default_arn") or "") if not binding.sni else ""
            try:
                self.remove(binding)
                self._ensure_sni(others)
            except DeployError as err:
                raise DeployError(f"{err}; {self._left(arn, replaced, True, err)}") from None
            self._confirm_others(others, arn, replaced)
            return
        if superseded:
            old, as_default = str(superseded["arn"]), bool(superseded.get("is_default"))
            try:
                self._point_back(binding, old, as_default)
                self._ensure_sni(others)
            except DeployError as err:
                raise DeployError(f"{err}; {self._left(arn, old, as_default, err)}") from None
            self._confirm(old, as_default, previous, arn)
            self._confirm_others(others, arn, old)
            with contextlib.suppress(DeployError):  # detached, unused: clutter in ACM, not a served certificate
                self._detach_and_delete(arn)
            return
        try:
            restored = self.deploy(binding, previous)
        except DeployError as err:
            raise DeployError(f"{err}; {self._left(arn, arn, not binding.sni, err)}") from None
        self._confirm(str(restored["certificate_arn"]), not binding.sni, previous, arn)
        if restored.get("superseded"):  # the ARN was gone and the previous key differs: what it imported instead
            with contextlib.suppress(DeployError):
                self._detach_and_delete(str(restored["superseded"]["arn"]))

    def retire(self, binding: Binding) -> dict[str, Any]:
        """Detach and delete what the verified deploy superseded (and what was left from before); what cannot
        be deleted yet stays listed in `stale_arns`, for the next deploy or the removal."""
        live = dict(binding.live)
        arn = live.get("certificate_arn")
        left = []
        for old in [*(live.get("stale_arns") or []), *([live["superseded"]["arn"]] if live.get("superseded") else [])]:
            if old and old != arn and old not in left:
                try:
                    self._detach_and_delete(str(old))
                except DeployError:
                    left.append(old)
        return {**live, "superseded": None, "stale_arns": left}

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
        self._detach_and_delete(arn)
        self.retire(binding)  # whatever an unverified or interrupted deploy left in ACM

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

    def _detach_and_delete(self, arn: str) -> None:
        """Detach `arn` where it is an SNI certificate, read the listener back, then delete it from ACM. Never
        detaches a default certificate (the caller swaps it first)."""
        attached = self._listener_certificates()
        if attached.get(arn) is False:
            _call("remove_listener_certificates", lambda: self._elb().remove_listener_certificates(
                ListenerArn=self.listener_arn, Certificates=[{"CertificateArn": arn}]))
            attached = self._listener_certificates()
        if arn in attached:
            raise DeployError(f"aws_elbv2: {arn} is still attached to {self.listener_arn}; not deleting it from ACM")
        self.acm.delete(arn)

    def _point_back(self, binding: Binding, old: str, as_default: bool) -> None:
        """The certificate a re-keyed deploy superseded goes back where it was; the new one comes off."""
        new = str(binding.live.get("certificate_arn") or "")
        attached = self._listener_certificates()
        if as_default:
            if attached.get(old) is not True:
                self._set_default(old)
        else:
            if attached.get(new) is True:  # the new one took the default from someone else's: give it back
                replaced = binding.live.get("replaced_default_arn")
                if not replaced:
                    raise DeployError(f"aws_elbv2: {new} is the default certificate of {self.listener_arn} and there "
                                      "is no earlier default to restore")
                self._set_default(str(replaced))
            self._ensure_sni({old})
        if self._listener_certificates().get(new) is False:
            _call("remove_listener_certificates", lambda: self._elb().remove_listener_certificates(
                ListenerArn=self.listener_arn, Certificates=[{"CertificateArn": new}]))

    def _confirm(self, old: str, as_default: bool, previous: Bundle, new: str) -> None:
        """Read back that the listener holds `old` (the previous certificate) where it was, and not `new`, and
        that ACM holds the previous certificate at `old`; else raise, saying what is live and what to do."""
        try:
            attached = self._listener_certificates()
        except DeployError as err:
            raise DeployError(self._unconfirmed(None, new, old, as_default, err)) from None
        if attached.get(old) is not as_default or (new != old and new in attached):
            raise DeployError(self._unconfirmed(attached, new, old, as_default))
        try:
            got = self.acm.fingerprint(old)
        except DeployError as err:
            raise DeployError(f"{err}: the rollback put {old} back on listener {self.listener_arn}, but what ACM "
                              "holds there could not be read back; run `pulumi up` again") from None
        if got != previous.fingerprint_sha256:
            raise DeployError(f"aws_elbv2: after the rollback, ACM {old} holds {got or 'no certificate'}, not the "
                              f"previous certificate {previous.fingerprint_sha256}; run `pulumi up` again")

    def _confirm_others(self, others: set[str], new: str, old: str) -> None:
        """Read back that the SNI certificates the listener had before (other bindings') are attached again."""
        if not others:
            return
        try:
            attached = self._listener_certificates()
        except DeployError as err:
            raise DeployError(self._unconfirmed(None, new, old, True, err)) from None
        missing = sorted(a for a in others if a not in attached)
        if missing:
            raise DeployError(f"aws_elbv2: after the rollback, listener {self.listener_arn} lacks the SNI certificates "
                              f"{', '.join(missing)} it had before: add them back by hand "
                              "(aws elbv2 add-listener-certificates), or run `pulumi up` again")

    def _left(self, new: str, old: str, as_default: bool, failure: DeployError) -> str:
        """What the listener holds now and what to do, for a rollback that failed (`failure`) before it could put
        `old` back."""
        try:
            return self._unconfirmed(self._listener_certificates(), new, old, as_default)
        except DeployError as err:
            return self._unconfirmed(None, new, old, as_default, None if str(err) == str(failure) else err)

    def _unconfirmed(self, attached: dict[str, bool] | None, new: str, old: str, as_default: bool,
                     err: DeployError | None = None) -> str:
        """One line: what the listener holds after a rollback that could not confirm `old` is back where it was
        (`old` "" when a new binding was being removed: then only `new` must be gone), and what to do."""
        role = "default" if as_default else "SNI"
        wanted = (f"{old} as its {role} certificate" + (f", and not certplane's new {new}" if new != old else "")
                  if old else f"none of certplane's new {new}")
        if attached is None:
            why = f" ({err})" if err else ""
            return (f"aws_elbv2: what listener {self.listener_arn} holds after the rollback could not be read "
                    f"back{why}: check that it holds {wanted}, then run `pulumi up` again")

        def named(a: str) -> str:
            return f"{a} (certplane's new certificate)" if a == new and a != old else a

        default = next((a for a, d in attached.items() if d), None)
        holds = f"default {named(default) if default else 'none'}"
        sni = sorted(a for a, d in attached.items() if not d)
        if sni:
            holds += f", SNI {', '.join(named(a) for a in sni)}"
        return (f"aws_elbv2: after the rollback, listener {self.listener_arn} holds {holds}, not {wanted}: put it "
                "back by hand (aws elbv2 modify-listener, add- or remove-listener-certificates), or run `pulumi up` "
                "again")

    def _replaced_default(self, binding: Binding, before: dict[str, bool], ours: set[str]) -> str | None:
        """The default certificate a default binding replaced (kept for removal): from state, else the one the
        listener had before, unless that was certplane's own. A default this binding imported in a deploy that
        was killed before state recorded it (tagged with this binding) is not the listener's own: the one it
        replaced (its `certplane:replaces` tag) is."""
        replaced = binding.live.get("replaced_default_arn")
        if replaced:
            return str(replaced)
        default = next((a for a, d in before.items() if d), None)
        if not default or default in ours:
            return None
        tags = self.acm.binding_tags(default)
        if tags.get("certplane:binding") == binding.binding_id:
            return tags.get(REPLACES_TAG) or None
        return default

    def _orphans(self, binding: Binding, before: dict[str, bool], ours: set[str]) -> list[str]:
        """Imports of this binding attached to the listener that state does not know (a killed deploy's)."""
        return [a for a in before if a not in ours and a not in (binding.live.get("stale_arns") or [])
                and self.acm.binding_tags(a).get("certplane:binding") == binding.binding_id]

    def _live(self, binding: Binding, arn: str, replaced: Any, superseded: dict[str, Any] | None) -> dict[str, Any]:
        left = [a for a in [*(binding.live.get("stale_arns") or []),
                            *([binding.live["superseded"]["arn"]] if binding.live.get("superseded") else [])]
                if a and a != arn]
        return {"certificate_arn": arn, "listener_arn": self.listener_arn, "region": self.region,
                "is_default": not binding.sni, "replaced_default_arn": replaced, "superseded": superseded,
                "stale_arns": sorted(set(left))}


def _terminates_tls(listener: Any, label: str) -> None:
    if listener.get("Protocol") not in _TERMINATES_TLS:
        raise DeployError(f"aws_elbv2: {label} is {listener.get('Protocol')}: certificates go on an ALB's HTTPS or "
                          "an NLB's TLS listener")


def _call(operation: str, fn: Callable[[], T]) -> T:
    return aws.call(KIND, operation, fn)


PLUGIN = TargetPlugin(KIND, AwsElbv2Settings, AwsElbv2Target)
