"""Certificate: one certificate from any issuer plug-in (a private CA, the certificate's own key, an ACME CA),
renewed in place.

`diff` runs a chain of named checks (the request changed, the key changed, the issuer changed, expired, issued
before `reissue_before`, the ARI window or the renewal window is open); any reason re-issues, shown in `pulumi
preview`. `update` re-issues
in place (same resource id) with a new key unless `reuse_key` (a `reissue_before` re-issue always makes a new
key), and never revokes: the old certificate stays
valid until its replacement is deployed. Only a rendering change (formats, password, settings the issuer reads
but that do not shape the certificate) re-renders the same certificate. `delete` revokes only when the issuer
can and the certificate's order asks for it.

While the engine checks and diffs the certificates (preview and `up`), the provider tallies the ACME orders this
run places and what the CA already issued, and warns when they go over a CA rate limit (docs/RATE-LIMITS.md).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Collection, Mapping
from typing import Annotated, Any

import pulumi
from cryptography import x509
from pulumi.dynamic import DiffResult
from pydantic import PrivateAttr, ValidationError, ValidationInfo, model_validator

from . import _custody, _engine_log, _issued, _legacy
from ._dynamic import CertplaneProvider, CertplaneResource, Stored, note
from ._wire import UNKNOWN, Unknown
from .core import clock, keys, renewal
from .core.acme import ratelimits
from .core.audit import AuditContext, Event
from .core import certificates as x509util
from .core.certificates import CertificateRequest
from .core.errors import InvalidInputError
from .core import formats
from .core.formats import Formats
from .core.issuers import REGISTRY, AdvisesRenewal, IssueRequest, Issued, IssuerPlugin, Revokes
from .core.keystore import KeyStorageSettings
from .core.renewal import RenewalPolicy
from .core.validation import REISSUE, KeySpecField, SECRET, marked, problems

Pending = Annotated[str | Unknown | None, SECRET]


class CertificateInputs(CertificateRequest):
    """The request (names, lifetime, uses), the key, how to render it, and the issuer: its plug-in
    (`issuer_type`), its order settings split into plain and secret ones, and the credentials the issuer's own
    resources provide (not known in a preview that creates them)."""

    name: str
    key: KeySpecField | None = None
    key_pem: Pending = None  # a key made elsewhere (a CA's key from a PrivateKey resource)
    key_ref: str | Unknown | None = None  # a key made elsewhere and kept in `key_storage` (never in state)
    key_fingerprint: str | Unknown | None = None  # key_ref's SPKI fingerprint: compared, so a moved key is the same
    key_storage: dict[str, Any] | None = None  # where the key is kept (providers/core/keystore); None: in state
    csr_pem: str | None = None  # CSR mode: a key certplane never generates (key_pem: optionally, the key itself)
    reuse_key: bool = False
    renew: RenewalPolicy | None = None
    reissue_before: renewal.Instant | None = None  # re-issue (with a new key) what was issued before it
    formats: Formats = ()
    keystore_password: Pending = None
    issuer_type: str
    policy_facts: dict[str, Any] = {}  # read by the policy pack only (issuer name, tags, ...)
    audit: AuditContext | None = None
    issuer_settings: dict[str, Any] = {}
    issuer_secrets: Annotated[dict[str, Any] | None, SECRET] = None
    issuer_credentials: Annotated[dict[str, Any] | Unknown | None, SECRET] = None

    _plugin: Any = PrivateAttr(default=None)
    _order: Any = PrivateAttr(default=None)
    _credentials: Any = PrivateAttr(default=None)
    _storage: Any = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _issuer(self, info: ValidationInfo) -> CertificateInputs:
        self._storage = _custody.settings_of(self.key_storage)
        try:
            plugin = REGISTRY.get(self.issuer_type)
        except InvalidInputError as err:
            raise InvalidInputError("issuer_type", err.reason) from None
        self._plugin = plugin
        context = info.context
        self._order = _validated("issuer_settings", lambda: plugin.order.model_validate(
            {**self.issuer_settings, **(self.issuer_secrets or {})}, context=context))
        creds = self.issuer_credentials
        if isinstance(creds, Unknown):
            self._credentials = UNKNOWN
        elif creds is not None and plugin.credentials is not None:
            self._credentials = _validated("issuer_credentials", lambda: plugin.credentials.model_validate(
                creds, context=context))
        return self

    @property
    def plugin(self) -> IssuerPlugin[Any, Any, Any]:
        return self._plugin  # type: ignore[no-any-return]

    @property
    def order(self) -> Any:
        return self._order

    @property
    def storage(self) -> KeyStorageSettings:
        """Where this certificate's key is kept (providers/_custody.py)."""
        return self._storage  # type: ignore[no-any-return]

    @property
    def key_given(self) -> bool:
        """The key is made elsewhere (key_pem, key_ref, a CSR's): certplane never re-keys it, nor removes it."""
        return self.key_pem is not None or self.key_ref is not None or self.csr_pem is not None

    def csr(self) -> x509.CertificateSigningRequest | None:
        if self.csr_pem is None:
            return None
        try:
            return x509util.load_csr(self.csr_pem)
        except InvalidInputError as err:
            raise InvalidInputError("csr_pem", err.reason) from None

    @property
    def credentials(self) -> Any:
        """The issuer's credentials model, None when it has none, UNKNOWN in a preview that creates them."""
        return self._credentials

    @property
    def policy(self) -> RenewalPolicy:
        return self.renew or RenewalPolicy()

    @property
    def reissue_before_time(self) -> dt.datetime | None:
        return clock.parse_rfc3339(self.reissue_before) if self.reissue_before else None


