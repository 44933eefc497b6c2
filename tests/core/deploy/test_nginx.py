"""The nginx target against a real nginx on 127.0.0.1: SNI, rotation under load, broken keys, drift, modes."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import pytest

from providers.core import certificates as x509util
from providers.core import deploy
from providers.core.deploy import Binding, get_target
from providers.core.deploy.nginx import NginxSettings, NginxTarget
from providers.core.tls import handshake, served_fingerprint
from providers.core.errors import DeployError, InvalidInputError
from tests.support.pki import LocalCa, mismatched
from tests.support.wait import settle
from tools.servers.nginx import NginxServer

NAMES = ("a.example.test", "b.example.test", "c.example.test")


def settings(server: NginxServer, **extra: object) -> dict[str, object]:
    return {**server.target_settings(), **extra}


def nginx_target(server: NginxServer, **extra: object) -> NginxTarget:
    target = get_target("nginx", settings(server, **extra))
    assert isinstance(target, NginxTarget)
    return target


def served(server: NginxServer, name: str | None) -> str | None:
    return served_fingerprint(server.host, server.port, name)


def deploy_three(nginx: NginxServer, ca: LocalCa) -> tuple[NginxTarget, dict[str, Binding], dict[str, object]]:
    target = get_target("nginx", settings(nginx))
    assert isinstance(target, NginxTarget)
    bindings = {n: Binding(f"{n.split('.')[0]}--edge", (n,)) for n in NAMES}
    bundles = {n: ca.bundle([n], name=n.split(".")[0]) for n in NAMES}
    for n in NAMES:
        target.deploy(bindings[n], bundles[n])
    return target, bindings, bundles  # type: ignore[return-value]


def test_three_sni_names_on_one_port_each_serve_their_certificate(nginx: NginxServer, ca: LocalCa) -> None:
    target, bindings, bundles = deploy_three(nginx, ca)
    for n in NAMES:
        assert served(nginx, n) == bundles[n].fingerprint_sha256  # type: ignore[attr-defined]
        target.verify(bindings[n], bundles[n])  # type: ignore[arg-type]
        assert target.observe(bindings[n]) == {n: bundles[n].fingerprint_sha256}  # type: ignore[attr-defined]
    # Unknown names and no SNI fall back to the self-signed default server, never to a binding's certificate.
    ours = {b.fingerprint_sha256 for b in bundles.values()}  # type: ignore[attr-defined]
    assert nginx.default_fingerprint not in ours
    assert served(nginx, "other.example.test") == nginx.default_fingerprint
    assert served(nginx, None) == nginx.default_fingerprint
    # The full chain is served: leaf first.
    leaf = handshake(nginx.host, nginx.port, "a.example.test")[0]
    assert x509util.dns_names_of(leaf) == ["a.example.test"]


def test_rotating_one_name_keeps_the_others_serving_with_zero_failed_handshakes(nginx: NginxServer, ca: LocalCa) -> None:
    target, bindings, bundles = deploy_three(nginx, ca)
    before = {n: bundles[n].fingerprint_sha256 for n in NAMES}  # type: ignore[attr-defined]
    renewed = ca.bundle(["b.example.test"], name="b")
    results: list[tuple[float, str, str | None]] = []
    stop = threading.Event()

    def probe() -> None:
        deadline = time.monotonic() + 30
        i = 0
        while not stop.is_set() and time.monotonic() < deadline and len(results) < 20000:
            name = NAMES[i % 3]
            fp = served(nginx, name)
            results.append((time.monotonic(), name, fp))
            i += 1

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    target.deploy(bindings["b.example.test"], renewed)
    ended = time.monotonic()
    time.sleep(0.3)
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    failures = [r for r in results if r[2] is None]
    during = [r for r in results if started <= r[0] <= ended]
    print(f"nginx rotation {ended - started:.3f} s; {len(results)} handshakes around it ({len(during)} during), "
          f"{len(failures)} failed")
    assert failures == []
    assert len(results) > 50 and len(during) >= 3
    for _, name, fp in results:
        allowed = {before[name], renewed.fingerprint_sha256} if name == "b.example.test" else {before[name]}
        assert fp in allowed, (name, fp)
    assert served(nginx, "a.example.test") == before["a.example.test"]
    assert served(nginx, "b.example.test") == renewed.fingerprint_sha256
    assert served(nginx, "c.example.test") == before["c.example.test"]


def test_a_key_that_does_not_match_fails_in_one_line_and_the_old_certificate_stays(nginx: NginxServer,
                                                                                   ca: LocalCa) -> None:
    target = get_target("nginx", settings(nginx))
    binding = Binding("www--edge", ("www.example.test", "example.test"))
    good = ca.bundle(["www.example.test", "example.test"])
    target.deploy(binding, good)
    layout = nginx_target(nginx).layout
    key_before = layout.key("www--edge").read_bytes()
    broken = mismatched(ca.bundle(["www.example.test", "example.test"]), good)
    broken = mismatched(broken, ca.bundle(["x.example.test"]))
    with pytest.raises(DeployError) as err:
        target.deploy(binding, broken)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("nginx: configuration test failed, previous certificate kept: SSL_CTX_use_PrivateKey(")
    assert "key values mismatch" in message and "PRIVATE KEY" not in message
    assert layout.key("www--edge").read_bytes() == key_before
    for name in binding.server_names:
        assert served(nginx, name) == good.fingerprint_sha256


def test_a_failed_reload_restores_the_files(nginx: NginxServer, ca: LocalCa, tmp_path: Path) -> None:
    target = get_target("nginx", settings(nginx, reload_command=["/bin/sh", "-c", "echo 'reload refused' >&2; exit 7"]))
    binding = Binding("www--edge", ("www.example.test",))
    with pytest.raises(DeployError) as err:
        target.deploy(binding, ca.bundle(["www.example.test"]))
    assert str(err.value) == "nginx: reload failed (exit 7), previous certificate kept: reload refused"
    layout = nginx_target(nginx).layout
    assert not layout.conf_file("www--edge").exists() and not layout.key("www--edge").exists()


def test_drift_a_hand_edited_certificate_is_what_observe_reports(nginx: NginxServer, ca: LocalCa) -> None:
    target = get_target("nginx", settings(nginx))
    binding = Binding("www--edge", ("www.example.test",))
    ours = ca.bundle(["www.example.test"])
    target.deploy(binding, ours)
    layout = nginx_target(nginx).layout
    intruder = ca.bundle(["www.example.test"])
    layout.fullchain("www--edge").write_text(intruder.fullchain_pem)
    layout.key("www--edge").write_text(intruder.key_pem)
    nginx.reload()
    expected = {"www.example.test": intruder.fingerprint_sha256}
    assert settle(lambda: target.observe(binding), expected) == expected
    with pytest.raises(DeployError) as err:
        nginx_target(nginx, poll_tries=3, poll_interval=0.01).verify(binding, ours)
    assert str(err.value) == (f"nginx: www.example.test on {nginx.listen} serves {intruder.fingerprint_sha256}, "
                              f"expected {ours.fingerprint_sha256} (checked 3 times over 0.03 s)")
    target.deploy(binding, ours)  # redeploy repairs the drift
    assert target.observe(binding) == {"www.example.test": ours.fingerprint_sha256}


def test_keys_are_0600_in_a_0700_directory(nginx: NginxServer, ca: LocalCa) -> None:
    target = get_target("nginx", settings(nginx))
    live = target.deploy(Binding("www--edge", ("www.example.test",)), ca.bundle(["www.example.test"]))
    key = Path(live["key_file"])
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(Path(live["cert_file"]).stat().st_mode) & 0o002 == 0
    assert not [p for p in key.parent.iterdir() if p.name.endswith(".tmp")]  # no temp files left behind
    assert "PRIVATE KEY" not in Path(live["conf_file"]).read_text()
    assert os.stat(key).st_uid == os.getuid()


def test_remove_falls_back_to_the_default_server(nginx: NginxServer, ca: LocalCa) -> None:
    target, bindings, bundles = deploy_three(nginx, ca)
    target.remove(bindings["a.example.test"])
    assert target.observe(bindings["a.example.test"])["a.example.test"] == nginx.default_fingerprint
    assert served(nginx, "c.example.test") == bundles["c.example.test"].fingerprint_sha256  # type: ignore[attr-defined]
    target.remove(bindings["a.example.test"])  # idempotent
    target.rollback(bindings["c.example.test"], None)  # rollback of a first deploy removes it
    assert not nginx_target(nginx).layout.conf_file("c--edge").exists()


@pytest.mark.parametrize(("kind", "raw", "message"), [
    ("nginx", {"conf_dir": "/tmp/x", "listen": "8443"}, "listen: must be HOST:PORT, e.g. 127.0.0.1:8443"),
    ("nginx", {"listen": "127.0.0.1:8443"}, "conf_dir: is required"),
    ("nginx", {"conf_dir": "/tmp/x", "listen": "127.0.0.1:8443", "poll_tries": 0},
     "poll_tries: must be a whole number from 1 to 10000"),
    ("nginx", {"conf_dir": "/tmp/x", "listen": "127.0.0.1:8443", "reload_command": "nginx -s reload"},
     "reload_command: must be a command as a list of arguments, e.g. [systemctl, reload, haproxy]"),
    ("nginx", {"conf_dir": "/tmp/x", "listen": "127.0.0.1:8443", "colour": "blue"},
     f"colour: unknown setting (known: {', '.join(NginxSettings.model_fields)})"),
    ("nginx", {"conf_dir": "/tmp/x", "listen": "127.0.0.1:8443", "mode": "servers"},
     "mode: must be one of 'snippet' or 'server'"),
    ("caddy", {}, f"type: unrecognized deploy target: caddy (known: {deploy.REGISTRY.known()})"),
])
def test_bad_settings_name_the_field(kind: str, raw: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        get_target(kind, raw)
    assert str(err.value) == message


def test_nginx_needs_server_names(tmp_path: Path) -> None:
    target = get_target("nginx", {"conf_dir": str(tmp_path), "listen": "127.0.0.1:8443"})
    with pytest.raises(InvalidInputError) as err:
        target.check_binding(Binding("www--edge", ()))
    assert str(err.value) == "server_names: nginx serves a certificate by name: give at least one"
    with pytest.raises(InvalidInputError) as err:
        Binding("../etc", ("a.example.test",))
    assert str(err.value) == "binding_id: '../etc' must be letters, digits, '.', '_' or '-'"
