"""The Secrets Manager key store against moto on 127.0.0.1: one secret per owner, one version per key (its
SPKI fingerprint as the version id), deletion with and without a recovery window, and every failure one line.

What moto does not do, so these tests cannot check it: it never deletes deprecated (unlabelled) versions,
and it answers a put_secret_value on a secret scheduled for deletion instead of refusing it."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from providers.core import keys, keystore
from providers.core.errors import InvalidInputError, KeyStoreError, KeyStoreUnavailable
from providers.core.keystore.aws_secretsmanager import SecretsManagerKeyStore
from tools.servers.moto import MotoServer

REGION = "us-east-1"


def new_key() -> keys.PrivateKey:
    return keys.generate_private_key(keys.KeySpec("ecdsa", curve="P-256"))


def body(key: keys.PrivateKey) -> str:
    return "".join(keys.private_key_to_pem(key).splitlines()[1:-1])


def store(moto: MotoServer, **settings: Any) -> SecretsManagerKeyStore:
    built = keystore.build(keystore.parse_settings({"type": "aws_secretsmanager", "region": REGION,
                                                    "endpoint_url": moto.endpoint_url, **settings}))
    assert isinstance(built, SecretsManagerKeyStore)
    return built


def sm(moto: MotoServer) -> Any:
    return boto3.client("secretsmanager", region_name=REGION, endpoint_url=moto.endpoint_url)


def test_put_creates_one_secret_and_get_reads_the_key_by_its_reference(moto: MotoServer) -> None:
    key = new_key()
    ref = store(moto).put("www-1234", key)
    described = sm(moto).describe_secret(SecretId="certplane/www-1234")
    assert ref == f"aws_secretsmanager:{described['ARN']}#{keystore.key_id(key)}"
    assert keys.same_public_key(store(moto).get(ref), key)
    assert store(moto).location("www-1234") == (f"the AWS Secrets Manager secret certplane/www-1234 in {REGION} at "
                                                f"{moto.endpoint_url}")


def test_a_second_key_is_a_new_version_and_the_first_stays_readable(moto: MotoServer) -> None:
    s, first, second = store(moto), new_key(), new_key()
    old, new = s.put("www", first), s.put("www", second)
    assert old.split("#")[0] == new.split("#")[0] and old != new
    assert keys.same_public_key(s.get(old), first) and keys.same_public_key(s.get(new), second)
    stages = {v["VersionId"]: v["VersionStages"]
              for v in sm(moto).list_secret_version_ids(SecretId="certplane/www")["Versions"]}
    assert stages == {keystore.key_id(first): ["AWSPREVIOUS"], keystore.key_id(second): ["AWSCURRENT"]}


def test_putting_the_same_key_again_is_the_same_version(moto: MotoServer) -> None:
    s, key = store(moto), new_key()
    ref = s.put("www", key)
    assert s.put("www", key) == ref
    s.put("www", other := new_key())
    assert s.put("www", other) != ref
    versions = sm(moto).list_secret_version_ids(SecretId="certplane/www")["Versions"]
    assert len(versions) == 2


def test_prune_stages_what_is_kept_after_an_orphan_took_awscurrent(moto: MotoServer) -> None:
    """A failed issue after its put: the orphan holds AWSCURRENT; pruning with what state names puts the labels
    back on the certificate's keys (a reader by AWSCURRENT gets the key of the certificate in state)."""
    s = store(moto)
    previous, current = s.put("www", new_key()), s.put("www", new_key())
    orphan = s.put("www", new_key())
    s.prune("www", [current, previous])
    stages = {v["VersionId"]: v["VersionStages"]
              for v in sm(moto).list_secret_version_ids(SecretId="certplane/www", IncludeDeprecated=True)["Versions"]}
    assert stages[current.split("#")[1]] == ["AWSCURRENT"] and stages[previous.split("#")[1]] == ["AWSPREVIOUS"]
    assert stages.get(orphan.split("#")[1], []) == []


def test_prune_unstages_the_versions_not_kept_never_the_current(moto: MotoServer) -> None:
    s = store(moto)
    oldest, previous, current = (s.put("www", new_key()) for _ in range(3))
    s.prune("www", [current, previous])
    stages = {v["VersionId"]: v["VersionStages"]
              for v in sm(moto).list_secret_version_ids(SecretId="certplane/www")["Versions"]}
    assert stages[current.split("#")[1]] == ["AWSCURRENT"] and stages[previous.split("#")[1]] == ["AWSPREVIOUS"]
    s.prune("www", [current])
    stages = {v["VersionId"]: v["VersionStages"]
              for v in sm(moto).list_secret_version_ids(SecretId="certplane/www")["Versions"]}
    assert stages[previous.split("#")[1]] == [] and stages[current.split("#")[1]] == ["AWSCURRENT"]
    s.prune("www", [])  # the current version keeps its label: a secret always has one
    s.get(current)
    s.prune("nobody", [])  # no secret at all