def _validated(field: str, build: Callable[[], Any]) -> Any:
    try:
        return build()
    except ValidationError as err:
        raise problems(err, field).problems[0] from None


class CertificateOutputs(_issued.IssuedOutputs):
    issuer_identity: str | None = None  # what signed it (plug-in defined): a change re-issues
    key_pem_fingerprint: str | None = None  # SPKI fingerprint of a given key_pem
    private_key_ref: str | None = None  # where the key is when key_storage keeps it out of state
    previous_key_ref: str | None = None  # the key before it, kept in the store until the new one is deployed


REQUEST_FIELDS = tuple(CertificateRequest.model_fields)


class CertificateProvider(CertplaneProvider[CertificateInputs, CertificateOutputs]):
    inputs = CertificateInputs
    outputs = CertificateOutputs
    noun = "a certificate"
    informational = ("policy_facts",)
    actions = {"create": "issuing a certificate", "update": "renewing a certificate",
               "delete": "revoking a certificate"}

    def legacy(self, raw: dict[str, Any]) -> dict[str, Any]:
        return _legacy.certificate(raw)

    def not_kept(self, inputs: CertificateInputs) -> Collection[str]:
        # A CA's key is never copied into its leaves' outputs; an ACME account key is kept to revoke on destroy.
        return ("key_pem",) if inputs.plugin.retains_credentials else ("key_pem", "issuer_credentials")

    def validate(self, inputs: CertificateInputs, olds: Mapping[str, Any]) -> None:
        inputs.plugin.check(inputs.order, inputs, None if inputs.key_given else inputs.key)
        if inputs.credentials is not None and inputs.credentials is not UNKNOWN:
            try:
                inputs.plugin.check_credentials(inputs.credentials)
            except InvalidInputError as err:
                raise err.within("issuer_credentials") from None
        if inputs.key_pem is not None and inputs.key_ref is not None:
            raise InvalidInputError("key_ref", "give the key once: key_pem (kept in state) or key_ref (kept in "
                                               "key_storage)")
        if isinstance(inputs.key_pem, str):
            _given_key(inputs.key_pem)
        elif inputs.key is None and not inputs.key_given:
            raise InvalidInputError("key", "give a key specification (or key_pem)")
        _check_custody(inputs)
        _check_csr(inputs)
        if inputs.reissue_before is not None:
            if inputs.key_given:
                raise InvalidInputError("reissue_before", "re-issues with a new key, and this certificate's key is "
                                                          "given (key_pem): replace the key instead")
            try:
                renewal.parse_reissue_before(inputs.reissue_before, clock.real_now())
            except InvalidInputError as err:
                raise err.within("reissue_before") from None
        if not olds:  # accepted, and new: `up` issues it (check is the only verb a create's preview calls)
            forecast_rate_limits(inputs, None, ordered=True)

    # --- verbs --------------------------------------------------------------------------------------------

    def create_typed(self, inputs: CertificateInputs) -> tuple[str, CertificateOutputs]:
        resource_id = f"cert-{uuid.uuid4().hex[:12]}"
        return resource_id, _issue(inputs, None, resource_id)

    def diff_typed(self, _id: str, olds: Stored[CertificateInputs, CertificateOutputs],
                   news: CertificateInputs) -> DiffResult:
        reasons = reissue_reasons(olds, news, quick=True)
        changed = self.changed(olds, news)
        if news.keystore_password and news.keystore_password != olds.outputs.keystore_password:
            changed.append("keystore_password")
        rekey = bool(reasons) and not news.key_given and (not news.reuse_key or reissue_due(olds, news))
        result = _issued.in_place_diff(reasons, rerender_needed(olds, news), changed, rekey=rekey,
                                       same_chain=news.plugin.chain_stable and not issuer_changed(olds, news),
                                       key_field="private_key_ref" if _custody.store_of(news.storage)
                                       else "private_key_pem")
        # update_typed issues when a reason says so, or when state holds no certificate yet
        forecast_rate_limits(news, olds, ordered=bool(reasons) or (not olds.outputs.issued and bool(result.changes)))
        return result

    def update_typed(self, _id: str, olds: Stored[CertificateInputs, CertificateOutputs],
                     news: CertificateInputs) -> CertificateOutputs:
        if not olds.outputs.issued or reissue_reasons(olds, news, quick=False):
            # The old certificate is NOT revoked: it may still be live. A reissue_before drill always re-keys.
            return _issue(news, olds, _id, new_key=reissue_due(olds, news))
        return _rerender(news, olds, _id)

    def delete_typed(self, _id: str, olds: Stored[CertificateInputs, CertificateOutputs]) -> str | None:
        done = _revoke(olds)
        if olds.inputs.key_ref is None and olds.outputs.private_key_ref:  # a key of its own, in its store (a
            _custody.forget(olds.inputs.storage, _custody.owner(olds.inputs.name, _id))  # CA's is the CA's)
        return done

    def audit_event(self, verb: str, inputs: CertificateInputs, olds: Olds | None,
                    outputs: CertificateOutputs | None, done: str | None) -> Event:
        before = olds.outputs if olds else None
        if verb == "create":
            action = "issue"
        elif verb == "delete":
            action = done or "delete"
        elif outputs is not None and before is not None and outputs.serial == before.serial:
            action = "rerender"  # new formats or password, the same certificate
        else:
            action = "reissue" if olds and (request_changed(olds, inputs) or reissue_due(olds, inputs)) \
                else "renew"
        shown = outputs or before
        return Event(f"certificate {inputs.name}", action, serial=shown.serial if shown else None,
                     fingerprint=shown.fingerprint_sha256 if shown else None,
                     issuer=str(inputs.policy_facts.get("issuer") or inputs.issuer_type))


