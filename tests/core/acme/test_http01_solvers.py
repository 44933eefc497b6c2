"""HTTP-01 solvers on their own: webroot file handling and the standalone responder's lifecycle."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import pytest

from providers.core import http01
from providers.core.acme.solver import Challenge
from providers.core.errors import CertplaneError, InvalidInputError
from tools.servers import free_port

CH = Challenge(domain="www.example.test", token="dG9rZW4tdG9rZW4tdG9rZW4", validation="dG9rZW4.thumbprint")


@pytest.mark.parametrize(("settings", "message"), [
    ({"mode": "ftp"}, f"http01.mode: unrecognized HTTP-01 mode: ftp (known: {http01.REGISTRY.known()})"),
    ({"mode": "webroot"}, "http01.webroot: is required"),
    ({"mode": "standalone", "listen": "localhost"}, "http01.listen: must be HOST:PORT, e.g. 127.0.0.1:8443"),
    ({"mode": "standalone", "port": 80}, "http01.port: unknown setting (known: listen, timeout)"),
    ({"mode": "standalone", "timeout": 0}, "http01.timeout: must be a whole number from 1 to 60"),
])
def test_bad_settings(settings, message):
    with pytest.raises(InvalidInputError) as err:
        http01.parse(settings)
    assert str(err.value) == message


def test_webroot_writes_0644_atomically_and_cleans_up(tmp_path: Path):
    (tmp_path / ".well-known").mkdir()  # pre-existing dir (the web server's): must survive cleanup
    solver = http01.make_solver({"webroot": str(tmp_path)})
    solver.present(CH)
    solver.present(CH)  # idempotent
    path = tmp_path / ".well-known" / "acme-challenge" / CH.token
    assert path.read_text() == CH.validation
    assert path.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == [CH.token]  # no temp files left behind
    solver.cleanup(CH)
    solver.cleanup(CH)
    solver.close()
    assert not path.parent.exists() and (tmp_path / ".well-known").is_dir()


def test_webroot_refuses_unsafe_tokens_and_missing_dirs(tmp_path: Path):
    solver = http01.make_solver({"webroot": str(tmp_path)})
    with pytest.raises(CertplaneError) as err:
        solver.present(Challenge("x", "../../etc/passwd", "v"))
    assert str(err.value) == "webroot: refusing unsafe challenge token '../../etc/passwd'"
    missing = http01.make_solver({"webroot": str(tmp_path / "nope")})
    with pytest.raises(CertplaneError) as err:
        missing.present(CH)
    assert str(err.value) == f"webroot: {tmp_path / 'nope'} is not a directory"


def test_standalone_serves_only_while_the_order_runs():
    port = free_port()
    solver = http01.make_solver({"mode": "standalone", "listen": f"127.0.0.1:{port}"})
    solver.present(CH)
    url = f"http://127.0.0.1:{port}/.well-known/acme-challenge/{CH.token}"
    with urllib.request.urlopen(url, timeout=3) as resp:
        assert resp.read().decode() == CH.validation
    solver.cleanup(CH)
    solver.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1)


def test_standalone_port_in_use_is_a_clear_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        solver = http01.make_solver({"mode": "standalone", "listen": f"127.0.0.1:{port}"})
        with pytest.raises(CertplaneError) as err:
            solver.present(CH)
        solver.close()
    assert str(err.value) == f"standalone: cannot listen on 127.0.0.1:{port}: Address already in use"


def test_concurrent_orders_share_one_standalone_responder():
    """Pulumi issues certificates in parallel: two orders on the same address must not fight over the port."""
    port = free_port()
    settings = {"mode": "standalone", "listen": f"127.0.0.1:{port}"}
    other = Challenge(domain="api.example.test", token="b3RoZXItdG9rZW4tb3RoZXI", validation="b3RoZXI.thumbprint")
    first, second = http01.make_solver(settings), http01.make_solver(settings)
    first.present(CH)
    second.present(other)

    def fetch(ch: Challenge) -> str:
        url = f"http://127.0.0.1:{port}/.well-known/acme-challenge/{ch.token}"
        with urllib.request.urlopen(url, timeout=3) as resp:
            return resp.read().decode()

    assert fetch(CH) == CH.validation and fetch(other) == other.validation
    first.cleanup(CH)
    first.close()
    assert fetch(other) == other.validation  # still served for the order that is still running
    second.cleanup(other)
    second.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1)
