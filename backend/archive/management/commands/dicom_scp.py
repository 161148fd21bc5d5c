"""``manage.py dicom_scp``: only the C-STORE/C-ECHO SCP, as its own process (production topology)."""
from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from lightbox.conf import lightbox_setting


class Command(BaseCommand):
    help = "Run the DICOM C-STORE and C-ECHO SCP alone, until interrupted (SIGINT or SIGTERM)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default all interfaces)")
        parser.add_argument("--port", type=int, default=None, help="port (default LIGHTBOX_DICOM_PORT)")
        parser.add_argument("--ae-title", default=None, help="called AE title (default LIGHTBOX_AE_TITLE)")

    def handle(self, *args, host: str, port: int | None, ae_title: str | None, **opts):
        from archive.scp import start_scp

        port = port or lightbox_setting("DICOM_PORT")
        ae_title = ae_title or lightbox_setting("DICOM_AE_TITLE")
        if not ae_title or len(ae_title) > 16 or not ae_title.isascii() or "\\" in ae_title:
            raise CommandError(f"AE title {ae_title!r} must be 1-16 ASCII characters without '\\'.")
        try:
            server = start_scp(ae_title, host, port)
        except OSError as exc:
            raise CommandError(f"Cannot listen for DICOM on {host}:{port}: {exc.strerror or exc}") from exc
        allowed = lightbox_setting("DICOM_ALLOWED_AES")
        self.stdout.write(f"DICOM SCP: AE {ae_title} on {host}:{port}; calling AEs: {', '.join(allowed) or 'any'}")
        self.stdout.flush()
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        try:
            while not stop.wait(1.0):
                pass
        finally:
            server.shutdown()
            self.stdout.write("DICOM SCP stopped.")
