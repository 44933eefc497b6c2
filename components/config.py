"""The stack config contract (`certplane:issuers`, `certplane:certificates`, `certplane:targets`) as pydantic
models. Bad config becomes one line per problem naming the field, e.g.
`certplane:certificates.www.key.size: RSA keys must be 2048, 3072 or 4096 bits`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from providers.core import certificates as x509util
from providers.core import formats as fmt
from providers.core.errors import InvalidInputError
from providers.core.keys import KeySpec
from providers.core.renewal import RenewalPolicy

NAMESPACE = "certplane"
SELF_SIGNED = "self_signed"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KeyConfig(Strict):
    algorithm: Literal["rsa", "ecdsa", "ed25519"] = "ecdsa"
    size: int | None = None
    curve: str | None = None

    @model_validator(mode="after")
    def _valid(self) -> KeyConfig:
        try:
            KeySpec.parse(self.model_dump(), field="")
        except InvalidInputError as err:
            raise _at(err.field.lstrip("."), err.reason) from None
        if self.algorithm == "rsa" and self.curve:
            raise _at("curve", "only ECDSA keys have a curve")
        if self.algorithm != "rsa" and self.size:
            raise _at("size", "only RSA keys have a size")
        return self

    def spec(self) -> dict[str, Any]:
        return KeySpec.parse(self.model_dump()).as_dict()


class RenewConfig(Strict):
    before_days: float | None = Field(default=None, gt=0)
    at_fraction: float | None = Field(default=None, gt=0, lt=1)

    @model_validator(mode="after")
    def _one(self) -> RenewConfig:
        try:
            RenewalPolicy.parse(self.model_dump(exclude_none=True), field="")
        except InvalidInputError as err:
            raise _at(err.field.lstrip("."), err.reason) from None
        return self


class NameConstraints(Strict):
    permitted_dns_domains: list[str] = []


class PrivateCaIssuer(Strict):
    type: Literal["private_ca"]
    common_name: str = Field(min_length=1, max_length=64)
    organization: str | None = None
    key: KeyConfig = KeyConfig(algorithm="ecdsa", curve="P-384")
    validity_days: int = Field(default=3650, ge=1, le=36500)
    intermediate: bool = False
    intermediate_validity_days: int | None = Field(default=None, ge=1, le=36500)
    path_length: int | None = Field(default=None, ge=0)
    name_constraints: NameConstraints | None = None
    renew: RenewConfig | None = None

    @field_validator("name_constraints")
    @classmethod
    def _names(cls, value: NameConstraints | None) -> NameConstraints | None:
        for name in value.permitted_dns_domains if value else []:
            try:
                x509util.check_dns_name(name.lstrip("."), "permitted_dns_domains")
            except InvalidInputError as err:
                raise ValueError(err.reason) from None
        return value


class EabConfig(Strict):
    kid: str = Field(min_length=1)
    hmac_key: str = Field(min_length=1)  # base64url; give it as a secret


class AcmeIssuer(Strict):
    """Any RFC 8555 directory: Let's Encrypt, ZeroSSL, Google Trust Services, step-ca, Pebble."""

    type: Literal["acme"]
    directory_url: str
    email: str | None = None
    ca_bundle: str | None = None
    eab: EabConfig | None = None
    profile: str | None = None
    dns: dict[str, Any] | None = None
    http01: dict[str, Any] | None = None
    account_key: KeyConfig = KeyConfig(algorithm="ecdsa", curve="P-256")
    revoke_on_destroy: bool = False
    renew: RenewConfig | None = None

    @field_validator("directory_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be the https:// URL of the CA's ACME directory")
        return value

    @field_validator("dns")
    @classmethod
    def _dns(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            from providers.core import dns as dns_providers

            try:
                dns_providers.make_provider(value)
            except InvalidInputError as err:
                raise _at(err.field.removeprefix("dns").lstrip("."), err.reason) from None
        return value

    @field_validator("http01")
    @classmethod
    def _http01(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            from providers.core import http01

            try:
                http01.validate(value)
            except InvalidInputError as err:
                raise _at(err.field.removeprefix("http01").lstrip("."), err.reason) from None
        return value


Issuer = Annotated[Union[PrivateCaIssuer, AcmeIssuer], Field(discriminator="type")]


class UploadConfig(Strict):
    certificate_file: str
    chain_file: str | None = None
    private_key: str | None = None
    private_key_file: str | None = None
    passphrase: str | None = None

    @model_validator(mode="after")
    def _one_key(self) -> UploadConfig:
        if bool(self.private_key) == bool(self.private_key_file):
            raise ValueError("give the private key as private_key (a secret) or private_key_file, exactly one")
        return self


class BindingConfig(Strict):
    target: str
    server_names: list[str] | None = None
    sni: bool = False


class CertificateConfig(Strict):
    domains: list[str] = []
    ip_addresses: list[str] = []
    issuer: str | None = None
    challenge: Literal["dns-01", "http-01"] | None = None
    key: KeyConfig = KeyConfig()
    reuse_key: bool = False
    validity_days: int | None = Field(default=None, ge=1, le=36500)
    client_auth: bool = False
    renew: RenewConfig | None = None
    tags: dict[str, str] = {}
    formats: list[str] = ["pem"]
    keystore_password: str | None = None
    upload: UploadConfig | None = None
    bindings: list[BindingConfig] = []

    @field_validator("domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        for name in value:
            try:
                x509util.check_dns_name(name, "domains")
            except InvalidInputError as err:
                raise ValueError(err.reason) from None
        if len({n.lower() for n in value}) != len(value):
            raise ValueError("lists a domain twice")
        return value

    @field_validator("formats")
    @classmethod
    def _formats(cls, value: list[str]) -> list[str]:
        try:
            fmt.check_formats(value)
        except InvalidInputError as err:
            raise ValueError(err.reason) from None
        return value

    @model_validator(mode="after")
    def _shape(self) -> CertificateConfig:
        if self.upload is not None:
            if self.issuer or self.domains:
                raise ValueError("an uploaded certificate takes no issuer or domains: they come from the file")
        elif not self.issuer:
            raise _at("issuer", f"name an issuer from certplane:issuers, or '{SELF_SIGNED}'")
        elif not (self.domains or self.ip_addresses):
            raise _at("domains", "a certificate needs at least one domain or IP address")
        return self


class FleetConfig(Strict):
    issuers: dict[str, Issuer] = {}
    certificates: dict[str, CertificateConfig] = {}
    targets: dict[str, dict[str, Any]] = {}

    @model_validator(mode="after")
    def _references(self) -> FleetConfig:
        problems = []
        for name, cert in self.certificates.items():
            issuer = self.issuers.get(cert.issuer or "")
            if cert.issuer and cert.issuer != SELF_SIGNED and issuer is None:
                known = ", ".join(sorted(self.issuers)) or "none defined"
                problems.append(f"certificates.{name}.issuer: unknown issuer {cert.issuer!r} (known: {known})")
            if isinstance(issuer, AcmeIssuer):
                if cert.key.algorithm == "ed25519":
                    problems.append(f"certificates.{name}.key.algorithm: ed25519 keys are for private CAs only "
                                    "(public CAs and browsers do not accept them)")
                challenge = cert.challenge or ("dns-01" if issuer.dns else "http-01")
                if challenge == "dns-01" and not issuer.dns:
                    problems.append(f"certificates.{name}.challenge: dns-01 needs a DNS provider: set "
                                    f"certplane:issuers.{cert.issuer}.dns")
                if challenge == "http-01" and not issuer.http01:
                    problems.append(f"certificates.{name}.challenge: http-01 needs certplane:issuers.{cert.issuer}"
                                    ".http01 ({mode: webroot, webroot: DIR} or {mode: standalone, listen: HOST:PORT})")
                if challenge == "http-01" and any(d.startswith("*.") for d in cert.domains):
                    problems.append(f"certificates.{name}.challenge: wildcard domains can only be validated "
                                    "with dns-01")
                if cert.ip_addresses:
                    problems.append(f"certificates.{name}.ip_addresses: not supported for ACME certificates yet")
            for i, binding in enumerate(cert.bindings):
                if binding.target not in self.targets:
                    problems.append(f"certificates.{name}.bindings.{i}.target: unknown target {binding.target!r}")
        if problems:
            raise ValueError("\n".join(problems))
        return self


class ConfigProblems(Exception):
    """All config problems at once, one line each."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def _at(field: str, reason: str) -> ValueError:
    return ValueError(f"@{field}: {reason}")


def _format(err: ValidationError) -> list[str]:
    lines = []
    for e in err.errors():
        loc = [str(p) for p in e["loc"] if not str(p).startswith(("function-", "tagged-union"))]
        if len(loc) > 2 and loc[0] == "issuers" and loc[2] in ("private_ca", "acme"):
            del loc[2]  # the discriminated union's tag, not a field
        msg = str(e["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        for line in msg.split("\n"):
            if line.startswith("@"):
                sub, _, line = line[1:].partition(": ")
                path = [*loc, *[s for s in sub.split(".") if s]]
            elif line.startswith(("certificates.", "issuers.", "targets.")):
                path, _, line = line.partition(": ")
                path = [path]
            else:
                path = loc
            if e["type"] == "extra_forbidden":
                line = "unknown setting"
            elif e["type"] == "missing":
                line = "is required"
            lines.append(f"{NAMESPACE}:{'.'.join(path)}: {line}")
    return lines


def parse_fleet(raw: dict[str, Any], base_dir: Path | None = None) -> FleetConfig:
    """Validate raw config values; raises ConfigProblems with every problem, one line each."""
    try:
        fleet = FleetConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigProblems(_format(err)) from None
    from .targets import validate_targets

    problems = validate_targets(fleet.targets)
    for name, cert in fleet.certificates.items():
        if cert.upload:
            for field in ("certificate_file", "chain_file", "private_key_file"):
                path = getattr(cert.upload, field)
                if not path:
                    continue
                where = f"{NAMESPACE}:certificates.{name}.upload.{field}"
                try:
                    (base_dir or Path(".")).joinpath(path).read_text(encoding="utf-8")
                except FileNotFoundError:
                    problems.append(f"{where}: file not found: {path}")
                except UnicodeDecodeError:
                    problems.append(f"{where}: {path} is not a PEM text file (DER, PKCS#7 and PFX are not accepted; "
                                    "convert with openssl)")
                except OSError as err:
                    problems.append(f"{where}: cannot read {path}: {err.strerror}")
    if problems:
        raise ConfigProblems(problems)
    return fleet
