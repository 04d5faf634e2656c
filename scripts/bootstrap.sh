# Shared set-up for scripts/start and scripts/test: idempotent, and fast when nothing changed.
# Sourced, not executed. Each step re-runs only when its input file changed (stamp = sha256).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STAMPS="$ROOT/.stamps"
mkdir -p "$STAMPS" "$ROOT/var"

log() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }

changed() {  # changed NAME FILE...: true when the files differ from the last successful run
  local sum; sum=$(cat "${@:2}" | sha256sum | cut -d' ' -f1)
  [ "$(cat "$STAMPS/$1" 2>/dev/null)" != "$sum" ]
}
stamp() { cat "${@:2}" | sha256sum | cut -d' ' -f1 > "$STAMPS/$1"; }

find_python312() {
  for candidate in python3.12 python3.13; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      command -v "$candidate"; return
    fi
  done
  if command -v pyenv >/dev/null 2>&1; then
    for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.1[2-9]' | sort -V); do
      echo "$(pyenv root)/versions/$v/bin/python3"; return
    done
  fi
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq python3 python3-venv >/dev/null
    if python3 -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then command -v python3; return; fi
  fi
  echo "Lastmile needs Python 3.12 or newer (Django 6 requires it); none found." >&2
  return 1
}

ensure_venv() {  # ensure_venv REQUIREMENTS_FILE
  local req="$1"
  if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
    log "Creating the Python virtual environment (.venv)"
    rm -rf .venv
    "$(find_python312)" -m venv .venv
    rm -f "$STAMPS"/pip-*
  fi
  if changed "pip-$req" requirements.txt "$req"; then
    log "Installing Python packages from $req"
    .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
    .venv/bin/python -m pip install -q -r "$req" 2>&1 | grep -v "^WARNING: Location" || true
    .venv/bin/python -m pip check >/dev/null
    stamp "pip-$req" requirements.txt "$req"
  fi
}

ensure_frontend() {
  if ! command -v npm >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
      log "Installing Node.js and npm (apt)"
      apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
    else
      echo "npm is required for the front-end packages; install Node.js." >&2; return 1
    fi
  fi
  if [ -f frontend/package.json ] && { changed npm frontend/package.json frontend/package-lock.json || [ ! -d frontend/vendor ]; }; then
    log "Installing front-end packages (npm ci) and vendoring them into frontend/vendor"
    (cd frontend && npm ci --no-audit --no-fund --loglevel=error && npm run --silent vendor)
    stamp npm frontend/package.json frontend/package-lock.json
  fi
}

ensure_chromium() {
  if [ ! -x /usr/bin/chromium ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
      log "Installing Chromium for browser tests (apt)"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
      echo "Browser tests need /usr/bin/chromium: sudo apt-get install -y chromium" >&2; return 1
    fi
  fi
}
