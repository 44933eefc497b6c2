"""self_signed: the certificate's own key signs it (lab endpoints, and the root of a private CA)."""

from __future__ import annotations

from ..certificates import sign_certificate
from ..errors import InvalidInputError
from ..validation import Model
from .base import IssueRequest, Issued, IssuerPlugin, IssuerSettings, OrderSettings

KIND = "self_signed"
NEEDS_KEY = "a self-signed certificate is signed by its own key: give key_pem with the CSR, or use a CA"


class SelfSignedSettings(IssuerSettings):
    """No settings: `issuer: self_signed` needs no block in certplane:issuers."""


class SelfSignedOrder(OrderSettings):
    pass


class SelfSignedIssuer:
    def issue(self, request: IssueRequest) -> Issued:
        if request.key is None:
            raise InvalidInputError("key_pem", NEEDS_KEY)
        cert = sign_certificate(request.request.template(), subject_public_key=request.key.public_key(),
                                signing_key=request.key, issuer=None, now=request.now)
        return Issued(leaf=cert, chain=())


class SelfSignedPlugin(IssuerPlugin[SelfSignedSettings, SelfSignedOrder, Model]):
    kind = KIND
    settings = SelfSignedSettings
    order = SelfSignedOrder
    chain_stable = True  # there is none
    needs_private_key = True  # the certificate's own key signs it: a CSR without its key cannot

    def build(self, order: SelfSignedOrder, credentials: Model | None) -> SelfSignedIssuer:
        return SelfSignedIssuer()


PLUGIN = SelfSignedPlugin()
