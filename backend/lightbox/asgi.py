"""ASGI entry point: HTTP goes to Django (hot DICOMweb routes first to archive.wado.fastpath and archive.direct),
websockets to the event bus consumers."""
import os
import sys
from pathlib import Path

_root = Path(__file__).resolve().parent.parent.parent
for _p in (str(_root / "backend"), str(_root)):
    if _p not in sys.path:
        sys.path.insert(0, _p)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lightbox.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from archive.direct import DirectDispatch  # noqa: E402
from archive.wado.fastpath import WadoFastPath  # noqa: E402
from audit.log import start_background_writer  # noqa: E402
from events.auth import BrowserOriginValidator, auth_stack  # noqa: E402
from events.routing import websocket_urlpatterns  # noqa: E402
from lightbox.lifespan import LifespanBinder  # noqa: E402
from lightbox.process_tuning import tune_for_uploads  # noqa: E402

# requests queue their audit events; a writer thread inserts them in batches (flushed at exit: audit.log)
start_background_writer()
tune_for_uploads()  # uvicorn's read-ahead and glibc's mmap threshold, for STOW-RS bodies

application = LifespanBinder(
    ProtocolTypeRouter(
        {
            # plain frame and metadata GETs are served before Django; searches, rendered images and STOW with
            # credentials in the header run their views without the middleware; the rest goes through Django
            "http": WadoFastPath(DirectDispatch(django_asgi_app)),
            "websocket": BrowserOriginValidator(auth_stack(URLRouter(websocket_urlpatterns))),
        }
    )
)
