"""Fleet: every issuer and certificate of a stack, built from its validated config."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pulumi

from providers._dynamic import use_audit_log

from ._sealed import gather
from .config import FleetConfig
from .issuers import IssuerHandle, provision
from .managed_certificate import ManagedCertificate


class Fleet(pulumi.ComponentResource):
    inventory: pulumi.Output[dict[str, Any]]
    certificates: dict[str, dict[str, Any]]

    def __init__(self, name: str, config: FleetConfig, *, base_dir: Path,
                 plain_secrets: Mapping[str, list[str]] | None = None,
                 opts: pulumi.ResourceOptions | None = None, streamed: bool = False) -> None:
        """Declares every issuer and certificate; with `streamed`, only the fleet itself, and `declare()` the
        rest (from an async program, `pulumi.run`)."""
        super().__init__("certplane:index:Fleet", name, None, opts)
        self._steps = self._declare(config, base_dir, plain_secrets or {})
        if not streamed:
            for _ in self._steps:
                pass

    async def declare(self) -> Fleet:
        """Declares the issuers and certificates, letting the SDK send what is declared so far at each step.

        The SDK sends a registration only when the program gives its event loop a turn, and a program's
        top-level code gives it none: every resource of a large stack was built before the engine heard of
        the first one, and the provider process (started for the first certificate or key) loaded only then.
        Here the issuers go out first, the provider starts while the certificates are still being built, and
        every STREAM_EVERY certificates the built ones go out too."""
        for _ in self._steps:
            await self.urn.future()  # the fleet registered: its children's registrations can go out
            await _turns()
        return self

    def _declare(self, config: FleetConfig, base_dir: Path,
                 plain_secrets: Mapping[str, list[str]]) -> Iterator[None]:
        use_audit_log(config.audit.path)
        self.issuers: dict[str, IssuerHandle] = {
            issuer_name: provision(issuer_name, settings, parent=self)
            for issuer_name, settings in config.issuers.items()
        }
        yield
        self.managed: dict[str, ManagedCertificate] = {}
        entries: dict[str, Any] = {}
        child = pulumi.ResourceOptions(parent=self)
        for count, (cert_name, spec) in enumerate(config.certificates.items(), start=1):
            issuer = self._issuer(config, spec.issuer)
            issuer_name = "upload" if spec.upload else str(spec.issuer)
            facts = {"issuer": issuer_name, "tags": dict(spec.tags),
                     "plain_secrets": list(plain_secrets.get(cert_name, [])), **_rate_limits(issuer)}
            managed = ManagedCertificate(cert_name, spec, issuer=issuer, targets=config.targets, base_dir=base_dir,
                                         policy_facts=facts, opts=child)
            self.managed[cert_name] = managed
            entries[cert_name] = managed.inventory_entry(issuer_name, config.targets)
            if count % STREAM_EVERY == 0:
                yield
        self.inventory = gather(entries)
        self.certificates = {n: m.download() for n, m in self.managed.items()}
        # Trust anchors out: other stacks and client trust stores consume the private CAs (no key, plain data).
        self.issuers_trust = {n: h.ca.trust for n, h in self.issuers.items() if h.ca is not None}
        self.register_outputs({})

    def _issuer(self, config: FleetConfig, name: str | None) -> IssuerHandle | None:
        if not name:
            return None
        if name not in self.issuers:  # `self_signed`: an issuer with no block of its own
            settings = config.issuer(name)
            assert settings is not None, "config validation names every certificate's issuer"
            self.issuers[name] = provision(name, settings, parent=self)
        return self.issuers[name]


STREAM_EVERY = 25  # certificates declared between two turns of the event loop
LOOP_TURNS = 50  # turns per step: enough for the registrations queued so far to reach the engine


async def _turns() -> None:
    """Turns of the event loop, no waiting: each lets every ready registration task take its next step (its
    parent's URN, its inputs, the RPC), so what is declared so far reaches the engine."""
    for _ in range(LOOP_TURNS):
        await asyncio.sleep(0)


def _rate_limits(issuer: IssuerHandle | None) -> dict[str, Any]:
    """The issuer's `rate_limits:` block for the certificate provider's forecast (docs/RATE-LIMITS.md), as the
    stack gives it; nothing when the issuer sets none, so a stack without one keeps the inputs it had."""
    limits = getattr(issuer.settings, "rate_limits", None) if issuer is not None else None
    return {} if limits is None else {"rate_limits": limits.model_dump(mode="json", exclude_unset=True)}
