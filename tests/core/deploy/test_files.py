"""The files target: atomic writes with modes, keystores, the reload command and its failures."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import jks
import pytest
from cryptography.hazmat.primitives.serialization import pkcs12

from providers.core import certificates as x509util
from providers.core import keys
from providers.core.deploy import DEFAULT, Binding, get_target
from providers.core.errors import DeployError, InvalidInputError
from tests.support.pki import LocalCa

BINDING = Binding("www--files", ("www.example.test",))


def mode(path: str | Path) -> int:
    return stat.S_IMODE(Path(path).stat().st_mode)


def test_writes_pem_pkcs12_and_jks_with_modes(tmp_path: Path, ca: LocalCa) -> None:
    target = get_target("files", {"directory": str(tmp_path / "out"), "formats": ["pem", "pkcs12", "jks"]})
    bundle = ca.bundle(["www.example.test"], password="changeit-123")
    live = target.deploy(BINDING, bundle)
    assert Path(live["fullchain_file"]).read_text() == bundle.fullchain_pem
    assert Path(live["key_file"]).read_text() == bundle.key_pem
    assert mode(live["key_file"]) == 0o600 and mode(live["pkcs12_file"]) == 0o600
    assert mode(live["cert_file"]) == 0o640 and mode(live["jks_file"]) == 0o600
    key, leaf, extra = pkcs12.load_key_and_certificates(Path(live["pkcs12_file"]).read_bytes(), b"changeit-123")
    assert x509util.fingerprint_sha256(leaf) == bundle.fingerprint_sha256 and len(extra) == 1  # type: ignore[arg-type]
    assert keys.same_public_key(key, leaf.public_key())  # type: ignore[arg-type, union-attr]
    store = jks.KeyStore.load(live["jks_file"], "changeit-123")
    assert list(store.private_keys) == ["www"] and len(store.private_keys["www"].cert_chain) == 2
    target.verify(BINDING.with_live(live), bundle)
    assert target.observe(BINDING.with_live(live)) == {DEFAULT: bundle.fingerprint_sha256}
    assert not [p for p in Path(live["directory"]).iterdir() if p.name.endswith(".tmp")]


def test_reload_command_runs_after_the_files_are_in_place(tmp_path: Path, ca: LocalCa) -> None:
    marker = tmp_path / "reloaded"
    out = tmp_path / "out"
    script = f"import shutil; shutil.copy('{out}/www.fullchain.pem', '{marker}')"
    target = get_target("files", {"directory": str(out), "mode": "0644", "reload_command": [sys.executable, "-c", script]})
    bundle = ca.bundle(["www.example.test"])
    live = target.deploy(BINDING, bundle)
    assert marker.read_text() == bundle.fullchain_pem
    assert mode(live["cert_file"]) == 0o644


def test_a_failed_reload_names_the_exit_code_and_restores_the_previous_files(tmp_path: Path, ca: LocalCa) -> None:
    out = tmp_path / "out"
    good = ca.bundle(["www.example.test"])
    live = get_target("files", {"directory": str(out)}).deploy(BINDING, good)
    # The command echoes the key to stderr first: certplane must not pass that on.
    failing = ["/bin/sh", "-c", f"cat {out}/www.key >&2; echo 'haproxy: config invalid' >&2; exit 3"]
    target = get_target("files", {"directory": str(out), "reload_command": failing})
    with pytest.raises(DeployError) as err:
        target.deploy(BINDING, ca.bundle(["www.example.test"]))
    assert str(err.value) == ("files: reload command /bin/sh failed (exit 3): haproxy: config invalid; "
                              "previous files restored")
    assert Path(live["fullchain_file"]).read_text() == good.fullchain_pem
    assert Path(live["key_file"]).read_text() == good.key_pem and mode(live["key_file"]) == 0o600
    leaky = ["/bin/sh", "-c", f"cat {out}/www.key >&2; exit 4"]
    with pytest.raises(DeployError) as err:
        get_target("files", {"directory": str(out), "reload_command": leaky}).deploy(BINDING, good)
    assert "PRIVATE KEY" not in str(err.value) and "(exit 4)" in str(err.value)


def test_a_hung_reload_command_is_bounded(tmp_path: Path, ca: LocalCa) -> None:
    target = get_target("files", {"directory": str(tmp_path), "reload_command": ["sleep", "30"], "reload_timeout": 1})
    with pytest.raises(DeployError) as err:
        target.deploy(BINDING, ca.bundle(["www.example.test"]))
    assert str(err.value) == "files: reload command: sleep did not finish within 1 s"


def test_drift_and_remove(tmp_path: Path, ca: LocalCa) -> None:
    target = get_target("files", {"directory": str(tmp_path)})
    ours = ca.bundle(["www.example.test"])
    binding = BINDING.with_live(target.deploy(BINDING, ours))
    other = ca.bundle(["www.example.test"])
    (tmp_path / "www.fullchain.pem").write_text(other.fullchain_pem)
    assert target.observe(binding) == {DEFAULT: other.fingerprint_sha256}
    with pytest.raises(DeployError) as err:
        target.verify(binding, ours)
    assert str(err.value) == (f"files: {tmp_path}/www.fullchain.pem holds {other.fingerprint_sha256}, "
                              f"expected {ours.fingerprint_sha256}")
    target.rollback(binding, ours)
    assert target.observe(binding) == {DEFAULT: ours.fingerprint_sha256}
    target.remove(binding)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".certplane.lock"]
    assert target.observe(binding) == {DEFAULT: None}


def test_keystores_need_a_password(tmp_path: Path, ca: LocalCa) -> None:
    target = get_target("files", {"directory": str(tmp_path), "formats": ["pkcs12"]})
    with pytest.raises(DeployError) as err:
        target.deploy(BINDING, ca.bundle(["www.example.test"]))
    assert str(err.value) == "files: pkcs12/jks need the certificate's keystore_password"


@pytest.mark.parametrize(("raw", "message"), [
    ({}, "directory: is required"),
    ({"directory": "/tmp/x", "mode": "rw-r--r--"}, "mode: 'rw-r--r--' is not an octal file mode like \"0640\""),
    ({"directory": "/tmp/x", "key_mode": "0644"}, "key_mode: a private key must not be readable or writable by others"),
    ({"directory": "/tmp/x", "owner": "no-such-user-certplane"}, "owner: no such user 'no-such-user-certplane'"),
    ({"directory": "/tmp/x", "group": "no-such-group-certplane"}, "group: no such group 'no-such-group-certplane'"),
    ({"directory": "/tmp/x", "formats": ["pem", "der"]}, "formats: must be a list of pem, pkcs12, jks"),
])
def test_bad_settings_name_the_field(raw: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        get_target("files", raw)
    assert str(err.value) == message
