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
from providers.core.deploy import DEFAULT, Binding, Bundle, get_target
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
        target.deploy(BINDING.with_live(live), ca.bundle(["www.example.test"]))
    assert str(err.value) == ("files: reload command /bin/sh failed (exit 3): haproxy: config invalid; "
                              "previous files restored")
    assert Path(live["fullchain_file"]).read_text() == good.fullchain_pem
    assert Path(live["key_file"]).read_text() == good.key_pem and mode(live["key_file"]) == 0o600
    leaky = ["/bin/sh", "-c", f"cat {out}/www.key >&2; exit 4"]
    with pytest.raises(DeployError) as err:
        get_target("files", {"directory": str(out), "reload_command": leaky}).deploy(BINDING.with_live(live), good)
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


# --- one consistent set, always (the kubelet layout: versioned directories behind a `current` link) -----------

def pair_of(directory: Path, name: str = "www") -> tuple[str, str] | None:
    """(fingerprint of `<name>.crt`, of `<name>.fullchain.pem`) when both and the key are readable and all three
    belong together; raises AssertionError for a mismatched set; None while there is no set at all."""
    try:
        cert = (directory / f"{name}.crt").read_text()
        full = (directory / f"{name}.fullchain.pem").read_text()
        key = keys.load_private_key((directory / f"{name}.key").read_text())
    except FileNotFoundError:
        return None
    leaf, whole = x509util.load_certificates(cert)[0], x509util.load_certificates(full)[0]
    mismatch = "a certificate next to another certificate's key"
    assert keys.same_public_key(key, leaf.public_key()), mismatch  # type: ignore[arg-type]
    assert keys.same_public_key(key, whole.public_key()), mismatch.replace("certificate", "fullchain", 1)  # type: ignore[arg-type]
    return x509util.fingerprint_sha256(leaf), x509util.fingerprint_sha256(whole)


def watch_every_rename(monkeypatch: pytest.MonkeyPatch, directory: Path) -> list[str]:
    """After every rename (how every file and link becomes visible), what a reader opening the set sees."""
    import os
    seen: list[str] = []
    real = os.replace

    def replace(src: object, dst: object, *args: object, **kwargs: object) -> None:
        real(src, dst, *args, **kwargs)  # type: ignore[arg-type]
        try:
            pair_of(directory)
        except AssertionError as mismatch:
            seen.append(f"after {Path(str(dst)).name}: {mismatch}")

    monkeypatch.setattr(os, "replace", replace)
    return seen


