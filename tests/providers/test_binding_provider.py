"""CertificateBindingProvider's CRUD as plain Python on dicts, against a real nginx and the files target."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from providers._wire import secret_fields
from providers.binding import CertificateBindingProvider, binding_id
from providers.core.deploy import Bundle
from providers.core import deploy
from providers.core.tls import served_fingerprint
from providers.core.deploy.nginx import Layout
from providers.core.errors import CertplaneError
from tests.support.pki import LocalCa, mismatched
from tests.support.wait import settle
from tools.servers.nginx import NginxServer

NAMES = ["www.example.test", "example.test"]


def props(server: NginxServer, bundle: Bundle, **extra: Any) -> dict[str, Any]:
    return {"certificate": "www", "target": "edge", "target_type": "nginx",
            "target_settings": server.target_settings(), "server_names": NAMES, "sni": False,
            "cert_pem": bundle.cert_pem, "chain_pem": bundle.chain_pem, "private_key_pem": bundle.key_pem,
            "keystore_password": None, **extra}


def served(server: NginxServer, name: str) -> str | None:
    return served_fingerprint(server.host, server.port, name)


def test_create_diff_update_read_delete_on_nginx(nginx: NginxServer, ca: LocalCa,  # noqa: F811
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    provider = CertificateBindingProvider()
    v1 = ca.bundle(NAMES)
    inputs = props(nginx, v1)
    assert provider.check({}, inputs).failures == []
    created = provider.create(inputs)
    outs = created.outs
    assert created.id.startswith("www--edge-") and binding_id("www", "edge") == "www--edge"
    assert outs["live_fingerprints"] == {n: v1.fingerprint_sha256 for n in NAMES}
    assert outs["live"]["key_file"].endswith("/certplane/certs/www--edge.key.pem") and outs["verified_at"]
    assert all(served(nginx, n) == v1.fingerprint_sha256 for n in NAMES)
    # The key is kept only where rollback needs it, in a field the resource marks secret.
    assert [k for k, v in outs.items() if isinstance(v, str) and "PRIVATE KEY" in v] == ["private_key_pem"]
    assert "private_key_pem" in secret_fields(provider.inputs, provider.outputs)
    assert "PRIVATE KEY" not in repr(outs["live"])

    # Nothing changed: no diff. A renewed certificate: in-place update.
    assert provider.diff(created.id, outs, inputs).changes is False
    v2 = ca.bundle(NAMES)
    renewed = props(nginx, v2)
    d = provider.diff(created.id, outs, renewed)
    assert d.changes is True and d.replaces == []
    outs2 = provider.update(created.id, outs, renewed).outs
    assert all(served(nginx, n) == v2.fingerprint_sha256 for n in NAMES)
    assert outs2["live_fingerprints"] == {n: v2.fingerprint_sha256 for n in NAMES}

    # A listen change is an update; a new conf_dir or target type moves the binding (replace).
    moved = props(nginx, v2, target_settings={**nginx.target_settings(), "conf_dir": "/elsewhere"})
    assert provider.diff(created.id, outs2, moved).replaces == ["target_settings"]
    assert provider.diff(created.id, outs2, props(nginx, v2, target_type="files",
                                                  target_settings={"directory": "/x"})).replaces == ["target_type", "target_settings"]

    # Drift: someone serves another certificate; refresh reports it, the next diff redeploys.
    layout = Layout(Path(nginx.target_settings()["conf_dir"]))  # type: ignore[arg-type]
    intruder = ca.bundle(NAMES)
    layout.fullchain("www--edge").write_text(intruder.fullchain_pem)
    layout.key("www--edge").write_text(intruder.key_pem)
    nginx.reload()
    assert settle(lambda: [served(nginx, n) for n in NAMES], [intruder.fingerprint_sha256] * 2) == \
        [intruder.fingerprint_sha256] * 2
    capsys.readouterr()
    read = provider.read(created.id, outs2)
    assert read.id == created.id
    assert read.outs["live_fingerprints"] == {n: intruder.fingerprint_sha256 for n in NAMES}
    err = capsys.readouterr().err
    assert (f"certplane: binding www--edge: www.example.test serves {intruder.fingerprint_sha256[:23]}… (SHA-256), "
            f"expected {v2.fingerprint_sha256[:23]}…; the next `pulumi up` redeploys it") in err
    d = provider.diff(created.id, read.outs, renewed)
    assert d.changes is True and d.replaces == []
    repaired = provider.update(created.id, read.outs, renewed).outs
    assert repaired["live_fingerprints"] == {n: v2.fingerprint_sha256 for n in NAMES}
    assert all(served(nginx, n) == v2.fingerprint_sha256 for n in NAMES)

    # A broken renewal (key does not match) fails in one line and leaves the previous certificate served.
    broken = mismatched(ca.bundle(NAMES), ca.bundle(NAMES))
    with pytest.raises(CertplaneError) as failed:
        provider.update(created.id, repaired, props(nginx, broken))
    assert "\n" not in str(failed.value)
    assert str(failed.value).startswith("redeploying a certificate (binding www--edge): nginx: configuration test "
                                        "failed")
    # `nginx -t` refused it before any reload, and the files were put back: nothing to roll back.
    assert str(failed.value).endswith("(nothing was changed)")
    assert all(served(nginx, n) == v2.fingerprint_sha256 for n in NAMES)

    provider.delete(created.id, repaired)
    assert not layout.conf_file("www--edge").exists() and not layout.key("www--edge").exists()
    assert served(nginx, "www.example.test") == nginx.default_fingerprint  # a handshake, and not ours


def test_a_verify_failure_on_create_rolls_back(nginx: NginxServer, ca: LocalCa) -> None:  # noqa: F811
    """A name another binding already claims is served by that binding (nginx ignores the duplicate):
    the new binding's certificate never goes live, so create fails and removes what it wrote."""
    provider = CertificateBindingProvider()
    first = ca.bundle(NAMES)
    provider.create(props(nginx, first, certificate="aaa"))
    settings = {**nginx.target_settings(), "poll_tries": 5, "poll_interval": 0.05}
    second = ca.bundle(NAMES)
    with pytest.raises(CertplaneError) as err:
        provider.create(props(nginx, second, certificate="zzz", target_settings=settings))
    assert str(err.value) == (f"deploying a certificate (binding zzz--edge): nginx: www.example.test on {nginx.listen} serves "
                              f"{first.fingerprint_sha256}, expected {second.fingerprint_sha256} "
                              "(checked 5 times over 0.25 s) (rolled back)")
    layout = Layout(Path(settings["conf_dir"]))  # type: ignore[arg-type]
    assert not layout.conf_file("zzz--edge").exists() and layout.conf_file("aaa--edge").exists()


