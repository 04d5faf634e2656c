import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Initialise Django (apps, settings) before importing anything that touches models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from apps.realtime.routing import websocket_urlpatterns  # noqa: E402

if settings.INPROCESS_WORKER:
    from apps.common.worker import start_inprocess_worker

    start_inprocess_worker()

application = ProtocolTypeRouter({
    "http": django_asgi_app,
    # The origin check uses ALLOWED_HOSTS (never "*" in production): a page on another
    # site cannot open a socket with our users' session cookies.
    "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
})
