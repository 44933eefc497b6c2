"""Keys kept out of state (`key_storage`), on the real engine: the state and `pulumi stack export --show-secrets`
hold a reference and the public key, never a private key (not even encrypted), through issue, renewal, a failed
deploy and destroy; the store holds the current key and the one before it; the deploy target serves the stored key.

The CA's keys are kept the same ways: the root in a directory standing for a removable drive, unplugged while
the intermediate goes on signing day to day."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import boto3
import pytest

from providers.core import certificates as x509util
from providers.core import keys
from tools.servers.moto import DUMMY_ENV, MotoServer

from .harness import EngineProject, changed_steps, from_now

pytestmark = pytest.mark.integration

RENEWAL_DUE = {"CERTPLANE_NOW": from_now(75)}  # the leaves live 90 days: due at two thirds
KEY_MARKER = "PRIVATE KEY"


def no_key_anywhere(project: EngineProject) -> None:
    """Neither the state file nor the export with every secret shown holds a private key."""
    shown = json.dumps(project.stack.export_stack().deployment)
    assert KEY_MARKER not in shown, "a private key is in `stack export --show-secrets`"
    assert KEY_MARKER not in project.state_text()


def key_files(store: Path) -> list[Path]:
    return sorted(store.rglob("*.pem"))


def served_key_matches(certs: Path, name: str) -> str:
    """The files target's key is the served certificate's; its SPKI fingerprint."""
    leaf = x509util.load_certificates((certs / f"{name}.crt").read_text())[0]
    key = keys.load_private_key((certs / f"{name}.key").read_text())
    x509util.check_key_pair(key, leaf)
    return keys.public_key_fingerprint_sha256(key)


def test_file_key_storage_keeps_every_key_out_of_state(tmp_path: Path) -> None:
    store, drive, certs = tmp_path / "keys", tmp_path / "usb-drive", tmp_path / "certs"
    fail_once = tmp_path / "fail-next-reload"  # the reload command fails once while it exists
    store.mkdir(mode=0o700)
    drive.mkdir(mode=0o700)
    in_store = {"type": "file", "directory": str(store)}
    config: dict[str, Any] = {
        "issuers": {"ca": {"type": "private_ca", "common_name": "Custody Root", "intermediate": True,
                           "root_key_storage": {"type": "file", "directory": str(drive)},
                           "intermediate_key_storage": in_store}},
        "certificates": {"www": {"domains": ["www.example.test"], "issuer": "ca", "key_storage": in_store,
                                 "bindings": [{"target": "disk"}]}},
        "targets": {"disk": {"type": "files", "directory": str(certs), "formats": ["pem"],
                             "reload_command": ["sh", "-c", f"if [ -e {fail_once} ]; then rm {fail_once}; exit 1; fi"]}},
    }
    project = EngineProject(tmp_path, config)
    try:
        project.up()
        no_key_anywhere(project)
        first = served_key_matches(certs, "www")
        assert len(key_files(drive)) == 1, "the root's key is on the drive"
        assert len(key_files(store)) == 2, "the intermediate's key and www's"
        for path in [*key_files(store), *key_files(drive)]:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
            assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700, path.parent
        ref = project.outputs()["certificates"]["www"]["private_key_ref"]
        assert ref.startswith("file:") and str(store) in ref
        assert "private_key_pem" not in project.outputs()["certificates"]["www"]

        # The drive is unplugged: the intermediate signs the renewal, the root is not needed.
        drive.rename(tmp_path / "drive-unplugged")
        project.up(RENEWAL_DUE)
        no_key_anywhere(project)
        second = served_key_matches(certs, "www")
        assert second != first, "a renewal makes a new key"
        www_keys = [p for p in key_files(store) if "www" in p.parent.name]
        assert {p.stem for p in www_keys} == {first[:16], second[:16]}, "the current key and the one before it"

        # A deploy that fails (a re-issue for a new name): the new key is in the store before the certificate is
        # issued, the binding keeps serving the previous one (still in the store), and the next `up` deploys it.
        config["certificates"]["www"]["domains"].append("app.example.test")
        project.set_config(config)
        fail_once.write_text("")
        with pytest.raises(Exception, match="previous files restored"):
            project.up()
        assert served_key_matches(certs, "www") == second
        www_keys = [p for p in key_files(store) if "www" in p.parent.name]
        assert len(www_keys) == 2 and second[:16] in {p.stem for p in www_keys}
        no_key_anywhere(project)
        project.up()
        third = served_key_matches(certs, "www")
        assert third not in (first, second)
        assert {p.stem for p in key_files(store) if "www" in p.parent.name} == {second[:16], third[:16]}
        assert changed_steps(project.preview()) == {}
    finally:
        if (tmp_path / "drive-unplugged").exists():
            (tmp_path / "drive-unplugged").rename(drive)  # plugged in again: destroy removes the root's key too
        project.destroy()
    assert key_files(store) == [] and key_files(drive) == [], "destroy removes the keys it made"


def test_aws_secretsmanager_key_storage(tmp_path: Path, moto: MotoServer) -> None:
    certs = tmp_path / "certs"
    storage = {"type": "aws_secretsmanager", "region": "us-east-1", "endpoint_url": moto.endpoint_url,
               "prefix": "certplane/test/", "recovery_window_days": 0}
    project = EngineProject(tmp_path, {
        "issuers": {"ca": {"type": "private_ca", "common_name": "Secrets Root", "root_key_storage": storage}},
        "certificates": {"api": {"domains": ["api.example.test"], "issuer": "ca", "key_storage": storage,
                                 "bindings": [{"target": "disk"}]}},
        "targets": {"disk": {"type": "files", "directory": str(certs), "formats": ["pem"]}},
    }, extra_env=dict(DUMMY_ENV))
    sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=moto.endpoint_url)

    def secrets() -> list[dict[str, Any]]:
        return [s for s in sm.list_secrets()["SecretList"] if s["Name"].startswith("certplane/test/api")]

    try:
        project.up()
        first = served_key_matches(certs, "api")
        found = secrets()
        assert len(found) == 1, "one secret for api's key (the root's is another)"
        ref = project.outputs()["certificates"]["api"]["private_key_ref"]
        assert ref.startswith("aws_secretsmanager:") and found[0]["ARN"] in ref
        state = json.dumps(project.stack.export_stack().deployment)
        assert KEY_MARKER not in state
        project.up(RENEWAL_DUE)
        second = served_key_matches(certs, "api")
        assert second != first
        versions = sm.list_secret_version_ids(SecretId=found[0]["ARN"])["Versions"]
        stages = sorted(stage for v in versions for stage in v.get("VersionStages", []))
        assert stages == ["AWSCURRENT", "AWSPREVIOUS"], "the previous key is kept beside the current one"
        no_key_anywhere(project)
    finally:
        project.destroy()
    assert secrets() == [], "destroy removes the secret (recovery window 0)"


def test_a_stack_moves_its_keys_out_of_state_without_reissuing(tmp_path: Path) -> None:
    """Adopting key custody on a running stack, the CA's key and a certificate's: the same CA and certificate (same
    fingerprints, nothing re-issued or redeployed), their keys moved from state to the store."""
    store, certs = tmp_path / "keys", tmp_path / "certs"
    store.mkdir(mode=0o700)
    config: dict[str, Any] = {
        "issuers": {"ca": {"type": "private_ca", "common_name": "Moving Root"}},
        "certificates": {"www": {"domains": ["www.example.test"], "issuer": "ca", "bindings": [{"target": "disk"}]}},
        "targets": {"disk": {"type": "files", "directory": str(certs), "formats": ["pem"]}},
    }
    project = EngineProject(tmp_path, config)
    try:
        project.up()
        before = project.outputs()["inventory"]["www"]["serial"]
        root = project.outputs()["issuers"]["ca"]["levels"][0]["fingerprint_sha256"]
        key = served_key_matches(certs, "www")
        config["certificates"]["www"]["key_storage"] = {"type": "file", "directory": str(store)}
        config["issuers"]["ca"]["root_key_storage"] = {"type": "file", "directory": str(store)}
        project.set_config(config)
        assert changed_steps(project.preview()).get("update"), "the keys move (what depends on them is not known yet)"
        project.up()
        assert project.outputs()["inventory"]["www"]["serial"] == before, "not re-issued"
        assert project.outputs()["issuers"]["ca"]["levels"][0]["fingerprint_sha256"] == root, "the same CA"
        holding = {r["urn"].rsplit("::", 1)[-1] for r in project.stack.export_stack().deployment["resources"]
                   if KEY_MARKER in json.dumps(r)}
        assert holding == set(), f"{holding} still hold a private key"
        stored = key_files(store)
        assert key[:16] in [p.stem for p in stored] and len(stored) == 2, "the same keys, now in the store"
        assert changed_steps(project.preview()) == {}
    finally:
        project.destroy()


def test_an_offline_root_is_named_when_it_is_needed(tmp_path: Path) -> None:
    """Day to day the intermediate signs; when the intermediate itself is due, the root is needed: one line says
    which drive to plug in, and nothing under it changes."""
    drive = tmp_path / "usb-drive"
    drive.mkdir(mode=0o700)
    project = EngineProject(tmp_path, {
        "issuers": {"ca": {"type": "private_ca", "common_name": "Offline Root", "intermediate": True,
                           "intermediate_validity_days": 365,
                           "root_key_storage": {"type": "file", "directory": str(drive)}}},
        "certificates": {"www": {"domains": ["www.example.test"], "issuer": "ca", "validity_days": 30}},
    })
    try:
        project.up()
        drive.rename(tmp_path / "unplugged")
        with pytest.raises(Exception) as failed:
            project.up({"CERTPLANE_NOW": from_now(300)})  # the intermediate is due at two thirds of 365 days
        text = str(failed.value)
        assert f"key storage directory {drive} does not exist (is the drive mounted?)" in text, text
        assert "Traceback" not in text
        intermediate = project.outputs()["issuers"]["ca"]["levels"][1]["fingerprint_sha256"]
        (tmp_path / "unplugged").rename(drive)
        project.up({"CERTPLANE_NOW": from_now(300)})  # plugged in: the root signs the new intermediate
        assert project.outputs()["issuers"]["ca"]["levels"][1]["fingerprint_sha256"] != intermediate
    finally:
        if (tmp_path / "unplugged").exists():
            (tmp_path / "unplugged").rename(drive)
        project.destroy()
