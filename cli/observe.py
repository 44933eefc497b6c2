"""Ask the targets that do not terminate TLS themselves (ELBv2 listeners, CloudFront distributions, Alibaba
CAS/SLB, directories) what they hold, through the target's own API: the same `observe()` that `pulumi refresh`
uses, built from the settings and live facts in the inventory. Credentials are the target's own (its profile,
the AWS/Alibaba chain), as in `pulumi up`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from providers.core import deploy
from providers.core.pem import same_fingerprint
from providers.core.deploy import Binding
from providers.core.errors import CertplaneError

from .model import Certificate, Finding, Placement
from .probe import concurrently

MAX_WORKERS = 8


@dataclass(frozen=True)
class Observation:
    certificate: str
    placement: Placement
    seen: dict[str, str | None] = field(default_factory=dict)  # where -> leaf fingerprint (None: nothing)
    error: str | None = None
    seconds: float = 0.0


def observe(certificate: str, placement: Placement) -> Observation:
    start = time.monotonic()
    try:
        target = deploy.get_target(placement.type, placement.settings)
        seen = target.observe(Binding(placement.binding_id, placement.server_names, placement.sni, placement.live))
    except CertplaneError as err:
        return Observation(certificate, placement, error=str(err), seconds=time.monotonic() - start)
    except Exception as err:  # noqa: BLE001 - a target that cannot be read is a finding, never a traceback
        reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'no message'}"
        return Observation(certificate, placement, error=f"cannot ask it ({reason})", seconds=time.monotonic() - start)
    return Observation(certificate, placement, seen=dict(seen), seconds=time.monotonic() - start)


def observe_all(jobs: Sequence[tuple[str, Placement]], *, workers: int = MAX_WORKERS,
                on_done: Callable[[Observation], None] | None = None) -> list[Observation]:
    """Concurrently on a small thread pool; results in the order of `jobs`."""
    return concurrently(observe, jobs, workers=workers, prefix="observe", on_done=on_done)


def assess(cert: Certificate, result: Observation) -> list[Finding]:
    """Findings for one target; an empty list means it holds this certificate everywhere it should."""
    where = result.placement.label
    if result.error:
        return [Finding(cert.name, "critical", "target-unreadable", f"{where}: {result.error}", endpoint=where)]
    if not result.seen:
        return [Finding(cert.name, "critical", "target-empty", f"{where}: holds no certificate for this binding",
                        endpoint=where)]
    out = []
    for place, fingerprint in sorted(result.seen.items()):
        label = where if place == deploy.DEFAULT else f"{where} {place}"
        if fingerprint is None:
            out.append(Finding(cert.name, "critical", "target-empty", f"{label}: holds no certificate",
                               endpoint=label))
        elif cert.fingerprint_sha256 and not same_fingerprint(fingerprint, cert.fingerprint_sha256):
            out.append(Finding(cert.name, "critical", "target-mismatch",
                               f"{label}: holds another certificate (SHA-256 {fingerprint[:23]}...) than the "
                               f"inventory's (SHA-256 {cert.fingerprint_sha256[:23]}...)", endpoint=label))
    return out
