"""CertificateBinding: one certificate served at one deploy target (nginx, files, an AWS or Alibaba listener).

create = deploy + verify (rolled back if verify fails); update = redeploy in place (renewal, drift, settings),
rolled back to the previous bundle from state if verify fails; delete = remove; read (`pulumi refresh`) =
observe what is live, so the next `pulumi up` sees drift and redeploys. The work is in providers/core/deploy.

The previous private key stays in state (encrypted, `additional_secret_outputs`) because rollback needs it.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, UpdateResult

from ._dynamic import CertplaneProvider, is_unknown, note, user_facing, without_provider
from .core import certificates as x509util
from .core import keys
from .core import renewal
from .core.deploy import LOCATION_SETTINGS, Binding, Bundle, DeployTarget, get_target
from .core.errors import DeployError, InvalidInputError

INPUTS = ("certificate", "target", "target_type", "target_settings", "server_names", "sni", "cert_pem", "chain_pem",
          "private_key_pem", "fingerprint_sha256", "keystore_password")
SECRET_OUTPUTS = ["private_key_pem", "keystore_password"]
UPDATE_FIELDS = ("fingerprint_sha256", "cert_pem", "chain_pem", "server_names", "sni", "target_settings",
                 "keystore_password")  # a new password re-renders the PKCS#12/JKS files a target writes
# A new binding_id or kind of target lives elsewhere: create it, then delete the old one.
REPLACE_FIELDS = ("certificate", "target", "target_type")


def binding_id(certificate: str, target: str) -> str:
    """Stable and filesystem-safe: `www--edge`."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", f"{certificate}--{target}").strip("-.") or "binding"


def _target(props: dict[str, Any]) -> DeployTarget:
    try:
        return get_target(str(props.get("target_type") or ""), dict(props.get("target_settings") or {}))
    except InvalidInputError as err:
        field = "target_type" if err.field == "type" else f"target_settings.{err.field}"
        raise InvalidInputError(f"{_label(props)}: {field}", err.reason) from None


def _label(props: dict[str, Any]) -> str:
    return f"binding {binding_id(str(props.get('certificate')), str(props.get('target')))}"


def _binding(props: dict[str, Any], live: dict[str, Any] | None = None) -> Binding:
    return Binding(binding_id(str(props.get("certificate")), str(props.get("target"))),
                   tuple(props.get("server_names") or ()), bool(props.get("sni")), dict(live or {}))


def _bundle(props: dict[str, Any]) -> Bundle | None:
    if not props.get("cert_pem") or not props.get("private_key_pem"):
        return None
    return Bundle.from_pems(str(props.get("certificate")), props["cert_pem"], props.get("chain_pem") or "",
                            props["private_key_pem"], props.get("keystore_password") or None)


def _outputs(props: dict[str, Any], live: dict[str, Any], fingerprints: dict[str, str | None]) -> dict[str, Any]:
    return {**without_provider(props), "binding_id": _binding(props).binding_id, "live": live,
            "verified_at": x509util.rfc3339(renewal.now()), "live_fingerprints": fingerprints}


def drift(props: dict[str, Any]) -> list[str]:
    """One line per server name whose live certificate is not the one expected (from the last refresh)."""
    expected = props.get("fingerprint_sha256")
    return [f"{_label(props)}: {name} serves {_short(got) if got else 'no certificate'} (SHA-256), expected "
            f"{_short(expected)}; redeploying"
            for name, got in sorted((props.get("live_fingerprints") or {}).items()) if got != expected]


def _short(fingerprint: Any) -> str:
    """The first 8 bytes of a fingerprint: enough to tell certificates apart in a one-line message."""
    text = str(fingerprint or "")
    return text[:23] + "…" if len(text) > 23 else text


def _deploy_verified(target: DeployTarget, binding: Binding, bundle: Bundle, previous: Bundle | None) -> dict[str, Any]:
    """Deploy and verify; on any failure put `previous` back (or remove a new binding) and say so in one line."""
    live: dict[str, Any] = dict(binding.live)
    try:
        live = target.deploy(binding, bundle)
        target.verify(binding.with_live(live), bundle)
        return live
    except DeployError as err:
        try:
            target.rollback(binding.with_live(live), previous)
        except DeployError as again:
            raise DeployError(f"{err}; rollback failed too: {again}") from None
        raise DeployError(f"{err} ({'previous certificate restored' if previous else 'rolled back'})") from None


