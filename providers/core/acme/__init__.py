"""ACME (RFC 8555) issuance on top of certbot's `acme` library: client, orders, ARI, revocation, errors.

Import the submodules directly (`from providers.core.acme import orders`); this package imports nothing so
the challenge solvers in `providers.core.dns` and `providers.core.http01` can depend on `solver` alone.
"""
