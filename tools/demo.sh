#!/usr/bin/env bash
# `make demo` / `make demo-down` on the embedded default stack `local`.
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/env.sh"
cd "$CERTPLANE_ROOT"
STACK=local
# The demo's AWS is moto on 127.0.0.1; its targets name a profile in .certplane/aws/credentials (written by the
# demo's servers), so any shell reaches it and the operator's own AWS credentials are never used or overridden.

case "${1:-up}" in
  up)
    python tools/demo_upload.py .certplane/demo-upload
    echo "certplane: local servers"
    python -m tools.servers.demo up
    pulumi stack select "$STACK" --create --non-interactive >/dev/null
    # --refresh: what is live is read first, so a binding changed by hand is put back.
    pulumi up --yes --non-interactive --refresh --stack "$STACK" --suppress-outputs
    echo
    echo "certplane: verifying every TLS endpoint with a real handshake"
    ./certplane check --stack "$STACK" --probe --warn-days 7 || [ $? -eq 1 ]
    echo
    ./certplane inventory --stack "$STACK"
    ;;
  down)
    if pulumi stack ls --json 2>/dev/null | grep -q "\"name\": *\"$STACK\""; then
      python -m tools.servers.demo up >/dev/null   # bindings are removed from live servers
      pulumi destroy --yes --non-interactive --stack "$STACK" --suppress-outputs
    fi
    python -m tools.servers.demo down
    ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
