"""``manage.py serve``: the whole system in one process (web, websockets, workers, the C-STORE SCP)."""
from __future__ import annotations

import logging

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from lightbox.conf import lightbox_setting

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Serve Lightbox: HTTP and websockets (uvicorn), the DICOM C-STORE SCP and, in embedded mode, workers."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--dicom-port", type=int, default=None, help="C-STORE SCP port (default LIGHTBOX_DICOM_PORT)")
        parser.add_argument("--no-scp", action="store_true", help="do not start the C-STORE SCP")
        parser.add_argument("--no-worker", action="store_true", help="do not start the embedded Celery worker")
        parser.add_argument("--banner", default="", help="text printed once the server listens")

    def handle(self, *args, host: str, port: int, dicom_port: int | None, no_scp: bool, no_worker: bool,
               banner: str, **opts):
        import uvicorn

        scp = None
        if not no_scp:
            from archive.scp import start_scp

            dicom_port = dicom_port or lightbox_setting("DICOM_PORT")
            try:
                scp = start_scp(lightbox_setting("DICOM_AE_TITLE"), host, dicom_port)
            except OSError as exc:
                raise CommandError(f"Cannot listen for DICOM on {host}:{dicom_port}: {exc.strerror or exc}") from exc
            self.stdout.write(f"DICOM C-STORE SCP: AE {lightbox_setting('DICOM_AE_TITLE')} on {host}:{dicom_port}")
        worker = None
        if settings.EMBEDDED and not no_worker:
            from lightbox.embedded import start_worker_thread

            worker = start_worker_thread()
        mode = "embedded" if settings.EMBEDDED else "production"
        self.stdout.write(f"Lightbox ({mode} mode) on http://{host}:{port}/ - data in {settings.DATA_DIR}")
        if banner:
            self.stdout.write(banner)
        self.stdout.flush()
        config = uvicorn.Config(
            "lightbox.asgi:application",
            host=host,
            port=port,
            loop="uvloop",
            http="httptools",
            ws="websockets",
            lifespan="on",
            log_level="warning",
            timeout_graceful_shutdown=3,
        )
        try:
            uvicorn.Server(config).run()
        finally:
            if scp is not None:
                scp.shutdown()
            if worker is not None:
                worker.stop(in_sighandler=False)
