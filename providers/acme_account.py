"""AcmeAccount: one registered account per ACME issuer, created once and reused by all of its orders.

The account key is generated here and kept only in state (secret). Changing the directory or the key
algorithm replaces the account; changing the e-mail updates the registration's contact in place.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import pulumi
from pulumi.dynamic import DiffResult
from pydantic import AfterValidator, model_validator

from ._dynamic import CertplaneProvider, CertplaneResource, PlannedDiff, Stored, note
from .core import keys
from .core.acme import client as acme_client
from .core.errors import CertplaneError
from .core.issuers.acme import DirectoryUrl
from .core.keys import KeySpec, KeySpecField
from .core.validation import SECRET, Model, State

REPLACE_FIELDS = ("directory_url", "key")
GONE = frozenset({"deactivated", "revoked", "unknown"})  # what account_status says only when the CA is definite


class AccountInputs(Model):
    directory_url: DirectoryUrl
    email: Annotated[str | None, AfterValidator(acme_client.check_email)] = None
    ca_bundle: str | None = None
    eab_kid: str | None = None
    eab_hmac_key: Annotated[str | None, SECRET] = None
    key: Annotated[KeySpecField, AfterValidator(acme_client.check_key_spec)] = KeySpec("ecdsa", curve="P-256")
    deactivate_on_destroy: bool = False

    @model_validator(mode="after")
    def _eab(self) -> AccountInputs:
        acme_client.check_eab(self.eab_kid, self.eab_hmac_key)
        return self

    def connection(self) -> acme_client.Connection:
        return acme_client.Connection(directory_url=self.directory_url, ca_bundle=self.ca_bundle or None)


class AccountOutputs(State):
    account_key_pem: Annotated[str | None, SECRET] = None
    account_url: str | None = None
    key_algorithm: str | None = None

    def client(self, inputs: AccountInputs) -> Any:
        return acme_client.connect(inputs.connection(), keys.load_private_key(self.account_key_pem or ""),
                                   self.account_url)


Olds = Stored[AccountInputs, AccountOutputs]


class AcmeAccountProvider(CertplaneProvider[AccountInputs, AccountOutputs]):
    inputs = AccountInputs
    outputs = AccountOutputs
    noun = "an ACME account"
    actions = {"create": "registering an ACME account", "delete": "deactivating an ACME account"}


    def create_typed(self, inputs: AccountInputs) -> tuple[str, AccountOutputs]:
        key = keys.generate_private_key(inputs.key)
        client = acme_client.connect(inputs.connection(), key)
        account = acme_client.register_account(client, email=inputs.email, eab_kid=inputs.eab_kid,
                                               eab_hmac_key=inputs.eab_hmac_key, directory_url=inputs.directory_url)
        return f"acct-{uuid.uuid4().hex[:12]}", AccountOutputs(
            account_key_pem=keys.private_key_to_pem(key), account_url=account.url, key_algorithm=keys.spec_of(key).label)

    def diff_typed(self, _id: str, olds: Olds, news: AccountInputs) -> DiffResult:
        replaces = [f for f in REPLACE_FIELDS if getattr(olds.inputs, f) != getattr(news, f)]
        changes = [f for f in ("email", "ca_bundle", "deactivate_on_destroy", "eab_kid", "eab_hmac_key")
                   if getattr(olds.inputs, f) != getattr(news, f)]
        for field in replaces:
            note(f"ACME account: {field} changed; registering a new account")
        return PlannedDiff(details={name: "update" for name in [*replaces, *changes]}, replaces=replaces)

    def update_typed(self, _id: str, olds: Olds, news: AccountInputs) -> AccountOutputs:
        if olds.inputs.email != news.email:
            from acme import messages

            from .core.acme.errors import translate

            regr = messages.RegistrationResource(uri=olds.outputs.account_url, body=messages.Registration())
            contact = (f"mailto:{news.email}",) if news.email else ()
            try:
                olds.outputs.client(news).update_registration(regr, messages.Registration(contact=contact))
            except Exception as err:  # noqa: BLE001
                raise translate(err, "updating the account contact") from None
        return olds.outputs

    def read_typed(self, _id: str, olds: Olds) -> AccountOutputs | None:
        """`pulumi refresh`: an account the CA definitively no longer knows (accountDoesNotExist: a CA whose data
        was reset) or has deactivated is dropped from state, so the next `up` registers a new one. Any other
        answer (malformed, 5xx, a CA that cannot be reached, a directory URL today's rule refuses) changes
        nothing: one line says the account was not checked, and the state is kept as it is."""
        url = olds.outputs.account_url
        if not url or not olds.outputs.account_key_pem:
            return olds.outputs
        try:
            status = acme_client.account_status(olds.outputs.client(olds.inputs), url)
        except CertplaneError as err:
            note(f"ACME account {url}: not checked ({err}); state kept")
            return olds.outputs
        if status not in GONE:
            return olds.outputs
        note(f"ACME account {url} is {status} at the CA; the next `pulumi up` registers a new one")
        return None

    def delete_typed(self, _id: str, olds: Olds) -> None:
        if olds.inputs.deactivate_on_destroy and olds.outputs.account_url:
            acme_client.deactivate_account(olds.outputs.client(olds.inputs), olds.outputs.account_url)


class AcmeAccount(CertplaneResource, module="certplane", name="AcmeAccount"):
    """An ACME account. Outputs: account_key_pem (secret), account_url, key_algorithm."""

    provider = AcmeAccountProvider

    account_key_pem: pulumi.Output[str]
    account_url: pulumi.Output[str]
    directory_url: pulumi.Output[str]
    key_algorithm: pulumi.Output[str]

    def __init__(self, name: str, *, opts: pulumi.ResourceOptions | None = None, **props: Any) -> None:
        super().__init__(name, props, opts)


__all__ = ["AcmeAccount", "AcmeAccountProvider"]
