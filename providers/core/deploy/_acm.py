"""ACM as the certificate store behind AWS targets (ELBv2 listeners, CloudFront distributions): import,
re-import into the same ARN on renewal (everything that uses the ARN follows), read back, delete.

ACM refuses a re-import that changes the key's type or size (RSA -> ECDSA, RSA 2048 -> 3072: "The key type and
size cannot be changed"), so `reimport_into` says whether a bundle can go into the ARN it replaces; when not,
the target imports it as a new certificate, points what used the old ARN at the new one, and deletes the old
one only once the new one is verified (RetiresReplaced), so a rollback can point back at it.

Clients are created per call from the target's AwsAccess; every failure is one DeployError line prefixed with
the target's kind.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .. import aws
from ..aws import AwsAccess
from ..certificates import fingerprint_of_pem, load_certificates
from ..errors import DeployError
from .base import Binding, Bundle

if TYPE_CHECKING:
    from mypy_boto3_acm import ACMClient


REPLACES_TAG = "certplane:replaces"  # on an import: the certificate it took the place of as a default

class Acm:
    def __init__(self, access: AwsAccess, what: str, *, region: str | None = None) -> None:
        self.access, self.what, self.region = access, what, region

    def client(self) -> ACMClient:
        return aws.call(self.what, "session", lambda: aws.client(self.access, "acm", region=self.region))  # type: ignore[no-any-return]

    def key_algorithm(self, arn: str) -> str | None:
        """What ACM says the certificate at `arn` holds (`RSA_2048`, `EC_prime256v1`, ...); None when it is gone,
        "" when ACM does not say."""
        acm = self.client()
        try:
            answer = acm.describe_certificate(CertificateArn=arn)
        except (acm.exceptions.ResourceNotFoundException, acm.exceptions.InvalidArnException):
            return None
        except Exception as err:  # noqa: BLE001
            raise DeployError(f"{self.what}: describe_certificate: {aws.describe_error(err)}") from None
        return _normal(str(answer.get("Certificate", {}).get("KeyAlgorithm") or ""))

    def reimport_into(self, arn: str | None, bundle: Bundle) -> tuple[str | None, str | None]:
        """(the ARN to re-import `bundle` into, the ARN it supersedes): (arn, None) for a renewal with the same
        key type and size; (None, arn) when the key changed, so it must be a new certificate; (None, None) when
        there is no ARN yet or it was deleted out of band."""
        if not arn:
            return None, None
        held = self.key_algorithm(arn)
        if held is None:
            return None, None
        if held and held != key_algorithm_of(bundle):
            return None, arn
        return arn, None

    def import_bundle(self, binding: Binding, bundle: Bundle, arn: str | None, *, replaces: str | None = None) -> str:
        """Into `arn` when given (a renewal: see reimport_into), else a new certificate tagged with the
        certificate, the binding and (`replaces`) the certificate it is about to take the place of, so a deploy
        killed after attaching it can be recognised and undone later (see binding_tags)."""
        acm = self.client()
        args: dict[str, Any] = {"Certificate": bundle.cert_pem.encode(), "PrivateKey": bundle.key_pem.encode()}
        if bundle.chain_pem.strip():
            args["CertificateChain"] = bundle.chain_pem.encode()
        if arn:
            try:
                return acm.import_certificate(CertificateArn=arn, **args)["CertificateArn"]
            except acm.exceptions.ResourceNotFoundException:
                pass  # deleted out of band: import afresh (the caller re-points whatever used it)
            except Exception as err:  # noqa: BLE001
                raise DeployError(f"{self.what}: import_certificate: {aws.describe_error(err)}") from None
        tags = [{"Key": "certplane:certificate", "Value": bundle.name},
                {"Key": "certplane:binding", "Value": binding.binding_id},
                *([{"Key": REPLACES_TAG, "Value": replaces}] if replaces else [])]
        return aws.call(self.what, "import_certificate",
                        lambda: acm.import_certificate(Tags=tags, **args))["CertificateArn"]  # type: ignore[arg-type]

    def binding_tags(self, arn: str) -> dict[str, str]:
        """The certplane tags of an ACM certificate (empty when it has none, is gone, or is not ACM's)."""
        acm = self.client()
        try:
            tags = acm.list_tags_for_certificate(CertificateArn=arn).get("Tags") or []
        except (acm.exceptions.ResourceNotFoundException, acm.exceptions.InvalidArnException):
            return {}
        except Exception as err:  # noqa: BLE001
            raise DeployError(f"{self.what}: list_tags_for_certificate: {aws.describe_error(err)}") from None
        return {t["Key"]: t.get("Value", "") for t in tags if t["Key"].startswith("certplane:")}

    def fingerprint(self, arn: str | None) -> str | None:
        """The leaf fingerprint ACM holds at `arn`; None when it is gone or not an ACM certificate."""
        if not arn:
            return None
        acm = self.client()
        try:
            return fingerprint_of_pem(acm.get_certificate(CertificateArn=arn).get("Certificate"))
        except (acm.exceptions.ResourceNotFoundException, acm.exceptions.InvalidArnException):
            return None  # gone, or not an ACM certificate (an IAM one): not ours, so not what we expect
        except Exception as err:  # noqa: BLE001
            raise DeployError(f"{self.what}: get_certificate: {aws.describe_error(err)}") from None

    def delete(self, arn: str, *, tries: int = 6, interval: float = 2.0) -> None:
        """AWS refuses to delete a certificate for a while after it is detached: retry, bounded."""
        acm = self.client()
        for attempt in range(tries):
            try:
                acm.delete_certificate(CertificateArn=arn)
                return
            except acm.exceptions.ResourceNotFoundException:
                return
            except acm.exceptions.ResourceInUseException:
                if attempt + 1 == tries:
                    raise DeployError(f"{self.what}: ACM still reports {arn} in use after detaching it; wait for "
                                      "what used it to finish deploying (or detach it elsewhere), then run again") \
                        from None
                time.sleep(interval)
            except Exception as err:  # noqa: BLE001
                raise DeployError(f"{self.what}: delete_certificate: {aws.describe_error(err)}") from None


def key_algorithm_of(bundle: Bundle) -> str:
    """The bundle's key as ACM names key algorithms: `RSA_2048`, `EC_prime256v1`, `EC_secp384r1`, ..."""
    certs = load_certificates(bundle.cert_pem)
    key = certs[0].public_key() if certs else None
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA_{key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC_{_CURVES.get(key.curve.name, key.curve.name)}"
    return type(key).__name__


_CURVES = {"secp256r1": "prime256v1", "prime256v1": "prime256v1", "secp384r1": "secp384r1", "secp521r1": "secp521r1"}


def _normal(algorithm: str) -> str:
    """ACM's API says `RSA_2048`; its older answers (and the CLI's examples) say `RSA-2048`."""
    return algorithm.replace("-", "_")
