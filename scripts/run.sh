#!/usr/bin/env bash
# Install, prepare the data folder (migrations, demo users, demo studies) and serve everything in embedded mode:
# SQLite and files under $LIGHTBOX_DATA (default ./data), workers and the DICOM SCP inside the one process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export LIGHTBOX_DATA=${LIGHTBOX_DATA:-$PWD/data}
HOST=${LIGHTBOX_HOST:-127.0.0.1}
PORT=${LIGHTBOX_PORT:-8000}
M=".venv/bin/python manage.py"
$M migrate --noinput -v0
$M demo_users
$M analysis_rules --defaults >/dev/null
$M load_demo
exec $M serve --host "$HOST" --port "$PORT" --banner "$($M demo_users --print-only --url "http://$HOST:$PORT/")" "$@"
