"""The stack config contract (`certplane:issuers`, `certplane:certificates`, `certplane:targets`,
`certplane:audit`, `certplane:reissue_before`) as models.

Issuer and target blocks are validated by the model of the plug-in their `type` names (the registries in
providers/core), certificates by the same request rules every certificate provider applies. Bad config becomes
one line per problem naming the field, e.g.
`certplane:certificates.www.key.size: RSA keys must be 2048, 3072 or 4096 bits`.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, model_validator

from providers import _custody
from providers.core import certificates as x509util
from providers.core import clock, issuers, renewal
from providers.core.certificates import CertificateRequest, DnsNames, IpAddresses, ValidityDays
from providers.core.deploy import TargetSettingsField
from providers.core.deploy._support import safe_file_stem
from providers.core.errors import InputProblems, InvalidInputError
from providers.core import formats
from providers.core.formats import Formats
from providers.core.issuers import IssuerSettings, IssuerSettingsField
from providers.core.keys import KeySpec
from providers.core.keystore import KeyStorageField, KeyStorageSettings
from providers.core.renewal import RenewalPolicy
from providers.core.validation import KeySpecField, Model, ProjectPath, SecretText, parse, secret_paths

NAMESPACE = "certplane"
SELF_SIGNED = issuers.SELF_SIGNED


class ConfigProblems(Exception):
    """All config problems at once, one line each, every line naming its field under `certplane:`."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


class UploadConfig(Model):
    certificate_file: str
    chain_file: str | None = None
    private_key: SecretText | None = None  # give it as a secret
    private_key_file: str | None = None
    passphrase: SecretText | None = None

    @model_validator(mode="after")
    def _one_key(self) -> UploadConfig:
        if bool(self.private_key) == bool(self.private_key_file):
            raise InvalidInputError("", "give the private key as private_key (a secret) or private_key_file, "
                                        "exactly one")
        return self


class CsrConfig(Model):
    """A CSR made where the key lives (an HSM, another team's tooling): certplane orders or signs it, and renews
    by submitting it again. `private_key` (a secret) only when the key may be given too: then certplane can
    render PKCS#12/JKS and deploy the certificate; without it, it publishes the certificate and chain only."""

    file: ProjectPath | None = None
    pem: str | None = None
    private_key: SecretText | None = None

    @model_validator(mode="after")
    def _one_source(self) -> CsrConfig:
        if bool(self.file) == bool(self.pem):
            raise InvalidInputError("", "give the CSR as file (a path) or pem (its text), exactly one")
        if self.file:
            try:
                text = Path(self.file).read_text()
            except (OSError, UnicodeDecodeError) as err:
                raise InvalidInputError("file", f"cannot read {self.file}: "
                                                f"{getattr(err, 'strerror', None) or 'not text'}") from None
            return self.model_copy(update={"pem": text})._parsed("file")
        return self._parsed("pem")

    def _parsed(self, field: str) -> CsrConfig:
        try:
            x509util.load_csr(self.pem or "")
        except InvalidInputError as err:
            raise InvalidInputError(field, err.reason) from None
        return self

    @property
    def csr(self) -> Any:
        return x509util.load_csr(self.pem or "")


class BindingConfig(Model):
    target: str
    server_names: Annotated[tuple[str, ...], AfterValidator(x509util.check_dns_names)] | None = None
    sni: bool = False


