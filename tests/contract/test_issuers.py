"""Every registered issuer keeps the same contract: its config block gives an order for a certificate, the
request passes its checks, and the chain it issues verifies to the trust it names (server policy, the requested
names), for the key it was given."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.x509 import DNSName
from cryptography.x509.verification import PolicyBuilder, Store

from providers.core import issuers, keys
from providers.core.certificates import CertificateRequest, dns_names_of
from providers.core.issuers import IssueRequest
from tests.contract import sandboxes

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("kind", issuers.REGISTRY.kinds)
def test_issue_and_verify(kind: str, request: pytest.FixtureRequest) -> None:
    with sandboxes.load("issuers", kind).open(request) as box:
        settings = issuers.REGISTRY.validate(box.settings, field=f"issuers.{kind}")
        plugin = issuers.REGISTRY.plugin_of(settings)
        assert plugin.kind == kind
        order = plugin.order_for(settings, issuer=kind, challenge=None)
        spec = keys.KeySpec("ecdsa", curve="P-256")
        cert_request = CertificateRequest(domains=box.domains, validity_days=plugin.default_validity_days(settings))
        plugin.check(order, cert_request, spec)
        credentials = plugin.credentials.model_validate(box.credentials) if plugin.credentials else None
        if credentials is not None:
            plugin.check_credentials(credentials)
        key = keys.generate_private_key(spec)
        issued = plugin.build(order, credentials).issue(
            IssueRequest("contract", cert_request, key, dt.datetime.now(dt.timezone.utc)))

        assert keys.same_public_key(issued.leaf.public_key(), key)  # type: ignore[arg-type]
        assert sorted(dns_names_of(issued.leaf)) == sorted(box.domains)
        trust = box.trust or (issued.leaf,)
        verifier = (PolicyBuilder().store(Store(list(trust))).time(dt.datetime.now(dt.timezone.utc))
                    .build_server_verifier(DNSName(box.domains[-1])))
        if box.trust:
            path = verifier.verify(issued.leaf, list(issued.chain))
            assert path[0] == issued.leaf and path[-1] in trust
        else:  # self-signed: it is its own chain, and nothing else is served with it
            assert issued.chain == () and issued.leaf.issuer == issued.leaf.subject
        assert plugin.identity(order, credentials) == plugin.identity(order, credentials)  # stable across calls
