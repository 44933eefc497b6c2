"""Benchmark: certificate issuance in providers/core (no engine), per key type.

Run:  .venv/bin/python bench/bench_core.py [--rounds N] [--update-baseline]
Prints median milliseconds per issued certificate (key generation + signing + every format) and compares
with bench/baselines.json. Speed targets live here, not in tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.baseline import report  # noqa: E402

from providers.core import certificates as x509util  # noqa: E402
from providers.core import formats, keys  # noqa: E402

SPECS = {"rsa-2048": keys.KeySpec("rsa", size=2048), "ecdsa-p256": keys.KeySpec("ecdsa", curve="P-256"),
         "ecdsa-p384": keys.KeySpec("ecdsa", curve="P-384"), "ed25519": keys.KeySpec("ed25519")}


def issue_once(spec: keys.KeySpec, ca_key: keys.PrivateKey, ca_cert, now: dt.datetime) -> None:
    key = keys.generate_private_key(spec)
    cert = x509util.sign_certificate(x509util.CertificateTemplate(dns_names=("bench.example.test",)),
                                     subject_public_key=key.public_key(), signing_key=ca_key, issuer=ca_cert, now=now)
    formats.render(["pem", "pkcs12", "jks", "der"], key=key, leaf=cert, chain=[ca_cert], password="bench-pass")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--update-baseline", action="store_true")
    args = parser.parse_args()
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = keys.generate_private_key(keys.KeySpec("ecdsa", curve="P-384"))
    ca_cert = x509util.sign_certificate(x509util.CertificateTemplate(common_name="Bench CA", is_ca=True),
                                        subject_public_key=ca_key.public_key(), signing_key=ca_key, issuer=None,
                                        now=now)
    results = {}
    for name, spec in SPECS.items():
        samples = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            issue_once(spec, ca_key, ca_cert, now)
            samples.append((time.perf_counter() - start) * 1000)
        results[f"core_issue_{name}_ms"] = round(statistics.median(samples), 2)
    report(results, "ms", update=args.update_baseline)
    return 0


if __name__ == "__main__":
    sys.exit(main())
