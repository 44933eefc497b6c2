"""The typed provider base: every certplane dynamic resource declares an `Inputs` model (validated once, in
`check`) and an `Outputs` model (what it adds to state), and implements its verbs on those objects.

The SDK calls `check/create/diff/update/read/delete` with dicts; this base decodes them at the edge
(providers/_wire.py), turns certplane's errors into one line naming what failed, and encodes the results.
State on the wire stays flat, as Pulumi users expect (`pulumi stack output`, `stack export`): the inputs the
resource keeps, then its outputs.

Provider classes are pickled by reference (dill) into every resource's state and unpickled by module path for
`read`/`delete`: they keep no attributes (no clients, credentials or config on `self`), and their module paths
are part of the state format (see docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import sys
import threading
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, Resource, ResourceProvider
from pulumi.dynamic import UpdateResult
from pydantic import BaseModel, ValidationError

from . import _wire
from .core import audit
from .core.errors import CertplaneError, InputProblems, InvalidInputError
from .core.validation import SECRET, STORED, marked, problems

I = TypeVar("I", bound=BaseModel)
O = TypeVar("O", bound=BaseModel)

LEGACY_TYPE = "pulumi-python:dynamic:Resource"  # every resource's type before certplane had type tokens


@dataclass(frozen=True)
class Stored(Generic[I, O]):
    """A resource as its state holds it: the inputs it kept, and its outputs."""

    inputs: I
    outputs: O


def note(message: str) -> None:
    """A line for the user in `pulumi preview`/`up` (provider stderr becomes a diagnostic message)."""
    print(f"certplane: {message}", file=sys.stderr, flush=True)


class PlannedDiff(DiffResult):
    """A DiffResult that also says which properties change and how (`details`: name -> add | update | delete),
    so `pulumi preview` shows `[diff: ~not_after,~serial]` instead of the engine's guess from the inputs
    (which lists every input that is unknown in a preview, changed or not)."""

    def __init__(self, *, details: Mapping[str, str], replaces: Sequence[str] = (),
                 changes: bool | None = None) -> None:
        super().__init__(changes=bool(details or replaces) if changes is None else changes,
                         replaces=list(replaces), delete_before_replace=False)
        self.details = dict(details)


def failure(message: str) -> CheckFailure:
    """A check failure on no property: the engine would otherwise echo the property's value (key material)."""
    return CheckFailure("", message)


