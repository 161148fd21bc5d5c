"""Tell the event bus which loop serves websockets (needed by the in-memory channel layer); at shutdown, write
the audit events still queued (uvicorn re-raises SIGTERM once it has shut down, so ``atexit`` would not run)."""
from __future__ import annotations

import asyncio

from audit.log import stop_background_writer
from events.bus import bind_server_loop


class LifespanBinder:
    def __init__(self, app):
        self.app = app
        self._bound = False

    async def __call__(self, scope, receive, send):
        if not self._bound:
            bind_server_loop(asyncio.get_running_loop())
            self._bound = True
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await asyncio.get_running_loop().run_in_executor(None, stop_background_writer)
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        return await self.app(scope, receive, send)
