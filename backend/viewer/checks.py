"""System checks: the built frontend must be where FRONTEND_DIST says."""
from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core import checks


@checks.register()
def frontend_built(app_configs, **kwargs):
    dist = Path(getattr(settings, "FRONTEND_DIST", "") or "")
    if not (dist / "index.html").is_file():
        return [
            checks.Warning(
                f"The viewer's frontend is not built: {dist / 'index.html'} is missing.",
                hint="Run `npm ci && npm run build` in frontend/ (the setup script does this).",
                id="viewer.W001",
            )
        ]
    return []
