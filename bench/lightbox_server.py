"""A Lightbox server for benchmarking: the tests' LiveServer (``manage.py serve``) on free ports, fresh data.

Embedded mode by default (SQLite, in-process worker). ``database_url`` points it at a fresh PostgreSQL database
created next to that URL (the production index); without a Redis URL the worker stays in-process.
"""
from __future__ import annotations

from pathlib import Path

from tests.livesrv import LiveServer, _create_database, make_live_server

USER = ("rad", "rad-pass-123")  # created by LiveServer.start with the radiologist role


def start_lightbox(data_dir: Path, *, database_url: str | None = None, redis_url: str | None = None) -> LiveServer:
    server = make_live_server(data_dir, production=False)
    # The archive is measured, not the AI: in embedded mode the worker warms every model in the web process for
    # several seconds after start (imports and one run each, holding the GIL: stalls of up to ~1 s), which would
    # fall on whichever figures come first; a production web process never does (its workers are processes).
    server.env["LIGHTBOX_AI_WARM"] = "0"
    if database_url:
        server.env["DATABASE_URL"] = _create_database(database_url)
    if redis_url:
        server.env["REDIS_URL"] = redis_url
    return server.start()


def mode(server: LiveServer) -> str:
    db = "PostgreSQL" if "DATABASE_URL" in server.env else "SQLite"
    worker = "Redis + worker process" if "REDIS_URL" in server.env else "embedded worker"
    return f"{db}, {worker}"
