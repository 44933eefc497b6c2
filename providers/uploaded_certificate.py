"""UploadedCertificate: a third-party certificate (leaf + chain + key) validated at preview, then rendered
in every format like the certificates certplane issues itself."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, UpdateResult

from . import _issued
from ._dynamic import CertplaneProvider, failure, is_unknown, user_facing
from .core import bundles, formats, renewal
from .core import certificates as x509util
from .core.errors import BundleError, CertplaneError

INPUT_FIELDS = ("certificate_pem", "chain_pem", "private_key_pem", "passphrase")
OUTPUTS = (*_issued.OUTPUTS, "input_private_key_pem")
SECRET_OUTPUTS = [*_issued.SECRET_OUTPUTS, "passphrase", "input_private_key_pem"]


def _bundle(props: dict[str, Any], at: dt.datetime) -> bundles.Bundle:
    return bundles.validate_bundle(
        props.get("certificate_pem") or "", props.get("chain_pem") or "", props.get("private_key_pem") or "",
        passphrase=props.get("passphrase") or None, now=at,
    )


def _outputs(props: dict[str, Any], bundle: bundles.Bundle, password: str) -> dict[str, Any]:
    served_chain = [c for c in bundle.chain if not x509util.is_self_issued(c)]
    outs = _issued.render(props, bundle.key, bundle.leaf, served_chain, password)
    # The key as given may be encrypted: outputs carry the usable PKCS#8 form, and the input for diffs.
    outs["input_private_key_pem"] = props.get("private_key_pem")
    return outs


class UploadedCertificateProvider(CertplaneProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        if is_unknown([news.get(f) for f in INPUT_FIELDS]):
            return CheckResult(news, [])
        unchanged = all(olds.get(f) == news.get(f) for f in INPUT_FIELDS)
        try:
            formats.check_formats(list(news.get("formats") or []))
            # A bundle already in use is not rejected at every preview once it expires: `certplane check`
            # reports that. A new or changed upload must be valid now.
            at = renewal.now() if not unchanged else _validity_tolerant_now(news)
            _bundle(news, at)
        except BundleError as err:
            return CheckResult(news, [failure(f"upload: {err}")])
        except CertplaneError as err:
            return CheckResult(news, [failure(str(err))])
        return CheckResult(news, [])

    @user_facing("uploading a certificate")
    def create(self, props: dict[str, Any]) -> CreateResult:
        bundle = _bundle(props, renewal.now())
        return CreateResult(f"upload-{uuid.uuid4().hex[:12]}", _outputs(props, bundle, _issued.keystore_password(props, None)))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        fields = (*INPUT_FIELDS, "formats", "renew", "keystore_password", "name")
        olds_in = {**olds, "private_key_pem": olds.get("input_private_key_pem")}
        changed = [f for f in fields if f in news and olds_in.get(f) != news.get(f)]
        if "keystore_password" in changed and not news.get("keystore_password"):
            changed.remove("keystore_password")
        return DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    @user_facing("updating an uploaded certificate")
    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        bundle = _bundle(news, renewal.now())
        return UpdateResult(_outputs(news, bundle, _issued.keystore_password(news, olds)))


def _validity_tolerant_now(news: dict[str, Any]) -> dt.datetime:
    """A time inside the leaf's validity, so an unchanged bundle is only re-checked for structure."""
    certs = x509util.load_certificates(news.get("certificate_pem") or "")
    if certs:
        return certs[0].not_valid_before_utc + dt.timedelta(seconds=1)
    return renewal.now()


class UploadedCertificate(_issued.IssuedCertificate):
    def __init__(self, name: str, *, certificate_pem: Any, chain_pem: Any, private_key_pem: Any,
                 passphrase: Any = None, formats: Any = None, renew: Any = None, keystore_password: Any = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        props = {
            "name": name, "certificate_pem": certificate_pem, "chain_pem": chain_pem,
            "private_key_pem": pulumi.Output.secret(private_key_pem),
            "passphrase": pulumi.Output.secret(passphrase) if passphrase is not None else None,
            "formats": formats or [], "renew": renew, "keystore_password": keystore_password,
        }
        props.update({k: None for k in OUTPUTS if k not in props})
        secret = pulumi.ResourceOptions(additional_secret_outputs=SECRET_OUTPUTS)
        super().__init__(UploadedCertificateProvider(), name, props, pulumi.ResourceOptions.merge(secret, opts))
