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

# Garbage collection for a process holding thousands of live sockets. Their objects are
# long-lived, and with the default thresholds (700, 10, 10) the full collection that keeps
# re-scanning them ran every two seconds and paused the event loop for 0.3 to 1 s, which was
# most of the ping-to-console p99 at 2,000 drivers (docs/performance.md, "Live fan-out").
# Steady ping traffic makes no cyclic garbage (measured with DEBUG_SAVEALL), so collecting
# less often costs little memory: young collections every 50,000 net allocations instead
# of 700, full ones rarely; and what is loaded now (Django, the URLconf, the apps) is
# moved out of the collector's sight for good.
gc.freeze()
gc.set_threshold(50_000, 20, 100)
