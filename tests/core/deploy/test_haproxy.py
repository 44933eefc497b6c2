"""The haproxy target against Debian's HAProxy on 127.0.0.1: certificates swapped in the running process
through the runtime API (no reload: the same worker serves before and after, and no handshake fails during a
rotation), kept on disk for the next start, a reload only as the fallback, and the team's own crt-list lines
left alone."""

from __future__ import annotations

import stat
import threading
import time
from pathlib import Path

import pytest

from providers.core.deploy import Binding, Bundle, get_target
from providers.core.deploy.haproxy import HaproxyTarget, RuntimeApi
from providers.core.errors import DeployError
from providers.core.tls import served_fingerprint
from tests.support.pki import LocalCa, mismatched
from tools.servers import free_port
from tools.servers.haproxy import HaproxyServer

NAMES = ("a.example.test", "b.example.test", "c.example.test")


def target_for(server: HaproxyServer, **extra: object) -> HaproxyTarget:
    target = get_target("haproxy", {**server.target_settings(), **extra})
    assert isinstance(target, HaproxyTarget)
    return target


def served(server: HaproxyServer, name: str | None) -> str | None:
    return served_fingerprint(server.host, server.port, name)


def worker_pid(server: HaproxyServer) -> int:
    info = RuntimeApi(str(server.socket), 5).send("show info")
    return int(next(line.split(":", 1)[1] for line in info.splitlines() if line.startswith("Pid:")))


def deploy_three(server: HaproxyServer, ca: LocalCa) -> tuple[HaproxyTarget, dict[str, Binding], dict[str, Bundle]]:
    target = target_for(server)
    bindings = {n: Binding(f"{n.split('.')[0]}--lb", (n,)) for n in NAMES}
    bundles = {n: ca.bundle([n], name=n.split(".")[0]) for n in NAMES}
    for n in NAMES:
        live = target.deploy(bindings[n], bundles[n])
        assert live["applied_by"] == "runtime API"
    return target, bindings, bundles


def test_three_sni_names_each_serve_their_certificate_and_unknown_names_the_default(haproxy: HaproxyServer,
                                                                                    ca: LocalCa) -> None:
    _, bindings, bundles = deploy_three(haproxy, ca)
    for n in NAMES:
        assert served(haproxy, n) == bundles[n].fingerprint_sha256
    assert served(haproxy, "other.example.test") == haproxy.default_fingerprint
    pem = haproxy.workdir / "certplane" / "a--lb.pem"
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600 and stat.S_IMODE(pem.parent.stat().st_mode) == 0o700
    assert haproxy.crt_list.read_text().splitlines() == [
        f"{haproxy.workdir}/certplane/{n.split('.')[0]}--lb.pem {n}" for n in NAMES]


def test_a_rotation_is_hitless_no_reload_and_no_failed_handshake(haproxy: HaproxyServer, ca: LocalCa) -> None:
    target, bindings, bundles = deploy_three(haproxy, ca)
    before = {n: bundles[n].fingerprint_sha256 for n in NAMES}
    renewed = ca.bundle(["b.example.test"], name="b")
    worker = worker_pid(haproxy)
    results: list[tuple[float, str, str | None]] = []
    stop = threading.Event()

    def probe() -> None:
        deadline, i = time.monotonic() + 30, 0
        while not stop.is_set() and time.monotonic() < deadline and len(results) < 20000:
            name = NAMES[i % 3]
            results.append((time.monotonic(), name, served(haproxy, name)))
            i += 1

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    live = target.deploy(bindings["b.example.test"], renewed)
    ended = time.monotonic()
    time.sleep(0.3)
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    failures = [r for r in results if r[2] is None]
    during = [r for r in results if started <= r[0] <= ended]
    print(f"haproxy rotation {ended - started:.3f} s: {len(results)} handshakes around it ({len(during)} during), "
          f"{len(failures)} failed")
    assert live["applied_by"] == "runtime API"
    assert worker_pid(haproxy) == worker  # the same process serves: nothing was reloaded
    assert failures == []
    assert len(results) > 50 and len(during) >= 3
    for _, name, fp in results:
        allowed = {before[name], renewed.fingerprint_sha256} if name == "b.example.test" else {before[name]}
        assert fp in allowed, (name, fp)
    assert served(haproxy, "b.example.test") == renewed.fingerprint_sha256


