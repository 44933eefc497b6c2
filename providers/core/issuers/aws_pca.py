"""aws_pca: AWS Private CA (`acm-pca`) signs a CSR of certplane's own key, or the CSR given with the certificate
as it is (its key held elsewhere): `IssueCertificate` (with an idempotency token derived from the request), a
bounded wait for the certificate, `GetCertificate` for the leaf and the CA's chain; `RevokeCertificate` on
destroy, only when asked.

The CA is reached with its settings alone (no issuer-level resource): AWS access as the AWS deploy targets have
it (core/aws.py: region, endpoint_url, profile, credentials_file; keys never in settings or state; throttling
retried by the client, bounded). The leaf is accepted only for the CSR's key and exactly the names asked for
(the rule ACME certificates follow, `certificates.issued_mismatch`), and only when the chain AWS returns starts with
its issuer. Every AWS failure is one line naming what failed, the CA and the operation.

Not verified against real AWS (the tests run on moto): the serial format `RevokeCertificate` is given (lowercase
hex, colon-separated, as `openssl x509 -text` prints it), the idempotency window (AWS documents five minutes),
and the validity AWS writes (moto ignores `Validity` and `SigningAlgorithm`: see docs).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar, get_args

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from pydantic import field_validator, model_validator

from .. import aws, keys
from .. import certificates as x509util
from ..aws import AwsAccess
from ..certificates import CertificateRequest, csr_fingerprint, csr_public_key, issued_mismatch
from ..clock import real_now, rfc3339
from ..errors import CertplaneError, InvalidInputError, RetryableError
from ..keys import KeySpec
from ..validation import REISSUE, Model, whole_number
from .base import IssueRequest, Issued, IssuerPlugin, IssuerSettings, OrderSettings

KIND = "aws_pca"
T = TypeVar("T")

_CA_ARN = re.compile(r"^arn:aws[a-z-]*:acm-pca:(?P<region>[a-z]{2}(-[a-z]+)+-\d+):\d{12}:"
                     r"certificate-authority/[0-9a-fA-F-]{36}$")
_TEMPLATE_ARN = re.compile(r"^arn:aws[a-z-]*:acm-pca:::template/(?P<name>[A-Za-z0-9_]+)/V\d+$")
_XML_CODE, _XML_MESSAGE = re.compile(r"<Code>([^<]*)</Code>"), re.compile(r"<Message>([^<]*)</Message>")
_CA_TEMPLATES = ("RootCACertificate", "SubordinateCACertificate", "BlankRootCACertificate",
                 "BlankSubordinateCACertificate")

SigningAlgorithm = Literal["SHA256WITHECDSA", "SHA384WITHECDSA", "SHA512WITHECDSA", "SHA256WITHRSA", "SHA384WITHRSA",
                           "SHA512WITHRSA", "SHA256WITHRSA_PSS", "SHA384WITHRSA_PSS", "SHA512WITHRSA_PSS",
                           "SM3WITHSM2", "ML_DSA_44", "ML_DSA_65", "ML_DSA_87"]
RevocationReason = Literal["UNSPECIFIED", "KEY_COMPROMISE", "CERTIFICATE_AUTHORITY_COMPROMISE", "AFFILIATION_CHANGED",
                           "SUPERSEDED", "CESSATION_OF_OPERATION", "PRIVILEGE_WITHDRAWN", "A_A_COMPROMISE"]

# The CA's key type (DescribeCertificateAuthority's KeyAlgorithm) -> the signing algorithm used when none is given.
DEFAULT_SIGNING = {"RSA_2048": "SHA256WITHRSA", "RSA_3072": "SHA256WITHRSA", "RSA_4096": "SHA256WITHRSA",
                   "EC_prime256v1": "SHA256WITHECDSA", "EC_secp384r1": "SHA384WITHECDSA",
                   "EC_secp521r1": "SHA512WITHECDSA", "SM2": "SM3WITHSM2", "ML_DSA_44": "ML_DSA_44",
                   "ML_DSA_65": "ML_DSA_65", "ML_DSA_87": "ML_DSA_87"}
DEFAULT_VALIDITY_DAYS = 90
DEFAULT_ISSUE_TIMEOUT = 60  # seconds to wait for GetCertificate to stop answering RequestInProgressException
POLL_SECONDS = 1
TOKEN_LENGTH = 36  # IdempotencyToken's maximum
MESSAGE_LIMIT = 300  # of what AWS says; the rest of a line is certplane's

# Error codes that say "try again later" once the client's own bounded retries are spent.
TRANSIENT_CODES = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded",
                             "RequestTimeout", "RequestTimeoutException", "ServiceUnavailable",
                             "ServiceUnavailableException", "InternalFailure", "InternalServerError",
                             "ConcurrentModificationException"})
TRANSIENT_ERRORS = frozenset({"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError",
                              "ConnectionClosedError"})
HINTS = {
    "AccessDeniedException": "the credentials need acm-pca:{operation} on this CA",
    "AccessDenied": "the credentials need acm-pca:{operation} on this CA",
    "ResourceNotFoundException": "check certificate_authority_arn and region",
    "InvalidArnException": "check certificate_authority_arn",
    "InvalidStateException": "the CA is not ACTIVE (disabled, expired or pending its certificate): enable it, "
                             "or name another CA",
    "MalformedCSRException": "AWS refused certplane's CSR: check the key type (rsa or ecdsa)",
    "LimitExceededException": "the account's AWS Private CA quota is reached",
}
STATUS_HINTS = {
    "DISABLED": "enable it (aws acm-pca update-certificate-authority --status ACTIVE) or name another CA",
    "PENDING_CERTIFICATE": "install its CA certificate first",
    "CREATING": "wait until it is created and its CA certificate installed",
    "EXPIRED": "its CA certificate has expired: renew it",
    "DELETED": "it is scheduled for deletion: restore it or name another CA",
    "FAILED": "its creation failed: name another CA",
}


class AwsPcaError(CertplaneError):
    """AWS Private CA refused, or returned what certplane does not accept; one line, never credentials."""


def _ca_arn(value: str) -> str:
    if not _CA_ARN.match(value):
        raise InvalidInputError("", "must be an AWS Private CA ARN (arn:aws:acm-pca:REGION:ACCOUNT:"
                                    f"certificate-authority/ID), not {value[:120]!r}")
    return value


def _template_arn(value: str | None) -> str | None:
    if value is None:
        return None
    match = _TEMPLATE_ARN.match(value)
    if not match:
        raise InvalidInputError("", "must be an AWS Private CA template ARN like "
                                    "arn:aws:acm-pca:::template/EndEntityCertificate/V1")
    if match["name"].startswith(_CA_TEMPLATES):
        raise InvalidInputError("", f"{match['name']} issues CA certificates: certplane issues end-entity "
                                    "certificates (e.g. EndEntityServerAuthCertificate/V1)")
    return value


class _PcaFields(AwsAccess):
    """What the issuer's block and each certificate's order share. `region` defaults to the CA ARN's."""

    certificate_authority_arn: Annotated[str, REISSUE]
    signing_algorithm: Annotated[SigningAlgorithm | None, REISSUE] = None
    template_arn: Annotated[str | None, REISSUE] = None
    revoke_on_destroy: bool = False
    revoke_reason: RevocationReason = "CESSATION_OF_OPERATION"
    issue_timeout_seconds: Annotated[int, whole_number(5, 900)] = DEFAULT_ISSUE_TIMEOUT

    @model_validator(mode="before")
    @classmethod
    def _region_of_arn(cls, data: Any) -> Any:
        """`region` defaults to the CA ARN's. Without a valid ARN, the ARN's own problem is the one to fix (its
        region comes with it): the stand-in region only keeps a second line away, the block fails anyway."""
        if isinstance(data, dict) and data.get("region") is None:
            arn = data.get("certificate_authority_arn")
            match = _CA_ARN.match(arn) if isinstance(arn, str) else None
            return {**data, "region": match["region"] if match else "us-east-1"}
        return data

    @field_validator("certificate_authority_arn")
    @classmethod
    def _arn(cls, value: str) -> str:
        return _ca_arn(value)

    @field_validator("template_arn")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        return _template_arn(value)

    @model_validator(mode="after")
    def _same_region(self) -> _PcaFields:
        match = _CA_ARN.match(self.certificate_authority_arn)
        if match and match["region"] != self.region:
            raise InvalidInputError("certificate_authority_arn", f"is in {match['region']}, but region is "
                                                                 f"{self.region}")
        return self


