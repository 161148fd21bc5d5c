#!/usr/bin/env bash
# Install everything, then run every test:
#   1. ruff; 2. the Python suite in embedded mode (SQLite, in-process workers); 3. the archive and production
#   tests again on real PostgreSQL and Redis with web and Celery worker as separate processes; 4. the frontend's
#   unit tests (Vitest); 5. end-to-end tests in headless Chromium against a live server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --system-test
export PATH="$PWD/.venv/bin:$PATH"
SVC=$(mktemp -d /tmp/lightbox-services.XXXXXX)
trap 'bash scripts/services.sh stop "$SVC"' EXIT
eval "$(bash scripts/services.sh start "$SVC")"
export LIGHTBOX_DATA=$(mktemp -d /tmp/lightbox-test-data.XXXXXX)
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

say "ruff"
ruff check backend inference tests bench manage.py

say "Python tests, embedded mode (SQLite)"
python -m pytest -q -m "not browser"

say "archive, analysis and production-path tests on PostgreSQL + Redis (separate web and worker processes)"
DATABASE_URL=$LIGHTBOX_TEST_DATABASE_URL LIGHTBOX_TEST_MODE=production \
  python -m pytest -q -m "not browser" tests/archive tests/accounts tests/events tests/analysis tests/production

if [ -f frontend/package.json ]; then
  say "frontend unit tests (Vitest)"
  (cd frontend && npm test --silent)
fi
if [ -x tests/browser/run.sh ]; then
  say "browser end-to-end tests (headless Chromium)"
  bash tests/browser/run.sh
fi
say "all tests passed"
