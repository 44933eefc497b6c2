"""PrivateKey: a generated key whose PEM is a Pulumi secret. Changing the algorithm replaces the key."""

from __future__ import annotations

import uuid
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource

from ._dynamic import CertplaneProvider, is_unknown, user_facing, without_provider
from .core import keys

SPEC_FIELDS = ("algorithm", "size", "curve")


class PrivateKeyProvider(CertplaneProvider):
    def validate(self, news: dict[str, Any]) -> dict[str, Any]:
        spec_raw = {k: news.get(k) for k in SPEC_FIELDS}
        if not is_unknown(spec_raw):
            spec = keys.KeySpec.parse(spec_raw, field="key")
            news.update({k: spec.as_dict().get(k) for k in SPEC_FIELDS})
        return news

    @user_facing("creating a private key")
    def create(self, props: dict[str, Any]) -> CreateResult:
        spec = keys.KeySpec.parse({k: props.get(k) for k in SPEC_FIELDS})
        key = keys.generate_private_key(spec)
        return CreateResult(
            f"key-{uuid.uuid4().hex[:12]}",
            {
                **without_provider(props),
                "private_key_pem": keys.private_key_to_pem(key),
                "public_key_pem": keys.public_key_pem(key),
                "public_key_fingerprint_sha256": keys.public_key_fingerprint_sha256(key),
                "key_algorithm": spec.label,
            },
        )

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in SPEC_FIELDS if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=changed, delete_before_replace=False)


class PrivateKey(Resource):
    """A private key. Outputs: private_key_pem (secret), public_key_pem, public_key_fingerprint_sha256."""

    private_key_pem: pulumi.Output[str]
    public_key_pem: pulumi.Output[str]
    public_key_fingerprint_sha256: pulumi.Output[str]
    key_algorithm: pulumi.Output[str]

    def __init__(self, name: str, *, algorithm: str = "ecdsa", size: int | None = None, curve: str | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        secret = pulumi.ResourceOptions(additional_secret_outputs=["private_key_pem"])
        super().__init__(
            PrivateKeyProvider(),
            name,
            {"algorithm": algorithm, "size": size, "curve": curve, "private_key_pem": None,
             "public_key_pem": None, "public_key_fingerprint_sha256": None, "key_algorithm": None},
            pulumi.ResourceOptions.merge(secret, opts),
        )