class CertplaneProvider(ResourceProvider, Generic[I, O]):
    """Subclasses set `inputs`, `outputs`, `noun` and implement the typed verbs they need."""

    inputs: ClassVar[type[BaseModel]]
    outputs: ClassVar[type[BaseModel]]
    noun: ClassVar[str] = "resource"  # for one-line errors: "creating a certificate binding: ..."
    informational: ClassVar[tuple[str, ...]] = ()  # inputs for others to read (the policy pack), never a change
    actions: ClassVar[Mapping[str, str]] = {}  # what a verb does, in the user's words ("issuing a certificate")
    serialize_as_secret_always = False  # providers capture no secrets, so __provider need not be encrypted

    # --- the typed verbs ----------------------------------------------------------------------------------

    def validate(self, inputs: I, olds: Mapping[str, Any]) -> None:
        """Checks that parse key material or certificates: run once, in `check` (never in diff). `olds` are
        the previous inputs (empty for a new resource)."""

    def create_typed(self, inputs: I) -> tuple[str, O]:
        raise NotImplementedError

    def diff_typed(self, resource_id: str, olds: Stored[I, O], news: I) -> DiffResult:
        raise NotImplementedError

    def update_typed(self, resource_id: str, olds: Stored[I, O], news: I) -> O:
        raise NotImplementedError

    def read_typed(self, resource_id: str, olds: Stored[I, O]) -> O | None:
        """What is there now; None when it is gone (the next `up` creates it again)."""
        return olds.outputs

    def delete_typed(self, resource_id: str, olds: Stored[I, O]) -> str | None:
        """Returns what was done when it is not the verb's usual action (a certificate `revoke`d), for the
        audit trail."""
        return None

    def audit_event(self, verb: str, inputs: I, olds: Stored[I, O] | None, outputs: O | None,
                    done: str | None) -> audit.Event | None:
        """What the audit trail records for a verb (`outputs` None: it failed; the base adds the error).
        Audited resources have an `audit` input (an AuditContext); the others return None."""
        return None

    def changed(self, olds: Stored[I, O], news: I) -> list[str]:
        """The inputs whose value differs from state (an unknown one counts: it may change), in the model's
        order. Left to the provider: inputs state does not keep (`not_kept`), and inputs that are also outputs
        (a generated keystore password), which state holds as the output."""
        skip = {*self.not_kept(news), *type(olds.outputs).model_fields, *self.informational, "audit"}
        return [name for name in type(news).model_fields
                if name not in skip and getattr(olds.inputs, name, None) != getattr(news, name, None)]

    def not_kept(self, inputs: I) -> Collection[str]:
        """Inputs left out of the outputs in state (the engine keeps and re-sends every input anyway)."""
        return ()

    def legacy(self, raw: dict[str, Any]) -> dict[str, Any]:
        """State written by an earlier certplane, in today's shape (see providers/_legacy.py)."""
        return raw

    # --- the wire -----------------------------------------------------------------------------------------

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        try:
            inputs = self._inputs(news)
            self.validate(inputs, _wire.from_wire(olds or {}))
        except InputProblems as problems:
            return CheckResult(news, [failure(str(p)) for p in problems.problems])
        except CertplaneError as err:
            return CheckResult(news, [failure(str(err))])
        return CheckResult(_wire.to_wire(inputs, news), [])

    def create(self, props: dict[str, Any]) -> CreateResult:
        with self._errors("create", props):
            inputs = self._inputs(props)
            with self._audited("create", inputs, None) as record:
                resource_id, outputs = self.create_typed(inputs)
                record.outputs = outputs
        return CreateResult(resource_id, self._outs(inputs, outputs))

    def diff(self, resource_id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        with self._errors("diff", news):
            result = self.diff_typed(resource_id, self._stored(olds), self._checked(news))
        if isinstance(result, PlannedDiff):
            _explain_diff(result)
        return result

    def update(self, resource_id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        with self._errors("update", news):
            inputs, stored = self._checked(news), self._stored(olds)
            with self._audited("update", inputs, stored) as record:
                outputs = self.update_typed(resource_id, stored, inputs)
                record.outputs = outputs
        return UpdateResult(self._outs(inputs, outputs))

    def read(self, resource_id: str, props: dict[str, Any]) -> ReadResult:
        with self._errors("read", props):
            stored = self._stored(props)
            outputs = self.read_typed(resource_id, stored)
        if outputs is None:
            return ReadResult("", {})
        return ReadResult(resource_id, self._refreshed(props, outputs))

    def delete(self, resource_id: str, props: dict[str, Any]) -> None:
        with self._errors("delete", props):
            stored = self._stored(props)
            with self._audited("delete", stored.inputs, stored) as record:
                record.done = self.delete_typed(resource_id, stored) or ""

    # --- mechanics ------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _audited(self, verb: str, inputs: I, olds: Stored[I, O] | None) -> Iterator[_Record]:
        """Run a verb and append what it did, or that it failed and why, to the resource's audit log. A log
        that cannot be written is a warning: the change itself happened and state must record it."""
        record = _Record()
        context = getattr(inputs, "audit", None) or _fallback_context()
        try:
            yield record
        except BaseException as err:
            event = self.audit_event(verb, inputs, olds, None, None) if context else None
            if event is not None:
                _append(context, dataclasses.replace(event, outcome="failed", detail=_reason(err)))
            raise
        event = self.audit_event(verb, inputs, olds, record.outputs, record.done or None) if context else None
        if event is not None:
            _append(context, event)

    def _inputs(self, raw: Mapping[str, Any]) -> I:
        return _wire.decode(self.inputs, raw)  # type: ignore[return-value]

    def _checked(self, raw: Mapping[str, Any]) -> I:
        """Inputs that `check` already accepted, or (in `refresh`, which diffs what it read against the inputs
        in state) inputs an earlier release wrote: read in today's shape, fields it no longer has ignored."""
        shaped = self.legacy(_wire.from_wire(raw))
        return _wire.decode(self.inputs, {k: v for k, v in shaped.items() if k in self.inputs.model_fields})

    def _stored(self, raw: Mapping[str, Any]) -> Stored[I, O]:
        """State as typed objects. Rules that can tighten over time (validation.policy) are not applied to it:
        what an earlier release accepted must still refresh, diff and destroy."""
        shaped = self.legacy(_wire.from_wire(raw))
        kept = {k: v for k, v in shaped.items() if k in self.inputs.model_fields and v is not None}
        try:
            inputs = self.inputs.model_validate(kept, context={STORED: True})
            outputs = self.outputs.model_validate(shaped, context={STORED: True})
        except ValidationError as err:
            raise CertplaneError(f"the state of this {self.noun.split(' ', 1)[-1]} cannot be read ({problems(err).problems[0]}); "
                                 "`pulumi state delete <urn>` and `pulumi up` make it again") from None
        return Stored(inputs, outputs)  # type: ignore[arg-type]

    def _refreshed(self, props: Mapping[str, Any], outputs: BaseModel) -> dict[str, Any]:
        """What a refresh writes back: the state as it was, with the outputs read now. Never a secret under a
        name the state does not have yet: a refresh keeps only the secret flags the old state declared, so a
        new secret name would be stored in plain text (it arrives with the next update, declared)."""
        secret = set(_wire.secret_fields(self.inputs, self.outputs))
        current = dict(props)
        for name, value in outputs.model_dump(mode="json").items():
            if name in current or name not in secret:
                current[name] = value
        return current

    def _outs(self, inputs: I, outputs: BaseModel) -> dict[str, Any]:
        """What state keeps: the inputs the resource keeps, then its outputs, unset (None) values left out (state
        is rewritten whole after every step: every byte counts N times; a missing value reads back as None)."""
        dropped = self.not_kept(inputs)
        kept = {k: v for k, v in _wire.to_wire(inputs).items() if k not in dropped}
        return {k: v for k, v in {**kept, **outputs.model_dump(mode="json")}.items() if v is not None}

    def _errors(self, verb: str, raw: Mapping[str, Any]) -> Any:
        _watch_engine()
        return _OneLine(self.action(verb), self.subject(raw), AFTERWARDS.get(verb, ""))

    def subject(self, raw: Mapping[str, Any]) -> str:
        """What the resource is, named in its errors (`binding www--edge`); empty: the engine names it."""
        return ""

    def action(self, verb: str) -> str:
        default = {"create": "creating", "update": "updating", "diff": "planning", "read": "reading",
                   "delete": "deleting"}[verb]
        return self.actions.get(verb) or f"{default} {self.noun}"


@dataclass
class _Record:
    outputs: Any = None
    done: str = ""


def _fallback_context() -> audit.AuditContext | None:
    """For state written before certplane kept an audit context (a resource deleted before its first update):
    $CERTPLANE_AUDIT_LOG when set."""
    path = os.environ.get(audit.ENV_LOG)
    return audit.AuditContext(log=path, stack=os.environ.get("PULUMI_STACK", "unknown")) if path else None


@functools.cache
def _actor() -> str:
    """Who runs this `up`: looked up once per provider process (it may run `git config`), not per record."""
    return audit.actor()


def _append(context: audit.AuditContext, event: audit.Event) -> None:
    try:
        audit.AuditLog(context.log).append(context.stack, _actor(), event)
    except OSError as err:
        note(f"audit: cannot append to {context.log}: {err.strerror or err}; the change itself was made")


def _reason(err: BaseException) -> str:
    if isinstance(err, InputProblems):
        err = err.problems[0]
    return str(err) if isinstance(err, CertplaneError) else f"{type(err).__name__} (a certplane bug; see the log)"


AFTERWARDS = {  # what a user can do when a verb fails, beyond fixing the cause
    "read": "; `pulumi refresh` reads every resource: make it reachable and refresh again",
    "delete": "; fix it and run again, or `pulumi state delete <urn>` to forget the resource and remove it by hand",
}


class _OneLine:
    """Certplane's errors become one line naming the action, raised to the engine as that line alone. While one
    is open, a verb is in flight (see _watch_engine)."""

    def __init__(self, action: str, subject: str = "", afterwards: str = "") -> None:
        self.action, self.subject, self.afterwards = action, subject, afterwards

    def __enter__(self) -> None:
        with _engine_watch.lock:
            _engine_watch.in_flight += 1
        return None

    def __exit__(self, kind: Any, err: BaseException | None, _tb: Any) -> bool:
        with _engine_watch.lock:
            _engine_watch.in_flight -= 1
        if isinstance(err, InputProblems):
            err = err.problems[0]
        if isinstance(err, CertplaneError):
            _report_without_traceback()
            doing = f"{self.action} ({self.subject})" if self.subject else self.action
            raise CertplaneError(f"{doing}: {err}{self.afterwards}") from None
        return False


@dataclass
class _EngineWatch:
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    in_flight: int = 0
    started: bool = False


_engine_watch = _EngineWatch()
ORPHAN_GRACE_SECONDS = 600.0  # a deploy still running when the engine died may finish; never longer than this


def _watch_engine() -> None:
    """In the provider process (`python -m pulumi.dynamic`): when the engine that started it is killed, exit
    once no verb is in flight, so a deploy under way finishes (and verifies) instead of being cut, and the process
    does not live on forever (the SDK's server never notices). Started on first use, like the patches below."""
    server = sys.modules.get("__main__")
    if not hasattr(server, "DynamicResourceProviderServicer"):
        return
    with _engine_watch.lock:
        if _engine_watch.started:
            return
        _engine_watch.started = True
    ancestry = _ancestry()

    def watch() -> None:
        orphaned_at: float | None = None
        while True:
            time.sleep(1.0)
            if orphaned_at is None and _ancestry() != ancestry:
                orphaned_at = time.monotonic()
            if orphaned_at is not None:
                with _engine_watch.lock:
                    idle = _engine_watch.in_flight == 0
                if idle or time.monotonic() - orphaned_at > ORPHAN_GRACE_SECONDS:
                    os._exit(1)

    threading.Thread(target=watch, name="certplane-engine-watch", daemon=True).start()


def _ancestry() -> tuple[int, int | None]:
    """(parent, grandparent) pids: the SDK starts this process through a shell script that waits for it, so the
    engine is the grandparent, and its death shows there."""
    parent = os.getppid()
    try:
        stat = Path(f"/proc/{parent}/stat").read_text()
        return parent, int(stat.rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return parent, None


class _TracebackOfCertplaneErrors:
    """Stands in for the `traceback` module of the SDK's provider server, which sends the engine
    `traceback.format_exc()` for any exception: for certplane's own errors that is their one line (the user's
    problem, said), for anything else the whole traceback (a bug, shown in full)."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def format_exc(self, *args: Any, **kwargs: Any) -> str:
        err = sys.exc_info()[1]
        if isinstance(err, CertplaneError):
            return f"certplane: {err}"
        return str(self.real.format_exc(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def _report_without_traceback() -> None:
    """In the provider process (`python -m pulumi.dynamic`), make the server report certplane's errors as their
    line. Done when the first error is raised, not at import: importing a provider has no side effects."""
    server = sys.modules.get("__main__")
    real = getattr(server, "traceback", None)
    if hasattr(server, "DynamicResourceProviderServicer") and real is not None and \
            not isinstance(real, _TracebackOfCertplaneErrors):
        server.traceback = _TracebackOfCertplaneErrors(real)  # type: ignore[union-attr]


_DIFF_KINDS = {"add": 0, "delete": 2, "update": 4}  # pulumirpc PropertyDiff.Kind; +1 is the *_REPLACE kind
_pending = threading.local()


class _DiffResponseWithDetails:
    """Stands in for the DiffResponse message class in the SDK's provider server, whose Diff answers only
    changes and replaces: built for a PlannedDiff (on this thread, right after our diff returned), the response
    also carries `diffs` and `detailedDiff`. Everything else (DIFF_SOME, ...) is the real class's."""

    def __init__(self, real: Any, property_diff: Any) -> None:
        self.real, self.property_diff = real, property_diff

    def __call__(self, **fields: Any) -> Any:
        diff: PlannedDiff | None = getattr(_pending, "diff", None)
        _pending.diff = None
        if diff is not None:
            detailed = {name: self.property_diff(kind=_DIFF_KINDS[kind] + (name in diff.replaces), inputDiff=True)
                        for name, kind in sorted(diff.details.items())}
            fields.update(diffs=sorted(diff.details), detailedDiff=detailed, hasDetailedDiff=True)
        return self.real(**fields)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class _ProtoWithDetails:
    """Stands in for the `proto` module of the SDK's provider server (see _DiffResponseWithDetails)."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.DiffResponse = _DiffResponseWithDetails(real.DiffResponse, real.PropertyDiff)  # noqa: N815

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def _explain_diff(diff: PlannedDiff) -> None:
    """In the provider process (`python -m pulumi.dynamic`), let the server's next DiffResponse on this thread
    carry `diff`'s details. Installed on first use, like _report_without_traceback."""
    server = sys.modules.get("__main__")
    real = getattr(server, "proto", None)
    if not hasattr(server, "DynamicResourceProviderServicer") or real is None:
        return
    if not isinstance(real, _ProtoWithDetails):
        server.proto = _ProtoWithDetails(real)  # type: ignore[union-attr]
    _pending.diff = diff


_configured_audit_log: list[str | None] = [None]


def use_audit_log(path: str | None) -> None:
    """The program's `certplane:audit.path` (None: the default), for every audited resource it declares."""
    _configured_audit_log[0] = path


def audit_context() -> dict[str, str]:
    """Where this stack's audit records go: an input of every audited resource, read by its provider."""
    stack, project = pulumi.get_stack(), pulumi.get_project()
    log = audit.resolve_log(_configured_audit_log[0], stack=stack, project=project, project_dir=Path.cwd())
    return {"log": str(log.resolve()), "stack": stack}


class CertplaneResource(Resource):
    """Base of certplane's resource classes: the provider's models say which outputs exist and which are
    secret; a type token names what the resource is (`pulumi-python:dynamic/certplane:Certificate`), with an
    alias to the type every resource had before, so existing stacks upgrade in place."""

    provider: ClassVar[type[CertplaneProvider[Any, Any]]]

    def __init__(self, name: str, props: Mapping[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        provider = self.provider
        model_inputs = set(provider.inputs.model_fields)
        secret_inputs = set(marked(provider.inputs, SECRET))
        wire = {k: (pulumi.Output.secret(v) if k in secret_inputs and v is not None else v) for k, v in props.items()}
        if "audit" in model_inputs and "audit" not in wire:
            wire["audit"] = audit_context()
        unknown = set(wire) - model_inputs
        if unknown:
            raise TypeError(f"{type(self).__name__}: unknown inputs {sorted(unknown)}")
        outputs = {name: None for name in provider.outputs.model_fields if name not in wire}
        options = pulumi.ResourceOptions(additional_secret_outputs=_wire.secret_fields(provider.inputs,
                                                                                       provider.outputs),
                                         aliases=[pulumi.Alias(type_=LEGACY_TYPE)])
        super().__init__(provider(), name, {**wire, **outputs}, pulumi.ResourceOptions.merge(options, opts))


__all__ = ["CertplaneProvider", "CertplaneResource", "LEGACY_TYPE", "Stored", "audit_context", "failure", "note",
           "use_audit_log"]
