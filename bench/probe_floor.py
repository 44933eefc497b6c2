"""The floor of `certplane check --probe`: only the raw work, as a whole process.

    .venv/bin/python bench/probe_floor.py INVENTORY.json [--workers 8] [--timeout 5]

Reads the endpoints of an inventory file (the one `certplane check --probe --inventory-file` reads), does one TLS
handshake with SNI per endpoint on a thread pool of `--workers` (cli/probe.py's MAX_WORKERS, 8, by default), reads
the peer certificate (DER) of each, and checks nothing: no trust, no fingerprint, no chain, no names. Standard
library only (json, socket, ssl, concurrent.futures): nothing to import that the raw work does not need. Prints one
line (handshakes done, certificates read) and exits 0 only when every endpoint served a certificate.
"""

from __future__ import annotations

import argparse
import json
import socket
import ssl
import sys
from concurrent.futures import ThreadPoolExecutor


def endpoints(path: str) -> list[tuple[str, int, str | None]]:
    with open(path) as f:
        doc = json.load(f)
    return [(e["host"], e["port"], e.get("server_name")) for entry in doc.values() for e in entry.get("endpoints") or ()]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("inventory")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE

    def handshake(job: tuple[str, int, str | None]) -> bytes | None:
        host, port, sni = job
        try:
            with socket.create_connection((host, port), timeout=args.timeout) as raw:
                with context.wrap_socket(raw, server_hostname=sni) as tls:
                    return tls.getpeercert(binary_form=True)
        except OSError:
            return None

    jobs = endpoints(args.inventory)
    with ThreadPoolExecutor(max_workers=max(1, min(args.workers, len(jobs) or 1))) as pool:
        served = list(pool.map(handshake, jobs))
    got = sum(1 for der in served if der)
    print(f"{len(jobs)} handshakes, {got} certificates read")
    return 0 if jobs and got == len(jobs) else 1


if __name__ == "__main__":
    sys.exit(main())
