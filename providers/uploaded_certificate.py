"""UploadedCertificate: a third-party certificate (leaf + chain + key) validated at preview, then rendered in
every format like the certificates certplane issues itself."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Annotated, Any

from pulumi.dynamic import DiffResult

from . import _issued
from ._dynamic import CertplaneProvider, PlannedDiff, Stored, note
from .core import bundles, clock
from .core import certificates as x509util
from .core.audit import AuditContext, Event
from .core.errors import BundleError
from .core.formats import Formats
from .core.renewal import RenewalPolicy
from .core.validation import SECRET, Model

Secret = Annotated[str | None, SECRET]
BUNDLE_FIELDS = ("certificate_pem", "chain_pem", "private_key_pem", "passphrase")
# A problem in one input is named as the `upload:` config block names it.
CONFIG_FIELDS = {"certificate_pem": "certificate_file", "chain_pem": "chain_file", "private_key_pem": "private_key"}


class UploadInputs(Model):
    name: str
    certificate_pem: str = ""
    chain_pem: str = ""
    private_key_pem: Secret = None  # as given: PEM, possibly encrypted with `passphrase`
    passphrase: Secret = None
    formats: Formats = ()
    renew: RenewalPolicy | None = None
    keystore_password: Secret = None
    policy_facts: dict[str, Any] = {}  # read by the policy pack only (issuer name, tags, ...)
    audit: AuditContext | None = None

    def bundle(self, at: dt.datetime) -> bundles.Bundle:
        return bundles.validate_bundle(self.certificate_pem, self.chain_pem, self.private_key_pem or "",
                                       passphrase=self.passphrase or None, now=at)


class UploadOutputs(_issued.IssuedOutputs):
    input_private_key_pem: Secret = None  # the key as given (maybe encrypted), compared by diff


class UploadedCertificateProvider(CertplaneProvider[UploadInputs, UploadOutputs]):
    inputs = UploadInputs
    outputs = UploadOutputs
    noun = "an uploaded certificate"
    informational = ("policy_facts",)
    actions = {"create": "uploading a certificate"}


    def validate(self, inputs: UploadInputs, olds: Mapping[str, Any]) -> None:
        """A bundle already in use is not rejected at every preview once it expires (`certplane check` says
        so); a new or changed one must be valid now."""
        unchanged = bool(olds) and all(olds.get(f) == getattr(inputs, f) for f in BUNDLE_FIELDS)
        try:
            bundle = inputs.bundle(_validity_tolerant_now(inputs) if unchanged else clock.now())
        except bundles.BundleFieldError as err:
            raise BundleError(f"upload.{CONFIG_FIELDS.get(err.field, err.field)}: {err.reason}") from None
        except BundleError as err:
            raise BundleError(f"upload: {err}") from None
        early = bundle.early_expiry()  # valid today, but the chain stops working before the leaf does
        if early:
            note(f"{inputs.name}: upload: {early}")

    def create_typed(self, inputs: UploadInputs) -> tuple[str, UploadOutputs]:
        return f"upload-{uuid.uuid4().hex[:12]}", _outputs(inputs, None)

    def diff_typed(self, _id: str, olds: Stored[UploadInputs, UploadOutputs], news: UploadInputs) -> DiffResult:
        old_bundle = (olds.inputs.certificate_pem, olds.inputs.chain_pem, olds.outputs.input_private_key_pem,
                      olds.inputs.passphrase)
        new_bundle = (news.certificate_pem, news.chain_pem, news.private_key_pem, news.passphrase)
        changed = (old_bundle != new_bundle or (news.formats, news.renew, news.name) !=
                   (olds.inputs.formats, olds.inputs.renew, olds.inputs.name)
                   or bool(news.keystore_password and news.keystore_password != olds.outputs.keystore_password))
        details = {name: "update" for name in self.changed(olds, news)}
        if news.keystore_password and news.keystore_password != olds.outputs.keystore_password:
            details["keystore_password"] = "update"
        if old_bundle != new_bundle:  # another certificate: what it is changes (and its key when another was given)
            details.update({name: "update" for name in _issued.REISSUED})
            if news.private_key_pem != olds.outputs.input_private_key_pem:
                details["private_key_pem"] = "update"
        return PlannedDiff(details=details, changes=changed)

    def update_typed(self, _id: str, olds: Stored[UploadInputs, UploadOutputs], news: UploadInputs) -> UploadOutputs:
        return _outputs(news, olds.outputs)

    def audit_event(self, verb: str, inputs: UploadInputs, olds: Stored[UploadInputs, UploadOutputs] | None,
                    outputs: UploadOutputs | None, done: str | None) -> Event:
        shown = outputs or (olds.outputs if olds else None)
        return Event(f"certificate {inputs.name}", "delete" if verb == "delete" else "upload",
                     serial=shown.serial if shown else None,
                     fingerprint=shown.fingerprint_sha256 if shown else None, issuer="upload")


def _outputs(inputs: UploadInputs, old: UploadOutputs | None) -> UploadOutputs:
    bundle = inputs.bundle(clock.now())
    served_chain = [c for c in bundle.chain if not x509util.is_self_issued(c)]
    password = _issued.keystore_password(inputs.keystore_password, old.keystore_password if old else None)
    rendered = _issued.render(bundle.key, bundle.leaf, served_chain, formats_wanted=inputs.formats,
                              password=password, policy=inputs.renew or RenewalPolicy())
    # The key as given may be encrypted: outputs carry the usable PKCS#8 form, and the input for diffs.
    return UploadOutputs(**rendered, input_private_key_pem=inputs.private_key_pem)


def _validity_tolerant_now(inputs: UploadInputs) -> dt.datetime:
    """A time inside the leaf's validity, so an unchanged bundle is only re-checked for structure."""
    certs = x509util.load_certificates(inputs.certificate_pem)
    if certs:
        return certs[0].not_valid_before_utc + dt.timedelta(seconds=1)
    return clock.now()


class UploadedCertificate(_issued.IssuedCertificate, module="certplane", name="UploadedCertificate"):
    provider = UploadedCertificateProvider
