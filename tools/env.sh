# Sourced by tools/pulumi, the Makefile and the tests: the embedded default environment.
# Fully offline: local file backend inside the repo, passphrase secrets, no update check, no plugin download.
CERTPLANE_ROOT=${CERTPLANE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)}
export CERTPLANE_ROOT
export PATH="$CERTPLANE_ROOT/.tools/bin:$CERTPLANE_ROOT/.venv/bin:$PATH"
export PULUMI_HOME=${PULUMI_HOME:-$CERTPLANE_ROOT/.pulumi-home}
mkdir -p "$PULUMI_HOME" "$CERTPLANE_ROOT/.certplane"
chmod 0700 "$CERTPLANE_ROOT/.certplane"
# A backend chosen with `tools/pulumi login URL` (kept in $PULUMI_HOME) wins over the embedded default.
if [ -z "${PULUMI_BACKEND_URL:-}" ] && ! grep -q '"current": *"[^"]' "$PULUMI_HOME/credentials.json" 2>/dev/null; then
  mkdir -p "$CERTPLANE_ROOT/.state"
  export PULUMI_BACKEND_URL="file://$CERTPLANE_ROOT/.state"
fi
if [ -z "${PULUMI_CONFIG_PASSPHRASE:-}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
  passfile="$CERTPLANE_ROOT/.certplane/passphrase"
  if [ ! -s "$passfile" ]; then
    (umask 077; head -c 32 /dev/urandom | base64 | tr -d '\n=' > "$passfile.tmp" && mv "$passfile.tmp" "$passfile")
  fi
  export PULUMI_CONFIG_PASSPHRASE_FILE="$passfile"
fi
unset PULUMI_ACCESS_TOKEN
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_DISABLE_REGISTRY_RESOLVE=true
export PULUMI_SKIP_CONFIRMATIONS=true
export PULUMI_DIY_BACKEND_NO_LEGACY_WARNING=true
export USER=${USER:-$(id -un 2>/dev/null || echo certplane)} HOME=${HOME:-/root}
