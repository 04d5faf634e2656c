import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Initialise Django (apps, settings) before importing anything that touches models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from apps.integrations.front import inbound_front  # noqa: E402
from apps.realtime.routing import websocket_urlpatterns  # noqa: E402

if settings.INPROCESS_WORKER:
    from apps.common.worker import start_inprocess_worker

    start_inprocess_worker()

application = ProtocolTypeRouter({
    # Partner webhooks (/hooks/...) are answered ahead of Django's middleware: verified by
    # their HMAC, they need none of it (apps/integrations/front.py).
    "http": inbound_front(django_asgi_app),
    # The origin check uses ALLOWED_HOSTS (never "*" in production): a page on another
    # site cannot open a socket with our users' session cookies.
    "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
})

# Garbage collection for a process holding thousands of live sockets. Their objects are
# long-lived, and with the default thresholds (700, 10, 10) short-lived objects caught alive
# by the frequent young collections are promoted until a full collection re-scans the whole
# heap: at 2,000 sockets one every few seconds, pausing the event loop 0.1 to 0.7 s, most of
# the ping-to-console p99 (docs/performance.md, "Live fan-out"). Steady ping traffic makes
# no cyclic garbage (measured with DEBUG_SAVEALL), so young collections every 10,000 net
# allocations and full ones a hundred times rarer cost little memory (about 10 KB more per
# socket; 50,000 cost 25 KB); and what is loaded now (Django, the URLconf, the apps) is
# moved out of the collector's sight for good.
gc.freeze()
gc.set_threshold(10_000, 10, 100)