@pytest.mark.parametrize("window", [0, 7])
def test_delete_with_and_without_a_recovery_window_then_get_fails(moto: MotoServer, window: int) -> None:
    s = store(moto, recovery_window_days=window)
    key = new_key()
    ref = s.put("www", key)
    s.delete("www")
    s.delete("www")
    with pytest.raises(KeyStoreError) as err:
        s.get(ref)
    arn = ref.removeprefix("aws_secretsmanager:").split("#")[0]
    line = str(err.value)
    assert "\n" not in line and arn in line and body(key) not in line
    if window:
        assert line == (f"aws_secretsmanager: the secret {arn} is scheduled for deletion: restore it "
                        "(aws secretsmanager restore-secret) or re-key with reissue_before")
        assert sm(moto).describe_secret(SecretId="certplane/www").get("DeletedDate")
    else:
        assert line == (f"aws_secretsmanager: the key {keystore.key_id(key)} of secret {arn} is gone: restore the "
                        "secret from backup, or re-key with reissue_before")
        assert sm(moto).list_secrets(IncludePlannedDeletion=True)["SecretList"] == []
    s.delete("never-stored")


def test_a_reference_of_another_prefix_or_region_or_store_is_refused(moto: MotoServer) -> None:
    ref = store(moto, prefix="team-a/").put("www", new_key())
    for s in (store(moto), store(moto, region="eu-west-1")):
        with pytest.raises(KeyStoreError) as err:
            s.get(ref)
        assert str(err.value) == (f"aws_secretsmanager: the key reference {ref!r} is not a secret of this key "
                                  f"store (secrets named {s.settings.prefix}* in {s.settings.region})")
    for bad in ("file:/keys/www/x.pem", ref.split("#")[0], "aws_secretsmanager:arn:aws:s3:::bucket#v"):
        with pytest.raises(KeyStoreError, match="is not a secret of this key store"):
            store(moto, prefix="team-a/").get(bad)


def test_a_version_that_is_not_a_certplane_key_is_one_line(moto: MotoServer) -> None:
    s, key = store(moto), new_key()
    ref = s.put("www", key)
    arn, version = ref.removeprefix("aws_secretsmanager:").split("#")
    impostor = "f" * 64
    sm(moto).put_secret_value(SecretId=arn, SecretString=keys.private_key_to_pem(other := new_key()),
                              ClientRequestToken=impostor)
    with pytest.raises(KeyStoreError) as err:
        s.get(f"aws_secretsmanager:{arn}#{impostor}")
    assert str(err.value) == (f"aws_secretsmanager: the secret {arn} version {impostor} holds another key than its "
                              "version id says: it was not written by certplane")
    assert body(other) not in str(err.value)
    sm(moto).put_secret_value(SecretId=arn, SecretString="hello", ClientRequestToken="e" * 64)
    with pytest.raises(KeyStoreError, match="is not a usable private key"):
        s.get(f"aws_secretsmanager:{arn}#{'e' * 64}")
    with pytest.raises(KeyStoreError) as err:
        s.get(f"aws_secretsmanager:{arn}#{'0' * 64}")
    assert "\n" not in str(err.value) and arn in str(err.value)
    assert keys.same_public_key(s.get(ref), key) and version == keystore.key_id(key)


def test_an_unreachable_endpoint_is_retryable_and_one_line(moto: MotoServer) -> None:  # moto: its dummy keys
    s = keystore.build(keystore.parse_settings({"type": "aws_secretsmanager", "region": REGION,
                                                "endpoint_url": "http://127.0.0.1:9"}))
    assert s is not None
    with pytest.raises(KeyStoreUnavailable) as err:
        s.delete("www")
    assert str(err.value).startswith("aws_secretsmanager: certplane/www: describe_secret: ")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("raw", "line"), [
    ({"recovery_window_days": 3}, "recovery_window_days: must be 0 (delete at once, without recovery) or 7 to 30 "
                                  "days, as Secrets Manager allows"),
    ({"recovery_window_days": 31}, "recovery_window_days: must be 0 (delete at once, without recovery) or 7 to 30 "
                                   "days, as Secrets Manager allows"),
    ({"prefix": "certplane keys/"}, "prefix: 'certplane keys/' may hold only letters, digits and / _ + = . @ - (what "
                                    "Secrets Manager allows in a secret name)"),
    ({"region": "mars"}, "region: 'mars' is not an AWS region like us-east-1"),
    ({"recovery_window": 7}, "recovery_window: unknown setting (did you mean recovery_window_days?)"),
])
def test_settings_are_validated_naming_the_field(raw: dict[str, Any], line: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        keystore.parse_settings({"type": "aws_secretsmanager", "region": REGION, **raw})
    assert str(err.value) == line


def test_settings_defaults_and_accepted_windows() -> None:
    for window in (0, 7, "30"):
        settings = keystore.parse_settings({"type": "aws_secretsmanager", "region": REGION,
                                            "recovery_window_days": window})
        assert keystore.is_external(settings)
    default = keystore.parse_settings({"type": "aws_secretsmanager", "region": REGION})
    assert keystore.REGISTRY.dump(default) == {"type": "aws_secretsmanager", "region": REGION,
                                               "prefix": "certplane/", "recovery_window_days": 7}
