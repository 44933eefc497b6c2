"""Fixtures for the operator CLI tests (the helpers themselves live in helpers.py)."""

from .helpers import pki, tls_server  # noqa: F401
