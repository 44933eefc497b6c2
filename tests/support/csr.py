"""CSRs made by the real `openssl req`, as a team holding its own key hands one over (the key is kept for the
tests only)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

EC_P256 = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256")


def openssl_csr(directory: Path, *, subject: str, san: str | None, newkey: Sequence[str] = EC_P256,
                name: str = "req") -> tuple[Path, Path]:
    """(the CSR's path, its key's path) in `directory`; `san` as openssl writes it (`DNS:a,DNS:b`), None for no
    subjectAltName."""
    key, csr = directory / f"{name}.key", directory / f"{name}.csr"
    argv = ["openssl", "req", "-new", *newkey, "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", subject]
    if san:
        argv += ["-addext", f"subjectAltName={san}"]
    subprocess.run(argv, check=True, capture_output=True, timeout=60)
    return csr, key


def dns_san(names: Sequence[str]) -> str:
    return ",".join(f"DNS:{n}" for n in names)