class CertificateBindingProvider(CertplaneProvider):
    def validate(self, news: dict[str, Any]) -> dict[str, Any]:
        if not is_unknown([news.get("target_type"), news.get("target_settings")]):
            target = _target(news)
            if not is_unknown([news.get("server_names"), news.get("certificate"), news.get("target")]):
                try:
                    target.check_binding(_binding(news))
                except InvalidInputError as err:
                    raise InvalidInputError(f"{_label(news)}: {err.field}", err.reason) from None
        if not is_unknown([news.get("cert_pem"), news.get("private_key_pem")]) and news.get("cert_pem"):
            certs = x509util.load_certificates(news["cert_pem"])
            if not certs:
                raise InvalidInputError(f"{_label(news)}: cert_pem", "is not a PEM certificate")
            try:
                key = keys.load_private_key(news.get("private_key_pem") or "")
            except InvalidInputError as err:
                raise InvalidInputError(f"{_label(news)}: private_key_pem", err.reason) from None
            if keys.public_key_fingerprint_sha256(key) != keys.public_key_fingerprint_sha256(
                    certs[0].public_key()):  # type: ignore[arg-type]
                raise InvalidInputError(f"{_label(news)}: private_key_pem", "does not match the certificate")
        return news

    @user_facing("deploying a certificate")
    def create(self, props: dict[str, Any]) -> CreateResult:
        target, bundle = _target(props), _bundle(props)
        if bundle is None:
            raise InvalidInputError(f"{_label(props)}: cert_pem", "a binding needs a certificate and its key")
        binding = _binding(props)
        live = _deploy_verified(target, binding, bundle, None)
        outs = _outputs(props, live, target.observe(binding.with_live(live)))
        return CreateResult(f"{binding.binding_id}-{uuid.uuid4().hex[:8]}", outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [f for f in REPLACE_FIELDS if is_unknown(news.get(f)) or olds.get(f) != news.get(f)]
        kind = news.get("target_type")
        old_settings, new_settings = olds.get("target_settings") or {}, news.get("target_settings") or {}
        if is_unknown(new_settings) or any(old_settings.get(k) != new_settings.get(k)
                                           for k in LOCATION_SETTINGS.get(str(kind), ())):
            replaces.append("target_settings")
        changes = [f for f in UPDATE_FIELDS if is_unknown(news.get(f)) or olds.get(f) != news.get(f)]
        drifted = drift(olds) if not replaces else []
        for line in drifted:
            note(line)
        if "fingerprint_sha256" in changes and not replaces:
            note(f"{_label(news)}: deploying the new certificate to {news.get('target')}")
        return DiffResult(changes=bool(replaces or changes or drifted), replaces=replaces,
                          delete_before_replace=False)

    @user_facing("redeploying a certificate")
    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        target, bundle = _target(news), _bundle(news)
        if bundle is None:
            raise InvalidInputError(f"{_label(news)}: cert_pem", "a binding needs a certificate and its key")
        binding = _binding(news, olds.get("live"))
        live = _deploy_verified(target, binding, bundle, _bundle(olds))
        return UpdateResult(_outputs(news, live, target.observe(binding.with_live(live))))

    @user_facing("removing a certificate binding")
    def delete(self, _id: str, props: dict[str, Any]) -> None:
        _target(props).remove(_binding(props, props.get("live")))

    @user_facing("reading a certificate binding")
    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        observed = _target(props).observe(_binding(props, props.get("live")))
        outs = {**props, "live_fingerprints": observed}
        for line in drift(outs):
            note(line.replace("; redeploying", "; the next `pulumi up` redeploys it"))
        return ReadResult(id_, outs)


class CertificateBinding(Resource):
    """One certificate served at one target. Inputs: certificate, target (names), target_type, target_settings,
    server_names, sni, cert_pem, chain_pem, private_key_pem (secret), fingerprint_sha256, keystore_password."""

    binding_id: pulumi.Output[str]
    live: pulumi.Output[dict[str, Any]]
    live_fingerprints: pulumi.Output[dict[str, Any]]
    verified_at: pulumi.Output[str]
    fingerprint_sha256: pulumi.Output[str]

    def __init__(self, name: str, *, opts: pulumi.ResourceOptions | None = None, **props: Any) -> None:
        base: dict[str, Any] = {f: None for f in INPUTS}
        base.update({"server_names": [], "sni": False, "target_settings": {}})
        outputs = {"binding_id": None, "live": None, "verified_at": None, "live_fingerprints": None}
        secret = pulumi.ResourceOptions(additional_secret_outputs=SECRET_OUTPUTS)
        super().__init__(CertificateBindingProvider(), name, {**base, **outputs, **props},
                         pulumi.ResourceOptions.merge(secret, opts))
