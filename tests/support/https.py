"""One HTTPS request the way a client makes it: SNI, and (given a trust anchor) a validated certificate."""

from __future__ import annotations

import socket
import ssl

from cryptography import x509

from providers.core import certificates as x509util


def https_get(host: str, port: int, name: str, *, trust_pem: str | None = None,
              path: str = "/") -> tuple[int, str, str]:
    """GET https://name/path from host:port: (status, body, leaf fingerprint). With `trust_pem` the certificate
    must chain to it and be valid for `name`, else ssl.SSLError; without, any certificate is accepted."""
    if trust_pem is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cadata=trust_pem)
    with socket.create_connection((host, port), timeout=3) as raw:
        raw.settimeout(3)
        with context.wrap_socket(raw, server_hostname=name) as tls:
            leaf = tls.getpeercert(binary_form=True) or b""
            tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode(), x509util.fingerprint_sha256(x509.load_der_x509_certificate(leaf))