def test_files_target_round_trip(tmp_path: Path, ca: LocalCa) -> None:  # noqa: F811
    provider = CertificateBindingProvider()
    bundle = ca.bundle(NAMES, password="changeit-123")
    inputs = {"certificate": "www", "target": "disk", "target_type": "files",
              "target_settings": {"directory": str(tmp_path), "formats": ["pem", "pkcs12"]}, "server_names": NAMES,
              "sni": False, "cert_pem": bundle.cert_pem, "chain_pem": bundle.chain_pem,
              "private_key_pem": bundle.key_pem, "keystore_password": "changeit-123"}
    created = provider.create(inputs)
    assert created.outs["live_fingerprints"] == {"default": bundle.fingerprint_sha256}
    assert (tmp_path / "www.p12").exists() and (tmp_path / "www.key").read_text() == bundle.key_pem
    (tmp_path / "www.fullchain.pem").unlink()
    read = provider.read(created.id, created.outs)
    # Nothing served is kept as "" : the engine drops null values inside maps before state reaches diff again.
    assert read.outs["live_fingerprints"] == {"default": ""}
    assert provider.diff(created.id, read.outs, inputs).changes is True
    provider.update(created.id, read.outs, inputs)
    assert (tmp_path / "www.fullchain.pem").read_text() == bundle.fullchain_pem
    provider.delete(created.id, created.outs)
    assert not (tmp_path / "www.key").exists()


