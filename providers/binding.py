"""CertificateBinding: one certificate served at one deploy target (nginx, files, an AWS or Alibaba listener).

create = deploy + verify (rolled back if verify fails); update = redeploy in place (renewal, drift, settings),
rolled back to the previous bundle from state if verify fails; delete = remove; read (`pulumi refresh`) =
observe what is live, so the next `pulumi up` sees drift and redeploys. The work is in providers/core/deploy;
which settings move a binding elsewhere (a replacement) is what the target's settings model marks LOCATION.

The previous private key stays in state (encrypted) because rollback needs it; a key kept out of state
(`key_storage`) is named by its reference instead, and read from its store when a deploy or a rollback needs it
(the store keeps the previous key: providers/_custody.py).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import pulumi
from pulumi.dynamic import CheckResult, DiffResult
from pydantic import PrivateAttr, ValidationInfo, model_validator

from . import _custody, _legacy
from ._dynamic import CertplaneProvider, CertplaneResource, PlannedDiff, Stored, note
from ._wire import Unknown, is_unknown, known
from .core import certificates as x509util
from .core import clock, deploy, keys
from .core.audit import AuditContext, Event
from .core.deploy import Binding, Bundle, DeployTarget, RetiresReplaced, TargetSettings
from .core.errors import CertplaneError, DeployError, DeployFailed, InvalidInputError
from .core.validation import SECRET, Model, State

Pending = Annotated[str | Unknown | None, SECRET]
REPLACE_FIELDS = ("certificate", "target", "target_type")  # a new binding id or kind of target lives elsewhere


def binding_id(certificate: str, target: str) -> str:
    """Stable and filesystem-safe: `www--edge`."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", f"{certificate}--{target}").strip("-.") or "binding"


class BindingInputs(Model):
    certificate: str
    target: str
    target_type: str
    target_settings: dict[str, Any] = {}
    server_names: tuple[str, ...] | Unknown = ()
    sni: bool = False
    cert_pem: str | Unknown | None = None
    chain_pem: str | Unknown | None = None
    private_key_pem: Pending = None
    private_key_ref: str | Unknown | None = None  # the key in `key_storage`, when it is kept out of state
    key_storage: dict[str, Any] | None = None
    keystore_password: Pending = None  # for the PKCS#12/JKS files a target writes
    audit: AuditContext | None = None

    _settings: Any = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _target(self, info: ValidationInfo) -> BindingInputs:
        try:
            self._settings = deploy.parse_settings(self.target_type, self.target_settings, context=info.context)
        except InvalidInputError as err:
            raise InvalidInputError("target_type" if err.field == "type" else f"target_settings.{err.field}",
                                    err.reason) from None
        return self

    @property
    def settings(self) -> TargetSettings:
        return self._settings  # type: ignore[no-any-return]

    @property
    def binding_id(self) -> str:
        return binding_id(self.certificate, self.target)

    def binding(self, live: Mapping[str, Any] | None = None) -> Binding:
        return Binding(self.binding_id, tuple(known(self.server_names)), self.sni, dict(live or {}))

    def bundle(self) -> Bundle | None:
        """What this binding serves, its key read from where it is kept (a store is read only here: a deploy or
        a rollback, never a preview)."""
        ref = known(self.private_key_ref)
        if not self.cert_pem or not (self.private_key_pem or ref):
            return None
        key_pem = known(self.private_key_pem)
        if not key_pem:
            key = _custody.load(_custody.settings_of(self.key_storage), None, ref)
            key_pem = keys.private_key_to_pem(key)
        return Bundle.from_pems(self.certificate, known(self.cert_pem), known(self.chain_pem) or "",
                                key_pem, known(self.keystore_password) or None)


class BindingOutputs(State):
    binding_id: str | None = None
    live: dict[str, Any] | None = None
    verified_at: str | None = None
    live_fingerprints: dict[str, str | None] | None = None
    fingerprint_sha256: str | None = None  # of the certificate deployed


Olds = Stored[BindingInputs, BindingOutputs]


