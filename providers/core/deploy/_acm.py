"""ACM as the certificate store behind AWS targets (ELBv2 listeners, CloudFront distributions): import,
re-import into the same ARN on renewal (everything that uses the ARN follows), read back, delete.

Clients are created per call from the target's AwsAccess; every failure is one DeployError line prefixed with
the target's kind.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .. import aws
from ..aws import AwsAccess
from ..certificates import fingerprint_of_pem
from ..errors import DeployError
from .base import Binding, Bundle

if TYPE_CHECKING:
    from mypy_boto3_acm import ACMClient


class Acm:
    def __init__(self, access: AwsAccess, what: str, *, region: str | None = None) -> None:
        self.access, self.what, self.region = access, what, region

    def client(self) -> ACMClient:
        return aws.call(self.what, "session", lambda: aws.client(self.access, "acm", region=self.region))  # type: ignore[no-any-return]

    def import_bundle(self, binding: Binding, bundle: Bundle, arn: str | None) -> str:
        """Into `arn` when given (a renewal), else a new certificate tagged with the certificate and binding."""
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
                {"Key": "certplane:binding", "Value": binding.binding_id}]
        return aws.call(self.what, "import_certificate",
                        lambda: acm.import_certificate(Tags=tags, **args))["CertificateArn"]  # type: ignore[arg-type]

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
