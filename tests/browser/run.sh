#!/usr/bin/env bash
# Browser end-to-end tests in one command: builds the frontend if needed, starts a Lightbox server on a free
# port with its own data folder, loads the demo data, runs tests/browser/*.test.mjs in headless Chromium
# (node's test runner), and stops the server.
#
#   tests/browser/run.sh                 # everything
#   LIGHTBOX_URL=http://127.0.0.1:8010 LIGHTBOX_USER=rad LIGHTBOX_PASSWORD=... tests/browser/run.sh
#                                        # against a server that is already running (with demo data)
#   KEEP_DATA=1 tests/browser/run.sh     # keep the data folder and server log for a look afterwards
#   tests/browser/run.sh --screenshots   # also write docs/screenshots/*.png
#   tests/browser/run.sh --bench         # also run bench/viewer_bench.mjs (Lightbox, and OHIF if unpacked)
#   tests/browser/run.sh --ai-bench      # also run bench/ai_live_bench.mjs (Run -> first partial overlay -> done)
set -euo pipefail

SCREENSHOTS=""
BENCH=""
AI_BENCH=""
for arg in "$@"; do
  case "$arg" in
    --screenshots) SCREENSHOTS=1 ;;
    --bench) BENCH=1 ;;
    --ai-bench) AI_BENCH=1 ;;
    *) echo "run.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
export LIGHTBOX_CHROMIUM="${LIGHTBOX_CHROMIUM:-/usr/bin/chromium}"

if [[ ! -x "$LIGHTBOX_CHROMIUM" ]]; then
  echo "run.sh: no Chromium at $LIGHTBOX_CHROMIUM (apt-get install -y chromium)" >&2
  exit 1
fi
if [[ ! -f frontend/dist/index.html || ! -d frontend/node_modules/playwright-core ]]; then
  echo "run.sh: building the frontend (npm ci && npm run build)"
  (cd frontend && npm ci --no-audit --no-fund && npm run build)
fi

SERVER_PID=""
DATA=""
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM -- "-$SERVER_PID" 2>/dev/null || kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$SERVER_PID" 2>/dev/null || true
  fi
  if [[ -n "$DATA" ]]; then
    if [[ -n "${KEEP_DATA:-}" ]]; then echo "run.sh: data and server log kept in $DATA"; else rm -rf "$DATA"; fi
  fi
}
trap cleanup EXIT

if [[ -z "${LIGHTBOX_URL:-}" ]]; then
  DATA="$(mktemp -d "${TMPDIR:-/tmp}/lightbox-browser.XXXXXX")"
  PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  export LIGHTBOX_DATA="$DATA" PYTHONPATH="$ROOT/backend:$ROOT" DJANGO_SETTINGS_MODULE=lightbox.settings
  export LIGHTBOX_USER="browser-test"
  LIGHTBOX_PASSWORD="$("$PY" -c 'import secrets; print(secrets.token_urlsafe(16))')"
  export LIGHTBOX_PASSWORD
  "$PY" manage.py migrate --noinput >"$DATA/setup.log" 2>&1
  "$PY" manage.py create_user "$LIGHTBOX_USER" --role radiologist --password "$LIGHTBOX_PASSWORD" >>"$DATA/setup.log" 2>&1
  echo "run.sh: loading demo data into $DATA"
  "$PY" manage.py load_demo >>"$DATA/setup.log" 2>&1 || { cat "$DATA/setup.log"; exit 1; }
  setsid "$PY" manage.py serve --host 127.0.0.1 --port "$PORT" --no-scp >"$DATA/server.log" 2>&1 &
  SERVER_PID=$!
  export LIGHTBOX_URL="http://127.0.0.1:$PORT"
  for _ in $(seq 300); do
    if curl -sf -o /dev/null "$LIGHTBOX_URL/accounts/login/"; then break; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then echo "run.sh: server exited"; tail -50 "$DATA/server.log"; exit 1; fi
    sleep 0.2
  done
  echo "run.sh: server on $LIGHTBOX_URL"
fi

status=0
node --test --test-concurrency=1 --test-reporter=spec tests/browser/ || status=$?
if [[ -n "$SCREENSHOTS" ]]; then node tests/browser/screenshots.mjs || status=1; fi
if [[ -n "$BENCH" ]]; then
  node bench/viewer_bench.mjs --server "$LIGHTBOX_URL" --user "${LIGHTBOX_USER:-rad}" --password "${LIGHTBOX_PASSWORD:-}" \
    --json bench/out/viewer_bench.json || status=1
fi
if [[ -n "$AI_BENCH" ]]; then
  node bench/ai_live_bench.mjs --server "$LIGHTBOX_URL" --user "${LIGHTBOX_USER:-rad}" --password "${LIGHTBOX_PASSWORD:-}" \
    --json bench/out/ai_live_bench.json || status=1
fi
if [[ $status -ne 0 && -n "$DATA" && -f "$DATA/server.log" ]]; then
  echo "--- last lines of the server log ---"
  grep -v ' 200 ' "$DATA/server.log" | tail -40 || true
fi
exit $status
