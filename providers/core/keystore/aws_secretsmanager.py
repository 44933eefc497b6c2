"""`type: aws_secretsmanager`: one secret per owner, `<prefix><owner>`, one secret version per key.

Contracts:
- `put` is create_secret (the first key) or put_secret_value (the next ones), with the key's SPKI fingerprint
  as the ClientRequestToken: the version id *is* the key's fingerprint, so a retried put is the same version
  (Secrets Manager ignores a repeated token with the same value) and `get` proves it got the key it asked for.
  The reference is `aws_secretsmanager:<secret ARN>#<version id>`.
- Secrets Manager stages versions itself: put_secret_value moves AWSCURRENT to the new key and AWSPREVIOUS to
  the one before. `prune` removes the staging labels (AWSPREVIOUS, or any other) of versions not kept, never
  AWSCURRENT; a version with no label is deprecated, and Secrets Manager deletes deprecated versions on its own
  schedule (until then `get` by its version id still reads it). Nothing else deletes a single version.
- `delete` is delete_secret with `recovery_window_days` (0: ForceDeleteWithoutRecovery). A secret that is
  absent, or already scheduled for deletion, is fine. A secret scheduled for deletion keeps its name until the
  window ends, so a new secret of that name cannot be created meanwhile: the providers pass owners unique per
  resource (its name and resource id), so a replaced resource never needs its predecessor's name.
- Every failure is one KeyStoreError line (the secret, the operation, AWS's code and message); throttling and
  unreachable endpoints, after botocore's own bounded retries, are KeyStoreUnavailable (retryable).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from pydantic import BeforeValidator, field_validator

from .. import aws
from ..errors import InvalidInputError, KeyStoreError, KeyStoreUnavailable
from ..keys import PrivateKey, load_private_key, private_key_to_pem
from ..plugins import Factory
from ..validation import LOCATION
from .base import KeyStorageSettings, KeyStore, key_id, owner_segment

PREFIX = "aws_secretsmanager:"
T = TypeVar("T")
_NAME_CHARS = re.compile(r"^[A-Za-z0-9/_+=.@-]*$")  # what Secrets Manager allows in a secret name
_ARN = re.compile(r"^arn:[a-z-]+:secretsmanager:(?P<region>[a-z0-9-]+):\d{12}:secret:(?P<name>.+)-[A-Za-z0-9]{6}$")
_UNREACHABLE = {"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError",
                "ConnectionError"}
_TRANSIENT = {"InternalServiceError", "InternalFailure", "ServiceUnavailable", "ThrottlingException",
              "Throttling", "RequestTimeout", "RequestTimeoutException"}
MAX_PREFIX = 256
MAX_REASON = 300  # characters of AWS's own message in a line (an HTML error page is not a sentence)


def _recovery_window(value: Any) -> Any:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not (value == 0 or 7 <= value <= 30):
        raise InvalidInputError("", "must be 0 (delete at once, without recovery) or 7 to 30 days, as Secrets "
                                    "Manager allows")
    return value


class SecretsManagerSettings(KeyStorageSettings, aws.AwsAccess):
    """AWS access, plus: prefix (of every secret's name), kms_key_id (the KMS key that encrypts the secrets;
    AWS's default key when unset), recovery_window_days (how long a deleted key can be restored)."""

    prefix: Annotated[str, LOCATION] = "certplane/"
    kms_key_id: str | None = None
    recovery_window_days: Annotated[int, BeforeValidator(_recovery_window)] = 7

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not _NAME_CHARS.match(value):
            raise InvalidInputError("", f"{value!r} may hold only letters, digits and / _ + = . @ - (what Secrets "
                                        "Manager allows in a secret name)")
        if len(value) > MAX_PREFIX:
            raise InvalidInputError("", f"must be at most {MAX_PREFIX} characters")
        return value


@dataclass(frozen=True)
class SecretsManagerKeyStore:
    settings: SecretsManagerSettings
    kind: str = "aws_secretsmanager"

    def put(self, owner: str, key: PrivateKey) -> str:
        name, token, pem = self.secret_name(owner), key_id(key), private_key_to_pem(key)
        sm = self._client()
        kms = {"KmsKeyId": self.settings.kms_key_id} if self.settings.kms_key_id else {}
        made = self._call(name, "create_secret", lambda: sm.create_secret(
            Name=name, SecretString=pem, ClientRequestToken=token,
            Description="a private key certplane keeps out of Pulumi state", **kms),
            passes={"ResourceExistsException"})
        if made is None:
            made = self._call(name, "put_secret_value", lambda: sm.put_secret_value(
                SecretId=name, SecretString=pem, ClientRequestToken=token))
        arn = made.get("ARN") if isinstance(made, dict) else None
        if not isinstance(arn, str) or not arn:
            raise KeyStoreError(f"aws_secretsmanager: secret {name}: Secrets Manager returned no ARN")
        return f"{PREFIX}{arn}#{token}"

    def get(self, ref: str) -> PrivateKey:
        arn, version = self._parse(ref)
        sm = self._client()
        try:
            got = self._call(arn, "get_secret_value", lambda: sm.get_secret_value(SecretId=arn, VersionId=version),
                             passes={"ResourceNotFoundException"})
        except KeyStoreError as err:
            if "marked deleted" in str(err) or "scheduled for deletion" in str(err):
                raise KeyStoreError(f"aws_secretsmanager: the secret {arn} is scheduled for deletion: restore it "
                                    "(aws secretsmanager restore-secret) or re-key with reissue_before") from None
            raise
        if got is None:
            raise KeyStoreError(f"aws_secretsmanager: the key {version} of secret {arn} is gone: restore the "
                                "secret from backup, or re-key with reissue_before")
        pem = got.get("SecretString") if isinstance(got, dict) else None
        if not isinstance(pem, str):
            raise KeyStoreError(f"aws_secretsmanager: the secret {arn} version {version} holds no text: it is not a "
                                "key certplane stored")
        try:
            key = load_private_key(pem)
        except InvalidInputError as err:
            raise KeyStoreError(f"aws_secretsmanager: the secret {arn} version {version} is not a usable private "
                                f"key: {err.reason}") from None
        if key_id(key) != version:
            raise KeyStoreError(f"aws_secretsmanager: the secret {arn} version {version} holds another key than "
                                "its version id says: it was not written by certplane")
        return key

    def prune(self, owner: str, keep: Collection[str]) -> None:
        """Stage what is kept, in the order given (the current key, then the one before it): AWSCURRENT on the
        first, AWSPREVIOUS on the second, whatever a failed issue's `put` moved; every other version loses its
        labels (AWS then deprecates it). A reader of the secret by AWSCURRENT gets the key of the certificate in
        state, never an orphan."""
        name = self.secret_name(owner)
        kept: list[str] = []
        for ref in keep:
            with contextlib.suppress(KeyStoreError):  # another store's reference protects nothing here
                kept.append(self._parse(ref)[1])
        sm = self._client()
        found = self._call(name, "describe_secret", lambda: sm.describe_secret(SecretId=name),
                           passes={"ResourceNotFoundException"})
        if found is None or found.get("DeletedDate"):
            return  # nothing left to let go of
        for stage, wanted in zip(("AWSCURRENT", "AWSPREVIOUS"), kept):
            holder = self._holder(sm, name, stage)
            if holder != wanted:
                self._stage(sm, name, stage, wanted, holder)
        for version in self._versions(sm, name):
            vid = version.get("VersionId")
            if not isinstance(vid, str) or vid in kept:
                continue
            for stage in version.get("VersionStages", []):
                if stage != "AWSCURRENT":  # on a kept version once moved above; a secret always has one
                    self._unstage(sm, name, stage, vid)

    def _stage(self, sm: Any, name: str, stage: str, version: str, holder: str | None) -> None:
        moved = {"RemoveFromVersionId": holder} if holder else {}
        self._call(name, "update_secret_version_stage", lambda: sm.update_secret_version_stage(
            SecretId=name, VersionStage=stage, MoveToVersionId=version, **moved))

    def _versions(self, sm: Any, name: str) -> list[dict[str, Any]]:
        listed = self._call(name, "list_secret_version_ids",
                            lambda: sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=False),
                            passes={"ResourceNotFoundException"})
        return list((listed or {}).get("Versions", []))

    def _holder(self, sm: Any, name: str, stage: str) -> str | None:
        return next((str(v["VersionId"]) for v in self._versions(sm, name) if stage in v.get("VersionStages", [])),
                    None)

    def _unstage(self, sm: Any, name: str, stage: str, vid: str) -> None:
        self._call(name, "update_secret_version_stage", lambda: sm.update_secret_version_stage(
            SecretId=name, VersionStage=stage, RemoveFromVersionId=vid))

    def delete(self, owner: str) -> None:
        name = self.secret_name(owner)
        sm = self._client()
        found = self._call(name, "describe_secret", lambda: sm.describe_secret(SecretId=name),
                           passes={"ResourceNotFoundException"})
        if found is None or (found.get("DeletedDate") and self.settings.recovery_window_days):
            return
        window: dict[str, Any] = ({"ForceDeleteWithoutRecovery": True} if not self.settings.recovery_window_days
                                  else {"RecoveryWindowInDays": self.settings.recovery_window_days})
        try:
            self._call(name, "delete_secret", lambda: sm.delete_secret(SecretId=name, **window),
                       passes={"ResourceNotFoundException"})
        except KeyStoreError as err:
            if "marked deleted" not in str(err) and "scheduled for deletion" not in str(err):
                raise

    def location(self, owner: str) -> str:
        where = f" at {self.settings.endpoint_url}" if self.settings.endpoint_url else ""
        return f"the AWS Secrets Manager secret {self.secret_name(owner)} in {self.settings.region}{where}"

    def secret_name(self, owner: str) -> str:
        return self.settings.prefix + owner_segment(owner)

    # --- AWS, one line per failure ------------------------------------------------------------------------

    def _client(self) -> Any:
        return aws.client(self.settings, "secretsmanager")

    def _call(self, what: str, operation: str, fn: Callable[[], T], *, passes: Collection[str] = ()) -> T | None:
        """`fn()`; None when AWS answers with an error code in `passes`; any other failure one line."""
        try:
            return fn()
        except Exception as err:  # noqa: BLE001 - botocore errors have no common importable base worth typing
            response = getattr(err, "response", None)
            code = (response.get("Error") or {}).get("Code") if isinstance(response, dict) else None
            if code in passes:
                return None
            said = " ".join(aws.describe_error(err).split())  # one line, whatever the endpoint answered
            line = f"aws_secretsmanager: {what}: {operation}: {said[:MAX_REASON]}"
            if code in _TRANSIENT or type(err).__name__ in _UNREACHABLE:
                raise KeyStoreUnavailable(line) from None
            raise KeyStoreError(line) from None

    def _parse(self, ref: str) -> tuple[str, str]:
        """(ARN, version id) of a reference, refused unless it names a secret of this store (this region, this
        prefix)."""
        arn, _, version = ref.removeprefix(PREFIX).rpartition("#")
        match = _ARN.match(arn) if ref.startswith(PREFIX) and version else None
        if (match is None or match["region"] != self.settings.region
                or not match["name"].startswith(self.settings.prefix)):
            raise KeyStoreError(f"aws_secretsmanager: the key reference {ref!r} is not a secret of this key store "
                                f"(secrets named {self.settings.prefix}* in {self.settings.region})")
        return arn, version


def _build(settings: SecretsManagerSettings) -> KeyStore | None:
    return SecretsManagerKeyStore(settings)


PLUGIN: Factory[SecretsManagerSettings, KeyStore | None] = Factory("aws_secretsmanager", SecretsManagerSettings,
                                                                   _build)