class AwsPcaSettings(IssuerSettings, _PcaFields):
    """certificate_authority_arn (region defaults to the ARN's); optional endpoint_url, profile,
    credentials_file (AWS access as the AWS deploy targets have it), signing_algorithm (default: from the CA's
    key type), template_arn (default: AWS's EndEntityCertificate/V1), revoke_on_destroy (with revoke_reason,
    CESSATION_OF_OPERATION), issue_timeout_seconds (60). A certificate's lifetime is its validity_days (90)."""


class AwsPcaOrder(OrderSettings, _PcaFields):
    """What one certificate needs to issue, renew and revoke on its own (no secret: keys come from the AWS
    credential chain, never from settings)."""


def idempotency_token(order: AwsPcaOrder, request: CertificateRequest, key: keys.PrivateKey | keys.PublicKey,
                      signing: str, csr: x509.CertificateSigningRequest | None = None) -> str:
    """The same request (CA, template, signing algorithm, lifetime, key, names, and the CSR given, if any) gives
    the same token: AWS issues one certificate for calls with one token within its window (five minutes, per
    AWS), so a call retried after a timeout does not issue twice. A new key (every renewal unless reuse_key) or a
    new CSR (another subject or extensions for the same key) is a new request."""
    parts = [order.certificate_authority_arn, order.template_arn or "", signing,
             str(request.validity_days or DEFAULT_VALIDITY_DAYS), keys.public_key_fingerprint_sha256(key),
             *sorted(d.lower() for d in request.domains)]
    if csr is not None:
        parts.append("csr:" + csr_fingerprint(csr))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:TOKEN_LENGTH]


