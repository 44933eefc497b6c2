"""Revocation (RFC 8555 §7.6) with an RFC 5280 reason; revoking an already revoked certificate is a no-op."""

from __future__ import annotations

from acme import messages
from acme.client import ClientV2
from cryptography import x509

from ..errors import InvalidInputError
from .errors import translate

# RFC 5280 CRLReason codes an ACME subscriber may use (Let's Encrypt accepts these).
REASONS = {"unspecified": 0, "keyCompromise": 1, "affiliationChanged": 3, "superseded": 4,
           "cessationOfOperation": 5}


def reason_code(reason: str | int) -> int:
    if isinstance(reason, int) and not isinstance(reason, bool) and reason in REASONS.values():
        return reason
    if isinstance(reason, str) and reason in REASONS:
        return REASONS[reason]
    raise InvalidInputError("", f"unknown revocation reason {reason!r}: use {', '.join(REASONS)}")


def revoke(client: ClientV2, cert: x509.Certificate, reason: str | int = "unspecified") -> bool:
    """Revoke `cert`; False when the CA says it was already revoked."""
    code = reason_code(reason)
    try:
        client.revoke(cert, code)
    except messages.Error as err:
        if err.code == "alreadyRevoked":
            return False
        raise translate(err, f"revoking serial {cert.serial_number:x}") from None
    except Exception as err:  # noqa: BLE001
        raise translate(err, f"revoking serial {cert.serial_number:x}") from None
    return True


__all__ = ["REASONS", "reason_code", "revoke"]
