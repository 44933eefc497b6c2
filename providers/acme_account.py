"""AcmeAccount: one registered account per ACME issuer, created once and reused by all of its orders.

The account key is generated here and kept only in state (secret). Changing the directory or the key
algorithm replaces the account; changing the e-mail updates the registration's contact in place.
"""

from __future__ import annotations

import uuid
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, UpdateResult

from ._dynamic import CertplaneProvider, is_unknown, note, user_facing, without_provider
from .core import keys
from .core.acme import client as acme_client
from .core.errors import CertplaneError, InvalidInputError

SECRET_OUTPUTS = ["account_key_pem", "eab_hmac_key"]
REPLACE_FIELDS = ("directory_url", "key")


def check_directory_url(value: Any, field: str = "directory_url") -> str:
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise InvalidInputError(field, "must be the http(s) URL of an ACME directory, e.g. "
                                       "https://acme-v02.api.letsencrypt.org/directory")
    return value


def check_email(value: Any) -> None:
    if value in (None, ""):
        return
    if not isinstance(value, str) or value.count("@") != 1 or " " in value or value.startswith("@") or value.endswith("@"):
        raise InvalidInputError("email", f"{value!r} is not an e-mail address")


def account_key_spec(raw: dict[str, Any] | None) -> keys.KeySpec:
    spec = keys.KeySpec.parse(raw, field="key")
    if spec.algorithm == "ed25519":
        raise InvalidInputError("key.algorithm", "ACME account keys must be rsa or ecdsa")
    return spec


def connection(props: dict[str, Any]) -> acme_client.Connection:
    return acme_client.Connection(directory_url=props["directory_url"], ca_bundle=props.get("ca_bundle") or None)


class AcmeAccountProvider(CertplaneProvider):
    def validate(self, news: dict[str, Any]) -> dict[str, Any]:
        if not is_unknown(news.get("directory_url")):
            check_directory_url(news.get("directory_url"))
        if not is_unknown(news.get("email")):
            check_email(news.get("email"))
        if not is_unknown(news.get("key")):
            news["key"] = account_key_spec(news.get("key")).as_dict()
        kid, hmac = news.get("eab_kid"), news.get("eab_hmac_key")
        if not is_unknown([kid, hmac]) and bool(kid) != bool(hmac):
            raise InvalidInputError("eab", "give both kid and hmac_key for External Account Binding")
        return news

    @user_facing("registering an ACME account")
    def create(self, props: dict[str, Any]) -> CreateResult:
        key = keys.generate_private_key(account_key_spec(props.get("key")))
        client = acme_client.connect(connection(props), key)
        account = acme_client.register_account(
            client, email=props.get("email") or None, eab_kid=props.get("eab_kid") or None,
            eab_hmac_key=props.get("eab_hmac_key") or None, directory_url=props["directory_url"])
        outs = {**without_provider(props), "account_key_pem": keys.private_key_to_pem(key),
                "account_url": account.url, "key_algorithm": keys.spec_of(key).label}
        return CreateResult(f"acct-{uuid.uuid4().hex[:12]}", outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [f for f in REPLACE_FIELDS if is_unknown(news.get(f)) or olds.get(f) != news.get(f)]
        changes = [f for f in ("email", "ca_bundle", "deactivate_on_destroy", "eab_kid", "eab_hmac_key")
                   if olds.get(f) != news.get(f)]
        for field in replaces:
            note(f"ACME account: {field} changed; registering a new account")
        return DiffResult(changes=bool(replaces or changes), replaces=replaces, delete_before_replace=False)

    @user_facing("updating an ACME account")
    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        if (olds.get("email") or None) != (news.get("email") or None):
            from acme import messages

            client = acme_client.connect(connection(news), keys.load_private_key(olds["account_key_pem"]),
                                         olds["account_url"])
            regr = messages.RegistrationResource(uri=olds["account_url"], body=messages.Registration())
            contact = (f"mailto:{news['email']}",) if news.get("email") else ()
            try:
                client.update_registration(regr, messages.Registration(contact=contact))
            except Exception as err:  # noqa: BLE001
                from .core.acme.errors import translate

                raise translate(err, "updating the account contact") from None
        keep = {k: olds.get(k) for k in ("account_key_pem", "account_url", "key_algorithm")}
        return UpdateResult({**without_provider(news), **keep})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """`pulumi refresh`: an account the CA no longer knows (deactivated, or a CA whose data was reset) is
        dropped from state, so the next `up` registers a new one; a CA that cannot be reached changes nothing."""
        if not props.get("account_url") or not props.get("account_key_pem"):
            return ReadResult(id_, props)
        try:
            client = acme_client.connect(connection(props), keys.load_private_key(props["account_key_pem"]),
                                         props["account_url"])
            status = acme_client.account_status(client, props["account_url"])
        except CertplaneError as err:
            note(f"ACME account {props['account_url']}: not checked ({err})")
            return ReadResult(id_, props)
        if status == "valid":
            return ReadResult(id_, props)
        note(f"ACME account {props['account_url']} is {status} at the CA; the next `pulumi up` registers a new one")
        return ReadResult("", {})

    @user_facing("deactivating an ACME account")
    def delete(self, _id: str, props: dict[str, Any]) -> None:
        if not props.get("deactivate_on_destroy"):
            return
        client = acme_client.connect(connection(props), keys.load_private_key(props["account_key_pem"]),
                                     props["account_url"])
        acme_client.deactivate_account(client, props["account_url"])


class AcmeAccount(Resource):
    """An ACME account. Outputs: account_key_pem (secret), account_url, directory_url, key_algorithm."""

    account_key_pem: pulumi.Output[str]
    account_url: pulumi.Output[str]
    directory_url: pulumi.Output[str]
    key_algorithm: pulumi.Output[str]

    def __init__(self, name: str, *, directory_url: Any, email: Any = None, ca_bundle: Any = None,
                 eab_kid: Any = None, eab_hmac_key: Any = None, key: Any = None,
                 deactivate_on_destroy: bool = False, opts: pulumi.ResourceOptions | None = None) -> None:
        props = {
            "directory_url": directory_url, "email": email, "ca_bundle": ca_bundle, "eab_kid": eab_kid,
            "eab_hmac_key": pulumi.Output.secret(eab_hmac_key) if eab_hmac_key is not None else None,
            "key": key, "deactivate_on_destroy": deactivate_on_destroy,
            "account_key_pem": None, "account_url": None, "key_algorithm": None,
        }
        secret = pulumi.ResourceOptions(additional_secret_outputs=SECRET_OUTPUTS)
        super().__init__(AcmeAccountProvider(), name, props, pulumi.ResourceOptions.merge(secret, opts))