def serial_for_aws(cert: x509.Certificate) -> str:
    """The serial as `RevokeCertificate` takes it: hexadecimal, colon-separated bytes (`openssl x509 -text`)."""
    text = f"{cert.serial_number:x}"
    text = text.zfill(len(text) + len(text) % 2)
    return ":".join(text[i:i + 2] for i in range(0, len(text), 2))


def _code(err: Exception) -> str:
    return _described(err)[0]


def _described(err: Exception) -> tuple[str, str]:
    """(error code, `Code: message`) of an AWS failure. An XML error body where acm-pca speaks JSON (moto
    answers IAM denials so; botocore then reports the HTTP status as the code) is read for its Code and Message."""
    response = getattr(err, "response", None)
    error = (response.get("Error") or {}) if isinstance(response, dict) else {}
    code, message = str(error.get("Code") or ""), str(error.get("Message") or "")
    if message.lstrip().startswith("<"):
        found_code, found_message = _XML_CODE.search(message), _XML_MESSAGE.search(message)
        if found_code:
            code = html.unescape(found_code[1])
            return code, f"{code}: {html.unescape(found_message[1]) if found_message else ''}".strip()
    return code, aws.describe_error(err)


def _one_line(text: str) -> str:
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return flat if len(flat) <= MESSAGE_LIMIT else flat[:MESSAGE_LIMIT - 1] + "…"


def failure(what: str, operation: str, err: Exception, then: str = "") -> CertplaneError:
    """One line for an AWS failure: `aws_pca: <what>: <Operation>: <Code>: <message> (<what to do>)<then>` (AWS's
    message flattened and bounded); a throttled or unreachable service (after the client's own bounded retries)
    is a RetryableError."""
    code, described = _described(err)
    hint = HINTS.get(code, "").format(operation=operation)
    line = f"aws_pca: {what}: {operation}: {_one_line(described)}" + (f" ({hint})" if hint else "") + then
    if code in TRANSIENT_CODES or type(err).__name__ in TRANSIENT_ERRORS:
        return RetryableError(line)
    return AwsPcaError(line)


