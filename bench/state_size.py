"""State bytes per certificate of one program tree: N private-CA ECDSA P-256 certificates, PEM only, no bindings,
one `up` on the real engine and a file backend; the checkpoint's bytes / N, one Certificate resource, and the
stack outputs per certificate. For before/after comparisons of what a certificate keeps in state:

    .venv/bin/python bench/state_size.py                       # this checkout
    git archive HEAD~1 __main__.py components providers Pulumi.yaml | tar -x -C /tmp/before
    .venv/bin/python bench/state_size.py --program /tmp/before # another tree, e.g. from before a change
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.harness import EngineProject  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--program", type=Path, default=ROOT)
    parser.add_argument("--n", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = EngineProject(Path(tmp), {
            "issuers": {"ca": {"type": "private_ca", "common_name": "Size Root"}},
            "certificates": {f"c{i:04d}": {"domains": [f"c{i:04d}.example.test"], "issuer": "ca",
                                           "key": {"algorithm": "ecdsa", "curve": "P-256"}}
                             for i in range(args.n)}}, program=args.program)
        try:
            start = time.monotonic()
            project.up()
            seconds = time.monotonic() - start
            text = project.state_text()
            resources = json.loads(text)["checkpoint"]["latest"]["resources"]
            cert = next(r for r in resources if r["urn"].endswith("::c0001") and r["type"].endswith(":Certificate"))
            stack = next(r for r in resources if r["type"] == "pulumi:pulumi:Stack")
            print(json.dumps({"program": str(args.program), "n": args.n,
                              "bytes_per_certificate": round(len(text) / args.n),
                              "certificate_resource": len(json.dumps(cert, separators=(",", ":"))),
                              "stack_outputs_per_certificate": round(
                                  len(json.dumps(stack.get("outputs", {}), separators=(",", ":"))) / args.n),
                              "up_seconds": round(seconds, 1)}))
        finally:
            project.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