def test_what_is_on_disk_is_what_a_restart_serves(haproxy: HaproxyServer, ca: LocalCa) -> None:
    _, _, bundles = deploy_three(haproxy, ca)
    haproxy.stop()
    haproxy.start(timeout=10)
    for n in NAMES:
        assert served(haproxy, n) == bundles[n].fingerprint_sha256


def test_a_key_that_does_not_match_is_refused_in_one_line_and_the_old_certificate_stays(haproxy: HaproxyServer,
                                                                                      ca: LocalCa) -> None:
    target, bindings, bundles = deploy_three(haproxy, ca)
    pem = haproxy.workdir / "certplane" / "a--lb.pem"
    on_disk = pem.read_bytes()
    broken = mismatched(ca.bundle(["a.example.test"], name="a"), ca.bundle(["a.example.test"], name="a"))
    with pytest.raises(DeployError) as err:
        target.deploy(bindings["a.example.test"], broken)
    message = str(err.value)
    assert "\n" not in message and "PRIVATE KEY" not in message
    assert message.startswith("haproxy: commit ssl cert: inconsistencies between private key and certificate")
    assert message.endswith("previous certificate kept")
    assert served(haproxy, "a.example.test") == bundles["a.example.test"].fingerprint_sha256
    assert pem.read_bytes() == on_disk
    # The transaction was aborted: the next good deploy goes through.
    renewed = ca.bundle(["a.example.test"], name="a")
    target.deploy(bindings["a.example.test"], renewed)
    assert served(haproxy, "a.example.test") == renewed.fingerprint_sha256


def test_a_new_certificate_that_is_refused_leaves_nothing_behind(haproxy: HaproxyServer, ca: LocalCa) -> None:
    target = target_for(haproxy)
    binding = Binding("a--lb", ("a.example.test",))
    broken = mismatched(ca.bundle(["a.example.test"], name="a"), ca.bundle(["a.example.test"], name="a"))
    with pytest.raises(DeployError):
        target.deploy(binding, broken)
    assert not (haproxy.workdir / "certplane" / "a--lb.pem").exists()
    assert haproxy.crt_list.read_text() == ""
    assert not RuntimeApi(str(haproxy.socket), 5).loaded(haproxy.workdir / "certplane" / "a--lb.pem")
    assert served(haproxy, "a.example.test") == haproxy.default_fingerprint


def test_the_teams_own_crt_list_lines_are_kept(tmp_path: Path, ca: LocalCa) -> None:
    server = HaproxyServer(tmp_path / "haproxy", f"127.0.0.1:{free_port()}")
    server.write_config()
    team = ca.bundle(["team.example.test"], name="team")
    (server.workdir / "team.pem").write_text(team.fullchain_pem + team.key_pem)
    own = f"{server.workdir}/team.pem [alpn h2,http/1.1] team.example.test\n"
    server.crt_list.write_text(own)
    server.start(timeout=10)
    try:
        target = target_for(server)
        binding = Binding("a--lb", ("a.example.test",))
        bundle = ca.bundle(["a.example.test"], name="a")
        target.deploy(binding, bundle)
        assert server.crt_list.read_text().startswith(own)
        assert served(server, "team.example.test") == team.fingerprint_sha256
        target.remove(binding)
        assert server.crt_list.read_text() == own
        assert served(server, "team.example.test") == team.fingerprint_sha256
        assert served(server, "a.example.test") == server.default_fingerprint
    finally:
        server.stop()