def test_a_reader_never_sees_a_new_certificate_next_to_the_old_key(tmp_path: Path, ca: LocalCa,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    target = get_target("files", {"directory": str(tmp_path), "formats": ["pem", "pkcs12"]})
    first = ca.bundle(["www.example.test"], password="changeit-123")
    binding = BINDING.with_live(target.deploy(BINDING, first))
    mismatches = watch_every_rename(monkeypatch, tmp_path)
    second = ca.bundle(["www.example.test"], password="changeit-123")
    binding = binding.with_live(target.deploy(binding, second))
    assert mismatches == []
    assert pair_of(tmp_path) == (second.fingerprint_sha256, second.fingerprint_sha256)
    target.verify(binding, second)
    target.rollback(binding, first)  # a failed verify puts the previous set back, as one switch too
    assert mismatches == [] and pair_of(tmp_path) == (first.fingerprint_sha256, first.fingerprint_sha256)


def test_public_paths_are_links_into_one_versioned_set(tmp_path: Path, ca: LocalCa) -> None:
    import os
    target = get_target("files", {"directory": str(tmp_path), "formats": ["pem", "pkcs12"]})
    bundles = [ca.bundle(["www.example.test"], password="changeit-123") for _ in range(4)]
    binding = BINDING
    for bundle in bundles:
        binding = binding.with_live(target.deploy(binding, bundle))
    home = tmp_path / ".certplane" / "www"
    for public in ("www.crt", "www.chain.pem", "www.fullchain.pem", "www.key", "www.p12"):
        assert os.readlink(tmp_path / public) == f".certplane/www/current/{public}"
    versions = sorted(p for p in home.iterdir() if p.is_dir() and not p.is_symlink())
    assert len(versions) == 2, "the set in use and the one before it (a reader may be half-way through it)"
    assert (home / "current").resolve().parent == home and (home / "current").resolve() in versions
    assert mode(home) == 0o710 and all(mode(v) == 0o710 for v in versions)  # the group may reach the 0640 files
    assert mode(tmp_path / "www.key") == 0o600 and mode(tmp_path / "www.crt") == 0o640
    # Dropping a format drops its link.
    binding = binding.with_live(get_target("files", {"directory": str(tmp_path)}).deploy(binding, bundles[0]))
    assert not os.path.lexists(tmp_path / "www.p12") and "pkcs12_file" not in binding.live


@pytest.mark.parametrize(("settings", "dir_mode"), [
    ({"mode": "0640"}, 0o710),                      # the group reads the certificate: it may traverse
    ({"mode": "0644"}, 0o711),                      # everyone reads the certificate
    ({"mode": "0600", "key_mode": "0640"}, 0o710),  # the group reads the key
    ({"mode": "0600", "key_mode": "0600"}, 0o700),
])
def test_version_directories_let_through_whoever_the_modes_let_read(tmp_path: Path, ca: LocalCa,
                                                                    settings: dict[str, str], dir_mode: int) -> None:
    target = get_target("files", {"directory": str(tmp_path), **settings})
    target.deploy(BINDING, ca.bundle(["www.example.test"]))
    home = tmp_path / ".certplane" / "www"
    assert mode(home) == dir_mode and mode((home / "current").resolve()) == dir_mode
    assert mode(tmp_path / "www.key") == int(settings.get("key_mode", "0600"), 8)


def legacy_deploy(directory: Path, bundle: Bundle, binding_id: str = "www--files") -> Binding:
    """What the release before this one left: plain files at the public paths, and their paths in `live`."""
    import os
    directory.mkdir(parents=True, exist_ok=True)
    live: dict[str, str] = {"name": "www", "directory": str(directory)}
    for field, suffix, text, file_mode in (("cert_file", ".crt", bundle.cert_pem, 0o640),
                                           ("chain_file", ".chain.pem", bundle.chain_pem, 0o640),
                                           ("fullchain_file", ".fullchain.pem", bundle.fullchain_pem, 0o640),
                                           ("key_file", ".key", bundle.key_pem, 0o600)):
        path = directory / f"www{suffix}"
        path.write_text(text)
        os.chmod(path, file_mode)
        live[field] = str(path)
    return Binding(binding_id, ("www.example.test",), live=live)


def test_an_upgrade_from_plain_files_switches_at_once_and_removes_cleanly(tmp_path: Path, ca: LocalCa,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    old = ca.bundle(["www.example.test"])
    binding = legacy_deploy(tmp_path, old)
    target = get_target("files", {"directory": str(tmp_path)})
    assert target.observe(binding) == {DEFAULT: old.fingerprint_sha256}
    mismatches = watch_every_rename(monkeypatch, tmp_path)
    new = ca.bundle(["www.example.test"])
    binding = binding.with_live(target.deploy(binding, new))
    assert mismatches == [] and pair_of(tmp_path) == (new.fingerprint_sha256, new.fingerprint_sha256)
    assert (tmp_path / "www.key").is_symlink()
    target.verify(binding, new)
    target.remove(binding)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".certplane.lock"]


def test_state_from_the_release_before_removes_cleanly(tmp_path: Path, ca: LocalCa) -> None:
    binding = legacy_deploy(tmp_path, ca.bundle(["www.example.test"]))
    target = get_target("files", {"directory": str(tmp_path)})
    target.remove(binding)
    target.remove(binding)
    assert [p.name for p in tmp_path.iterdir() if p.name != ".certplane.lock"] == []


# --- ownership: two bindings on the same paths ---------------------------------------------------------------

def test_a_renamed_target_on_the_same_directory_takes_over_and_the_old_binding_leaves_its_files(
        tmp_path: Path, ca: LocalCa) -> None:
    target = get_target("files", {"directory": str(tmp_path)})
    bundle = ca.bundle(["www.example.test"])
    old = Binding("www--disk").with_live(target.deploy(Binding("www--disk"), bundle))
    new = Binding("www--certs").with_live(target.deploy(Binding("www--certs"), bundle))  # created first
    target.remove(old)  # ...then the old binding is deleted
    assert pair_of(tmp_path) == (bundle.fingerprint_sha256, bundle.fingerprint_sha256)
    target.verify(new, bundle)
    renewed = ca.bundle(["www.example.test"])
    new = new.with_live(target.deploy(new, renewed))
    assert pair_of(tmp_path) == (renewed.fingerprint_sha256, renewed.fingerprint_sha256)
    target.remove(new)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".certplane.lock"]


def test_a_rename_through_the_provider_leaves_the_consumer_its_key(tmp_path: Path, ca: LocalCa) -> None:
    from providers.binding import CertificateBindingProvider
    provider = CertificateBindingProvider()
    bundle = ca.bundle(["www.example.test"])
    inputs = {"certificate": "www", "target": "disk", "target_type": "files",
              "target_settings": {"directory": str(tmp_path)}, "server_names": ["www.example.test"], "sni": False,
              "cert_pem": bundle.cert_pem, "chain_pem": bundle.chain_pem, "private_key_pem": bundle.key_pem}
    old = provider.create(inputs).outs or {}
    new = provider.create({**inputs, "target": "certs"}).outs or {}  # Pulumi creates the replacement first
    provider.delete("old", old)
    assert (tmp_path / "www.key").read_text() == bundle.key_pem
    assert pair_of(tmp_path) == (bundle.fingerprint_sha256, bundle.fingerprint_sha256)
    provider.delete("new", new)
    assert not (tmp_path / "www.key").exists()