class CertificateBindingProvider(CertplaneProvider[BindingInputs, BindingOutputs]):
    inputs = BindingInputs
    outputs = BindingOutputs
    noun = "a certificate binding"
    actions = {"create": "deploying a certificate", "update": "redeploying a certificate",
               "delete": "removing a certificate binding", "read": "reading a certificate binding"}

    def legacy(self, raw: dict[str, Any]) -> dict[str, Any]:
        return _legacy.binding(raw)

    def subject(self, raw: Mapping[str, Any]) -> str:
        return f"binding {binding_id(str(raw.get('certificate')), str(raw.get('target')))}"

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        result = super().check(olds, news)
        label = f"binding {binding_id(str(news.get('certificate')), str(news.get('target')))}"
        for failure in result.failures:
            failure.reason = f"{label}: {failure.reason}"
        return result

    def validate(self, inputs: BindingInputs, olds: Mapping[str, Any]) -> None:
        target = deploy.build(inputs.settings)
        if not isinstance(inputs.server_names, Unknown):
            target.check_binding(inputs.binding())
        _custody.settings_of(inputs.key_storage)
        if isinstance(inputs.cert_pem, str) and inputs.cert_pem and inputs.private_key_pem is None \
                and inputs.private_key_ref is None:
            raise InvalidInputError("private_key_pem", "a binding needs the certificate's key (or its "
                                                       "private_key_ref in key_storage)")
        if isinstance(inputs.cert_pem, str) and inputs.cert_pem and isinstance(inputs.private_key_pem, str):
            certs = x509util.load_certificates(inputs.cert_pem)
            if not certs:
                raise InvalidInputError("cert_pem", "is not a PEM certificate")
            try:
                key = keys.load_private_key(inputs.private_key_pem or "")
            except InvalidInputError as err:
                raise InvalidInputError("private_key_pem", err.reason) from None
            try:
                x509util.check_key_pair(key, certs[0])
            except InvalidInputError as err:
                raise err.within("private_key_pem") from None

    def create_typed(self, inputs: BindingInputs) -> tuple[str, BindingOutputs]:
        target, bundle = deploy.build(inputs.settings), _required_bundle(inputs)
        binding = inputs.binding()
        live = _deploy_verified(target, binding, bundle, None)
        return f"{binding.binding_id}-{uuid.uuid4().hex[:8]}", _outputs(inputs, bundle, live,
                                                                          _observed(target, binding.with_live(live)))

    def diff_typed(self, _id: str, olds: Olds, news: BindingInputs) -> DiffResult:
        replaces = [f for f in REPLACE_FIELDS if getattr(olds.inputs, f) != getattr(news, f)]
        if news.target_type != olds.inputs.target_type or \
                deploy.location_of(olds.inputs.settings) != deploy.location_of(news.settings):
            replaces.append("target_settings")  # the binding lives somewhere else now
        changes = _redeploying(olds, news)
        drifted = drift(news.binding_id, olds.outputs) if not replaces else []
        for line in drifted:
            note(line)
        if "cert_pem" in changes and not replaces:
            note(f"binding {news.binding_id}: deploying {news.certificate}'s new certificate to {news.target} "
                 f"({news.target_type})")
        elif replaces:
            note(f"binding {news.binding_id}: moving {news.certificate}'s certificate to {news.target} "
                 f"({news.target_type}): {', '.join(replaces)} changed")
        if is_unknown(news.cert_pem):  # the certificate updates: its chain and password come with it, as one change
            changes = [c for c in changes if not (c in ("chain_pem", "keystore_password")
                                                  and is_unknown(getattr(news, c)))]
        details = {name: "update" for name in [*replaces, *changes]}
        if drifted:
            details["live_fingerprints"] = "update"  # what is live is not what was deployed: redeploy
        if not details and _custody_moved(olds, news):
            note(f"binding {news.binding_id}: {news.certificate}'s key is kept elsewhere now (the same key: "
                 "nothing to redeploy)")
            details["private_key_ref"] = "update"
        return PlannedDiff(details=details, replaces=replaces)

    def update_typed(self, _id: str, olds: Olds, news: BindingInputs) -> BindingOutputs:
        if not _redeploying(olds, news) and not drift(news.binding_id, olds.outputs):
            return olds.outputs  # only where the key is kept changed: state now names it, nothing is deployed
        target, bundle = deploy.build(news.settings), _required_bundle(news)
        binding = news.binding(olds.outputs.live)
        live = _deploy_verified(target, binding, bundle, olds.inputs.bundle)
        return _outputs(news, bundle, live, _observed(target, binding.with_live(live)))

    def read_typed(self, _id: str, olds: Olds) -> BindingOutputs:
        observed = deploy.build(olds.inputs.settings).observe(olds.inputs.binding(olds.outputs.live))
        outputs = olds.outputs.model_copy(update={"live_fingerprints": _kept(observed)})
        for line in drift(olds.inputs.binding_id, outputs):
            note(line.replace("; redeploying", "; the next `pulumi up` redeploys it"))
        return outputs

    def delete_typed(self, _id: str, olds: Olds) -> None:
        deploy.build(olds.inputs.settings).remove(olds.inputs.binding(olds.outputs.live))

    def audit_event(self, verb: str, inputs: BindingInputs, olds: Olds | None, outputs: BindingOutputs | None,
                    done: str | None) -> Event:
        """A deploy writes key material to the target: each one is recorded, with the certificate it served."""
        pem = inputs.cert_pem if isinstance(inputs.cert_pem, str) else None
        leaf = next(iter(x509util.load_certificates(pem)), None) if pem else None
        return Event(f"binding {inputs.binding_id}", "remove" if verb == "delete" else "deploy",
                     serial=x509util.serial_hex(leaf) if leaf else None,
                     fingerprint=x509util.fingerprint_sha256(leaf) if leaf else None,
                     target=f"{inputs.target} ({inputs.target_type})")


def _redeploying(olds: Olds, news: BindingInputs) -> list[str]:
    """The inputs whose change means a deploy (a new certificate, other names, other settings)."""
    changes = [f for f in ("cert_pem", "chain_pem", "sni", "keystore_password")
               if is_unknown(getattr(news, f)) or getattr(olds.inputs, f) != getattr(news, f)]
    if is_unknown(news.server_names) or sorted(olds.inputs.server_names) != sorted(news.server_names):  # type: ignore[arg-type]
        changes.append("server_names")  # a set of names: their order serves nothing
    if olds.inputs.settings != news.settings:
        changes.append("target_settings")
    return changes


