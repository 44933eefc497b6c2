"""`certplane:targets`: where certificates are deployed, one pydantic model per target kind (discriminated by
`type`). The models check shape and types; each core target's constructor then checks meaning (a listener ARN in
the right region, HOST:PORT), so the rules live in one place. Problems come back one line each, e.g.
`certplane:targets.edge.listen: must be HOST:PORT, e.g. 127.0.0.1:8443`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from providers.core.deploy import REGISTRY, get_target
from providers.core.errors import InvalidInputError

NAMESPACE = "certplane"
PATH_SETTINGS = ("conf_dir", "conf", "prefix", "directory")  # relative to the project directory


class _Target(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NginxTargetConfig(_Target):
    type: Literal["nginx"]
    conf_dir: str
    listen: str
    conf: str | None = None
    prefix: str | None = None
    nginx_bin: str | None = None
    reload_command: list[str] | None = None
    test_command: list[str] | None = None
    poll_tries: int | None = Field(default=None, ge=1, le=10000)
    poll_interval: float | None = Field(default=None, ge=0)
    confirmations: int | None = Field(default=None, ge=1, le=100)
    command_timeout: float | None = Field(default=None, ge=1)


class FilesTargetConfig(_Target):
    type: Literal["files"]
    directory: str
    mode: str | None = None
    key_mode: str | None = None
    owner: str | None = None
    group: str | None = None
    formats: list[Literal["pem", "pkcs12", "jks"]] | None = None
    reload_command: list[str] | None = None
    reload_timeout: float | None = Field(default=None, ge=1)


class AwsElbv2TargetConfig(_Target):
    type: Literal["aws_elbv2"]
    region: str
    listener_arn: str | None = None
    load_balancer_name: str | None = None
    listener_port: int | None = None
    endpoint_url: str | None = None


class AlibabaSlbTargetConfig(_Target):
    type: Literal["alibaba_slb"]
    region: str
    load_balancer_id: str
    listener_port: int = Field(ge=1, le=65535)
    endpoint: str | None = None
    cas_endpoint: str | None = None
    slb_endpoint: str | None = None
    protocol: Literal["https", "http"] | None = None
    timeout_ms: int | None = Field(default=None, ge=100)


TargetConfig = Annotated[
    Union[NginxTargetConfig, FilesTargetConfig, AwsElbv2TargetConfig, AlibabaSlbTargetConfig],
    Field(discriminator="type"),
]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(TargetConfig)


def validate_targets(raw: dict[str, Any] | None) -> list[str]:
    """Every problem in `certplane:targets`, one line each, naming the field; [] when all is well."""
    problems: list[str] = []
    for name, spec in (raw or {}).items():
        at = f"{NAMESPACE}:targets.{name}"
        if not isinstance(spec, dict):
            problems.append(f"{at}: must be a mapping with a type ({', '.join(sorted(REGISTRY))})")
            continue
        kind = spec.get("type")
        if not kind:
            problems.append(f"{at}.type: is required ({', '.join(sorted(REGISTRY))})")
            continue
        if not isinstance(kind, str) or kind not in REGISTRY:
            problems.append(f"{at}.type: unrecognized deploy target: {kind} (known: {', '.join(sorted(REGISTRY))})")
            continue
        try:
            _ADAPTER.validate_python(spec)
        except ValidationError as err:
            problems.extend(_lines(at, err))
            continue
        try:
            get_target(str(kind), settings_of(spec))
        except InvalidInputError as err:
            problems.append(f"{at}.{err.field}: {err.reason}" if err.field else f"{at}: {err.reason}")
    return problems


def _lines(at: str, err: ValidationError) -> list[str]:
    out = []
    for e in err.errors():
        loc = [str(p) for p in e["loc"]][1:]  # drop the discriminator tag
        if e["type"] == "extra_forbidden":
            msg = "unknown setting"
        elif e["type"] == "missing":
            msg = "is required"
        else:
            msg = str(e["msg"]).removeprefix("Value error, ")
        out.append(f"{at}.{'.'.join(loc)}: {msg}" if loc else f"{at}: {msg}")
    return out


def settings_of(spec: dict[str, Any]) -> dict[str, Any]:
    """A target's settings without its `type`, and without unset (None) values."""
    return {k: v for k, v in spec.items() if k != "type" and v is not None}


def resolve_target(spec: dict[str, Any], base_dir: Path) -> tuple[str, dict[str, Any]]:
    """(type, settings) with relative paths made absolute against the project directory."""
    settings = settings_of(spec)
    for key in PATH_SETTINGS:
        if isinstance(settings.get(key), str):
            settings[key] = str((base_dir / Path(settings[key]).expanduser()).resolve())
    return str(spec.get("type")), settings
