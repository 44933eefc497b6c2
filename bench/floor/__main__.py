"""The floor program: `floor:count` trivial dynamic resources; `floor:changed` of them (every tenth, as the
bench renews every tenth certificate) carry `floor:generation` in an input, so raising it updates exactly
those. bench/bench_fleet.py drives it with the same engine, backend and CLI commands as certplane."""

import pulumi

from floor_provider import FloorResource

config = pulumi.Config("floor")
count = config.require_int("count")
changed = set(config.get_object("changed") or [])
generation = config.get_int("generation") or 0

for i in range(count):
    FloorResource(f"r{i:04d}", {"value": f"generation-{generation if i in changed else 0}"})
