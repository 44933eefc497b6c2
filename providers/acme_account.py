"""AcmeAccount: one registered account per ACME issuer, created once and reused by all of its orders.

The account key is generated here and kept only in state (secret), unless the issuer gives an existing one
(`account_key_pem`, a secret, with `shared: true`): the CA then returns that key's account, registering it only
if it has none yet (RFC 8555 §7.3.1). A shared account is used by other stacks too, so this resource never
deactivates it (destroyed, deleted or replaced) and never changes its contact. Changing the directory, the key
algorithm or the given key replaces the account; giving the key this account already has only marks it shared;
changing the e-mail updates the registration's contact in place (of an account of this stack's own).
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
from .core.errors import CertplaneError, InvalidInputError
from .core.issuers.acme import DirectoryUrl, load_account_key
from .core.keys import KeySpec
from .core.validation import SECRET, KeySpecField, Model, State

REPLACE_FIELDS = ("directory_url", "key")  # and account_key_pem when given, compared as keys (see diff_typed)
GONE = frozenset({"deactivated", "revoked", "unknown"})  # what account_status says only when the CA is definite


class AccountInputs(Model):
    directory_url: DirectoryUrl
    email: Annotated[str | None, AfterValidator(acme_client.check_email)] = None
    ca_bundle: str | None = None
    eab_kid: str | None = None
    eab_hmac_key: Annotated[str | None, SECRET] = None
    key: Annotated[KeySpecField, AfterValidator(acme_client.check_key_spec)] = KeySpec("ecdsa", curve="P-256")
    deactivate_on_destroy: bool = False
    # An existing account's key (the issuer's account_key_pem), with shared: the account is other stacks' too.
    # State keeps the account's key under this name whatever its origin (it is also the output); `shared` says.
    account_key_pem: Annotated[str | None, SECRET] = None
    shared: bool = False

    @model_validator(mode="after")
    def _eab(self) -> AccountInputs:
        acme_client.check_eab(self.eab_kid, self.eab_hmac_key)
        if self.shared and not self.account_key_pem:
            raise InvalidInputError("account_key_pem", "a shared account needs its key")
        return self

    def account_key(self) -> keys.PrivateKey:
        """The given key of a shared account (checked by `validate`), or a new one of the spec."""
        if self.shared and self.account_key_pem:
            return load_account_key(self.account_key_pem)
        return keys.generate_private_key(self.key)

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


    def validate(self, inputs: AccountInputs, olds: Any) -> None:
        if inputs.shared and inputs.account_key_pem:
            try:
                load_account_key(inputs.account_key_pem)
            except InvalidInputError as err:
                raise InvalidInputError("account_key_pem", err.reason) from None

    def create_typed(self, inputs: AccountInputs) -> tuple[str, AccountOutputs]:
        key = inputs.account_key()
        client = acme_client.connect(inputs.connection(), key)
        account = acme_client.register_account(client, email=inputs.email, eab_kid=inputs.eab_kid,
                                               eab_hmac_key=inputs.eab_hmac_key, directory_url=inputs.directory_url)
        if inputs.shared and account.status is None:  # the CA already had this key's account
            note(f"ACME account {account.url}: the existing account of account_key_pem (shared; its contact is "
                 "left as registered)")
        return f"acct-{uuid.uuid4().hex[:12]}", AccountOutputs(
            account_key_pem=keys.private_key_to_pem(key), account_url=account.url, key_algorithm=keys.spec_of(key).label)

    def diff_typed(self, _id: str, olds: Olds, news: AccountInputs) -> DiffResult:
        replaces = [f for f in REPLACE_FIELDS if getattr(olds.inputs, f) != getattr(news, f)]
        changes = [f for f in ("email", "ca_bundle", "deactivate_on_destroy", "eab_kid", "eab_hmac_key")
                   if getattr(olds.inputs, f) != getattr(news, f)]
        same_key = news.shared and _same_key(olds.outputs.account_key_pem, news.account_key_pem)
        if (news.shared and not same_key) or (olds.inputs.shared and not news.shared):
            replaces.append("account_key_pem")
            note(_replaced_note(olds.inputs.shared, news.shared))
        elif news.shared and not olds.inputs.shared:  # the key this account already has: it is shared from now on
            changes.append("shared")
            note("ACME account: account_key_pem is this account's own key; it is shared from now on and never "
                 "deactivated here")
        for field in replaces:
            if field != "account_key_pem" and (field != "key" or "account_key_pem" not in replaces):
                note(f"ACME account: {field} changed; registering a new account")
        return PlannedDiff(details={name: "update" for name in [*replaces, *changes]}, replaces=replaces)

    def update_typed(self, _id: str, olds: Olds, news: AccountInputs) -> AccountOutputs:
        if olds.inputs.email != news.email and news.shared:
            note(f"ACME account {olds.outputs.account_url}: shared (account_key_pem), so its contact is left as "
                 "registered; change it where the account is managed")
        elif olds.inputs.email != news.email:
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
        if olds.inputs.shared:
            again = "registers it again" if status == "unknown" else "fails until account_key_pem names a valid account"
            note(f"ACME account {url} (shared: account_key_pem) is {status} at the CA; the next `pulumi up` {again}")
        else:
            note(f"ACME account {url} is {status} at the CA; the next `pulumi up` registers a new one")
        return None

    def delete_typed(self, _id: str, olds: Olds) -> None:
        """Deactivates the account only when asked, and never a shared one (its key is given in config: other
        stacks use it), whether this resource is destroyed, deleted or replaced."""
        if not olds.inputs.deactivate_on_destroy or not olds.outputs.account_url:
            return
        if olds.inputs.shared:
            note(f"ACME account {olds.outputs.account_url}: shared (account_key_pem), left registered")
            return
        acme_client.deactivate_account(olds.outputs.client(olds.inputs), olds.outputs.account_url)


def _replaced_note(was_shared: bool, shared: bool) -> str:
    if not shared:
        return "ACME account: account_key_pem removed; registering a new account with a key of this stack's own"
    return f"ACME account: account_key_pem {'changed' if was_shared else 'given'}; using that key's account"


def _same_key(old: str | None, new: str | None) -> bool:
    """Whether two given account keys are one key (the same PEM written another way, e.g. without its last
    newline, is not a new account)."""
    if not old or not new:
        return not old and not new
    if old == new:
        return True
    try:
        return keys.same_public_key(load_account_key(old), load_account_key(new))
    except InvalidInputError:
        return False


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
