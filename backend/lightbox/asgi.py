"""ASGI entry point: HTTP goes to Django, websockets to the event bus consumers."""
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

from archive.wado.fastpath import WadoFastPath  # noqa: E402
from events.auth import BrowserOriginValidator, auth_stack  # noqa: E402
from events.routing import websocket_urlpatterns  # noqa: E402
from lightbox.lifespan import LifespanBinder  # noqa: E402

application = LifespanBinder(
    ProtocolTypeRouter(
        {
            "http": WadoFastPath(django_asgi_app),  # plain frame and metadata GETs skip the middleware
            "websocket": BrowserOriginValidator(auth_stack(URLRouter(websocket_urlpatterns))),
        }
    )
)
