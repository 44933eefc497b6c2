"""ACME Renewal Information (RFC 9773): the CA's suggested renewal window for a certificate.

We read the window itself (not `ClientV2.renewal_time`, which picks a random instant in it) so previews are
deterministic: certplane renews at the window's start.
"""

from __future__ import annotations

import base64
import datetime as dt
import math

from acme import messages
from acme.client import ClientV2
from cryptography import x509

from ..renewal import AriWindow
from .errors import translate


def cert_id(cert: x509.Certificate) -> str:
    """The RFC 9773 certificate identifier: base64url(AKI keyIdentifier) "." base64url(DER serial)."""
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    serial = cert.serial_number
    serial_bytes = serial.to_bytes(math.ceil((serial.bit_length() + 1) / 8), "big", signed=True)

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    return f"{b64(aki.key_identifier or b'')}.{b64(serial_bytes)}"


def supports_ari(client: ClientV2) -> bool:
    try:
        client.directory["renewalInfo"]
    except KeyError:
        return False
    return True


def renewal_window(client: ClientV2, cert: x509.Certificate) -> AriWindow | None:
    """The suggested window, or None when the CA offers no ARI (or the certificate has no AKI)."""
    if not supports_ari(client):
        return None
    try:
        ident = cert_id(cert)
    except x509.ExtensionNotFound:
        return None
    url = f"{client.directory['renewalInfo'].rstrip('/')}/{ident}"
    try:
        response = client.net.get(url, content_type="application/json")
        info = messages.RenewalInfo.from_json(response.json())
    except Exception as err:  # noqa: BLE001
        raise translate(err, f"reading renewal info for serial {cert.serial_number:x}") from None
    start, end = info.suggested_window.start, info.suggested_window.end
    return AriWindow(start=_utc(start), end=_utc(end))


def _utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.timezone.utc) if t.tzinfo is None else t.astimezone(dt.timezone.utc)


__all__ = ["cert_id", "renewal_window", "supports_ari"]
