#!/usr/bin/env bash
# `make demo` / `make demo-down` on the embedded default stack `local`.
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/env.sh"
cd "$CERTPLANE_ROOT"
STACK=local

case "${1:-up}" in
  up)
    python tools/demo_upload.py .certplane/demo-upload
    pulumi stack select "$STACK" --create --non-interactive >/dev/null
    pulumi up --yes --non-interactive --stack "$STACK" --suppress-outputs
    python -m tools.inventory --stack "$STACK"
    ;;
  down)
    if pulumi stack ls --json 2>/dev/null | grep -q "\"name\": *\"$STACK\""; then
      pulumi destroy --yes --non-interactive --stack "$STACK"
    fi
    ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
