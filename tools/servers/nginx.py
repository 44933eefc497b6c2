"""Run the project's own unprivileged nginx on 127.0.0.1 from a certplane conf_dir.

The main config comes from providers.core.deploy.nginx (same layout the nginx deploy target writes into), with a
self-signed default server so nginx starts before any binding exists. Every wait is bounded.

    python -m tools.servers.nginx start  CONF_DIR LISTEN     # e.g. .certplane/nginx 127.0.0.1:8443
    python -m tools.servers.nginx stop   CONF_DIR
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from providers.core.deploy.nginx import Layout, parse_listen, write_main_config

NGINX_BIN = "/usr/sbin/nginx"


class NginxServer:
    """One nginx master process for `conf_dir`. `start()` runs it in the foreground of a child process
    (daemon off) when `foreground`, else lets nginx daemonize (for `make demo`, which outlives this process)."""

    def __init__(self, conf_dir: str | Path, listen: str, *, nginx_bin: str = NGINX_BIN) -> None:
        self.layout = Layout(Path(conf_dir).expanduser().resolve())
        self.listen = listen
        self.host, self.port = parse_listen(listen)
        self.nginx_bin = nginx_bin
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def conf_dir(self) -> Path:
        return self.layout.conf_dir

    def target_settings(self) -> dict[str, object]:
        """Settings for the nginx deploy target that drive this server."""
        return {"conf_dir": str(self.conf_dir), "listen": self.listen, "nginx_bin": self.nginx_bin}

    def _ctl(self, *extra: str) -> list[str]:
        return [self.nginx_bin, *extra, "-p", f"{self.conf_dir}/", "-c", str(self.layout.main_conf), "-e", "stderr"]

    def write_config(self) -> None:
        write_main_config(self.layout, self.listen)

    def test(self) -> None:
        out = subprocess.run(self._ctl("-t", "-q"), capture_output=True, text=True, timeout=30, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"nginx -t failed: {out.stderr.strip().splitlines()[-1:]}")

    def start(self, *, foreground: bool = True, timeout: float = 10.0) -> None:
        """Write the main config, test it, start nginx and wait (bounded) until the port answers."""
        self.write_config()
        self.test()
        if self.running():
            return
        if foreground:
            self.proc = subprocess.Popen([*self._ctl("-g", "daemon off;")], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        else:
            # The daemon keeps the launcher's stderr: send it to a log file, not a pipe nobody drains.
            log = self.conf_dir / "error.log"
            with open(log, "ab") as sink:
                code = subprocess.run(self._ctl(), stdin=subprocess.DEVNULL, stdout=sink, stderr=sink,
                                      timeout=30, check=False).returncode
            if code != 0:
                raise RuntimeError(f"nginx failed to start (exit {code}): see {log}")
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                err = (self.proc.stderr.read() if self.proc.stderr else b"").decode(errors="replace")
                raise RuntimeError(f"nginx exited with {self.proc.returncode}: {err.strip().splitlines()[-1:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nginx did not answer on {self.listen} within {timeout:g} s")

    def reload(self) -> None:
        out = subprocess.run(self._ctl("-s", "reload"), capture_output=True, text=True, timeout=30, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"nginx reload failed: {out.stderr.strip().splitlines()[-1:]}")

    def pid(self) -> int | None:
        try:
            return int(self.layout.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def running(self) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful quit, then terminate/kill, each bounded."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGQUIT)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
            if self.proc.stderr:
                self.proc.stderr.close()
            self.proc = None
            return
        pid = self.pid()
        if pid is None or not self.running():
            return
        os.kill(pid, signal.SIGQUIT)
        deadline = time.monotonic() + timeout
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.running():
            os.kill(pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.servers.nginx")
    parser.add_argument("action", choices=["start", "stop", "reload", "status"])
    parser.add_argument("conf_dir")
    parser.add_argument("listen", nargs="?", default="127.0.0.1:8443")
    args = parser.parse_args(argv)
    server = NginxServer(args.conf_dir, args.listen)
    if args.action == "start":
        server.start(foreground=False)
        print(f"nginx: serving on {args.listen} (conf {server.layout.main_conf})")
    elif args.action == "stop":
        server.stop()
    elif args.action == "reload":
        server.reload()
    else:
        print("running" if server.running() else "stopped")
        return 0 if server.running() else 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
