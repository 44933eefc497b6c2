"""Every registered deploy target keeps the same contract against a real counterpart: deploy makes the bundle
what is served (seen from outside the target), verify and observe agree, a second deploy (a renewal) replaces
it, and remove puts back what was served before, twice without error."""

from __future__ import annotations

import pytest

from providers.core import deploy
from providers.core.deploy import DEFAULT
from tests.contract import sandboxes
from tests.support.pki import LocalCa

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("kind", deploy.REGISTRY.kinds)
def test_deploy_observe_redeploy_remove(kind: str, request: pytest.FixtureRequest, ca: LocalCa) -> None:
    with sandboxes.load("targets", kind).open(request) as box:
        target = deploy.get_target(kind, box.settings)
        names = list(box.binding.server_names) or ["www.example.test"]
        target.check_binding(box.binding)
        first, renewed = ca.bundle(names), ca.bundle(names)

        live = target.deploy(box.binding, first)
        binding = box.binding.with_live(live)
        target.verify(binding, first)
        assert box.served(binding) == first.fingerprint_sha256
        assert set(target.observe(binding).values()) == {first.fingerprint_sha256}

        binding = binding.with_live(target.deploy(binding, renewed))
        target.verify(binding, renewed)
        assert box.served(binding) == renewed.fingerprint_sha256

        target.remove(binding)
        target.remove(binding)
        assert box.served(binding) == box.before != renewed.fingerprint_sha256
        assert renewed.fingerprint_sha256 not in target.observe(binding).values()
        observed = target.observe(binding)
        assert observed and all(isinstance(k, str) and k for k in observed)  # labels drift messages can name
        if isinstance(target, deploy.ServesTls):
            assert set(observed) <= {DEFAULT, *binding.server_names}