class CertificateConfig(Model):
    domains: DnsNames = ()
    ip_addresses: IpAddresses = ()
    issuer: str | None = None
    challenge: Literal["dns-01", "http-01"] | None = None
    key: KeySpecField = KeySpec()
    reuse_key: bool = False
    validity_days: ValidityDays | None = None
    client_auth: bool = False
    renew: RenewalPolicy | None = None
    # Re-issue (new key) if issued before this instant. After parse_fleet: the one that applies (its own, else
    # its issuer's, else the stack's certplane:reissue_before).
    reissue_before: renewal.Instant | None = None
    tags: dict[str, str] = {}
    formats: Formats = ("pem",)
    keystore_password: SecretText | None = None
    # Where the private key is kept (state, file, aws_secretsmanager); unset: the issuer's `key_storage`, else
    # state. After parse_fleet: the one that applies.
    key_storage: KeyStorageField | None = None
    upload: UploadConfig | None = None
    csr: CsrConfig | None = None
    bindings: list[BindingConfig] = []

    @model_validator(mode="after")
    def _shape(self) -> CertificateConfig:
        if self.upload is not None:
            if self.issuer or self.domains:
                raise InvalidInputError("", "an uploaded certificate takes no issuer or domains: they come from "
                                            "the file")
            if self.reissue_before:
                raise InvalidInputError("reissue_before", "an uploaded certificate is not issued by certplane: "
                                                          "upload a new bundle instead")
            if self.key_storage is not None:
                raise InvalidInputError("key_storage", "an uploaded certificate's key is given in the stack "
                                                       "config (as a secret): certplane keeps it as given")
        elif not self.issuer:
            raise InvalidInputError("issuer", f"name an issuer from certplane:issuers, or '{SELF_SIGNED}'")
        else:
            checked = self._with_csr(self.csr) if self.csr is not None else self
            x509util.check_subject(checked.domains, checked.ip_addresses)
            return checked
        return self

    def _with_csr(self, csr: CsrConfig) -> CertificateConfig:
        """The CSR says the names (`domains` may be left out, or must be the same); the key is the CSR's, so
        the settings that make, move or re-key a key do not apply."""
        for field in ("key", "reuse_key", "reissue_before", "key_storage"):
            if field in self.model_fields_set:
                raise InvalidInputError(field, "the key is the CSR's: certplane never makes, re-keys or keeps it "
                                               "(re-key by giving a new CSR)")
        checked = self
        if not self.domains and not self.ip_addresses:
            domains, ips = x509util.csr_names(csr.csr)
            checked = self.model_copy(update={"domains": domains, "ip_addresses": ips})
        try:
            x509util.check_csr_request(csr.csr, checked.request(None))
        except InvalidInputError as err:
            raise InvalidInputError("csr", err.reason) from None
        if csr.private_key is None:
            if self.bindings:
                raise InvalidInputError("bindings", "a certificate from a CSR without its key cannot be deployed "
                                                    "by certplane: give csr.private_key, or deploy it where the "
                                                    "key is")
            formats.check_keystores_need_key(self.formats)
        return checked

    def request(self, default_validity_days: int | None) -> CertificateRequest:
        return CertificateRequest(domains=self.domains, ip_addresses=self.ip_addresses,
                                  validity_days=self.validity_days or default_validity_days,
                                  client_auth=self.client_auth)


class AuditSettings(Model):
    """`certplane:audit`: where the audit trail goes (see providers/core/audit.py resolve_log)."""

    path: Annotated[str, AfterValidator(lambda p: p if p.strip() else _empty_path())] | None = None


def _empty_path() -> str:
    raise InvalidInputError("", "must not be empty (leave `path` out for the default location)")


class FleetConfig(Model):
    issuers: dict[str, IssuerSettingsField] = {}
    certificates: dict[str, CertificateConfig] = {}
    targets: dict[str, TargetSettingsField] = {}
    audit: AuditSettings = AuditSettings()
    reissue_before: renewal.Instant | None = None  # every issued certificate's fallback (see docs/RENEWAL.md)

    def issuer(self, name: str) -> IssuerSettings | None:
        """An issuer's settings by config name; `self_signed` needs no block."""
        if name in self.issuers:
            return self.issuers[name]
        return issuers.self_signed.SelfSignedSettings() if name == SELF_SIGNED else None