def _check_csr(inputs: CertificateInputs) -> None:
    """CSR mode: the CSR names what the certificate asks for, the key given with it is its key, and what needs
    the private key (a self-signed certificate, a keystore) has it."""
    csr = inputs.csr()
    if csr is None:
        return
    if inputs.key_ref is not None or _custody.store_of(inputs.storage) is not None:
        raise InvalidInputError("key_storage", "a CSR's key is kept by whoever made the CSR: leave key_storage "
                                               "out")
    x509util.check_csr_request(csr, inputs)
    if isinstance(inputs.key_pem, str):
        x509util.check_csr_key(csr, _given_key(inputs.key_pem))
    elif inputs.key_pem is None:
        if inputs.plugin.needs_private_key:
            raise InvalidInputError("key_pem", f"a {inputs.issuer_type} certificate is signed with its own key: "
                                               "give the key with the CSR, or use a CA")
        formats.check_keystores_need_key(inputs.formats)
    inputs.plugin.check_csr(inputs.order, inputs, csr)


def _check_custody(inputs: CertificateInputs) -> None:
    """A key kept out of state stays out: no output may carry it (a PKCS#12 or JKS holds the key)."""
    external = _custody.store_of(inputs.storage) is not None
    if inputs.key_ref is not None and not external:
        raise InvalidInputError("key_ref", "a key kept by reference needs the key_storage that holds it")
    if inputs.key_ref is not None and inputs.key_fingerprint is None:
        raise InvalidInputError("key_fingerprint", "a key kept by reference needs its SPKI fingerprint (the "
                                                   "PrivateKey's public_key_fingerprint_sha256)")
    if external and inputs.key_pem is not None:
        raise InvalidInputError("key_storage", "the key is given in key_pem (so it is in state already): give "
                                               "it by key_ref, or leave key_storage out")
    _custody.check_formats(inputs.storage, inputs.formats)


