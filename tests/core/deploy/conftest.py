"""Fixtures for the deploy-target tests live in fixtures.py so tests/providers can use them too."""

from tests.core.deploy.fixtures import ca, moto, moto_server, nginx  # noqa: F401