def parse_fleet(raw: dict[str, Any], base_dir: Path | None = None) -> FleetConfig:
    """Validate raw config values; raises ConfigProblems with every problem, one line each."""
    problems: list[InvalidInputError] = []
    fleet = None
    try:
        fleet = parse(FleetConfig, raw, context={"base_dir": base_dir or Path.cwd()})
        problems += _references(fleet)
        problems += _reissue_times(fleet)
    except InputProblems as invalid:
        problems += invalid.problems
    # Every problem at once: a certificate's files are checked unless its own block already has a problem.
    problems += _upload_files(raw, base_dir or Path("."), problems)
    if problems or fleet is None:
        raise ConfigProblems(_lines(problems))
    return _with_reissue_before(fleet)


def _reissue_times(fleet: FleetConfig) -> list[InvalidInputError]:
    """A `reissue_before` in the future is refused (every `up` until then would re-issue again)."""
    now = clock.real_now()
    given = [("reissue_before", fleet.reissue_before),
             *((f"issuers.{n}.reissue_before", s.reissue_before) for n, s in fleet.issuers.items()),
             *((f"certificates.{n}.reissue_before", c.reissue_before) for n, c in fleet.certificates.items())]
    out = []
    for field, value in given:
        if value is not None:
            try:
                renewal.parse_reissue_before(value, now)
            except InvalidInputError as err:
                out.append(err.within(field))
    return out


def _with_reissue_before(fleet: FleetConfig) -> FleetConfig:
    """Each issued certificate's `reissue_before` and `key_storage`: the most specific one given (certificate,
    issuer, stack)."""
    certificates = {}
    for name, cert in fleet.certificates.items():
        settings = fleet.issuer(cert.issuer) if cert.issuer and not cert.upload else None
        if cert.csr is not None:  # its key is the CSR's: nothing re-keys or keeps it
            certificates[name] = cert
            continue
        if cert.key_storage is None and settings is not None and settings.key_storage is not None:
            cert = cert.model_copy(update={"key_storage": settings.key_storage})
        chosen = cert.reissue_before or (settings.reissue_before if settings else None) or (
            fleet.reissue_before if not cert.upload else None)
        certificates[name] = cert if chosen == cert.reissue_before else cert.model_copy(
            update={"reissue_before": chosen})
    return fleet.model_copy(update={"certificates": certificates})


def _lines(problems: Any) -> list[str]:
    return [f"{NAMESPACE}:{p}" for p in problems]


def _references(fleet: FleetConfig) -> list[InvalidInputError]:
    """Each certificate against its issuer (the issuer's own rules: key types, challenges, names) and targets."""
    out = []
    for name, cert in fleet.certificates.items():
        at = f"certificates.{name}"
        try:
            safe_file_stem(name, "certificates")  # a certificate's name becomes its file names at a target
        except InvalidInputError as err:
            out.append(err)
        if cert.issuer:
            settings = fleet.issuer(cert.issuer)
            if settings is None:
                known = ", ".join(sorted(fleet.issuers)) or "none defined"
                out.append(InvalidInputError(f"{at}.issuer", f"unknown issuer {cert.issuer!r} (known: {known})"))
            else:
                try:
                    plugin = issuers.REGISTRY.plugin_of(settings)
                    order = plugin.order_for(settings, issuer=cert.issuer, challenge=cert.challenge)
                    request = cert.request(plugin.default_validity_days(settings))
                    plugin.check(order, request, None if cert.csr else cert.key)
                    if cert.csr is not None:
                        plugin.check_csr(order, request, cert.csr.csr)
                        if plugin.needs_private_key and cert.csr.private_key is None:
                            raise InvalidInputError("csr.private_key", f"a {plugin.kind} certificate is signed "
                                                                       "with its own key: give it, or use a CA")
                    storage = cert.key_storage or settings.key_storage
                    if storage is not None and cert.csr is None:
                        _custody.check_formats(storage, cert.formats)
                    plugin.check_for(settings, request)
                    before = cert.renew.before_days if cert.renew else None
                    too_long = renewal.window_too_long(before, request.validity_days)
                    if too_long:
                        raise InvalidInputError("renew.before_days", too_long)
                except InvalidInputError as err:
                    out.append(err.within(at))
                except InputProblems as many:
                    out.extend(p.within(at) for p in many.problems)
        for i, binding in enumerate(cert.bindings):
            if binding.target not in fleet.targets:
                known = ", ".join(sorted(fleet.targets)) or "none defined"
                out.append(InvalidInputError(f"{at}.bindings.{i}.target",
                                             f"unknown target {binding.target!r} (known: {known})"))
    return out