def _custody_moved(olds: Olds, news: BindingInputs) -> bool:
    """The same key, kept elsewhere: state must stop holding it (or start naming it), with no deploy."""
    return (olds.inputs.private_key_pem is None) != (news.private_key_pem is None) \
        or olds.inputs.key_storage != news.key_storage or olds.inputs.private_key_ref != news.private_key_ref


def _required_bundle(inputs: BindingInputs) -> Bundle:
    bundle = inputs.bundle()
    if bundle is None:
        raise InvalidInputError(f"binding {inputs.binding_id}: cert_pem", "a binding needs a certificate and its key")
    return bundle


def _outputs(inputs: BindingInputs, bundle: Bundle, live: dict[str, Any],
             fingerprints: dict[str, str | None]) -> BindingOutputs:
    return BindingOutputs(binding_id=inputs.binding_id, live=live, verified_at=clock.rfc3339(clock.real_now()),
                          live_fingerprints=_kept(fingerprints), fingerprint_sha256=bundle.fingerprint_sha256)


SERVES_NOTHING = ""  # what state records where no certificate is served


def _kept(observed: Mapping[str, str | None]) -> dict[str, str | None]:
    """What state keeps of an observation. The engine drops null values inside maps before it sends state back
    to the provider, so "nothing is served here" (None) would vanish and no drift would ever be seen: it is
    kept as SERVES_NOTHING."""
    return {name: SERVES_NOTHING if got is None else got for name, got in observed.items()}


def drift(binding: str, outputs: BindingOutputs) -> list[str]:
    """One line per server name whose live certificate is not the one deployed (as of the last refresh)."""
    expected = outputs.fingerprint_sha256
    return [f"binding {binding}: {name} serves {_short(got) if got else 'no certificate'} (SHA-256), expected "
            f"{_short(expected)}; redeploying"
            for name, got in sorted((outputs.live_fingerprints or {}).items()) if got != expected]


def _short(fingerprint: Any) -> str:
    """The first 8 bytes of a fingerprint: enough to tell certificates apart in a one-line message."""
    text = str(fingerprint or "")
    return text[:23] + "…" if len(text) > 23 else text


def _observed(target: DeployTarget, binding: Binding) -> dict[str, str | None]:
    """What is live right after a verified deploy, for drift. A target that cannot be read now must not fail the
    deploy: state would then keep the ids of what the deploy already replaced. `refresh` reads it again."""
    try:
        return target.observe(binding)
    except DeployError as err:
        note(f"binding {binding.binding_id}: deployed and verified, but reading it back failed ({err}); "
             "`pulumi refresh` reads it again")
        return {}


def _deploy_verified(target: DeployTarget, binding: Binding, bundle: Bundle,
                     previous_bundle: Bundle | Callable[[], Bundle | None] | None) -> dict[str, Any]:
    """Deploy and verify; on any failure put the previous bundle back (or remove a new binding) and say so in one
    line. The previous bundle is read only for a rollback (its key may be in a store: read it only when needed).

    A failed deploy may say what it left, as attributes of its DeployError (core/errors.py DeployFailed):
    `nothing_changed` (it failed before changing anything, or undid what it did: nothing is rolled back, and the
    message says so), or `live` (the live facts of what it did change, so the rollback undoes that too). A
    target's rollback raises when it cannot confirm what it put back, so "restored" is only said when it did."""
    live: dict[str, Any] = dict(binding.live)
    try:
        live = target.deploy(binding, bundle)
        target.verify(binding.with_live(live), bundle)
    except DeployError as err:
        if isinstance(err, DeployFailed) and err.nothing_changed:
            raise DeployError(f"{err} (nothing was changed)") from None
        if isinstance(err, DeployFailed) and err.live is not None:
            live = dict(err.live)
        try:
            previous = previous_bundle() if callable(previous_bundle) else previous_bundle
            target.rollback(binding.with_live(live), previous)
        except CertplaneError as again:
            raise DeployError(f"{err}; rollback failed too: {again}") from None
        raise DeployError(f"{err} ({'previous certificate restored' if previous else 'rolled back'})") from None
    if isinstance(target, RetiresReplaced):  # the new certificate is verified: what it replaced can go
        live = target.retire(binding.with_live(live))
    return live


class CertificateBinding(CertplaneResource, module="certplane", name="CertificateBinding"):
    """One certificate served at one target. Inputs: BindingInputs; outputs: BindingOutputs."""

    provider = CertificateBindingProvider

    binding_id: pulumi.Output[str]
    live: pulumi.Output[dict[str, Any]]
    live_fingerprints: pulumi.Output[dict[str, Any]]
    verified_at: pulumi.Output[str]
    fingerprint_sha256: pulumi.Output[str]

    def __init__(self, name: str, *, opts: pulumi.ResourceOptions | None = None, **props: Any) -> None:
        super().__init__(name, props, opts)
