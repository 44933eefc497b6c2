#!/usr/bin/env bash
# Build the real Pulumi engine (the `pulumi` CLI) from the Go module proxy into a version-keyed cache
# directory outside the clone, then print that directory. Idempotent: a finished build is reused.
# The Go Python language host module is not served by the proxy here (403 at every version and commit);
# tools/langhost/ provides the language host instead (see its docstring).
set -euo pipefail

PULUMI_VERSION=${PULUMI_VERSION:-v3.274.1}
CACHE_ROOT=${CERTPLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/certplane}
OUT="$CACHE_ROOT/pulumi-$PULUMI_VERSION"

if [ -x "$OUT/bin/pulumi" ] && [ -f "$OUT/.complete" ]; then
  echo "$OUT"; exit 0
fi

export GOTOOLCHAIN=${GOTOOLCHAIN:-local} CGO_ENABLED=0 GOFLAGS=-mod=mod
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A throwaway build cache: the engine is built once per version, and Go's cache would keep ~1.9 GB.
export GOCACHE="$work/go-build"
mkdir -p "$OUT/bin.partial"
cd "$work"
cat > go.mod <<G
module local/pulumi-build

go 1.26

replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
replace golang.org/x/text => golang.org/x/text v0.41.0
replace github.com/pulumi/pulumi/pkg/v3 => github.com/pulumi/pulumi/pkg/v3 $PULUMI_VERSION
replace github.com/pulumi/pulumi/sdk/v3 => github.com/pulumi/pulumi/sdk/v3 $PULUMI_VERSION
G
retry() { local i; for i in 1 2 3; do "$@" && return 0; echo "retrying: $*" >&2; sleep $((i * 5)); done; return 1; }
retry go get -tool "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@$PULUMI_VERSION" >&2
retry go get "github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION" >&2
go mod tidy >&2
LDF="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION"
go build -trimpath -tags osusergo,grpcnotrace -ldflags "$LDF" -o "$OUT/bin.partial/pulumi" \
  github.com/pulumi/pulumi/pkg/v3/cmd/pulumi >&2
SDK=$(go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)
# The SDK's helper scripts live outside bin/ so the engine does not find two copies of a plugin
# (one beside the real `pulumi`, one on PATH).
mkdir -p "$OUT/share.partial"
install -m 0755 "$SDK/python/cmd/pulumi-language-python-exec" "$OUT/share.partial/"
install -m 0755 "$SDK/python/dist/pulumi-resource-pulumi-python" "$OUT/share.partial/"
rm -rf "$OUT/bin" "$OUT/share"; mv "$OUT/bin.partial" "$OUT/bin"; mv "$OUT/share.partial" "$OUT/share"
touch "$OUT/.complete"
echo "$OUT"
