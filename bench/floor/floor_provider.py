"""The floor: the cheapest dynamic resource the Python SDK allows. `create` and `update` return their inputs, no
`diff` (the engine compares the inputs itself), no check, no secrets. Defined in an importable module, as
certplane's providers are, so dill pickles the provider by reference (a module path) into each resource's
state, and the provider process imports it from the project directory."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, Resource, ResourceProvider, UpdateResult


class FloorProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=str(props["name"]), outs=dict(props))

    def update(self, _id: str, _olds: dict[str, Any], props: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=dict(props))


class FloorResource(Resource):
    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(FloorProvider(), name, {"name": name, **props}, opts)