def _upload_files(raw: dict[str, Any], base_dir: Path, known: list[InvalidInputError]) -> list[InvalidInputError]:
    """Upload files that cannot be read as PEM text, then (once every file of an upload reads) broken PEM in them
    or in the inline private key: a truncated block, a DER or PFX file, a CSR or a PKCS#7 bundle, garbage (read
    from the raw config: its shape may be wrong elsewhere). Whether the pieces make a bundle, and the key's
    passphrase, are the provider's check."""
    from providers.core import bundles  # the same PEM rules the provider applies, each line naming its field

    out = []
    certificates = raw.get("certificates")
    for name, cert in (certificates.items() if isinstance(certificates, dict) else ()):
        upload = cert.get("upload") if isinstance(cert, dict) else None
        flawed = any(p.field.startswith(f"certificates.{name}.") or p.field == f"certificates.{name}" for p in known)
        if not isinstance(upload, dict) or flawed:
            continue
        texts: list[tuple[str, str, str]] = []  # (where, what to call it, text)
        unreadable = []
        for field in ("certificate_file", "chain_file", "private_key_file"):
            path = upload.get(field)
            if not isinstance(path, str) or not path:
                continue
            where = f"certificates.{name}.upload.{field}"
            try:
                texts.append((where, path, base_dir.joinpath(path).read_text(encoding="utf-8")))
            except FileNotFoundError:
                unreadable.append(InvalidInputError(where, f"file not found: {path}"))
            except UnicodeDecodeError:
                unreadable.append(InvalidInputError(where, f"{path} is not a PEM text file (DER, PKCS#7 and PFX are "
                                                           "not accepted; convert with openssl)"))
            except OSError as err:
                unreadable.append(InvalidInputError(where, f"cannot read {path}: {err.strerror}"))
        out += unreadable
        if unreadable:
            continue
        inline_key = upload.get("private_key")
        if isinstance(inline_key, str) and inline_key:
            texts.append((f"certificates.{name}.upload.private_key", "the private key", inline_key))
        for where, shown, text in texts:
            if not text.strip():
                out.append(InvalidInputError(where, f"{shown} is empty"))
                continue
            try:
                bundles.parse_input(text, "", key_field=where.endswith((".private_key_file", ".private_key")))
            except bundles.BundleFieldError as err:
                out.append(InvalidInputError(where, err.reason))
            except bundles.BundleError as err:
                out.append(InvalidInputError(where, str(err)))
    return out


def plain_secrets(fleet: FleetConfig, secret_keys: Collection[str]) -> dict[str, list[str]]:
    """Certificate name -> the config paths of secrets it uses (its upload's key, its issuer's EAB key or DNS
    credentials) that were given as plain text: Pulumi keeps a path-set secret by marking its whole top-level
    key secret, so a secret value under a key that is not is in the stack file in the clear."""
    def plain(key: str, name: str, model: Any) -> list[str]:
        if f"{NAMESPACE}:{key}" in secret_keys:
            return []
        return [".".join([f"{NAMESPACE}:{key}", name, *path]) for path in secret_paths(model)]

    out: dict[str, list[str]] = {}
    for cert_name, spec in fleet.certificates.items():
        found = plain("certificates", cert_name, spec)
        if spec.issuer and spec.issuer in fleet.issuers:
            found += plain("issuers", spec.issuer, fleet.issuers[spec.issuer])
        out[cert_name] = found
    return out