def test_new_server_names_rewrite_the_line_and_the_names_kept_never_miss_a_handshake(haproxy: HaproxyServer,
                                                                                      ca: LocalCa) -> None:
    target = target_for(haproxy)
    bundle = ca.bundle(["a.example.test", "x.example.test"], name="a")
    target.deploy(Binding("a--lb", ("a.example.test",)), bundle)
    assert served(haproxy, "x.example.test") == haproxy.default_fingerprint  # SNI filters: only the names given
    seen: list[str | None] = []
    stop = threading.Event()

    def probe() -> None:
        deadline = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < deadline and len(seen) < 20000:
            seen.append(served(haproxy, "a.example.test"))

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    for names in [("a.example.test", "x.example.test"), ("a.example.test",)] * 5:
        target.deploy(Binding("a--lb", names), bundle)
    stop.set()
    thread.join(10)
    assert len(seen) > 20 and set(seen) == {bundle.fingerprint_sha256}  # a.example.test kept its certificate
    target.deploy(Binding("a--lb", ("a.example.test", "x.example.test")), bundle)
    assert served(haproxy, "x.example.test") == bundle.fingerprint_sha256
    assert haproxy.crt_list.read_text().split() == [f"{haproxy.workdir}/certplane/a--lb.pem", "a.example.test",
                                                    "x.example.test"]


def test_without_the_runtime_api_it_reloads_and_says_so(haproxy: HaproxyServer, ca: LocalCa, tmp_path: Path) -> None:
    target = target_for(haproxy, socket=str(tmp_path / "no-such.sock"))
    binding = Binding("a--lb", ("a.example.test",))
    bundle = ca.bundle(["a.example.test"], name="a")
    worker = worker_pid(haproxy)
    live = target.deploy(binding, bundle)
    assert live["applied_by"] == "reload"
    assert served(haproxy, "a.example.test") == bundle.fingerprint_sha256
    assert worker_pid(haproxy) != worker
    target.remove(binding)
    assert served(haproxy, "a.example.test") == haproxy.default_fingerprint


def test_without_the_runtime_api_or_a_reload_command_nothing_changes(haproxy: HaproxyServer, ca: LocalCa,
                                                                    tmp_path: Path) -> None:
    settings = {k: v for k, v in haproxy.target_settings().items() if k != "reload_command"}
    target = get_target("haproxy", {**settings, "socket": str(tmp_path / "no-such.sock")})
    with pytest.raises(DeployError) as err:
        target.deploy(Binding("a--lb", ("a.example.test",)), ca.bundle(["a.example.test"], name="a"))
    assert str(err.value) == (f"haproxy: the runtime API is unreachable ({tmp_path}/no-such.sock: No such file or "
                              f"directory), and no reload_command is set to fall back on; previous certificate kept")
    assert haproxy.crt_list.read_text() == ""
    assert not (haproxy.workdir / "certplane" / "a--lb.pem").exists()


def test_a_certificate_directory_on_the_bind_line(tmp_path: Path, ca: LocalCa) -> None:
    server = HaproxyServer(tmp_path / "haproxy", f"127.0.0.1:{free_port()}", crt_dir=True).start(timeout=10)
    try:
        target = target_for(server)
        assert target.certs_dir == server.crt_list  # the PEMs go into the directory itself
        binding = Binding("a--lb", ("a.example.test",))
        first, renewed = ca.bundle(["a.example.test"], name="a"), ca.bundle(["a.example.test"], name="a")
        assert target.deploy(binding, first)["applied_by"] == "runtime API"
        target.deploy(binding, renewed)
        assert served(server, "a.example.test") == renewed.fingerprint_sha256
        server.stop()
        server.start(timeout=10)
        assert served(server, "a.example.test") == renewed.fingerprint_sha256
        target.remove(binding)
        assert served(server, "a.example.test") == server.default_fingerprint
        assert not list(server.crt_list.glob("*.pem"))
    finally:
        server.stop()
