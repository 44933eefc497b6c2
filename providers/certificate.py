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

from pulumi.dynamic import DiffResult
from pydantic import PrivateAttr, ValidationError, ValidationInfo, model_validator

from . import _engine_log, _issued, _legacy
from ._dynamic import CertplaneProvider, CertplaneResource, Stored, note
from ._wire import UNKNOWN, Unknown
from .core import clock, keys, renewal
from .core.acme import ratelimits
from .core.audit import AuditContext, Event
from .core.certificates import CertificateRequest
from .core.errors import InvalidInputError
from .core.formats import Formats
from .core.issuers import REGISTRY, AdvisesRenewal, IssueRequest, Issued, IssuerPlugin, Revokes
from .core.keys import KeySpecField
from .core.renewal import RenewalPolicy
from .core.validation import REISSUE, SECRET, marked, problems

Pending = Annotated[str | Unknown | None, SECRET]


class CertificateInputs(CertificateRequest):
    """The request (names, lifetime, uses), the key, how to render it, and the issuer: its plug-in
    (`issuer_type`), its order settings split into plain and secret ones, and the credentials the issuer's own
    resources provide (not known in a preview that creates them)."""

    name: str
    key: KeySpecField | None = None
    key_pem: Pending = None  # a key made elsewhere (a CA's key from a PrivateKey resource)
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

    @model_validator(mode="after")
    def _issuer(self, info: ValidationInfo) -> CertificateInputs:
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
        inputs.plugin.check(inputs.order, inputs, inputs.key if inputs.key_pem is None else None)
        if inputs.credentials is not None and inputs.credentials is not UNKNOWN:
            try:
                inputs.plugin.check_credentials(inputs.credentials)
            except InvalidInputError as err:
                raise err.within("issuer_credentials") from None
        if isinstance(inputs.key_pem, str):
            _given_key(inputs.key_pem)
        elif inputs.key is None and inputs.key_pem is None:
            raise InvalidInputError("key", "give a key specification (or key_pem)")
        if inputs.reissue_before is not None:
            if inputs.key_pem is not None:
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
        return f"cert-{uuid.uuid4().hex[:12]}", _issue(inputs, None)

    def diff_typed(self, _id: str, olds: Stored[CertificateInputs, CertificateOutputs],
                   news: CertificateInputs) -> DiffResult:
        reasons = reissue_reasons(olds, news, quick=True)
        changed = self.changed(olds, news)
        if news.keystore_password and news.keystore_password != olds.outputs.keystore_password:
            changed.append("keystore_password")
        rekey = bool(reasons) and news.key_pem is None and (not news.reuse_key or reissue_due(olds, news))
        result = _issued.in_place_diff(reasons, rerender_needed(olds, news), changed, rekey=rekey,
                                       same_chain=news.plugin.chain_stable and not issuer_changed(olds, news))
        # update_typed issues when a reason says so, or when state holds no certificate yet
        forecast_rate_limits(news, olds, ordered=bool(reasons) or (not olds.outputs.issued and bool(result.changes)))
        return result

    def update_typed(self, _id: str, olds: Stored[CertificateInputs, CertificateOutputs],
                     news: CertificateInputs) -> CertificateOutputs:
        if not olds.outputs.issued or reissue_reasons(olds, news, quick=False):
            # The old certificate is NOT revoked: it may still be live. A reissue_before drill always re-keys.
            return _issue(news, olds.outputs, new_key=reissue_due(olds, news))
        return _rerender(news, olds.outputs)

    def delete_typed(self, _id: str, olds: Stored[CertificateInputs, CertificateOutputs]) -> str | None:
        creds = olds.inputs.credentials
        if not olds.outputs.issued or (creds is None and olds.inputs.plugin.credentials is not None):
            return None
        issuer = olds.inputs.plugin.build(olds.inputs.order, creds)
        if isinstance(issuer, Revokes) and issuer.revoke(olds.outputs.leaf()):
            note(f"{olds.inputs.name}: revoked serial {olds.outputs.serial}")
            return "revoke"
        return None

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


def _key(news: CertificateInputs, old: CertificateOutputs | None, *, new_key: bool = False) -> keys.PrivateKey:
    if isinstance(news.key_pem, str):
        return _given_key(news.key_pem)
    if news.key is None:
        raise InvalidInputError("key", "give a key specification (or key_pem)")
    return _issued.key_for_renewal(news.key, old.private_key_pem if old else None, news.reuse_key and not new_key)


def _issue(news: CertificateInputs, old: CertificateOutputs | None, *, new_key: bool = False) -> CertificateOutputs:
    key = _key(news, old, new_key=new_key)
    credentials = None if news.credentials is UNKNOWN else news.credentials
    issuer = news.plugin.build(news.order, credentials)
    # Signed at the real time, whatever $CERTPLANE_NOW says: time travel decides *whether* to renew (a preview,
    # or an `up` that renews early what would be due by then), never what a certificate's validity is.
    signed_at = clock.real_now()
    issued: Issued = issuer.issue(IssueRequest(news.name, news, key, signed_at))
    for line in issued.notes:
        note(f"{news.name}: {line}")
    return _outputs(news, key, issued.leaf, issued.chain, _password(news, old), issued.renewal_window, credentials,
                    issued_at=signed_at)


def _rerender(news: CertificateInputs, old: CertificateOutputs) -> CertificateOutputs:
    return _outputs(news, old.key(), old.leaf(), old.chain(), _password(news, old), old.window(), news.credentials,
                    key_pem_fingerprint=old.key_pem_fingerprint,
                    issued_at=clock.parse_rfc3339(old.issued_at) if old.issued_at else None)


def _password(news: CertificateInputs, old: CertificateOutputs | None) -> str:
    configured = news.keystore_password if isinstance(news.keystore_password, str) else None
    return _issued.keystore_password(configured, old.keystore_password if old else None)


def _outputs(news: CertificateInputs, key: keys.PrivateKey, leaf: Any, chain: Any, password: str,
             window: renewal.AriWindow | None, credentials: Any, *, key_pem_fingerprint: str | None = None,
             issued_at: dt.datetime | None = None) -> CertificateOutputs:
    rendered = _issued.render(key, leaf, chain, formats_wanted=news.formats, password=password, policy=news.policy,
                              window=window, name=news.name, issued_at=issued_at)
    if isinstance(news.key_pem, str):
        key_pem_fingerprint = keys.public_key_fingerprint_sha256(key)
    return CertificateOutputs(**rendered, issuer_identity=news.plugin.identity(news.order, credentials),
                              key_pem_fingerprint=key_pem_fingerprint)


class Certificate(_issued.IssuedCertificate, module="certplane", name="Certificate"):
    """A certificate from an issuer plug-in; inputs as CertificateInputs, outputs as CertificateOutputs."""

    provider = CertificateProvider
