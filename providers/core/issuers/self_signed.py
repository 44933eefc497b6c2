"""self_signed: the certificate's own key signs it (lab endpoints, and the root of a private CA)."""

from __future__ import annotations

from ..certificates import sign_certificate
from ..validation import Model
from .base import IssueRequest, Issued, IssuerPlugin, IssuerSettings, OrderSettings

KIND = "self_signed"


class SelfSignedSettings(IssuerSettings):
    """No settings: `issuer: self_signed` needs no block in certplane:issuers."""


class SelfSignedOrder(OrderSettings):
    pass


class SelfSignedIssuer:
    def issue(self, request: IssueRequest) -> Issued:
        cert = sign_certificate(request.request.template(), subject_public_key=request.key.public_key(),
                                signing_key=request.key, issuer=None, now=request.now)
        return Issued(leaf=cert, chain=())


class SelfSignedPlugin(IssuerPlugin[SelfSignedSettings, SelfSignedOrder, Model]):
    kind = KIND
    settings = SelfSignedSettings
    order = SelfSignedOrder
    chain_stable = True  # there is none

    def build(self, order: SelfSignedOrder, credentials: Model | None) -> SelfSignedIssuer:
        return SelfSignedIssuer()


PLUGIN = SelfSignedPlugin()
