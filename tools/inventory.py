"""Print a stack's `inventory` output as a table (the demo's last step)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stack", default="local")
    args = parser.parse_args()
    out = subprocess.run(["pulumi", "stack", "output", "inventory", "--json", "--stack", args.stack],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        print(out.stderr.strip(), file=sys.stderr)
        return out.returncode
    inventory = json.loads(out.stdout or "{}")
    rows = sorted(inventory.items(), key=lambda kv: kv[1].get("days_remaining", 0))
    header = f"{'certificate':<12} {'issuer':<12} {'key':<12} {'expires':<21} {'days':>6}  {'renews':<21} domains"
    print(header)
    print("-" * len(header))
    for name, e in rows:
        print(f"{name:<12} {e['issuer']:<12} {e['key_algorithm']:<12} {e['not_after']:<21} "
              f"{e['days_remaining']:>6.1f}  {e['renewal_time']:<21} {', '.join(e['domains'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