def _revoke(olds: Stored[CertificateInputs, CertificateOutputs]) -> str | None:
    creds = olds.inputs.credentials
    if not olds.outputs.issued or (creds is None and olds.inputs.plugin.credentials is not None):
        return None
    issuer = olds.inputs.plugin.build(olds.inputs.order, creds)
    if isinstance(issuer, Revokes) and issuer.revoke(olds.outputs.leaf()):
        note(f"{olds.inputs.name}: revoked serial {olds.outputs.serial}")
        return "revoke"
    return None


# --- the reasons to re-issue, each a small named check --------------------------------------------------

Olds = Stored[CertificateInputs, CertificateOutputs]


def request_changed(olds: Olds, news: CertificateInputs) -> list[str]:
    out = []
    for field in REQUEST_FIELDS:
        old, new = getattr(olds.inputs, field), getattr(news, field)
        if old == new:
            continue
        if isinstance(old, tuple | list) and isinstance(new, tuple | list):
            added, removed = [v for v in new if v not in old], [v for v in old if v not in new]
            change = "; ".join([*([f"adds {', '.join(map(str, added))}"] if added else []),
                                *([f"removes {', '.join(map(str, removed))}"] if removed else [])]) or "reordered"
            out.append(f"{news.name}: {field} {change}; re-issuing")
        else:
            out.append(f"{news.name}: {field} changed; re-issuing")
    return out


def key_changed(olds: Olds, news: CertificateInputs) -> list[str]:
    if news.key_ref is not None:  # compared by fingerprint, never read: the store may be offline (a root's drive)
        if isinstance(news.key_fingerprint, Unknown) or isinstance(news.key_ref, Unknown):
            return [f"{news.name}: the signing key changes (known after apply); re-issuing"]
        if news.key_fingerprint != olds.outputs.key_pem_fingerprint:
            return [f"{news.name}: the signing key changed; re-issuing"]
        return []
    csr = news.csr()
    if csr is not None:
        if keys.public_key_fingerprint_sha256(csr.public_key()) != olds.outputs.key_pem_fingerprint:  # type: ignore[arg-type]
            return [f"{news.name}: the CSR's key changed; re-issuing"]
        return []
    if news.key_pem is None:
        if olds.outputs.key_pem_fingerprint:
            return [f"{news.name}: key changed; re-issuing"]  # a generated key replaces a given one
        if news.key != olds.inputs.key and news.key is not None:
            return [f"{news.name}: key changed; re-issuing"]
        return []
    if isinstance(news.key_pem, Unknown):
        return [f"{news.name}: key_pem changes (known after apply); re-issuing"]
    if keys.public_key_fingerprint_sha256(_given_key(news.key_pem)) != olds.outputs.key_pem_fingerprint:
        return [f"{news.name}: the signing key changed; re-issuing"]
    return []


def issuer_changed(olds: Olds, news: CertificateInputs) -> list[str]:
    if news.issuer_type != olds.inputs.issuer_type:
        return [f"{news.name}: issuer changed ({olds.inputs.issuer_type} to {news.issuer_type}); re-issuing"]
    out = [f"{news.name}: {field} changed; re-issuing" for field in marked(news.plugin.order, REISSUE)
           if getattr(news.order, field) != getattr(olds.inputs.order, field)]
    if news.credentials is UNKNOWN:
        if news.plugin.credentials_identify_issuer:
            out.append(f"{news.name}: the issuer changes (known after apply); re-issuing")
    elif news.plugin.identity(news.order, news.credentials) != olds.outputs.issuer_identity:
        out.append(f"{news.name}: the issuer changed; re-issuing")
    return out


def renewal_due(olds: Olds, news: CertificateInputs, *, quick: bool) -> list[str]:
    if not olds.outputs.issued:
        return []
    window = _fresh_window(olds, quick=quick)
    life = olds.outputs.lifetime(news.name, news.policy, window, reissue_before=news.reissue_before_time)
    assert life is not None
    reason = renewal.first_reason(renewal.CHECKS, life, clock.now())
    return [reason] if reason else []


