"""HTTP-01 via a web server's document root: `<webroot>/.well-known/acme-challenge/<token>`.

Files are written atomically (temp file + rename) with mode 0644 so the web server (another user) can read
them, and removed on cleanup; directories we created are removed again when empty.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..acme.solver import Challenge
from ..errors import CertplaneError
from ..validation import Model, ProjectPath
from .base import Http01Plugin

CHALLENGE_DIR = Path(".well-known") / "acme-challenge"


class WebrootSettings(Model):
    """webroot: the directory your web server serves for the domain (it must serve
    /.well-known/acme-challenge/ from it over plain HTTP on port 80)."""

    webroot: ProjectPath


class WebrootSolver:
    challenge_type = "http-01"

    def __init__(self, webroot: str | os.PathLike[str]) -> None:
        self.webroot = Path(webroot)
        self._created: list[Path] = []

    def path_for(self, challenge: Challenge) -> Path:
        if not challenge.token or "/" in challenge.token or challenge.token.startswith("."):
            raise CertplaneError(f"webroot: refusing unsafe challenge token {challenge.token!r}")
        return self.webroot / CHALLENGE_DIR / challenge.token

    def present(self, challenge: Challenge) -> None:
        if not self.webroot.is_dir():
            raise CertplaneError(f"webroot: {self.webroot} is not a directory")
        directory = self.webroot / CHALLENGE_DIR
        for part in (directory.parent, directory):
            if not part.exists():
                part.mkdir(mode=0o755)
                self._created.append(part)
        target = self.path_for(challenge)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".certplane-")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(challenge.validation)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def wait_ready(self, challenges: Sequence[Challenge]) -> None:
        """Nothing to wait for: the file is on disk before the CA is told to look."""

    def cleanup(self, challenge: Challenge) -> None:
        self.path_for(challenge).unlink(missing_ok=True)

    def close(self) -> None:
        for directory in reversed(self._created):
            try:
                directory.rmdir()
            except OSError:
                pass  # not empty: someone else's files live there too
        self._created.clear()


def build(settings: WebrootSettings) -> WebrootSolver:
    return WebrootSolver(settings.webroot)


PLUGIN = Http01Plugin("webroot", WebrootSettings, build)