def test_a_rename_over_files_of_the_release_before_takes_them_over(tmp_path: Path, ca: LocalCa) -> None:
    bundle = ca.bundle(["www.example.test"])
    old = legacy_deploy(tmp_path, bundle, "www--disk")
    target = get_target("files", {"directory": str(tmp_path)})
    new = Binding("www--certs").with_live(target.deploy(Binding("www--certs"), bundle))
    target.remove(old)
    assert pair_of(tmp_path) == (bundle.fingerprint_sha256, bundle.fingerprint_sha256)
    target.remove(new)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".certplane.lock"]


def test_another_stack_writing_the_same_certificate_name_is_refused(tmp_path: Path, ca: LocalCa) -> None:
    target = get_target("files", {"directory": str(tmp_path)})
    ours, theirs = ca.bundle(["www.example.test"]), ca.bundle(["www.example.test"])
    binding = BINDING.with_live(target.deploy(BINDING, ours))
    with pytest.raises(DeployError) as err:
        target.deploy(BINDING, theirs)  # the same binding id, another stack: no live facts of its own here
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"files: {tmp_path}/www.* belong to binding www--files ")
    assert f"{tmp_path}/.certplane/www/owner.json" in message and "another directory" in message
    assert pair_of(tmp_path) == (ours.fingerprint_sha256, ours.fingerprint_sha256)
    target.rollback(BINDING, None)  # what the provider does after a failed create: nothing of ours to remove
    target.verify(binding, ours)


def test_two_live_targets_on_one_directory_do_not_remove_each_others_files(tmp_path: Path, ca: LocalCa) -> None:
    target = get_target("files", {"directory": str(tmp_path)})
    bundle = ca.bundle(["www.example.test"])
    a = Binding("www--a").with_live(target.deploy(Binding("www--a"), bundle))
    b = Binding("www--b").with_live(target.deploy(Binding("www--b"), bundle))  # the same certificate: taken over
    renewed = ca.bundle(["www.example.test"])
    with pytest.raises(DeployError) as err:
        target.deploy(a, renewed)  # `a` lost its files to `b`: refused, rather than the two taking turns
    assert str(err.value).startswith(f"files: {tmp_path}/www.* were taken over by binding www--b ")
    b = b.with_live(target.deploy(b, renewed))
    target.remove(a)
    assert pair_of(tmp_path) == (renewed.fingerprint_sha256, renewed.fingerprint_sha256)
    target.verify(b, renewed)


def test_a_failed_takeover_hands_the_files_back(tmp_path: Path, ca: LocalCa) -> None:
    target = get_target("files", {"directory": str(tmp_path)})
    bundle = ca.bundle(["www.example.test"])
    old = Binding("www--disk").with_live(target.deploy(Binding("www--disk"), bundle))
    new = Binding("www--certs").with_live(target.deploy(Binding("www--certs"), bundle))
    target.rollback(new, None)  # its verify failed: the provider rolls the new binding back
    assert pair_of(tmp_path) == (bundle.fingerprint_sha256, bundle.fingerprint_sha256)
    renewed = ca.bundle(["www.example.test"])
    old = old.with_live(target.deploy(old, renewed))  # the old binding owns them again
    target.remove(old)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".certplane.lock"]


# --- certificate names become file names ---------------------------------------------------------------------

@pytest.mark.parametrize("name", ["../escape", "a/b", "..", ".", ".hidden", "a\x00b", "a\nb", "", "x" * 129,
                                  "é" * 65, "a\\b"])
def test_a_name_that_is_not_one_plain_file_name_is_refused(tmp_path: Path, ca: LocalCa, name: str) -> None:
    import dataclasses
    out = tmp_path / "out"
    target = get_target("files", {"directory": str(out)})
    bundle = dataclasses.replace(ca.bundle(["www.example.test"]), name=name)
    with pytest.raises(InvalidInputError) as err:
        target.deploy(BINDING, bundle)
    assert str(err.value).startswith("certificate: ") and "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == [], "refused before anything is written"


@pytest.mark.parametrize("name", ["www", "api.example.com", "wild_card-1", "x" * 128, "Zertifikat-für-www"])
def test_plain_names_are_accepted(tmp_path: Path, ca: LocalCa, name: str) -> None:
    import dataclasses
    target = get_target("files", {"directory": str(tmp_path)})
    bundle = dataclasses.replace(ca.bundle(["www.example.test"]), name=name)
    live = target.deploy(BINDING, bundle)
    assert Path(live["key_file"]).name == f"{name}.key" and Path(live["key_file"]).parent == tmp_path
    target.verify(BINDING.with_live(live), bundle)