def reissue_due(olds: Olds, news: CertificateInputs) -> bool:
    """Whether `reissue_before` asks for this certificate (it then gets a new key even with reuse_key)."""
    life = olds.outputs.lifetime(news.name, news.policy, reissue_before=news.reissue_before_time)
    return life is not None and renewal.reissue_requested(life, clock.now()) is not None


def reissue_reasons(olds: Olds, news: CertificateInputs, *, quick: bool) -> list[str]:
    """Why the stored certificate no longer fits its inputs or is due (empty when it is fine)."""
    return [*request_changed(olds, news), *key_changed(olds, news), *issuer_changed(olds, news),
            *renewal_due(olds, news, quick=quick)]


def rerender_needed(olds: Olds, news: CertificateInputs) -> bool:
    """Same certificate, rendered or kept differently: formats, renewal policy, key reuse, an explicitly new
    keystore password, issuer settings that do not shape the certificate, new credentials to keep."""
    if (news.formats, news.renew, news.reuse_key, news.name) != (olds.inputs.formats, olds.inputs.renew,
                                                                   olds.inputs.reuse_key, olds.inputs.name):
        return True
    if news.keystore_password and news.keystore_password != olds.outputs.keystore_password:
        return True
    if news.order != olds.inputs.order:
        return True
    if news.storage != olds.inputs.storage or news.key_ref != olds.inputs.key_ref:
        return True  # the same key, kept elsewhere now (or the same store with other settings: state records them)
    if news.csr_pem is not None and (news.key_pem is None) != (olds.outputs.private_key_pem is None):
        return True  # a CSR's key given, or taken back
    if news.plugin.retains_credentials:
        return news.credentials is UNKNOWN or news.credentials != olds.inputs.credentials
    return False


def _fresh_window(olds: Olds, *, quick: bool) -> renewal.AriWindow | None:
    """Re-ask the CA for the renewal window (it may move it, e.g. after an incident); silent on failure: the
    window stored at issue time is used then."""
    stored = olds.outputs.window()
    creds = olds.inputs.credentials
    if stored is None or creds is None:
        return stored
    issuer = olds.inputs.plugin.build(olds.inputs.order, creds)
    if not isinstance(issuer, AdvisesRenewal):
        return stored
    try:
        return issuer.renewal_window(olds.outputs.leaf(), quick=quick) or stored
    except Exception:  # noqa: BLE001 - advisory only
        return stored


# --- the rate-limit forecast of this run (docs/RATE-LIMITS.md) ------------------------------------------

_this_run = ratelimits.Tally()  # the provider process lives for one engine run: so does the tally


def forecast_rate_limits(news: CertificateInputs, olds: Olds | None, *, ordered: bool,
                         tally: ratelimits.Tally | None = None, send: Callable[[str], object] | None = None) -> None:
    """Add one certificate to the run's tally (an order when `ordered`; the certificate in state, `olds`, as
    issued), then warn of each limit the tally goes over. By the same rules as `./certplane plan`: ACME
    certificates only, counted per the CA's directory, the issuer named by `policy_facts.issuer`, its limits
    from `policy_facts.rate_limits` (Let's Encrypt's when it sets none), history at each certificate's
    not_before. Advisory: never raises. Outside the provider process (no engine to warn), it does nothing unless
    given a tally and a `send`."""
    if tally is None and not _engine_log.active():
        return
    tally = _this_run if tally is None else tally
    send = _engine_log.warn if send is None else send
    try:
        current = _issuance(olds)
        directory = _directory(news)
        order = None
        if ordered and directory:
            order = ratelimits.Order(
                news.name, _issuer_name(news), directory, tuple(news.domains), current=current,
                renewal_source=olds.outputs.renewal_source if olds else None,
                ari_window_start=_instant(olds.outputs.ari_window_start) if olds else None)
        if current is None and order is None:
            return
        tally.add(order=order, issued=current, limits=(_issuer_name(news), _limits(news)) if directory else None,
                  unordered=None if order else news.name)
        for message in tally.warnings(clock.now()):
            send(message)
    except Exception:  # noqa: BLE001 - a forecast is advisory: never a failed preview
        return