def _call(what: str, operation: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except CertplaneError:
        raise
    except Exception as err:  # noqa: BLE001 - botocore's errors have no common importable base worth typing
        raise failure(what, operation, err) from None


def _load(pem: str | None) -> list[x509.Certificate]:
    return x509util.load_certificates(pem or "")


class AwsPcaIssuer:
    def __init__(self, order: AwsPcaOrder) -> None:
        self.order = order

    def _client(self) -> Any:
        return aws.client(self.order, "acm-pca")

    @property
    def _ca(self) -> str:
        return self.order.certificate_authority_arn

    def _authority(self, client: Any, what: str) -> dict[str, Any]:
        """The CA as DescribeCertificateAuthority sees it; AwsPcaError unless it is ACTIVE."""
        found: dict[str, Any] = _call(what, "DescribeCertificateAuthority", lambda: client.describe_certificate_authority(
            CertificateAuthorityArn=self._ca))["CertificateAuthority"]
        status = str(found.get("Status") or "")
        if status != "ACTIVE":
            hint = STATUS_HINTS.get(status, "it issues nothing until it is ACTIVE")
            raise AwsPcaError(f"aws_pca: {what}: the certificate authority is {_one_line(status) or 'in no state'}, "
                              f"not ACTIVE: {hint}")
        return found

    def signing_algorithm(self, authority: dict[str, Any], what: str) -> str:
        """The given signing algorithm, checked against the CA's key type (AWS requires the same family), or
        the one that key type signs with by default."""
        config = authority.get("CertificateAuthorityConfiguration") or {}
        key_algorithm = str(config.get("KeyAlgorithm") or "")
        default = DEFAULT_SIGNING.get(key_algorithm) or str(config.get("SigningAlgorithm") or "")
        given = self.order.signing_algorithm
        if given is None:
            if not default:
                raise AwsPcaError(f"aws_pca: {what}: the CA's key type {key_algorithm or '(none given)'} is not "
                                  "one certplane knows: set signing_algorithm")
            return default
        if key_algorithm in DEFAULT_SIGNING and _family(given) != _family(DEFAULT_SIGNING[key_algorithm]):
            fitting = [a for a in get_args(SigningAlgorithm) if _family(a) == _family(DEFAULT_SIGNING[key_algorithm])]
            raise AwsPcaError(f"aws_pca: {what}: signing_algorithm {given} does not fit the CA's {key_algorithm} "
                              f"key: use one of {', '.join(fitting)} (or leave it out)")
        return given

    def issue(self, request: IssueRequest) -> Issued:
        names = list(request.request.domains)
        what = f"issuing {', '.join(names)[:150]} from {self._ca}"
        days = request.request.validity_days or DEFAULT_VALIDITY_DAYS
        client = self._client()
        authority = self._authority(client, what)
        signing = self.signing_algorithm(authority, what)
        ca_expires = authority.get("NotAfter")
        if isinstance(ca_expires, dt.datetime) and request.now + dt.timedelta(days=days) > ca_expires:
            raise AwsPcaError(f"aws_pca: {what}: the CA's certificate expires {rfc3339(ca_expires)}, before "
                              f"{days} days from now: renew the CA, or ask for fewer validity_days")
        args: dict[str, Any] = {
            "CertificateAuthorityArn": self._ca, "Csr": request.csr_pem(names), "SigningAlgorithm": signing,
            "Validity": {"Value": days, "Type": "DAYS"},
            "IdempotencyToken": idempotency_token(self.order, request.request, request.public_key, signing,
                                                  request.csr)}
        if self.order.template_arn:
            args["TemplateArn"] = self.order.template_arn
        arn = str(_call(what, "IssueCertificate", lambda: client.issue_certificate(**args))["CertificateArn"])
        self._wait(client, arn, what)
        got = _call(what, "GetCertificate", lambda: client.get_certificate(CertificateAuthorityArn=self._ca,
                                                                           CertificateArn=arn))
        return self._accepted(got, request, names, days, what)

    def _wait(self, client: Any, arn: str, what: str) -> None:
        """Until GetCertificate answers with the certificate (botocore's `certificate_issued` waiter), at most
        `issue_timeout_seconds`."""
        from botocore.exceptions import WaiterError

        attempts = max(1, self.order.issue_timeout_seconds // POLL_SECONDS)
        try:
            client.get_waiter("certificate_issued").wait(
                CertificateAuthorityArn=self._ca, CertificateArn=arn,
                WaiterConfig={"Delay": POLL_SECONDS, "MaxAttempts": attempts})
        except WaiterError as err:
            last: dict[str, Any] = dict(err.last_response) if isinstance(err.last_response, dict) else {}
            error = last.get("Error") or {}
            if error.get("Code") in (None, "RequestInProgressException"):
                raise RetryableError(f"aws_pca: {what}: {arn} was not issued within "
                                     f"{self.order.issue_timeout_seconds} s (AWS still says RequestInProgress): "
                                     "the next `pulumi up` asks again") from None
            raise failure(what, "GetCertificate", _Answered(last)) from None
        except Exception as err:  # noqa: BLE001
            raise failure(what, "GetCertificate", err) from None

    def _accepted(self, got: dict[str, Any], request: IssueRequest, names: list[str], days: int,
                  what: str) -> Issued:
        certs = _load(got.get("Certificate"))
        if not certs:
            raise AwsPcaError(f"aws_pca: {what}: GetCertificate returned no certificate")
        leaf, above = certs[0], _load(got.get("CertificateChain"))
        wrong = issued_mismatch(leaf, request.public_key, names)
        if wrong:
            raise AwsPcaError(f"aws_pca: {what}: {wrong}")
        if above and not x509util.signed_by(leaf, above[0]):
            raise AwsPcaError(f"aws_pca: {what}: the chain AWS returned does not start with the leaf's issuer "
                              f"({x509util.describe(above[0])}); refusing it")
        chain = tuple(c for c in above if not x509util.is_self_issued(c))  # the root is left out, as for every issuer
        notes = []
        lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
        if abs(lifetime - dt.timedelta(days=days)) > dt.timedelta(days=1):
            notes.append(f"the CA issued it for {lifetime.days} days, not the {days} asked for (validity_days); "
                         "renewal follows the certificate's own expiry")
        return Issued(leaf=leaf, chain=chain, notes=tuple(notes))

    def revoke(self, leaf: x509.Certificate) -> bool:
        """RevokeCertificate with `revoke_reason`, when `revoke_on_destroy` asks; False when not asked, expired, or
        already revoked."""
        if not self.order.revoke_on_destroy or leaf.not_valid_after_utc <= real_now():
            return False
        serial = serial_for_aws(leaf)
        what = f"revoking serial {serial} at {self._ca}"
        client = self._client()
        try:
            client.revoke_certificate(CertificateAuthorityArn=self._ca, CertificateSerial=serial,
                                      RevocationReason=self.order.revoke_reason)
        except Exception as err:  # noqa: BLE001
            if _code(err) == "RequestAlreadyProcessedException":
                return False
            raise failure(what, "RevokeCertificate", err, then="; to destroy without revoking, set "
                          "revoke_on_destroy: false and run `pulumi up` first") from None
        return True


class _Answered(Exception):
    """A waiter's last answer as an error, for `failure` (it reads `response`)."""

    def __init__(self, response: dict[str, Any]) -> None:
        super().__init__(str((response.get("Error") or {}).get("Message") or ""))
        self.response = response


def _family(algorithm: str) -> str:
    if algorithm.endswith(("WITHRSA", "WITHRSA_PSS")):
        return "RSA"
    if algorithm.endswith("WITHECDSA"):
        return "ECDSA"
    return algorithm  # SM2 and each ML-DSA size: one algorithm each


class AwsPcaPlugin(IssuerPlugin[AwsPcaSettings, AwsPcaOrder, Model]):
    kind = KIND
    settings = AwsPcaSettings
    order = AwsPcaOrder

    def order_values(self, settings: AwsPcaSettings) -> dict[str, Any]:
        return {k: v for k, v in settings.wire().items() if k not in IssuerSettings.model_fields}  # not the order's

    def check(self, order: AwsPcaOrder, request: CertificateRequest, key: KeySpec | None) -> None:
        if key is not None and key.algorithm == "ed25519":
            raise InvalidInputError("key", "AWS Private CA does not sign Ed25519 keys: use rsa or ecdsa")
        if not request.domains:
            raise InvalidInputError("domains", "an aws_pca certificate needs at least one domain")
        if request.ip_addresses:
            raise InvalidInputError("ip_addresses", "not supported for aws_pca certificates yet")
        if request.is_ca:
            raise InvalidInputError("is_ca", "aws_pca issues end-entity certificates only")

    def check_csr(self, order: AwsPcaOrder, request: CertificateRequest, csr: x509.CertificateSigningRequest) -> None:
        """The CSR's key is one AWS Private CA signs, as `check` asks of a key certplane generates."""
        if isinstance(csr_public_key(csr), ed25519.Ed25519PublicKey):
            raise InvalidInputError("csr_pem", "the CSR's key is Ed25519, which AWS Private CA does not sign: make "
                                               "the CSR with an RSA or ECDSA key")

    def default_validity_days(self, settings: AwsPcaSettings) -> int | None:
        return DEFAULT_VALIDITY_DAYS

    def build(self, order: AwsPcaOrder, credentials: Model | None) -> AwsPcaIssuer:
        return AwsPcaIssuer(order)


PLUGIN = AwsPcaPlugin()
