"""Shared state and key holders on the real engine (docs/TEAMS-state.md).

The same stack lifecycle (up, preview, refresh, destroy) on each state backend a team can share: the `file://`
backend, `postgres://` (Debian's PostgreSQL, tools/servers/postgres.py) and `s3://` (moto's S3 through a custom
endpoint, as MinIO or any S3-compatible store is reached). What the backend stores is read back raw — the row
from PostgreSQL, the object from S3 — to prove the private keys are ciphertext there. Two `pulumi up` on one
stack: the second stops on the engine's lock and the first completes with nothing lost; a lock left by a killed
`up` is removed with `pulumi cancel`. And secrets by key
holder: the `awskms://` secrets provider (moto's KMS) instead of the passphrase, and what someone without
access to the key sees.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pulumi import automation as auto

from tools.servers.postgres import PostgresServer

from .harness import ROOT, EngineProject, changed_steps

pytestmark = pytest.mark.integration
# Only the lifecycle test destroys its stack (that is what it tests): the others' resources are files under
# tmp_path, their state a database, bucket or directory of their own that goes with the session's servers.

PULUMI = str(ROOT / ".tools" / "bin" / "pulumi")
REGION = "us-east-1"
PROJECT = "certplane"
LOCKED = ("error: the stack is currently locked by 1 lock(s). Either wait for the other process(es) to end or "
          "delete the lock file with `pulumi cancel`.")
NO_PASSPHRASE = {"PULUMI_CONFIG_PASSPHRASE": "not-the-passphrase"}  # a stack on KMS never asks for it
DYNAMIC = ("ca-root-key", "ca-root", "www", "www--disk")  # the custom resources the stack's program creates


def config(tmp_path: Path) -> dict[str, Any]:
    """A private CA and one certificate deployed to a directory."""
    return {
        "issuers": {"ca": {"type": "private_ca", "common_name": "Team State Root"}},
        "certificates": {"www": {"domains": ["www.example.test"], "issuer": "ca", "validity_days": 30,
                                 "key": {"algorithm": "ecdsa", "curve": "P-256"},
                                 "bindings": [{"target": "disk"}]}},
        "targets": {"disk": {"type": "files", "directory": str(tmp_path / "certs"), "formats": ["pem"]}},
    }


def aws_client(service: str, endpoint_url: str) -> Any:
    """A client for moto with its dummy keys."""
    import boto3

    make: Any = boto3.client
    return make(service, region_name=REGION, endpoint_url=endpoint_url, aws_access_key_id="testing",
                aws_secret_access_key="testing")


def counts(summary: auto.UpdateSummary) -> dict[str, int]:
    """The operation counts of an up, refresh or destroy, e.g. {"create": 8}."""
    return {str(getattr(op, "value", op)): n for op, n in (summary.resource_changes or {}).items()}


@dataclass
class StateStore:
    """A backend a team shares, and a raw view of what it stores (what anyone with access to the store reads)."""

    kind: str
    url: str
    list_keys: Callable[[str], list[str]]  # keys under a prefix, relative to the backend's root
    read_key: Callable[[str], bytes]
    env: dict[str, str] = field(default_factory=dict)
    secret: str = ""  # the store's own credential, which the engine must never print

    def stack_text(self, stack: str) -> str:
        """The stack's checkpoint exactly as stored."""
        return self.read_key(f".pulumi/stacks/{PROJECT}/{stack}.json").decode()

    def checkpoint(self, stack: str) -> dict[str, Any]:
        return dict(json.loads(self.stack_text(stack))["checkpoint"]["latest"])

    def locks(self, stack: str) -> list[str]:
        return self.list_keys(f".pulumi/locks/organization/{PROJECT}/{stack}/")


def file_store(root: Path) -> StateStore:
    root.mkdir(parents=True)

    def keys(prefix: str) -> list[str]:
        base = root / prefix
        return sorted(p.relative_to(root).as_posix() for p in base.rglob("*") if p.is_file()) if base.is_dir() else []

    return StateStore("file", f"file://{root}", list_keys=keys, read_key=lambda key: (root / key).read_bytes())


def postgres_store(server: PostgresServer) -> StateStore:
    """A database of its own in the session's cluster. The backend keeps each blob as a row of `pulumi_state`
    (key `<database>/<path>`, data `{"data": base64}`); the table is created by the engine on first use."""
    database = f"t{uuid.uuid4().hex[:10]}"
    url = server.create_database(database)

    def keys(prefix: str) -> list[str]:
        assert "'" not in prefix
        rows = server.psql(f"SELECT key FROM pulumi_state WHERE key LIKE '{database}/{prefix}%' ORDER BY key",
                           database=database)
        return [line.removeprefix(f"{database}/") for line in rows.splitlines() if line]

    def read(key: str) -> bytes:
        assert "'" not in key
        row = server.psql(f"SELECT data->>'data' FROM pulumi_state WHERE key = '{database}/{key}'",
                          database=database).strip()
        if not row:
            raise FileNotFoundError(key)
        return base64.b64decode(row)

    return StateStore("postgres", url, list_keys=keys, read_key=read, secret=server.password)