@pytest.mark.parametrize(("change", "message"), [
    ({"target_type": "caddy"},
     f"binding www--edge: target_type: unrecognized deploy target: caddy (known: {deploy.REGISTRY.known()})"),
    ({"target_settings": {"conf_dir": "/tmp/x", "listen": "localhost"}},
     "binding www--edge: target_settings.listen: must be HOST:PORT, e.g. 127.0.0.1:8443"),
    ({"server_names": []}, "binding www--edge: server_names: nginx serves a certificate by name: give at least one"),
    ({"private_key_pem": "not a key"},
     "binding www--edge: private_key_pem: the private key is not a PEM-encoded RSA, ECDSA or Ed25519 key"),
    ({"private_key_pem": None}, "binding www--edge: private_key_pem: a binding needs the certificate's key (or its "
                                "private_key_ref in key_storage)"),
])
def test_check_names_the_field_in_one_line(ca: LocalCa, change: dict[str, Any], message: str) -> None:  # noqa: F811
    bundle = ca.bundle(NAMES)
    inputs = {"certificate": "www", "target": "edge", "target_type": "nginx",
              "target_settings": {"conf_dir": "/tmp/x", "listen": "127.0.0.1:8443"}, "server_names": NAMES,
              "cert_pem": bundle.cert_pem, "chain_pem": "", "private_key_pem": bundle.key_pem, **change}
    failures = CertificateBindingProvider().check({}, inputs).failures
    assert [(f.property, f.reason) for f in failures] == [("", message)]


def test_check_rejects_a_key_that_does_not_match(ca: LocalCa) -> None:  # noqa: F811
    bundle = mismatched(ca.bundle(NAMES), ca.bundle(NAMES))
    inputs = {"certificate": "www", "target": "disk", "target_type": "files", "target_settings": {"directory": "/x"},
              "server_names": NAMES, "cert_pem": bundle.cert_pem, "private_key_pem": bundle.key_pem}
    failures = CertificateBindingProvider().check({}, inputs).failures
    assert [f.reason for f in failures] == ["binding www--disk: private_key_pem: the private key does not match the "
                                            "certificate 'CN=www.example.test'"]


def test_check_tolerates_unknowns_during_preview() -> None:
    from providers._wire import UNKNOWN_SENTINEL as UNKNOWN

    inputs = {"certificate": "www", "target": "edge", "target_type": "nginx",
              "target_settings": {"conf_dir": "/tmp/x", "listen": "127.0.0.1:8443"}, "server_names": UNKNOWN,
              "cert_pem": UNKNOWN, "private_key_pem": UNKNOWN}
    assert CertificateBindingProvider().check({}, inputs).failures == []
    olds = {**inputs, "server_names": NAMES, "fingerprint_sha256": "AA", "live_fingerprints": {}}
    d = CertificateBindingProvider().diff("id", olds, inputs)
    assert d.changes is True and d.replaces == []


def test_a_new_keystore_password_redeploys_and_an_explicit_conf_is_no_move(nginx: NginxServer,  # noqa: F811
                                                                           ca: LocalCa) -> None:
    provider = CertificateBindingProvider()
    bundle = ca.bundle(NAMES)
    outs = provider.create(props(nginx, bundle)).outs
    try:
        repassword = props(nginx, bundle, keystore_password="second-pass")
        assert provider.diff("b", outs, repassword).changes is True
        without_conf = {k: v for k, v in nginx.target_settings().items() if k != "conf"}
        implicit = props(nginx, bundle, target_settings=without_conf)  # server mode's default: the same file
        d = provider.diff("b", outs, implicit)
        assert d.replaces == [], "the same files: an in-place update, never create-then-delete of one path"
        # ...because it is the same nginx: the same main config tested and reloaded, the same lock.
        assert deploy.get_target("nginx", without_conf).conf == deploy.get_target("nginx", nginx.target_settings()).conf  # type: ignore[attr-defined]
    finally:
        provider.delete("b", outs)


def test_renaming_the_target_on_the_same_nginx_hands_over_without_failing(nginx: NginxServer,  # noqa: F811
                                                                          ca: LocalCa) -> None:
    provider = CertificateBindingProvider()
    bundle = ca.bundle(NAMES)
    old = provider.create(props(nginx, bundle)).outs
    new = provider.create(props(nginx, bundle, target="edge2")).outs  # Pulumi creates the replacement first
    provider.delete("old", old)
    assert all(served(nginx, n) == bundle.fingerprint_sha256 for n in NAMES)
    provider.delete("new", new)
