"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "riskradar.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import get_resolver  # noqa: E402

from apps.stream.middleware import TokenAuthMiddleware, origin_checked  # noqa: E402
from apps.stream.routing import websocket_urlpatterns  # noqa: E402
from riskradar.bulk import gc_freeze_loaded  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": origin_checked(AuthMiddlewareStack(TokenAuthMiddleware(URLRouter(websocket_urlpatterns)))),
    }
)

# The views (and what they import: the services, the engine) are loaded now rather than by the first
# request, and everything loaded is then left out of the garbage collector's full passes.
get_resolver().url_patterns  # noqa: B018
gc_freeze_loaded()
