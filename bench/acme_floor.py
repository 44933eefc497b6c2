"""The ACME floor: a minimal script on the `acme` library (certbot's client) issuing N single-name DNS-01
certificates from one account, on T threads, polling as fast as is reasonable.

Run:  .venv/bin/python bench/acme_floor.py --directory URL --ca-bundle PEM --challtestsrv URL --names a.test,b.test
      [--threads 8] [--poll 0.05 | --library-polling] [--timeout 120]

One account (registered here), then per name on a thread pool: new order, set the TXT record with
challtestsrv's /set-txt, answer the challenge, poll the authorization every `--poll` seconds until it is no longer
pending, finalize, poll the order every `--poll` seconds until valid, download, clear the TXT record.
`--library-polling`: the library's own `poll_and_finalize` instead (it sleeps a fixed 1 s between authorization
polls and before each order poll), as a minimal script written with it does. Keys are ECDSA P-256, as certplane's.
Every wait is bounded by `--timeout` per order. Prints one JSON line:
{"issued": N, "seconds": wall seconds from the account's registration to the last certificate, "errors": [...]}.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import json
import sys
import time
import urllib.request

import josepy
from acme import challenges, client, messages
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _post(url: str, body: dict[str, str]) -> None:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()


def _csr(name: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM)


def issue(acme: client.ClientV2, name: str, challtestsrv: str, poll: float, timeout: float,
          library_polling: bool = False) -> str:
    deadline = time.monotonic() + timeout
    order = acme.new_order(_csr(name))
    host = f"_acme-challenge.{name}."
    try:
        for authzr in order.authorizations:
            if authzr.body.status == messages.STATUS_VALID:
                continue
            challb = next(c for c in authzr.body.challenges if isinstance(c.chall, challenges.DNS01))
            response, validation = challb.response_and_validation(acme.net.key)
            _post(challtestsrv + "/set-txt", {"host": host, "value": validation})
            acme.answer_challenge(challb, response)
        if library_polling:  # the library's own poll_and_finalize: fixed 1 s sleeps (authorizations, order)
            done = acme.poll_and_finalize(order, dt.datetime.now() + dt.timedelta(seconds=timeout))
            return str(done.fullchain_pem)
        for authzr in order.authorizations:
            while True:
                body = messages.Authorization.from_json(acme._post_as_get(authzr.uri).json())  # noqa: SLF001
                if body.status != messages.STATUS_PENDING:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name}: authorization still pending")
                time.sleep(poll)
            if body.status != messages.STATUS_VALID:
                raise RuntimeError(f"{name}: authorization {body.status}")
        csr = x509.load_pem_x509_csr(order.csr_pem)
        acme._post(order.body.finalize, messages.CertificateRequest(csr=csr))  # noqa: SLF001
        while True:
            body = messages.Order.from_json(acme._post_as_get(order.uri).json())  # noqa: SLF001
            if body.status == messages.STATUS_VALID and body.certificate:
                return str(acme._post_as_get(body.certificate).text)  # noqa: SLF001
            if body.status == messages.STATUS_INVALID:
                raise RuntimeError(f"{name}: order invalid: {body.error}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name}: order {body.status}")
            time.sleep(poll)
    finally:
        _post(challtestsrv + "/clear-txt", {"host": host})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--directory", required=True)
    parser.add_argument("--ca-bundle", required=True, help="PEM to verify the ACME server's TLS")
    parser.add_argument("--challtestsrv", required=True, help="challtestsrv's management API URL")
    parser.add_argument("--names", required=True, help="comma-separated DNS names, one certificate each")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--poll", type=float, default=0.05, help="seconds between polls (default 0.05)")
    parser.add_argument("--timeout", type=float, default=120.0, help="bound per order, seconds")
    parser.add_argument("--library-polling", action="store_true",
                        help="poll with the library's poll_and_finalize (1 s sleeps) instead of every --poll s")
    args = parser.parse_args()
    names = [n for n in args.names.split(",") if n]

    start = time.monotonic()
    key = josepy.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    net = client.ClientNetwork(key, alg=josepy.ES256, verify_ssl=args.ca_bundle, user_agent="certplane-floor")
    directory = client.ClientV2.get_directory(args.directory, net)
    acme = client.ClientV2(directory, net)
    acme.new_account(messages.NewRegistration.from_data(email="floor@example.test", terms_of_service_agreed=True))
    errors: list[str] = []
    issued = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.threads) as pool:
        futures = [pool.submit(issue, acme, n, args.challtestsrv, args.poll, args.timeout,
                               args.library_polling) for n in names]
        for fut in concurrent.futures.as_completed(futures):
            try:
                if "BEGIN CERTIFICATE" in fut.result():
                    issued += 1
            except Exception as err:  # noqa: BLE001 - counted and reported
                errors.append(f"{type(err).__name__}: {err}")
    seconds = time.monotonic() - start
    print(json.dumps({"issued": issued, "seconds": round(seconds, 3), "threads": args.threads,
                      "poll": "library" if args.library_polling else args.poll, "errors": errors[:5],
                      "at": dt.datetime.now(dt.timezone.utc).isoformat()}))
    return 0 if issued == len(names) else 1


if __name__ == "__main__":
    sys.exit(main())
