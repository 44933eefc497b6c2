"""Run a throwaway PostgreSQL cluster on 127.0.0.1 (never 0.0.0.0): the Pulumi state backend the tests share.

Debian's binaries (`/usr/lib/postgresql/<version>/bin`), a fresh cluster in a temp data dir, password (SCRAM)
authentication over TCP only, unix sockets inside the data dir. initdb and postgres refuse to run as root: as
root the cluster runs as `nobody` (setpriv), else as the calling user. Every wait is bounded; stop() removes the
data dir it created.

    python -m tools.servers.postgres serve [PORT]   # foreground; prints the postgres:// backend URL
"""

from __future__ import annotations

import argparse
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools.servers import ManagedServer, free_port

USER = "certplane"
DATABASE = "pulumi"
RUN_AS = "nobody"  # when started as root


def find_bin_dir() -> Path:
    """The newest Debian PostgreSQL binaries (`postgresql` package)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parts[4])
                   if Path(p).parts[4].isdigit() else 0)
    if not found:
        raise RuntimeError("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres): "
                           "run `make bootstrap` (installs the Debian package `postgresql`)")
    return Path(found[-1]).parent


class PostgresServer(ManagedServer):
    """One postgres process for a new cluster. `url` (after start) is the backend URL for `pulumi login`."""

    def __init__(self, port: int = 0, *, password: str = "certplane-tests", bin_dir: Path | None = None,
                 fsync: bool = False) -> None:
        self.port = port or free_port()
        self.password = password
        self.bin_dir = bin_dir or find_bin_dir()
        self.fsync = fsync
        self.base: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        assert self.base is not None, "not started"
        return self.base / "data"

    @property
    def url(self) -> str:
        return self.database_url(DATABASE)

    def database_url(self, database: str, **query: str) -> str:
        params = "&".join(f"{k}={v}" for k, v in {"sslmode": "disable", **query}.items())
        return f"postgres://{USER}:{self.password}@127.0.0.1:{self.port}/{database}?{params}"

    def _as_owner(self, argv: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return argv
        user = pwd.getpwnam(RUN_AS)
        return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--", *argv]

    def _start(self) -> None:
        # Not under the caller's tmp dir: pytest's is root-only (0700), which `nobody` cannot traverse.
        self.base = Path(tempfile.mkdtemp(prefix="certplane-pg-"))
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.password + "\n")
        if os.geteuid() == 0:
            user = pwd.getpwnam(RUN_AS)
            for path in (self.base, pwfile):
                os.chown(path, user.pw_uid, user.pw_gid)
        os.chmod(pwfile, 0o600)
        init = subprocess.run(
            self._as_owner([str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", USER,
                            f"--pwfile={pwfile}", "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C",
                            "--no-instructions"]),
            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)
        pwfile.unlink()
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed (exit {init.returncode}): {init.stderr.strip()[-500:]}")
        settings = {"listen_addresses": "127.0.0.1", "port": str(self.port),
                    "unix_socket_directories": str(self.data_dir), "fsync": "on" if self.fsync else "off",
                    "synchronous_commit": "on" if self.fsync else "off", "full_page_writes": "on",
                    "max_connections": "50", "logging_collector": "off"}
        argv = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        with open(self.base / "postgres.log", "wb") as log:
            self.proc = subprocess.Popen(self._as_owner(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=log, start_new_session=True)
        self.wait_ready(timeout=self._start_timeout)
        self.create_database(DATABASE)

    _start_timeout = 30.0

    def start(self, timeout: float = 30.0) -> PostgresServer:
        """initdb, start postgres, wait (bounded) until it accepts connections, create the database."""
        self._start_timeout = timeout
        return super().start()

    def log_tail(self) -> str:
        try:
            return (self.base / "postgres.log").read_text(errors="replace")[-800:] if self.base else ""
        except OSError:
            return ""

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.proc.returncode}: {self.log_tail().strip()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
            except OSError:
                time.sleep(0.05)
                continue
            ready = subprocess.run([str(self.bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port),
                                    "-t", "2"], timeout=10, check=False, stdin=subprocess.DEVNULL)
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"postgres did not accept connections on 127.0.0.1:{self.port} within {timeout:g} s: "
                           f"{self.log_tail().strip()}")

    def create_database(self, name: str) -> str:
        """A new database (a plain identifier) for one stack store; returns its backend URL."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"not a plain database name: {name!r}")
        self.psql(f"CREATE DATABASE {name}", database="postgres")
        return self.database_url(name)

    def psql(self, sql: str, *, database: str = DATABASE, timeout: float = 30.0) -> str:
        """Run one statement with psql over TCP as the cluster's user; tuples only, unaligned, `|`-separated."""
        out = subprocess.run(
            [str(self.bin_dir / "psql"), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
             "-p", str(self.port), "-U", USER, "-d", database, "-c", sql],
            env={**os.environ, "PGPASSWORD": self.password, "PGCONNECT_TIMEOUT": "5"},
            capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL)
        if out.returncode != 0:
            raise RuntimeError(f"psql failed: {out.stderr.strip()}")
        return out.stdout

    def stop(self, timeout: float = 15.0) -> None:
        """Fast shutdown (SIGINT), then SIGKILL, each bounded; then remove the cluster."""
        if self.proc is not None and self.proc.poll() is None:
            # The postgres process runs as another user: signal it through its own session (we started it).
            for sig, wait in ((signal.SIGINT, timeout), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self.proc = None
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.servers.postgres")
    parser.add_argument("action", choices=["serve"])
    parser.add_argument("port", nargs="?", type=int, default=0)
    args = parser.parse_args(argv)
    server = PostgresServer(args.port, fsync=True)
    server.start()
    print(f"postgres: {server.url}", flush=True)
    try:
        while server.proc is not None and server.proc.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