# --- I/O errors ----------------------------------------------------------------------------------------------

def test_a_full_disk_leaves_the_previous_set_whole(tmp_path: Path, ca: LocalCa,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import os
    target = get_target("files", {"directory": str(tmp_path)})
    first = ca.bundle(["www.example.test"])
    binding = BINDING.with_live(target.deploy(BINDING, first))
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    real, calls = os.fsync, []

    def fsync(fd: int) -> None:  # the first file fits, then the disk is full, for the restore too
        if stat.S_ISREG(os.fstat(fd).st_mode):
            calls.append(fd)
            if len(calls) > 1:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(DeployError) as err:
        target.deploy(binding, ca.bundle(["www.example.test"]))
    monkeypatch.undo()
    assert str(err.value).startswith("files: cannot write ") and "\n" not in str(err.value)
    assert str(err.value).endswith(": No space left on device; previous files restored")
    assert pair_of(tmp_path) == (first.fingerprint_sha256, first.fingerprint_sha256)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before  # nothing left behind
    target.verify(binding, first)


@pytest.mark.parametrize("refused", [("fchown",), ("lchown",), ("fchown", "chown", "lchown")])
def test_an_owner_that_cannot_be_set_leaves_the_previous_set_whole(tmp_path: Path, ca: LocalCa,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   refused: tuple[str, ...]) -> None:
    import errno
    import os
    first = ca.bundle(["www.example.test"])
    binding = BINDING.with_live(get_target("files", {"directory": str(tmp_path)}).deploy(BINDING, first))
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))

    def eperm(*_args: object, **_kwargs: object) -> None:
        raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))

    for name in refused:  # the files' owner (written first), the links' (after the switch), or every one
        monkeypatch.setattr(os, name, eperm)
    target = get_target("files", {"directory": str(tmp_path), "owner": "root"})
    with pytest.raises(DeployError) as err:
        target.deploy(binding, ca.bundle(["www.example.test"]))
    monkeypatch.undo()
    assert str(err.value).startswith("files: cannot write ") and "\n" not in str(err.value)
    assert str(err.value).endswith(": Operation not permitted; previous files restored")
    assert pair_of(tmp_path) == (first.fingerprint_sha256, first.fingerprint_sha256)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before


def test_a_failed_first_deploy_after_an_upgrade_puts_the_plain_files_back(tmp_path: Path, ca: LocalCa) -> None:
    old = ca.bundle(["www.example.test"])
    binding = legacy_deploy(tmp_path, old)
    before = {p.name: (p.read_bytes(), mode(p)) for p in tmp_path.iterdir()}
    target = get_target("files", {"directory": str(tmp_path), "reload_command": ["/bin/sh", "-c", "exit 1"]})
    with pytest.raises(DeployError) as err:
        target.deploy(binding, ca.bundle(["www.example.test"]))
    assert str(err.value).endswith("; previous files restored")
    after = {p.name: (p.read_bytes(), mode(p)) for p in tmp_path.iterdir() if p.name != ".certplane.lock"}
    assert after == before and not any(p.is_symlink() for p in tmp_path.iterdir())


def test_a_full_disk_on_the_first_deploy_leaves_nothing(tmp_path: Path, ca: LocalCa,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import os
    real = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(DeployError):
        get_target("files", {"directory": str(tmp_path)}).deploy(BINDING, ca.bundle(["www.example.test"]))
    assert [p.name for p in tmp_path.iterdir()] == [".certplane.lock"]


@pytest.mark.skipif(not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() != 0,
                    reason="giving files to another user needs root")
def test_owner_and_group_apply_to_the_files_and_the_directories_that_hold_them(tmp_path: Path,
                                                                               ca: LocalCa) -> None:
    import grp
    import os
    import pwd
    group = grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name
    target = get_target("files", {"directory": str(tmp_path), "owner": "nobody", "group": group,
                                  "key_mode": "0640", "mode": "0644"})
    target.deploy(BINDING, ca.bundle(["www.example.test"]))
    uid, gid = pwd.getpwnam("nobody").pw_uid, grp.getgrnam(group).gr_gid
    home = tmp_path / ".certplane" / "www"
    for path in (home, (home / "current").resolve(), *((tmp_path / f).resolve() for f in ("www.key", "www.crt"))):
        st = path.stat()
        assert (st.st_uid, st.st_gid) == (uid, gid), path
    assert os.lstat(tmp_path / "www.key").st_uid == uid  # the link too
    assert mode(home) == 0o711 and mode(tmp_path / "www.key") == 0o640 and mode(tmp_path / "www.crt") == 0o644
    assert mode(tmp_path / ".certplane") == 0o711