def s3_store(endpoint_url: str, env: dict[str, str]) -> StateStore:
    """A new bucket on moto's S3, reached as any S3-compatible store is: a custom endpoint, path-style."""
    bucket = f"certplane-state-{uuid.uuid4().hex[:10]}"
    s3 = aws_client("s3", endpoint_url)
    s3.create_bucket(Bucket=bucket)

    def keys(prefix: str) -> list[str]:
        found = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents") or []
        return sorted(str(o["Key"]) for o in found)

    def read(key: str) -> bytes:
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    url = (f"s3://{bucket}?endpoint={endpoint_url}&use_path_style=true&region={REGION}"
           "&response_checksum_validation=when_required")  # else the SDK warns on each read: moto sends no checksums
    return StateStore("s3", url, env=env, list_keys=keys, read_key=read)


@pytest.fixture
def aws_env(moto_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """moto's dummy credentials for the engine (S3 backend, KMS secrets), and none of the developer's own AWS
    configuration (profiles, credential files) in the way."""
    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
                "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_KMS"):
        monkeypatch.delenv(key, raising=False)
    return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
            "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials")}


@pytest.fixture(params=["file", "postgres", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> StateStore:
    if request.param == "file":
        return file_store(tmp_path / "team-state")
    if request.param == "postgres":
        return postgres_store(request.getfixturevalue("postgres"))
    return s3_store(request.getfixturevalue("moto_url"), request.getfixturevalue("aws_env"))


def new_project(tmp_path: Path, store: StateStore, **kwargs: Any) -> EngineProject:
    return EngineProject(tmp_path / "p", config(tmp_path), backend_url=store.url, extra_env=store.env, **kwargs)


def assert_keys_are_ciphertext(text: str, project: EngineProject, where: str) -> None:
    """No private key in `text` (the raw stored state), in PEM or as the base64 body of the key itself; the key
    outputs are Pulumi secrets (ciphertext)."""
    assert "PRIVATE KEY" not in text, where
    key = project.outputs()["certificates"]["www"]["private_key_pem"]
    body = "".join(key.strip().splitlines()[1:-1])
    assert len(body) > 40 and body[:40] not in text and body[-40:] not in text, where
    resources = json.loads(text)["checkpoint"]["latest"]["resources"]
    cert = next(r for r in resources if r["urn"].endswith("dynamic/certplane:Certificate::www"))
    stored = cert["outputs"]["private_key_pem"]
    assert stored["4dabf18193072939515e22adb298388d"] == "1b47061264138c4ac30d75fd1eb44270", where
    assert stored["ciphertext"], where


def dynamic_names(checkpoint: dict[str, Any]) -> list[str]:
    return sorted(r["urn"].rsplit("::", 1)[1] for r in checkpoint.get("resources") or []
                  if "pulumi-python:dynamic" in r["type"])


def test_up_preview_refresh_destroy_on_each_backend(tmp_path: Path, store: StateStore) -> None:
    project = new_project(tmp_path, store)
    destroyed = False
    try:
        up = project.up()
        assert up.summary.result == "succeeded"
        assert counts(up.summary) == {"create": 8}
        assert (tmp_path / "certs" / "www.key").is_file() and (tmp_path / "certs" / "www.fullchain.pem").is_file()

        stored = store.stack_text(project.stack_name)
        assert dynamic_names(store.checkpoint(project.stack_name)) == sorted(DYNAMIC)
        assert_keys_are_ciphertext(stored, project, f"{store.kind} backend")
        assert json.loads(stored)["checkpoint"]["latest"]["secrets_providers"]["type"] == "passphrase"

        assert changed_steps(project.preview()) == {}
        refresh = project.stack.refresh(color="never")
        assert counts(refresh.summary) == {"same": 8}
        assert store.locks(project.stack_name) == []  # every operation released its lock

        gone = project.destroy()
        destroyed = True
        assert counts(gone.summary) == {"delete": 8}
        assert not (tmp_path / "certs" / "www.key").exists()
        assert dynamic_names(store.checkpoint(project.stack_name)) == []
    finally:
        if not destroyed:
            project.destroy()


def cli_up(project: EngineProject) -> subprocess.Popen[str]:
    """`pulumi up` as a person (or a CI job) runs it, in a process group of its own."""
    return subprocess.Popen([PULUMI, "up", "--yes", "--stack", project.stack_name, "--cwd", str(project.dir),
                             "--non-interactive", "--color", "never"],
                            env={**os.environ, **project.env}, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for_lock(store: StateStore, stack: str, first: subprocess.Popen[str], timeout: float = 60.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if first.poll() is not None:
            out, err = first.communicate(timeout=10)
            raise AssertionError(f"the first up ended (exit {first.returncode}) before its lock was seen: {out}{err}")
        locks = store.locks(stack)
        if locks:
            return locks
        time.sleep(0.05)
    raise AssertionError(f"no lock appeared in the {store.kind} backend within {timeout:g} s")


def test_a_second_up_on_the_same_stack_stops_on_the_lock_and_nothing_is_lost(tmp_path: Path,
                                                                              store: StateStore) -> None:
    """The first `up` takes the stack's lock; it is frozen (SIGSTOP, its whole process group) while the second
    runs, so the two overlap every time on a machine of any speed, then resumed and left to finish."""
    project = new_project(tmp_path, store)
    first = cli_up(project)
    try:
        locks = wait_for_lock(store, project.stack_name, first)
        os.killpg(first.pid, signal.SIGSTOP)
        try:
            second = subprocess.run([PULUMI, "up", "--yes", "--stack", project.stack_name, "--cwd", str(project.dir),
                                     "--non-interactive", "--color", "never"], env={**os.environ, **project.env},
                                    stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180)
            assert store.locks(project.stack_name) == locks  # the second neither took nor removed a lock
        finally:
            os.killpg(first.pid, signal.SIGCONT)
        said = second.stdout + second.stderr
        assert second.returncode != 0, said
        assert LOCKED in second.stderr, said
        lines = [line for line in second.stderr.splitlines() if line.strip()]
        assert lines[0] == LOCKED and len(lines) == 2, said  # the lock's own line: where, who, pid, when
        assert f"(pid {first.pid}) at " in lines[1] and locks[0].rsplit("/", 1)[1] in lines[1], said
        if store.secret:
            assert store.secret not in said  # the lock's URL is printed with the credentials masked

        out, err = first.communicate(timeout=300)
        assert first.returncode == 0, out + err
        assert "Resources:\n    + 8 created" in out, out

        checkpoint = store.checkpoint(project.stack_name)
        assert dynamic_names(checkpoint) == sorted(DYNAMIC)
        assert len(checkpoint["resources"]) == 9  # the stack, the provider, the fleet and its components too
        assert store.locks(project.stack_name) == []
        assert changed_steps(project.preview()) == {}
        assert (tmp_path / "certs" / "www.key").is_file()
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGCONT)
            try:
                first.communicate(timeout=300)
            except subprocess.TimeoutExpired:
                os.killpg(first.pid, signal.SIGKILL)
                first.communicate(timeout=30)


def test_a_stale_lock_from_a_killed_up_is_removed_with_pulumi_cancel(tmp_path: Path,
                                                                    postgres: PostgresServer) -> None:
    """An `up` killed outright (a CI runner lost) leaves its lock behind: the next `up` names it, and
    `pulumi cancel` (what the engine's message says) removes it, after which `up` runs."""
    store = postgres_store(postgres)
    project = new_project(tmp_path, store)
    first = cli_up(project)
    try:
        locks = wait_for_lock(store, project.stack_name, first)
        os.killpg(first.pid, signal.SIGKILL)  # still in its preview: nothing of the update has started
        first.communicate(timeout=30)
        assert store.locks(project.stack_name) == locks
        blocked = subprocess.run([PULUMI, "up", "--yes", "--stack", project.stack_name, "--cwd", str(project.dir),
                                  "--non-interactive", "--color", "never"], env={**os.environ, **project.env},
                                 stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180)
        assert blocked.returncode != 0 and LOCKED in blocked.stderr, blocked.stdout + blocked.stderr
        assert f"(pid {first.pid}) at " in blocked.stderr

        cancel = project.cli("cancel", "--yes")
        assert cancel.strip() == f"The currently running update for '{project.stack_name}' has been canceled!"
        assert store.locks(project.stack_name) == []
        assert counts(project.up().summary) == {"create": 8}
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.communicate(timeout=30)


@dataclass
class KmsKey:
    key_id: str
    alias: str
    provider_url: str


@pytest.fixture
def kms_key(moto_url: str) -> Iterator[KmsKey]:
    """A customer managed key on moto's KMS, with an alias; the secrets provider URL that names it."""
    kms = aws_client("kms", moto_url)
    key_id = str(kms.create_key(Description="certplane stack secrets")["KeyMetadata"]["KeyId"])
    alias = f"alias/certplane-{uuid.uuid4().hex[:8]}"
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    yield KmsKey(key_id, alias, f"awskms://{alias}?region={REGION}&endpoint={moto_url}")  # see docs/TEAMS-state.md
    kms.delete_alias(AliasName=alias)
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)


def other_account_env(moto_url: str) -> dict[str, str]:
    """Credentials of someone who is not a holder of the key: a role in another AWS account."""
    creds = aws_client("sts", moto_url).assume_role(RoleArn="arn:aws:iam::210987654321:role/no-kms-access",
                                                   RoleSessionName="teammate")["Credentials"]
    return {"AWS_ACCESS_KEY_ID": creds["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
            "AWS_SESSION_TOKEN": creds["SessionToken"]}


def assert_kms_state(text: str, project: EngineProject, key: KmsKey, moto_url: str) -> None:
    """The stored state names the key and holds the data key only as KMS ciphertext."""
    provider = json.loads(text)["checkpoint"]["latest"]["secrets_providers"]
    assert provider["type"] == "cloud" and provider["state"]["url"] == key.provider_url, provider
    wrapped = base64.b64decode(provider["state"]["encryptedkey"])
    answer = aws_client("kms", moto_url).decrypt(CiphertextBlob=wrapped)  # a key holder can unwrap it
    assert answer["KeyId"].endswith(key.key_id)
    data_key = bytes(answer["Plaintext"])
    assert len(data_key) == 32
    assert base64.b64encode(data_key).decode() not in text and data_key.hex() not in text
    assert_keys_are_ciphertext(text, project, "state with awskms secrets")


def assert_no_key_holder_cannot_preview(project: EngineProject, moto_url: str) -> str:
    """Someone with the stack file and the state but not the key: `preview` stops at once, one line, nothing
    decrypted. Returns that line."""
    other = {**other_account_env(moto_url), **NO_PASSPHRASE}
    out = subprocess.run([PULUMI, "preview", "--stack", project.stack_name, "--cwd", str(project.dir),
                          "--non-interactive", "--color", "never"], env={**os.environ, **project.env, **other},
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180)
    said = out.stdout + out.stderr
    assert out.returncode != 0, said
    lines = [line for line in said.splitlines() if line.strip()]
    assert len(lines) == 1, said  # one line, from the engine, before the program runs
    assert lines[0].startswith("error: getting stack configuration: get stack secrets manager: "), said
    assert "operation error KMS: Decrypt" in lines[0] and "AccessDeniedException" in lines[0], said
    assert "PRIVATE KEY" not in said and "CERTIFICATE" not in said
    key = project.outputs()["certificates"]["www"]["private_key_pem"]  # a key holder reads it
    assert "".join(key.strip().splitlines()[1:-1])[:40] not in said
    return lines[0]


def test_stack_secrets_by_a_kms_key_holder(tmp_path: Path, kms_key: KmsKey, moto_url: str,
                                           aws_env: dict[str, str]) -> None:
    """`pulumi stack init --secrets-provider awskms://...` on a shared S3 backend: no passphrase anywhere."""
    store = s3_store(moto_url, aws_env)
    project = EngineProject(tmp_path / "p", config(tmp_path), backend_url=store.url,
                            secrets_provider=kms_key.provider_url, extra_env={**aws_env, **NO_PASSPHRASE})
    stack_file = (project.dir / f"Pulumi.{project.stack_name}.yaml").read_text()
    assert f"secretsprovider: {kms_key.provider_url}" in stack_file and "encryptedkey: " in stack_file
    up = project.up()
    assert up.summary.result == "succeeded"
    assert_kms_state(store.stack_text(project.stack_name), project, kms_key, moto_url)
    assert changed_steps(project.preview()) == {}
    assert_no_key_holder_cannot_preview(project, moto_url)


def test_a_passphrase_stack_moves_to_kms_with_change_secrets_provider(tmp_path: Path, kms_key: KmsKey,
                                                                       moto_url: str,
                                                                       aws_env: dict[str, str]) -> None:
    """`pulumi stack change-secrets-provider awskms://...`: every secret re-encrypted, the plan unchanged."""
    store = file_store(tmp_path / "team-state")
    project = EngineProject(tmp_path / "p", config(tmp_path), backend_url=store.url, extra_env=aws_env)
    project.up()
    before = project.outputs()["certificates"]["www"]["private_key_pem"]
    project.cli("stack", "change-secrets-provider", kms_key.provider_url)
    assert_kms_state(store.stack_text(project.stack_name), project, kms_key, moto_url)
    assert project.outputs()["certificates"]["www"]["private_key_pem"] == before
    assert changed_steps(project.preview(env=NO_PASSPHRASE)) == {}  # from now on: the key holders
    assert_no_key_holder_cannot_preview(project, moto_url)
