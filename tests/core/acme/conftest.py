"""ACME fixtures (Pebble, challtestsrv, BIND, moto) shared with tests/providers via tests/acme_fixtures.py."""

from tests.acme_fixtures import (  # noqa: F401 - pytest fixtures
    account,
    bind,
    moto_url,
    pebble,
    pebble_bind,
    pebble_eab,
    webroot_server,
)