def _directory(inputs: CertificateInputs) -> str:
    """The ACME directory the certificate orders from ("" for any other issuer)."""
    if inputs.issuer_type != "acme":
        return ""
    return str(getattr(inputs.order, "directory_url", "") or "")


def _issuer_name(inputs: CertificateInputs) -> str:
    return str(inputs.policy_facts.get("issuer") or "")


def _limits(inputs: CertificateInputs) -> ratelimits.RateLimits | None:
    raw = inputs.policy_facts.get("rate_limits")
    if not isinstance(raw, Mapping):
        return None
    try:
        return ratelimits.RateLimits.model_validate(raw)
    except (ValidationError, InvalidInputError):  # the program validated it: Let's Encrypt's limits otherwise
        return None


def _instant(text: str | None) -> dt.datetime | None:
    try:
        return clock.parse_rfc3339(text) if text else None
    except ValueError:
        return None


def _issuance(olds: Olds | None) -> ratelimits.Issuance | None:
    """The ACME certificate in state, as the CA counts it: issued at its not_before."""
    if olds is None:
        return None
    directory, not_before = _directory(olds.inputs), _instant(olds.outputs.not_before)
    if not directory or not_before is None:
        return None
    names = tuple(olds.inputs.domains) or tuple(olds.outputs.dns_names or ())
    return ratelimits.Issuance(olds.inputs.name, _issuer_name(olds.inputs), directory, names, not_before)


# --- issuing and rendering ------------------------------------------------------------------------------

def _given_key(pem: str) -> keys.PrivateKey:
    try:
        return keys.load_private_key(pem)
    except InvalidInputError as err:
        raise InvalidInputError("key_pem", err.reason) from None


def _stored_key(olds: Olds) -> keys.PrivateKey:
    """The key the certificate in state was issued for: from state, or from the store that keeps it."""
    return _custody.load(olds.inputs.storage, olds.outputs.private_key_pem, olds.outputs.private_key_ref)


def _key(news: CertificateInputs, olds: Olds | None, *, new_key: bool = False) -> keys.PrivateKey | None:
    """The key to issue for; None in CSR mode without the key (the CSR carries the public key)."""
    if isinstance(news.key_pem, str):
        return _given_key(news.key_pem)
    if news.csr_pem is not None:
        return None
    if isinstance(news.key_ref, str):
        return _custody.load(news.storage, None, news.key_ref)
    if news.key is None:
        raise InvalidInputError("key", "give a key specification (or key_pem)")
    reuse = bool(news.reuse_key and not new_key and olds is not None and olds.outputs.issued
                 and not olds.inputs.key_given and (olds.outputs.private_key_pem or olds.outputs.private_key_ref))
    return _issued.key_for_renewal(news.key, _stored_key(olds) if reuse and olds else None, reuse)


def _keep(news: CertificateInputs, owner: str, key: keys.PrivateKey | None) -> _custody.Kept:
    """Where the key is kept: a key made elsewhere is only named (key_pem's fingerprint, key_ref); a key of
    the certificate's own goes to its store before it is used."""
    if isinstance(news.key_ref, str):
        return _custody.Kept(private_key_ref=news.key_ref)
    if key is None:
        return _custody.Kept()  # CSR mode: the key is wherever the CSR was made
    if news.key_given:
        return _custody.Kept(private_key_pem=keys.private_key_to_pem(key))
    return _custody.keep(news.storage, owner, key)


