#!/usr/bin/env bash
# Install everything Lightbox needs, idempotently: Debian packages (as root), the Python venv with pinned
# packages, the npm packages and the frontend build. Each step is skipped when its inputs did not change.
#   scripts/install.sh [--system-test]   (--system-test adds what the tests need: dcmtk, chromium, postgresql, redis)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

need_apt=()
want_pkgs=()
if [ "${1:-}" = "--system-test" ]; then
  want_pkgs+=(dcmtk chromium postgresql redis-server)
fi
for p in "${want_pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || need_apt+=("$p")
done
if ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then need_apt+=(python3-venv); fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "apt-get install ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "Missing Debian packages: ${need_apt[*]} (install them as root)" >&2; exit 1
  fi
fi

# Python: one venv, packages pinned in pyproject.toml (torch pinned to the CPU build on this machine's disk).
stamp_py=$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$PY" -m venv .venv
fi
if [ "$(cat .venv/.lightbox-stamp 2>/dev/null)" != "$stamp_py" ]; then
  say "installing Python packages (pinned in pyproject.toml)"
  .venv/bin/python - <<'PYEOF' > .venv/requirements.txt
import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join(project["dependencies"] + project["optional-dependencies"]["test"]))
PYEOF
  .venv/bin/pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/pip install -q --disable-pip-version-check -r .venv/requirements.txt
  echo "$stamp_py" > .venv/.lightbox-stamp
fi

# Frontend: npm packages from the lockfile, then the production build Django serves.
if [ -f frontend/package.json ]; then
  stamp_npm=$(cat frontend/package-lock.json | sha256sum | cut -c1-16)
  if [ "$(cat frontend/node_modules/.lightbox-stamp 2>/dev/null)" != "$stamp_npm" ]; then
    say "installing npm packages"
    (cd frontend && npm ci --no-audit --no-fund --loglevel=error)
    echo "$stamp_npm" > frontend/node_modules/.lightbox-stamp
  fi
  fe_inputs=()
  for f in frontend/src frontend/index.html frontend/vite.config.ts frontend/tsconfig.json frontend/public; do
    [ -e "$f" ] && fe_inputs+=("$f")
  done
  stamp_fe=$( (cat frontend/package-lock.json; find "${fe_inputs[@]}" -type f | LC_ALL=C sort | xargs cat) | sha256sum | cut -c1-16)
  if [ "$(cat frontend/dist/.lightbox-stamp 2>/dev/null)" != "$stamp_fe" ]; then
    say "building the frontend"
    (cd frontend && npm run build --silent)
    echo "$stamp_fe" > frontend/dist/.lightbox-stamp
  fi
fi
say "installed"