def _issue(news: CertificateInputs, olds: Olds | None, resource_id: str, *,
           new_key: bool = False) -> CertificateOutputs:
    key = _key(news, olds, new_key=new_key)
    owner = _custody.owner(news.name, resource_id)
    old = olds.outputs if olds else None
    # What the store keeps beside a new key: the key the certificate in state has (still deployed until the new
    # one is), when it is in the same store.
    previous = old.private_key_ref if old and olds and _custody.same_store(olds.inputs.storage, news.storage) \
        else None
    kept = _keep(news, owner, key)  # before the CA sees it: a certificate without its key is useless
    credentials = None if news.credentials is UNKNOWN else news.credentials
    issuer = news.plugin.build(news.order, credentials)
    # Signed at the real time, whatever $CERTPLANE_NOW says: time travel decides *whether* to renew (a preview,
    # or an `up` that renews early what would be due by then), never what a certificate's validity is.
    signed_at = clock.real_now()
    try:
        issued: Issued = issuer.issue(IssueRequest(news.name, news, key, signed_at, csr=news.csr()))
    except BaseException:
        if kept.private_key_ref and not news.key_given:  # nothing will name the key just stored: let it go
            _custody.undo_keep(news.storage, owner, kept, created=olds is None,
                               named=(previous, old.previous_key_ref if old else None))
        raise
    for line in issued.notes:
        note(f"{news.name}: {line}")
    outputs = _outputs(news, key, kept, issued.leaf, issued.chain, _password(news, old), issued.renewal_window,
                       credentials, issued_at=signed_at)
    if not news.key_given:
        _custody.retire(news.storage, owner, kept, previous)
        if previous:
            outputs = outputs.model_copy(update={"previous_key_ref": previous})
    if old and old.private_key_ref and olds and not olds.inputs.key_given and previous is None:
        _left_behind(news.name, old.private_key_ref)
    return outputs


def _left_behind(name: str, ref: str) -> None:
    """A key no longer named by state stays where it was, never removed in the step that stops naming it."""
    note(f"{name}: the key at {ref} is no longer used: remove it once this update is done")


def _rerender(news: CertificateInputs, olds: Olds, resource_id: str) -> CertificateOutputs:
    old = olds.outputs
    # A key given by reference is not read to re-render (its store may be offline): the leaf has the public key.
    key = None if news.key_ref is not None else _key(news, None) if news.key_given else _stored_key(olds)
    kept = _custody.Kept(private_key_ref=old.private_key_ref)
    if news.key_ref is not None or not _custody.same_store(olds.inputs.storage, news.storage):
        kept = _keep(news, _custody.owner(news.name, resource_id), key)
        if old.private_key_ref and old.private_key_ref != kept.private_key_ref and not olds.inputs.key_given:
            _left_behind(news.name, old.private_key_ref)
    outputs = _outputs(news, key, kept, old.leaf(), old.chain(), _password(news, old), old.window(),
                       news.credentials, key_pem_fingerprint=old.key_pem_fingerprint,
                       issued_at=clock.parse_rfc3339(old.issued_at) if old.issued_at else None)
    return outputs.model_copy(update={"previous_key_ref": old.previous_key_ref}) \
        if kept.private_key_ref == old.private_key_ref else outputs


def _password(news: CertificateInputs, old: CertificateOutputs | None) -> str:
    configured = news.keystore_password if isinstance(news.keystore_password, str) else None
    return _issued.keystore_password(configured, old.keystore_password if old else None)


def _outputs(news: CertificateInputs, key: keys.PrivateKey | None, kept: _custody.Kept, leaf: Any, chain: Any,
             password: str, window: renewal.AriWindow | None, credentials: Any, *,
             key_pem_fingerprint: str | None = None, issued_at: dt.datetime | None = None) -> CertificateOutputs:
    rendered = _issued.render(key, leaf, chain, formats_wanted=news.formats, password=password, policy=news.policy,
                              window=window, name=news.name, issued_at=issued_at)
    if kept.private_key_ref:  # kept out of state: no output carries the key (validate refused pkcs12 and jks)
        rendered.update(private_key_pem=None, pkcs12_base64=None, jks_base64=None)
    csr = news.csr()
    if csr is not None:
        key_pem_fingerprint = keys.public_key_fingerprint_sha256(csr.public_key())  # type: ignore[arg-type]
    elif isinstance(news.key_pem, str) and key is not None:
        key_pem_fingerprint = keys.public_key_fingerprint_sha256(key)
    elif isinstance(news.key_fingerprint, str):
        key_pem_fingerprint = news.key_fingerprint
    return CertificateOutputs(**rendered, issuer_identity=news.plugin.identity(news.order, credentials),
                              key_pem_fingerprint=key_pem_fingerprint, private_key_ref=kept.private_key_ref)


class Certificate(_issued.IssuedCertificate, module="certplane", name="Certificate"):
    """A certificate from an issuer plug-in; inputs as CertificateInputs, outputs as CertificateOutputs."""

    provider = CertificateProvider

    private_key_ref: pulumi.Output[str | None]  # where the key is kept when key_storage keeps it out of state
